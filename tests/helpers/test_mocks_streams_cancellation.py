"""A mock stream abandoned half way, or cancelled, leaves no task and nothing to finalize."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from stageflow_trio.helpers.mocks import MockLLMProvider, MockTTSProvider


class TaskCounter(trio.abc.Instrument):
    """Counts the tasks spawned and exited while it is installed."""

    def __init__(self) -> None:
        self.spawned: list[str] = []
        self.exited: list[str] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned.append(task.name)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.exited.append(task.name)


def _all_tasks() -> list[trio.lowlevel.Task]:
    found: list[trio.lowlevel.Task] = []
    todo = [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        assert task is not None
        found.append(task)
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return found


async def _consume_two_and_drop(llm: MockLLMProvider) -> list[str]:
    got: list[str] = []
    async for chunk in llm.stream("x", chunk_size=1):
        got.append(chunk)
        if len(got) == 2:
            break
    return got


async def test_abandoned_stream_spawns_no_task(autojump_clock: Any) -> None:
    llm = MockLLMProvider(responses=["abcdefgh"])
    counter = TaskCounter()
    before = len(_all_tasks())
    trio.lowlevel.add_instrument(counter)
    try:
        assert await _consume_two_and_drop(llm) == ["a", "b"]
        gc.collect()  # an async generator would be finalized here, in a new system task
        await trio.testing.wait_all_tasks_blocked()
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert (counter.spawned, counter.exited) == ([], [])
    assert len(_all_tasks()) == before


# trio's finalizer also warns about the unclosed generator; the warning surfaces as an
# unraisable exception, which this control test expects.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_the_counter_does_see_an_abandoned_async_generator(autojump_clock: Any) -> None:
    """The instrument check above can fail: a plain async generator abandoned the same
    way is finalized by trio in a task of its own."""

    async def gen() -> Any:
        for i in range(5):
            yield i
            await trio.sleep(0.01)

    counter = TaskCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        async for _ in gen():
            break
        gc.collect()
        await trio.testing.wait_all_tasks_blocked()
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert counter.spawned != []


async def test_consumer_cancelled_mid_sleep_ends_the_stream(autojump_clock: Any) -> None:
    llm = MockLLMProvider(responses=["abcdefgh"])
    stream = llm.stream("x", chunk_size=2)
    got: list[str] = []
    counter = TaskCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        with trio.move_on_after(0.025) as scope:
            async for chunk in stream:
                got.append(chunk)
        await trio.testing.wait_all_tasks_blocked()
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert scope.cancelled_caught
    assert got == ["ab", "cd", "ef"]  # at 0, 0.01 and 0.02; cancelled in the next sleep
    assert trio.current_time() == 0.025
    assert stream.closed
    assert [c async for c in stream] == []
    assert counter.spawned == []


async def test_cancelled_before_the_first_chunk_ends_the_stream(autojump_clock: Any) -> None:
    tts = MockTTSProvider(latency_ms=100)
    stream = tts.stream("hello")
    with trio.move_on_after(0.05):
        await stream.__anext__()
    assert stream.closed
    assert trio.current_time() == 0.05


async def test_cancellation_propagates_as_cancelled(autojump_clock: Any) -> None:
    stream = MockLLMProvider(latency_ms=10).stream("x")
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await stream.__anext__()
    assert stream.closed


async def test_streams_consumed_concurrently_are_independent(autojump_clock: Any) -> None:
    llm = MockLLMProvider(responses=["aaaa", "bbbbbb"])
    results: dict[str, list[str]] = {}

    async def consume(name: str) -> None:
        results[name] = [c async for c in llm.stream(name, chunk_size=2)]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume, "first")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(consume, "second")
    assert results == {"first": ["aa", "aa"], "second": ["bb", "bb", "bb"]}
