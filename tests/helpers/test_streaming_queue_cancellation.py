"""ChunkQueue under cancellation: cancelled puts and gets lose nothing, len stays the
channel's, and close still closes."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.helpers.streaming import ChunkQueue, QueueEmpty
from stageflow_trio.lowlevel import checkpoint_budget


async def test_cancelled_put_and_get_leave_the_queue_unchanged(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: ChunkQueue[int] = ChunkQueue(max_size=1)
    await queue.put(1)
    with trio.move_on_after(5):
        await queue.put(2)  # blocks until cancelled
    assert len(queue) == 1
    assert queue.monitor.stats.total_items == 1
    assert await queue.get() == 1
    with trio.move_on_after(5):
        await queue.get()  # blocks until cancelled
    await queue.put(3)
    assert await queue.get() == 3


async def test_chunk_queue_close_in_cancelled_scope_still_closes() -> None:
    queue: ChunkQueue[int] = ChunkQueue()
    await queue.put(1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await queue.close()
    assert scope.cancelled_caught
    assert queue.is_closed
    assert [item async for item in queue] == [1]


def _buffer_used(queue: ChunkQueue[int]) -> int:
    return queue._send.statistics().current_buffer_used


_QUEUE_OPS = st.lists(
    st.sampled_from(
        ["put", "put", "get", "get_nowait", "cancel", "cancel_newest", "step", "settle", "close"]
    ),
    max_size=30,
)


@given(
    ops=_QUEUE_OPS,
    max_size=st.integers(min_value=1, max_value=3),
    drop=st.booleans(),
    calls=st.sampled_from([1, 2, 64]),
)
async def test_len_mirrors_the_channel_and_nothing_is_lost(
    ops: list[str], max_size: int, drop: bool, calls: int
) -> None:
    """Under any interleaving, len(queue) is the channel's buffer length, and
    every item whose put returned True is taken, still queued, or dropped as the
    oldest on overflow."""
    overflow_drops: list[int] = []
    wrong_sizes: list[tuple[str, int, int]] = []

    def emitter(event_type: str, data: dict[str, Any]) -> None:
        # Errors raised here would be logged by the queue, not seen: record them.
        if "queue_size" in data and data["queue_size"] != _buffer_used(queue):
            wrong_sizes.append((event_type, data["queue_size"], _buffer_used(queue)))
        if event_type == "stream.chunk_dropped":
            overflow_drops.append(0 if data["reason"] == "overflow" else 1)

    queue: ChunkQueue[int] = ChunkQueue(
        max_size=max_size, drop_on_overflow=drop, event_emitter=emitter
    )
    accepted: list[int] = []
    taken: list[int] = []
    scopes: list[trio.CancelScope] = []

    def check() -> None:
        assert len(queue) == _buffer_used(queue)
        assert 0 <= len(queue) <= max_size

    async def putter(value: int, scope: trio.CancelScope) -> None:
        with scope:
            if await queue.put(value):
                accepted.append(value)
        check()

    async def getter(scope: trio.CancelScope) -> None:
        with scope:
            item = await queue.get()
            if item is not None:
                taken.append(item)
        check()

    with checkpoint_budget(calls=calls, seconds=math.inf):
        async with trio.open_nursery() as nursery:
            for value, op in enumerate(ops):
                if op == "put":
                    scopes.append(trio.CancelScope())
                    nursery.start_soon(putter, value, scopes[-1])
                elif op == "get":
                    scopes.append(trio.CancelScope())
                    nursery.start_soon(getter, scopes[-1])
                elif op == "get_nowait":
                    try:
                        item = queue.get_nowait()
                    except QueueEmpty:
                        pass
                    else:
                        if item is not None:
                            taken.append(item)
                elif op == "cancel" and scopes:
                    scopes.pop(0).cancel()
                elif op == "cancel_newest" and scopes:
                    scopes.pop().cancel()
                elif op == "step":
                    await trio.lowlevel.checkpoint()
                elif op == "settle":
                    await trio.testing.wait_all_tasks_blocked()
                elif op == "close":
                    await queue.close()
                check()
            await trio.testing.wait_all_tasks_blocked()
            for scope in scopes:
                scope.cancel()
        check()
    left: list[int] = []
    while True:
        try:
            item = queue.get_nowait()
        except QueueEmpty:
            break
        if item is not None:
            left.append(item)
    assert len(queue) == 0
    assert sorted(taken + left) == sorted(set(taken + left))
    assert set(taken + left) <= set(accepted)
    assert len(taken) + len(left) + len(overflow_drops) == len(accepted)
    assert sum(overflow_drops) == 0  # only the oldest is ever dropped
    assert wrong_sizes == []


async def test_len_when_a_get_runs_before_a_cancelled_put_has_resumed() -> None:
    queue: ChunkQueue[int] = ChunkQueue(max_size=1)
    await queue.put(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.put, 2)  # waits for room
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
        # The put is no longer waiting in the channel, but has not run yet.
        assert queue.get_nowait() == 1
        assert len(queue) == _buffer_used(queue) == 0
    assert len(queue) == _buffer_used(queue) == 0
    with pytest.raises(QueueEmpty):
        queue.get_nowait()
