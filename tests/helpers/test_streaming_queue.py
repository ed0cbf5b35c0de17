"""ChunkQueue: order, blocking and dropping puts, throttle events, close, checkpoints, len."""

from __future__ import annotations

import asyncio
import logging
import math
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.errors import StageflowError
from stageflow_trio.helpers.streaming import ChunkQueue, QueueEmpty
from stageflow_trio.lowlevel import DEFAULT_CALLS, checkpoint_budget
from tests.fakes import RecordingEmitter, failing_emitter


async def test_queue_fifo_and_len() -> None:
    queue: ChunkQueue[int] = ChunkQueue(max_size=5)
    for i in range(3):
        assert await queue.put(i) is True
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == [0, 1, 2]
    assert len(queue) == 0
    assert queue.monitor.stats.total_items == 3


@pytest.mark.parametrize("max_size", [0, -1])
async def test_queue_non_positive_max_size_is_unbounded(
    max_size: int, autojump_clock: trio.testing.MockClock
) -> None:
    # Virtual time: a put that blocked would meet the deadline at once, not after 1 s.
    recorder = RecordingEmitter()
    queue: ChunkQueue[int] = ChunkQueue(max_size=max_size, event_emitter=recorder)
    with trio.move_on_after(1) as scope:
        for i in range(500):
            await queue.put(i)
    assert not scope.cancelled_caught
    assert len(queue) == 500
    assert queue.monitor.fill_percentage == 0
    assert recorder.events == []


async def test_put_after_close_returns_false() -> None:
    queue: ChunkQueue[int] = ChunkQueue()
    await queue.close()
    assert queue.is_closed
    assert await queue.put(1) is False
    assert queue.monitor.stats.total_items == 0


async def test_blocking_put_waits_and_reports(autojump_clock: trio.testing.MockClock) -> None:
    recorder = RecordingEmitter()
    queue: ChunkQueue[str] = ChunkQueue(max_size=1, event_emitter=recorder)
    await queue.put("a")
    results: list[bool] = []

    async def consumer() -> None:
        await trio.sleep(1.5)
        assert await queue.get() == "a"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        start = trio.current_time()
        results.append(await queue.put("b"))
        assert trio.current_time() - start == 1.5
    assert results == [True]
    blocked = [data for kind, data in recorder.events if kind == "stream.producer_blocked"]
    assert blocked == [{"blocked_ms": 1500.0, "queue_size": 1}]
    stats = queue.monitor.stats
    assert (stats.blocked_puts, stats.total_blocked_ms, stats.total_items) == (1, 1500.0, 2)


async def test_short_wait_is_not_counted_as_blocked(autojump_clock: trio.testing.MockClock) -> None:
    recorder = RecordingEmitter()
    queue: ChunkQueue[str] = ChunkQueue(max_size=1, event_emitter=recorder)
    await queue.put("a")

    async def consumer() -> None:
        await trio.sleep(0.001)  # exactly 1 ms: "more than 1 ms" is not met
        await queue.get()

    assert trio.current_time() == 0.0

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        assert await queue.put("b") is True
    assert "stream.producer_blocked" not in recorder.types()
    assert queue.monitor.stats.blocked_puts == 0


async def test_drop_on_overflow_drops_oldest_without_waiting() -> None:
    recorder = RecordingEmitter()
    queue: ChunkQueue[int] = ChunkQueue(max_size=3, drop_on_overflow=True, event_emitter=recorder)
    with trio.testing.assert_checkpoints():
        for i in range(5):
            assert await queue.put(i) is True
    assert [queue.get_nowait() for _ in range(3)] == [2, 3, 4]
    drops = [data for kind, data in recorder.events if kind == "stream.chunk_dropped"]
    assert drops == [{"queue_size": 2, "max_size": 3, "reason": "overflow"}] * 2
    stats = queue.monitor.stats
    assert (stats.dropped_items, stats.total_items, stats.blocked_puts) == (2, 5, 0)


class _RefusingSend:
    """Wraps a send channel whose buffer never accepts an item (the queue_full path)."""

    def __init__(self, inner: trio.MemorySendChannel[Any]) -> None:
        self.inner = inner

    def send_nowait(self, item: Any) -> None:
        raise trio.WouldBlock

    def statistics(self) -> Any:
        return self.inner.statistics()


