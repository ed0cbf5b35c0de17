"""Audit 15 of the contracts layer, the projector and their arguments.

Each test failed before its fix:

- attrs contract models: a nested attrs field read any object with ``in``, so a
  str or a list became the nested class's defaults, and an instance of the class
  itself was refused; a bare ``dict`` field made ``{}`` of a str; ``date``,
  ``time``, ``timedelta``, ``Decimal`` and unions of several types escaped as
  cattrs's ``StructureHandlerNotFoundError`` on every validation.
- ``TypedStageOutput(strict="no")`` validated attrs models strictly (pydantic
  refuses a non-bool ``strict``); a non-str ``default_version`` failed only at ``ok``.
- ``ContractRegistry``: any ``schema`` / ``description`` was stored, and a
  schema whose property is a JSON Schema boolean made ``diff`` raise AttributeError.
- ``ContractErrorInfo.from_dict`` read a falsy non-mapping ``context`` (``[]``,
  ``0``) as ``{}``; ``ContractSuggestion(fix_steps=)`` took a dict's keys and a
  set in no stable order.
- The projector returned sets, frozensets and deques of the payload as they were
  (a deque's dataclasses undumped) and an OrderedDict as a dict, where the
  reference's pydantic dump copies each into its own kind.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union

import attrs
import pydantic
import pytest

from stageflow_trio.contracts import ContractErrorInfo, ContractSuggestion, TypedStageOutput
from stageflow_trio.contracts._models import validate
from stageflow_trio.contracts.registry import ContractRegistry
from stageflow_trio.projector.service import WSOutboundMessage

if TYPE_CHECKING:
    from types import ModuleType


@attrs.frozen
class Inner:
    x: int = 0
    y: str = "y"


@attrs.frozen
class Outer:
    inner: Inner = attrs.field(factory=Inner)
    blob: dict = attrs.field(factory=dict)  # type: ignore[type-arg]


def _check(model: type[Any], data: dict[str, Any], *, strict: bool = False) -> Any:
    return validate(model, data, strict=strict, context=None)


# --- nested attrs models -------------------------------------------------------------


@pytest.mark.parametrize("value", ["xy", ["x"], ("x", 1), {"x"}, 5, b"x"])
@pytest.mark.parametrize("strict", [False, True])
def test_a_nested_model_field_refuses_what_is_not_a_mapping(value: Any, strict: bool) -> None:
    # Was Outer(inner=Inner(x=0, y='y')): the defaults, silently.
    with pytest.raises(ValueError, match=r"Outer validation failed: .*Inner.* @ \$\.inner"):
        _check(Outer, {"inner": value}, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_a_nested_model_field_takes_an_instance_as_is(strict: bool) -> None:
    inner = Inner(3, "z")
    # Was ValueError "argument of type 'Inner' is not iterable"; pydantic keeps the instance.
    assert _check(Outer, {"inner": inner}, strict=strict).inner is inner
    typed = TypedStageOutput(Outer)
    assert typed.ok({}, inner=inner).data["inner"] == {"x": 3, "y": "z"}


def test_a_nested_model_field_takes_a_mapping_as_pydantic_does() -> None:
    import types

    proxy = types.MappingProxyType({"x": "4"})
    assert _check(Outer, {"inner": proxy}).inner == Inner(4)
    # pydantic's strict mode takes a dict, not any mapping.
    with pytest.raises(ValueError, match="Inner"):
        _check(Outer, {"inner": proxy}, strict=True)
    assert _check(Outer, {"inner": {"x": 4}}, strict=True).inner == Inner(4)


@pytest.mark.parametrize("value", ["", "ab", [("a", 1)], []])
def test_a_bare_dict_field_takes_only_a_mapping(value: Any) -> None:
    # Was {} (or {"a": 1}), what dict() makes of it; pydantic refuses each.
    with pytest.raises(ValueError, match=r"expected a mapping, got .* @ \$\.blob"):
        _check(Outer, {"blob": value})
    assert _check(Outer, {"blob": {"a": [1]}}).blob == {"a": [1]}


# --- field types the schema lists but the converter did not structure ----------------


@attrs.frozen
class Rich:
    day: dt.date | None = None
    at: dt.time | None = None
    span: dt.timedelta | None = None
    amount: decimal.Decimal | None = None
    either: Union[int, str, None] = None  # noqa: UP007 - the typing spelling on purpose


class PRich(pydantic.BaseModel):
    day: dt.date | None = None
    at: dt.time | None = None
    span: dt.timedelta | None = None
    amount: decimal.Decimal | None = None
    either: Union[int, str, None] = None  # noqa: UP007


_AGREED: list[tuple[str, Any]] = [
    ("day", "2024-02-29"),
    ("day", dt.date(2024, 1, 1)),
    ("day", dt.datetime(2024, 1, 1)),
    ("day", dt.datetime(2024, 1, 1, 5)),
    ("day", "not a date"),
    ("day", b"2024-01-01"),
    ("at", "10:30"),
    ("at", dt.time(1, 2)),
    ("at", "25:00"),
    ("span", dt.timedelta(days=1)),
    ("span", 1.5),
    ("span", True),
    ("amount", "1.25"),
    ("amount", 3),
    ("amount", 0.5),
    ("amount", decimal.Decimal(2)),
    ("amount", True),
    ("amount", "nan"),
    ("amount", "abc"),
    ("either", 1),
    ("either", "1"),
    ("either", b"ab"),
    ("either", 1.0),
    ("either", [1]),
]


def _outcome(model: type[Any], field: str, value: Any, strict: bool) -> Any:
    try:
        if attrs.has(model):
            result = getattr(_check(model, {field: value}, strict=strict), field)
        else:
            result = getattr(model.model_validate({field: value}, strict=strict), field)
    except ValueError:
        return "invalid"
    return (type(result), result)


@pytest.mark.parametrize(("field", "value"), _AGREED)
@pytest.mark.parametrize("strict", [False, True])
def test_date_time_decimal_and_union_fields_validate_as_pydantic(
    field: str, value: Any, strict: bool
) -> None:
    # Was cattrs's StructureHandlerNotFoundError ("Register a structure hook") for each.
    assert _outcome(Rich, field, value, strict) == _outcome(PRich, field, value, strict)


def test_an_unsupported_field_type_is_a_type_error_naming_it() -> None:
    @attrs.frozen
    class WithCallable:
        fn: Callable[[], int]

    # Was cattrs.errors.StructureHandlerNotFoundError (neither TypeError nor ValueError).
    with pytest.raises(TypeError, match=r"WithCallable: field type .*Callable.* is not supported"):
        TypedStageOutput(WithCallable).validate({"fn": len})


# --- TypedStageOutput and ContractRegistry arguments ---------------------------------


@pytest.mark.parametrize("strict", ["no", 1, None])
def test_typed_output_strict_must_be_a_bool(strict: Any) -> None:
    # Was accepted: "no" validated an attrs model strictly (its truth value).
    with pytest.raises(TypeError, match="TypedStageOutput: strict must be a bool; got"):
        TypedStageOutput(Inner, strict=strict)


def test_typed_output_default_version_is_checked_at_construction() -> None:
    # Was accepted, failing at every ok() with StageOutput's message.
    with pytest.raises(TypeError, match="TypedStageOutput: default_version must be a str or None"):
        TypedStageOutput(Inner, default_version=2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schema": 5}, r"schema must be a mapping or None; got int"),
        ({"schema": [("properties", {})]}, r"schema must be a mapping or None; got list"),
        ({"schema": {"properties": ["a"]}}, r"schema\['properties'\] must be a mapping"),
        ({"schema": {"properties": {"a": 1}}}, r"schema\['properties'\] must map str names"),
        ({"schema": {"required": "ab"}}, r"schema\['required'\] must be a list of str"),
        ({"description": 5}, r"description must be a str or None; got int"),
    ],
)
def test_registry_register_checks_schema_and_description(
    kwargs: dict[str, Any], message: str
) -> None:
    registry = ContractRegistry()
    with pytest.raises(TypeError, match=f"ContractRegistry: {message}"):
        registry.register(stage="s", version="1", model=Inner, **kwargs)
    assert registry.list() == []


def test_registry_diff_reads_boolean_property_schemas() -> None:
    registry = ContractRegistry()
    registry.register(stage="s", version="1", model=Inner, schema={"properties": {"a": True}})
    registry.register(
        stage="s",
        version="2",
        model=Outer,
        schema={"properties": {"a": {"type": "string"}, "b": False}, "required": ["a"]},
    )
    # Was AttributeError: 'bool' object has no attribute 'get'.
    report = registry.diff("s", "1", "2")
    assert list(report.breaking_changes) == []
    assert list(report.warnings) == ["Optional field 'b' added"]


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.get(["s"], "1"),
        lambda r: r.get("s", 1),
        lambda r: r.diff({"s"}, "1", "2"),
        lambda r: r.diff("s", "1", None),
        lambda r: r.list(["s"]),
    ],
)
def test_registry_lookups_name_a_bad_argument(call: Callable[[ContractRegistry], Any]) -> None:
    # Were "unhashable type", None, "Contract ... not registered" or [].
    with pytest.raises(TypeError, match=r"ContractRegistry: \w+ must be a str; got"):
        call(ContractRegistry())


@pytest.mark.parametrize("context", [[], 0, "", ()])
def test_error_info_from_dict_refuses_a_falsy_non_mapping_context(context: Any) -> None:
    # Was read as an empty context.
    with pytest.raises(TypeError, match="ContractErrorInfo context must be a mapping"):
        ContractErrorInfo.from_dict({"code": "c", "summary": "s", "context": context})
    info = ContractErrorInfo.from_dict({"code": "c", "summary": "s", "context": None})
    assert info.context == {}


@pytest.mark.parametrize("steps", [{"a": 1}, {"a", "b"}, frozenset({"a"}), b"ab"])
def test_suggestion_fix_steps_must_be_ordered_steps(steps: Any) -> None:
    # Was a dict's keys, a set's items in hash order, or the bytes' ints (then a TypeError).
    with pytest.raises(TypeError, match="ContractSuggestion fix_steps must be a list or tuple"):
        ContractSuggestion(code="c", title="t", summary="s", fix_steps=steps)
    assert ContractSuggestion(code="c", title="t", summary="s", fix_steps=iter("ab")).fix_steps == (
        "a",
        "b",
    )


# --- projector: the payload's containers, as pydantic's model_dump copies them ---------


@dataclasses.dataclass
class Point:
    x: int = 1


def _payloads() -> list[Callable[[], Any]]:
    return [
        lambda: {1, 2},
        lambda: frozenset({"a"}),
        lambda: collections.deque([[1], Point()]),
        lambda: collections.deque([1], maxlen=4),
        lambda: collections.OrderedDict(a=[1], p=Point()),
        lambda: {"inner": collections.OrderedDict(s={3})},
        lambda: [collections.deque([Point()])],
    ]


def _describe(value: Any, original: Any) -> Any:
    # Type, value and whether each container is a copy, recursively.
    if isinstance(value, dict):
        by_key: dict[Any, Any] = original if isinstance(original, dict) else {}
        return (
            type(value).__name__,
            value is original,
            [(k, _describe(v, by_key.get(k))) for k, v in value.items()],
        )
    if isinstance(value, list | tuple | collections.deque):
        seq = isinstance(original, list | tuple | collections.deque)
        originals: list[Any] = list(original) if seq else []
        originals += [None] * (len(value) - len(originals))
        maxlen = value.maxlen if isinstance(value, collections.deque) else None
        return (
            type(value).__name__,
            value is original,
            maxlen,
            [_describe(v, o) for v, o in zip(value, originals, strict=True)],
        )
    if isinstance(value, set | frozenset):
        return (type(value).__name__, value is original, sorted(map(repr, value)))
    return (type(value).__name__, repr(value))


@pytest.mark.parametrize("make", _payloads())
def test_projected_payload_containers_match_the_reference(
    reference: ModuleType, make: Callable[[], Any]
) -> None:
    ref = importlib.import_module("stageflow.projector.service")
    meta = {"pipeline_run_id": "a", "request_id": "b"}
    described = []
    for cls in (ref.WSOutboundMessage, WSOutboundMessage):
        payload = make()
        dumped = cls.model_validate({"type": "t", "payload": payload, "metadata": meta})
        described.append(_describe(dumped.model_dump(exclude_none=True)["payload"], payload))
    assert described[1] == described[0]


def test_a_projected_set_is_a_copy() -> None:
    payload = {"tags": {"a"}}
    meta = {"pipeline_run_id": "a", "request_id": "b"}
    dumped = WSOutboundMessage.model_validate({"type": "t", "payload": payload, "metadata": meta})
    out = dumped.model_dump()["payload"]
    out["tags"].add("b")
    assert payload == {"tags": {"a"}}
