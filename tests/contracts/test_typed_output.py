"""TypedStageOutput with attrs classes and pydantic models.

Validation results are compared with the reference's TypedStageOutput on the
same pydantic model, and an attrs twin of the model must accept and reject the
same payloads, with the same values.
"""

from __future__ import annotations

import enum
import importlib
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import pydantic
import pytest
import trio
import trio.testing

from stageflow_trio.contracts import registry
from stageflow_trio.contracts._models import validate
from stageflow_trio.contracts.typed_output import TypedStageOutput
from stageflow_trio.core.stage_output import StageOutput

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from types import ModuleType


class Kind(enum.Enum):
    NOTE = "note"


class PSummary(pydantic.BaseModel):
    text: str
    confidence: float = 1.0
    count: int = 0
    final: bool = False


@attrs.frozen
class ASummary:
    text: str
    confidence: float = 1.0
    count: int = 0
    final: bool = False


@attrs.frozen
class Rich:
    id: uuid.UUID
    at: datetime
    kind: Kind
    tags: tuple[str, ...] = ()


@pytest.fixture
def ref_typed(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.contracts.typed_output")


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the reference coroutine suspended")


PAYLOADS: list[Any] = [
    {"text": "done", "confidence": 0.9},
    {"text": "done", "confidence": "0.5", "count": "3", "final": "yes"},
    {"text": "done", "count": 2.0, "extra": "ignored"},
    {"text": 1},
    {"text": "t", "count": 1.5},
    {"text": "t", "final": 2},
    {"confidence": 0.1},
    {"text": b"bytes"},
    None,
]


def _outcome(run: Any) -> Any:
    try:
        output = run()
    except pydantic.ValidationError:
        return "invalid"
    except ValueError:
        return "invalid"
    except TypeError as exc:
        return f"TypeError: {exc}"
    return (output.status.value, dict(output.data), output.version)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_ok_matches_the_reference(ref_typed: ModuleType, payload: Any, strict: bool) -> None:
    theirs = _outcome(
        lambda: ref_typed.TypedStageOutput(PSummary, strict=strict, default_version="v1").ok(
            payload
        )
    )
    for model in (PSummary, ASummary):
        ours = _outcome(
            lambda model=model: TypedStageOutput(model, strict=strict, default_version="v1").ok(
                payload
            )
        )
        assert ours == theirs, model


@pytest.mark.parametrize(
    "value",
    [
        "1",
        "1.0",
        "1.5",
        "abc",
        "true",
        "yes",
        "off",
        " 2 ",
        "1e3",
        "1_000",
        "inf",
        "",
        "On",
        1,
        0,
        2,
        1.0,
        1.5,
        0.0,
        True,
        False,
        b"x",
        bytearray(b"y"),
        None,
        float("inf"),
        [1],
    ],
    ids=repr,
)
@pytest.mark.parametrize("strict", [False, True])
def test_primitive_conversions_match_pydantic(value: Any, strict: bool) -> None:
    @attrs.frozen
    class A:
        s: str = ""
        i: int = 0
        f: float = 0.0
        b: bool = False
        by: bytes = b""

    class P(pydantic.BaseModel):
        s: str = ""
        i: int = 0
        f: float = 0.0
        b: bool = False
        by: bytes = b""

    for field in ("s", "i", "f", "b", "by"):
        try:
            expected = getattr(P.model_validate({field: value}, strict=strict), field)
        except pydantic.ValidationError:
            expected = "invalid"
        try:
            got = getattr(validate(A, {field: value}, strict=strict, context=None), field)
        except ValueError:
            got = "invalid"
        assert (type(got), got) == (type(expected), expected), field


def test_attrs_validation_error_names_the_field() -> None:
    with pytest.raises(
        ValueError,
        match=r"^ASummary validation failed: expected int, got str 'x' @ \$\.count$",
    ):
        TypedStageOutput(ASummary).validate({"text": "t", "count": "x"})
    with pytest.raises(
        ValueError, match=r"^ASummary validation failed: required field missing @ \$\.text$"
    ):
        TypedStageOutput(ASummary).validate({})


def test_attrs_validator_errors_become_value_errors() -> None:
    @attrs.frozen
    class Positive:
        n: int = attrs.field(validator=attrs.validators.gt(0))

    with pytest.raises(ValueError, match=r"^Positive validation failed: .*must be > 0"):
        TypedStageOutput(Positive).validate({"n": 0})


def test_non_class_structure_errors_become_value_errors() -> None:
    with pytest.raises(ValueError, match=r"^Rich validation failed: "):
        TypedStageOutput(Rich).validate({"id": 5, "at": "x", "kind": "note"})


def test_rich_attrs_payload_round_trips_through_the_converter() -> None:
    typed = TypedStageOutput(Rich)
    ident = uuid.UUID(int=7)
    when = datetime(2026, 1, 2, tzinfo=UTC)
    instance = typed.validate({"id": str(ident), "at": when.isoformat(), "kind": "note"})
    assert instance == Rich(ident, when, Kind.NOTE)
    assert typed.serialize(instance) == {
        "id": str(ident),
        "at": when.isoformat(),
        "kind": "note",
        "tags": [],
    }
    assert typed.validate(typed.serialize(instance)) == instance


def test_instances_and_kwargs() -> None:
    typed = TypedStageOutput(ASummary)
    given = ASummary(text="a")
    assert typed.validate(given) is given
    assert typed.validate(given, count=2) == ASummary(text="a", count=2)
    assert typed.validate(PSummary(text="p", count=3)) == ASummary(text="p", count=3)
    assert TypedStageOutput(PSummary).validate(given) == PSummary(text="a")
    assert typed.validate(None, text="k") == ASummary(text="k")
    assert typed.serialize(text="s") == {
        "text": "s",
        "confidence": 1.0,
        "count": 0,
        "final": False,
    }
    assert typed.model is ASummary


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (ASummary, "TypedStageOutput payload must be a dict, attrs instance, or None"),
        (PSummary, "TypedStageOutput payload must be a dict, BaseModel, or None"),
    ],
)
def test_a_bad_payload_is_a_type_error(model: type[Any], message: str) -> None:
    with pytest.raises(TypeError, match=rf"^{message}$"):
        TypedStageOutput(model).validate([1])