async def test_queue_full_drops_the_new_item(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = RecordingEmitter()
    queue: ChunkQueue[int] = ChunkQueue(max_size=2, drop_on_overflow=True, event_emitter=recorder)
    await queue.put(1)
    monkeypatch.setattr(queue, "_send", _RefusingSend(queue._send))
    assert await queue.put(2) is False
    assert recorder.events[-2:] == [
        ("stream.chunk_dropped", {"queue_size": 0, "max_size": 2, "reason": "overflow"}),
        ("stream.chunk_dropped", {"queue_size": 0, "max_size": 2, "reason": "queue_full"}),
    ]
    assert queue.monitor.stats.dropped_items == 2
    assert queue.monitor.stats.total_items == 1


async def test_throttle_events_on_transitions() -> None:
    recorder = RecordingEmitter()
    queue: ChunkQueue[int] = ChunkQueue(max_size=10, event_emitter=recorder)
    for i in range(9):
        await queue.put(i)
    assert recorder.events == [
        ("stream.throttle_started", {"fill_percentage": 80.0, "queue_size": 8})
    ]
    for _ in range(8):
        await queue.get()
    await queue.put(9)  # 2 left: 20 % <= low water
    assert recorder.events[-1] == (
        "stream.throttle_ended",
        {"fill_percentage": 20.0, "queue_size": 2},
    )
    await queue.put(10)
    assert len(recorder.events) == 2


async def test_close_emits_stats_and_ends_iteration() -> None:
    recorder = RecordingEmitter()
    queue: ChunkQueue[int] = ChunkQueue(max_size=4, event_emitter=recorder)
    await queue.put(1)
    await queue.put(2)
    await queue.close()
    assert recorder.events[-1] == (
        "stream.queue_closed",
        {
            "total_items": 2,
            "dropped_items": 0,
            "blocked_puts": 0,
            "max_queue_size": 2,
            "total_blocked_ms": 0.0,
        },
    )
    assert len(queue) == 3  # two items and the end marker
    assert [item async for item in queue] == [1, 2]
    assert await queue.get() is None
    assert await queue.get() is None


async def test_close_wakes_a_waiting_consumer(autojump_clock: trio.testing.MockClock) -> None:
    queue: ChunkQueue[int] = ChunkQueue()
    got: list[int | None] = []

    async def consumer() -> None:
        got.append(await queue.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.sleep(1)
        await queue.close()
    assert got == [None]


async def test_close_on_full_queue_releases_blocked_put(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: ChunkQueue[int] = ChunkQueue(max_size=2)
    await queue.put(1)
    await queue.put(2)
    results: list[bool] = []

    async def producer() -> None:
        results.append(await queue.put(3))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.sleep(1)
        await queue.close()
    assert results == [False]
    assert len(queue) == 2  # no room for the end marker
    assert [item async for item in queue] == [1, 2]
    assert await queue.get() is None


async def test_second_close_reports_again() -> None:
    recorder = RecordingEmitter()
    queue: ChunkQueue[int] = ChunkQueue(event_emitter=recorder)
    await queue.close()
    await queue.close()
    assert recorder.types() == ["stream.queue_closed", "stream.queue_closed"]
    assert [item async for item in queue] == []


async def test_get_nowait() -> None:
    queue: ChunkQueue[int] = ChunkQueue()
    await queue.put(7)
    assert queue.get_nowait() == 7
    with pytest.raises(QueueEmpty, match=r"^ChunkQueue is empty$") as info:
        queue.get_nowait()
    assert isinstance(info.value, trio.WouldBlock)
    assert isinstance(info.value, StageflowError)
    await queue.close()
    assert queue.get_nowait() is None  # the end marker
    with pytest.raises(QueueEmpty):
        queue.get_nowait()


async def test_emitter_errors_never_break_the_queue(caplog: pytest.LogCaptureFixture) -> None:
    queue: ChunkQueue[int] = ChunkQueue(
        max_size=2, drop_on_overflow=True, event_emitter=failing_emitter
    )
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.helpers.streaming"):
        for i in range(4):
            assert await queue.put(i) is True
        await queue.close()
    assert [item async for item in queue] == [2, 3]
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "stream telemetry emitter failed on stream.throttle_started",
        "stream telemetry emitter failed on stream.chunk_dropped",
        "stream telemetry emitter failed on stream.chunk_dropped",
        "stream telemetry emitter failed on stream.queue_closed",
    ]
    assert all(record.exc_info is not None for record in caplog.records)


async def test_every_queue_call_is_a_cancellation_point_under_the_default_budget() -> None:
    queue: ChunkQueue[int] = ChunkQueue(max_size=4)
    for i in range(2 * DEFAULT_CALLS):
        with trio.CancelScope() as scope:
            scope.cancel()
            await queue.put(-1)
        assert scope.cancelled_caught
        await queue.put(i)
        with trio.CancelScope() as scope:
            scope.cancel()
            await queue.get()
        assert scope.cancelled_caught
        assert len(queue) == 1
        assert await queue.get() == i
    assert queue.monitor.stats.total_items == 2 * DEFAULT_CALLS


async def test_every_queue_call_is_a_checkpoint_under_a_one_call_budget() -> None:
    with checkpoint_budget(calls=1):
        queue: ChunkQueue[int] = ChunkQueue(max_size=1, drop_on_overflow=True)
        with trio.testing.assert_checkpoints():
            await queue.put(1)
        with trio.testing.assert_checkpoints():
            await queue.put(2)  # overflow path
        with trio.testing.assert_checkpoints():
            await queue.get()
        with trio.testing.assert_checkpoints():
            await queue.close()
        with trio.testing.assert_checkpoints():
            assert await queue.get() is None  # the end marker
        with trio.testing.assert_checkpoints():
            assert await queue.get() is None  # closed and drained
        with trio.testing.assert_checkpoints():
            assert await queue.put(3) is False  # closed


async def test_producer_consumer_pair_preserves_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: ChunkQueue[int] = ChunkQueue(max_size=3)
    received: list[int] = []

    async def producer() -> None:
        for i in range(50):
            await queue.put(i)
        await queue.close()

    async def consumer() -> None:
        async for item in queue:
            received.append(item)
            await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        nursery.start_soon(consumer)
    assert received == list(range(50))
    assert queue.monitor.stats.total_items == 50


def test_drop_queue_events_match_reference(reference: ModuleType) -> None:
    ref = reference.helpers.streaming
    ops = ["put"] * 12 + ["get"] * 8 + ["put"] * 3 + ["close"]

    async def drive(queue: Any, checkpoint: Any) -> list[Any]:
        got = []
        for i, op in enumerate(ops):
            if op == "put":
                got.append(await queue.put(i))
            elif op == "get":
                got.append(await queue.get())
            else:
                await queue.close()
            await checkpoint()
        got.extend([item async for item in queue])
        return got

    ours_rec, ref_rec = RecordingEmitter(), RecordingEmitter()
    ours = trio.run(
        drive,
        ChunkQueue(max_size=10, drop_on_overflow=True, event_emitter=ours_rec),
        trio.lowlevel.checkpoint,
    )
    theirs = asyncio.run(
        drive(
            ref.ChunkQueue(max_size=10, drop_on_overflow=True, event_emitter=ref_rec),
            lambda: asyncio.sleep(0),
        )
    )
    assert ours == theirs
    assert ours_rec.events == ref_rec.events


async def test_len_counts_items_waiting_in_the_queue() -> None:
    queue: ChunkQueue[int] = ChunkQueue(max_size=1)
    taken: list[int | None] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_take, queue, taken)
        await trio.testing.wait_all_tasks_blocked()
        await queue.put(1)  # handed straight to the waiting get: never waits
        assert len(queue) == 0
        await queue.put(2)
        assert len(queue) == 1
        for value in (3, 4):  # each waits for room, in this order
            nursery.start_soon(queue.put, value)
            await trio.testing.wait_all_tasks_blocked()
        assert len(queue) == 1
        # Each get makes room and pulls a waiting put's item in, before that put
        # has returned; two gets in a row without a yield.
        with checkpoint_budget(calls=1000, seconds=math.inf):
            assert queue.get_nowait() == 2
            assert len(queue) == 1
            assert await queue.get() == 3
            assert len(queue) == 1
            assert await queue.get() == 4
            assert len(queue) == 0
    assert taken == [1]
    assert queue.monitor.stats.max_queue_size == 1


async def _take(queue: ChunkQueue[int], taken: list[int | None]) -> None:
    taken.append(await queue.get())
