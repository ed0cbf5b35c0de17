"""Property analog of the reference's ``property/test_context_bag_properties.py``.

Random sequences of writes go through the reference's ContextBag (under asyncio) and
ours (under trio); both must agree on every read, writer, conflict and ``to_dict``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.context.bag import ContextBag, DataConflictError
from tests.fakes import import_reference

reference = import_reference()

KEYS = st.sampled_from(["a", "b", "c", "d"])
WRITES = st.lists(
    st.tuples(KEYS, st.integers() | st.text(max_size=3) | st.none(), st.sampled_from(["s1", "s2"])),
    max_size=8,
)


def _outcome(bag: Any, conflicts: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {
        "keys": bag.keys(),
        "dict": bag.to_dict(),
        "writers": {key: bag.get_writer(key) for key in "abcd"},
        "has": {key: bag.has(key) for key in "abcd"},
        "conflicts": conflicts,
    }


def run_ref(writes: list[tuple[str, Any, str]]) -> dict[str, Any]:
    bag = reference.context.ContextBag()
    conflicts = []

    async def main() -> None:
        for key, value, stage in writes:
            try:
                await bag.write(key, value, stage)
            except reference.context.DataConflictError as exc:
                conflicts.append((exc.key, exc.existing_writer, exc.new_writer))

    asyncio.run(main())
    return _outcome(bag, conflicts)


def run_ours(writes: list[tuple[str, Any, str]]) -> dict[str, Any]:
    bag = ContextBag()
    conflicts = []

    async def main() -> None:
        for key, value, stage in writes:
            try:
                await bag.write(key, value, stage)
            except DataConflictError as exc:
                conflicts.append((exc.key, exc.existing_writer, exc.new_writer))

    trio.run(main)
    return _outcome(bag, conflicts)


@settings(max_examples=40)  # each example starts two event loops
@given(WRITES)
def test_random_writes_agree_with_the_reference(writes: list[tuple[str, Any, str]]) -> None:
    ours = run_ours(writes)
    assert ours == run_ref(writes)
    # The first write of each key wins; every later write of it is a conflict.
    first: dict[str, tuple[Any, str]] = {}
    for key, value, stage in writes:
        first.setdefault(key, (value, stage))
    assert ours["dict"] == {key: value for key, (value, _) in first.items()}
    assert len(ours["conflicts"]) == len(writes) - len(first)


@given(WRITES)
def test_to_dict_is_a_copy(writes: list[tuple[str, Any, str]]) -> None:
    bag = ContextBag()

    async def main() -> None:
        for key, value, stage in writes:
            if not bag.has(key):
                await bag.write(key, value, stage)

    trio.run(main)
    snapshot = bag.to_dict()
    snapshot["zz"] = 1
    assert "zz" not in bag.to_dict()
    assert not bag.has("zz")
