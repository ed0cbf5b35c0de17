"""ContextBag: write-once keys, conflict errors, checkpoints."""

from __future__ import annotations

import math
import pickle
from collections.abc import Coroutine
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.context import bag as bag_module
from stageflow_trio.context.bag import ContextBag, DataConflictError
from stageflow_trio.errors import StageflowError
from stageflow_trio.lowlevel import DEFAULT_CALLS, checkpoint_budget


def test_exports() -> None:
    assert sorted(bag_module.__all__) == ["ContextBag", "DataConflictError"]


async def test_write_read_and_introspection() -> None:
    bag = ContextBag()
    assert bag.keys() == []
    assert bag.read("k") is None
    assert bag.read("k", "dflt") == "dflt"
    assert not bag.has("k")
    assert bag.get_writer("k") is None
    await bag.write("k", {"v": 1}, "stt")
    await bag.write("j", None, "llm")
    assert bag.read("k") == {"v": 1}
    assert bag.read("j", "dflt") is None
    assert bag.has("k")
    assert bag.has("j")
    assert bag.keys() == ["k", "j"]
    assert bag.get_writer("k") == "stt"
    assert bag.get_writer("j") == "llm"
    assert repr(bag) == "ContextBag(keys=['k', 'j'])"


async def test_conflict_even_from_the_same_writer() -> None:
    bag = ContextBag()
    await bag.write("k", 1, "a")
    with pytest.raises(
        DataConflictError, match=r"^Key 'k' already written by 'a', cannot write from 'b'$"
    ) as info:
        await bag.write("k", 2, "b")
    assert (info.value.key, info.value.existing_writer, info.value.new_writer) == ("k", "a", "b")
    with pytest.raises(
        DataConflictError, match=r"^Key 'k' already written by 'a', cannot write from 'a'$"
    ):
        await bag.write("k", 3, "a")
    assert bag.read("k") == 1
    assert bag.get_writer("k") == "a"


def test_error_class_and_pickling() -> None:
    err = DataConflictError("k", "a", "b")
    assert isinstance(err, StageflowError)
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err)
    assert (clone.key, clone.existing_writer, clone.new_writer) == ("k", "a", "b")


async def test_to_dict_is_a_copy() -> None:
    bag = ContextBag()
    await bag.write("k", 1, "a")
    snapshot = bag.to_dict()
    assert snapshot == {"k": 1}
    snapshot["k"] = 2
    snapshot["new"] = 3
    assert bag.to_dict() == {"k": 1}
    assert not bag.has("new")


async def test_write_is_a_checkpoint_under_a_one_call_budget() -> None:
    bag = ContextBag()
    with checkpoint_budget(calls=1):
        for key in ("a", "b", "c"):
            with trio.testing.assert_checkpoints():
                await bag.write(key, 1, "stage")


class _StepCounter(trio.abc.Instrument):
    """Counts the steps of one task: each new step follows a schedule point."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def test_writes_yield_as_the_checkpoint_budget_says() -> None:
    bag = ContextBag()
    counter = _StepCounter(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(counter)
    pattern = []
    try:
        with checkpoint_budget(calls=4, seconds=math.inf):
            for i in range(10):
                before = counter.steps
                await bag.write(f"k{i}", i, "stage")
                pattern.append(counter.steps != before)
    finally:
        trio.lowlevel.remove_instrument(counter)
    # The fresh budget's first call, then every fourth.
    assert pattern == [i % 4 == 0 for i in range(10)]


async def test_every_write_is_a_cancellation_point_under_the_default_budget() -> None:
    bag = ContextBag()
    for i in range(2 * DEFAULT_CALLS):
        with trio.CancelScope() as scope:
            scope.cancel()
            await bag.write(f"cancelled{i}", 1, "stage")
        assert scope.cancelled_caught
        await bag.write(f"k{i}", i, "stage")
    assert bag.keys() == [f"k{i}" for i in range(2 * DEFAULT_CALLS)]


async def test_cancelled_write_stores_nothing() -> None:
    bag = ContextBag()
    with trio.CancelScope() as scope:
        scope.cancel()
        await bag.write("k", 1, "a")
    assert scope.cancelled_caught
    assert not bag.has("k")


async def test_concurrent_writers_exactly_one_wins() -> None:
    bag = ContextBag()
    outcomes: list[str] = []

    async def writer(name: str) -> None:
        try:
            await bag.write("shared", name, name)
        except DataConflictError:
            outcomes.append("conflict")
        else:
            outcomes.append("stored")

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(writer, f"s{i}")
    assert sorted(outcomes) == ["conflict"] * 9 + ["stored"]
    assert bag.read("shared") == bag.get_writer("shared")


@pytest.mark.parametrize(
    ("key", "stage_name", "error", "message"),
    [
        (1, "a", TypeError, r"^key must be a str, got int$"),
        ("k", None, TypeError, r"^stage_name must be a str, got NoneType$"),
        ("k", "", ValueError, r"^stage_name must not be empty or blank$"),
        ("k", "  ", ValueError, r"^stage_name must not be empty or blank$"),
    ],
)
async def test_bad_input(
    key: object, stage_name: object, error: type[Exception], message: str
) -> None:
    bag = ContextBag()
    with pytest.raises(error, match=message):
        await bag.write(key, 1, stage_name)  # type: ignore[arg-type]
    assert bag.keys() == []


async def test_differential_conflict_message(reference: ModuleType) -> None:
    ref = reference.context.bag
    ours, theirs = ContextBag(), ref.ContextBag()
    await ours.write("k", 1, "a")
    # The reference's write never suspends, so driving its coroutine by hand is enough.
    _drive(theirs.write("k", 1, "a"))
    with pytest.raises(DataConflictError) as mine:
        await ours.write("k", 2, "b")
    with pytest.raises(ref.DataConflictError) as other:
        _drive(theirs.write("k", 2, "b"))
    assert str(mine.value) == str(other.value)
    assert ours.to_dict() == theirs.to_dict()
    assert ours.keys() == theirs.keys()
    assert repr(ours) == repr(theirs)
    assert ours.get_writer("k") == theirs.get_writer("k")


def _drive(coro: Coroutine[Any, Any, Any]) -> None:
    """Run a coroutine that never suspends (an uncontended asyncio.Lock) to completion."""
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("the reference coroutine suspended")
