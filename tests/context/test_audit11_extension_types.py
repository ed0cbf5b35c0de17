"""ExtensionBundle.from_dict never converts a value of the wrong type (audit 11).

Differential against the reference: its ``from_dict`` is ``cls(**data)``, so a
value of the wrong type comes back exactly as given. Ours structures by the
annotations (docs/parity.md, "ExtensionBundle.from_dict": wrong types raise
TypeError naming the field); it used to let cattrs call the annotated type on
the value instead: ``{"active": "false"}`` read back as ``active=True``,
``{"name": None}`` as ``name="None"``, ``{"count": 5.7}`` as ``count=5``,
``{"tags": "abc"}`` as ``tags=["a", "b", "c"]``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.context import ContextSnapshot, ExtensionBundle
from tests.fakes import import_reference


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return import_reference()


@attrs.frozen
class Typed(ExtensionBundle):
    active: bool = False
    count: int = 0
    ratio: float = 0.0
    name: str = ""
    tags: list[str] = attrs.Factory(list)
    scores: tuple[int, ...] = ()
    labels: frozenset[str] = frozenset()
    payload: bytes = b""


_FIELDS = [f.name for f in attrs.fields(Typed)]

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
)
_json_value = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _fits(name: str, value: Any) -> bool:
    """Whether ``value`` is of the type the field is annotated with (as JSON would carry it)."""
    if name == "active":
        return type(value) is bool
    if name == "count":
        return type(value) is int
    if name == "ratio":
        return type(value) in (int, float)
    if name == "name":
        return type(value) is str
    if name in ("tags", "labels"):
        return type(value) is list and all(type(item) is str for item in value)
    if name == "scores":
        return type(value) is list and all(type(item) is int for item in value)
    return type(value) is bytes


def _expected(name: str, value: Any) -> Any:
    """What a value that fits comes back as: the field's own container or number type."""
    if name == "ratio":
        return float(value)
    if name == "scores":
        return tuple(value)
    if name == "labels":
        return frozenset(value)
    return value


def _same(got: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(got, float) and math.isnan(got)
    return type(got) is type(expected) and bool(got == expected)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(_FIELDS), value=_json_value)
def test_from_dict_keeps_or_refuses_never_converts(
    reference: ModuleType, name: str, value: Any
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Theirs(reference.context.ExtensionBundle):  # type: ignore[misc, name-defined]
        active: Any = False
        count: Any = 0
        ratio: Any = 0.0
        name: Any = ""
        tags: Any = ()
        scores: Any = ()
        labels: Any = frozenset()
        payload: Any = b""

    # The reference stores the value exactly as given.
    assert getattr(Theirs.from_dict({name: value}), name) is value
    if _fits(name, value):
        assert _same(getattr(Typed.from_dict({name: value}), name), _expected(name, value))
    else:
        with pytest.raises(TypeError, match=rf"Typed\.from_dict: .*Typed\.{name}"):
            Typed.from_dict({name: value})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"active": "false"}, "active"),
        ({"active": 0}, "active"),
        ({"count": 5.7}, "count"),
        ({"count": "12"}, "count"),
        ({"count": True}, "count"),
        ({"ratio": "nan"}, "ratio"),
        ({"ratio": False}, "ratio"),
        ({"name": None}, "name"),
        ({"name": 5}, "name"),
        ({"tags": "abc"}, "tags"),
        ({"tags": {"x": 1}}, "tags"),
        ({"scores": "12"}, "scores"),
        ({"labels": "ab"}, "labels"),
        ({"payload": 3}, "payload"),
    ],
)
def test_wrong_types_are_refused_not_converted(data: dict[str, Any], field: str) -> None:
    with pytest.raises(TypeError, match=rf"Typed\.{field}"):
        Typed.from_dict(data)


@settings(max_examples=60, deadline=None)
@given(
    active=st.booleans(),
    count=st.integers(-(2**70), 2**70),
    ratio=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-5, 5),
    name=st.text(max_size=6),
    tags=st.lists(st.text(max_size=4), max_size=3),
    scores=st.lists(st.integers(), max_size=3).map(tuple),
    labels=st.frozensets(st.text(max_size=3), max_size=3),
)
def test_well_typed_bundles_round_trip_through_json(**fields: Any) -> None:
    bundle = Typed(**fields)
    data = ContextSnapshot(extensions=bundle).to_dict()
    data["extensions"]["labels"] = sorted(data["extensions"]["labels"])  # a set is not JSON
    data = json.loads(json.dumps({**data, "extensions": {**data["extensions"], "payload": None}}))
    data["extensions"]["payload"] = b""
    back = ContextSnapshot.from_dict(data, extension_types={"Typed": Typed})
    assert back.extensions == bundle
