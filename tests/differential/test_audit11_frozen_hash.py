"""FrozenDict's hash agrees with its equality (audit 11).

The reference hashes the items sorted by ``str(key)``. With keys of mixed
types that is not a function of the dict's value: ``{1: x, "1": y}`` and
``{"1": y, 1: x}`` tie on ``"1"`` and keep their own orders, and the equal keys
``1`` and ``True`` sort apart. Equal FrozenDicts (and the snapshots, outputs
and inputs holding them) then had different hashes. Text keys, the common
case, still hash exactly as the reference hashes them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.context import ContextSnapshot, RunIdentity
from stageflow_trio.core import StageOutput
from stageflow_trio.utils import FrozenDict
from tests.fakes import import_reference


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return import_reference()


_keys = st.one_of(
    st.booleans(),
    st.integers(-3, 12),
    st.sampled_from([0.0, 1.0, 2.5]),
    st.sampled_from(["0", "1", "2", "10", "True", "False", "1.0", "a"]),
)
_items = st.lists(st.tuples(_keys, st.integers(-2, 2)), max_size=6)


def _twin(key: Any) -> Any:
    """A key equal to ``key`` (same hash) of another type, or ``key`` itself."""
    if type(key) is bool:
        return int(key)
    if type(key) is int:
        return bool(key) if key in (0, 1) else float(key)
    if type(key) is float and key.is_integer():
        return int(key)
    return key


@settings(max_examples=200, deadline=None)
@given(items=_items, data=st.data())
def test_equal_frozen_dicts_hash_equal(items: list[tuple[Any, int]], data: st.DataObject) -> None:
    first = FrozenDict(dict(items))
    # The same value built another way: the keys in another order, each
    # possibly replaced by an equal key of another type (1 for True, 2.0 for 2).
    order = data.draw(st.permutations(list(first.items())))
    rebuilt: dict[Any, int] = {}
    for key, value in order:
        if data.draw(st.booleans()):
            key = _twin(key)
        rebuilt[key] = value
    second = FrozenDict(rebuilt)
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({1: "a", "1": "b"}, {"1": "b", 1: "a"}),
        ({True: "a", "2": "b"}, {1: "a", "2": "b"}),
        ({2.0: "a", "1.5": "b", 10: "c"}, {"1.5": "b", 10: "c", 2: "a"}),
    ],
)
def test_mixed_key_examples(left: dict[Any, str], right: dict[Any, str]) -> None:
    assert FrozenDict(left) == FrozenDict(right)
    assert hash(FrozenDict(left)) == hash(FrozenDict(right))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=3), max_size=6))
def test_text_keys_hash_as_the_reference(reference: ModuleType, source: dict[str, Any]) -> None:
    assert hash(FrozenDict(source)) == hash(reference.utils.frozen.FrozenDict(source))


def test_equal_snapshots_and_outputs_hash_equal() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    run_id = RunIdentity(created_at=at)
    left: dict[Any, str] = {1: "a", "1": "b"}
    right: dict[Any, str] = {"1": "b", 1: "a"}
    one = ContextSnapshot(run_id=run_id, created_at=at, metadata=left)
    two = ContextSnapshot(run_id=run_id, created_at=at, metadata=right)
    assert one == two
    assert hash(one) == hash(two)
    with_true: dict[Any, str] = {True: "x", "2": "y"}
    with_one: dict[Any, str] = {1: "x", "2": "y"}
    out_one = StageOutput.ok(with_true)
    out_two = StageOutput.ok(with_one)
    assert out_one == out_two
    assert hash(out_one) == hash(out_two)