def test_pydantic_context_is_passed() -> None:
    seen: list[Any] = []

    class WithContext(pydantic.BaseModel):
        text: str

        @pydantic.field_validator("text")
        @classmethod
        def record(cls, value: str, info: pydantic.ValidationInfo) -> str:
            seen.append(info.context)
            return value

    TypedStageOutput(WithContext, context={"tenant": "t"}).validate({"text": "x"})
    TypedStageOutput(WithContext).validate({"text": "x"})
    assert seen == [{"tenant": "t"}, None]


# --- versions -------------------------------------------------------------------------


def test_versions() -> None:
    assert TypedStageOutput(ASummary).ok(text="t").version is None
    assert TypedStageOutput(ASummary, default_version="v1").ok(text="t").version == "v1"
    assert TypedStageOutput(ASummary, default_version="v1").ok(text="t", version="v2").version == (
        "v2"
    )
    versions = iter(["a", "b"])
    typed = TypedStageOutput(ASummary, version_factory=lambda: next(versions))
    assert [typed.ok(text="t").version, typed.ok(text="t").version] == ["a", "b"]


def test_timestamp_version_is_utc_iso() -> None:
    stamp = TypedStageOutput.timestamp_version()
    parsed = datetime.fromisoformat(stamp)
    assert parsed.tzinfo == UTC
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 60


def test_constructor_checks() -> None:
    with pytest.raises(
        ValueError, match=r"^Provide either default_version or version_factory, not both$"
    ):
        TypedStageOutput(ASummary, default_version="v", version_factory=lambda: "w")
    with pytest.raises(
        TypeError,
        match=r"^TypedStageOutput: model must be an attrs class or a pydantic model class; got <class 'dict'>$",
    ):
        TypedStageOutput(dict)
    with pytest.raises(
        TypeError,
        match=r"^TypedStageOutput: version_factory must be a callable or None; got str$",
    ):
        TypedStageOutput(ASummary, version_factory="v")  # type: ignore[arg-type]


# --- async ----------------------------------------------------------------------------


async def test_async_variants_accept_awaitables_and_factories() -> None:
    typed = TypedStageOutput(ASummary, default_version="v1")

    async def build() -> dict[str, Any]:
        return {"text": "async"}

    with trio.testing.assert_checkpoints():
        output = await typed.ok_async(build, count=2)
    assert (dict(output.data)["count"], output.version) == (2, "v1")
    assert await typed.validate_async(build()) == ASummary(text="async")
    assert (await typed.serialize_async(build))["text"] == "async"
    with trio.testing.assert_checkpoints():
        await typed.validate_async(build)


async def test_async_factories_that_are_not() -> None:
    typed = TypedStageOutput(ASummary)
    with pytest.raises(
        TypeError, match=r"^payload_factory must be awaitable or callable returning awaitable$"
    ):
        await typed.ok_async({"text": "t"})  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^payload_factory must be awaitable or callable returning awaitable; "
        r"the callable returned dict$",
    ):
        await typed.ok_async(lambda: {"text": "t"})  # type: ignore[arg-type,return-value]


async def test_a_cancelled_factory_propagates(autojump_clock: trio.testing.MockClock) -> None:
    async def slow() -> dict[str, Any]:
        await trio.sleep(5)
        return {"text": "late"}

    with trio.move_on_after(1) as scope:
        await TypedStageOutput(ASummary).ok_async(slow)
    assert scope.cancelled_caught
    assert trio.current_time() == 1


async def test_async_matches_the_reference(ref_typed: ModuleType) -> None:
    async def build() -> dict[str, Any]:
        return {"text": "x", "count": "4"}

    ours = await TypedStageOutput(PSummary, default_version="v").ok_async(build)
    theirs = _drive(ref_typed.TypedStageOutput(PSummary, default_version="v").ok_async(build))
    assert (dict(ours.data), ours.version) == (theirs.data, theirs.version)


# --- register_contract ----------------------------------------------------------------


def test_register_contract_uses_the_shared_registry() -> None:
    entry = TypedStageOutput(ASummary, default_version="v1").register_contract(
        "summarize", description="a summary"
    )
    assert registry.get("summarize", "v1") is entry
    assert (entry.model, entry.description) == (ASummary, "a summary")
    override = TypedStageOutput(PSummary).register_contract("summarize", version="v2")
    assert [m.version for m in registry.list("summarize")] == ["v1", "v2"]
    assert override.schema == PSummary.model_json_schema(mode="validation")
    with pytest.raises(
        ValueError, match=r"^version must be provided or configured to register contract$"
    ):
        TypedStageOutput(ASummary).register_contract("summarize")


def test_ok_returns_a_stage_output() -> None:
    output = TypedStageOutput(ASummary).ok({"text": "t"})
    assert isinstance(output, StageOutput)
    assert output == StageOutput.ok(
        data={"text": "t", "confidence": 1.0, "count": 0, "final": False}
    )


def test_importing_the_package_loads_neither_cattrs_nor_pydantic() -> None:
    import subprocess
    import sys

    code = (
        "import sys, stageflow_trio, stageflow_trio.contracts; "
        "print(sorted({'cattrs', 'pydantic'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
