"""Golden payloads of every ``stream.*`` telemetry event: exact keys, key order, value types.

Each event is produced by stageflow_trio and, where a test can drive it, by the
reference; both must match the golden shape.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, ClassVar

import pytest
import trio
import trio.testing

from stageflow_trio.helpers.streaming import AudioChunk, ChunkQueue, StreamingBuffer

GOLDEN: dict[str, dict[str, type | tuple[type, ...]]] = {
    "stream.chunk_dropped": {"queue_size": int, "max_size": int, "reason": str},
    "stream.producer_blocked": {"blocked_ms": float, "queue_size": int},
    "stream.throttle_started": {"fill_percentage": float, "queue_size": int},
    "stream.throttle_ended": {"fill_percentage": float, "queue_size": int},
    "stream.queue_closed": {
        "total_items": int,
        "dropped_items": int,
        "blocked_puts": int,
        "max_queue_size": int,
        "total_blocked_ms": float,
    },
    # max_duration_ms is passed through as configured (the default is the int 2000).
    "stream.buffer_overflow": {
        "bytes_dropped": int,
        "buffer_duration_ms": float,
        "max_duration_ms": (int, float),
    },
    "stream.buffer_underrun": {
        "bytes_requested": int,
        "bytes_available": int,
        "buffer_duration_ms": float,
    },
    "stream.buffer_recovered": {"buffer_duration_ms": float},
}

Events = list[tuple[str, dict[str, Any]]]


def assert_golden(events: Events, expected_types: set[str]) -> None:
    seen: set[str] = set()
    for event_type, data in events:
        shape = GOLDEN[event_type]
        assert list(data) == list(shape), event_type
        for key, kind in shape.items():
            assert isinstance(data[key], kind), (event_type, key, type(data[key]))
            assert type(data[key]) is not bool, (event_type, key)
        seen.add(event_type)
    assert seen == expected_types


QUEUE_EVENTS = {
    "stream.chunk_dropped",
    "stream.producer_blocked",
    "stream.throttle_started",
    "stream.throttle_ended",
    "stream.queue_closed",
}
BUFFER_EVENTS = {"stream.buffer_overflow", "stream.buffer_underrun", "stream.buffer_recovered"}


def drive_buffer(buffer: Any, chunk_type: Any) -> None:
    buffer.add_chunk(chunk_type(data=b"\x00" * 3200))
    buffer.add_chunk(chunk_type(data=b"\x00" * 3200))  # overflow (max 100 ms)
    buffer.read(200)  # underrun
    buffer.add_chunk(chunk_type(data=b"\x00" * 3200))
    buffer.read(20)  # recovered


def test_buffer_events_golden() -> None:
    events: Events = []
    drive_buffer(
        StreamingBuffer(max_duration_ms=100, event_emitter=lambda t, d: events.append((t, d))),
        AudioChunk,
    )
    assert_golden(events, BUFFER_EVENTS)


def test_buffer_events_reference_shape(reference: ModuleType) -> None:
    ref = reference.helpers.streaming
    events: Events = []
    drive_buffer(
        ref.StreamingBuffer(max_duration_ms=100, event_emitter=lambda t, d: events.append((t, d))),
        ref.AudioChunk,
    )
    assert_golden(events, BUFFER_EVENTS)


async def test_queue_events_golden(autojump_clock: trio.testing.MockClock) -> None:
    events: Events = []
    queue: ChunkQueue[int] = ChunkQueue(
        max_size=5, event_emitter=lambda t, d: events.append((t, d))
    )
    for i in range(5):
        await queue.put(i)  # throttle_started at 4/5

    async def consumer() -> None:
        await trio.sleep(0.25)
        await queue.get()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await queue.put(5)  # producer_blocked for 250 ms
    for _ in range(5):
        await queue.get()
    await queue.put(6)  # 1 of 5 is 20 %: throttle_ended
    dropping: ChunkQueue[int] = ChunkQueue(
        max_size=1, drop_on_overflow=True, event_emitter=lambda t, d: events.append((t, d))
    )
    await dropping.put(1)
    await dropping.put(2)  # chunk_dropped (overflow)
    await queue.close()
    assert_golden(events, QUEUE_EVENTS)
    blocked = [d for t, d in events if t == "stream.producer_blocked"]
    assert blocked == [{"blocked_ms": 250.0, "queue_size": 5}]
    assert ("stream.throttle_ended", {"fill_percentage": 20.0, "queue_size": 1}) in events


class _SteppingDatetime(datetime):
    """A datetime whose now() advances 5 ms per call: every reference put looks blocked."""

    current: ClassVar[_SteppingDatetime]

    @classmethod
    def now(cls, tz: Any = None) -> _SteppingDatetime:
        cls.current += timedelta(milliseconds=5)  # a subclass instance, since Python 3.8
        return cls.current


_SteppingDatetime.current = _SteppingDatetime(2026, 1, 1, tzinfo=UTC)


def test_queue_events_reference_shape(
    reference: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = reference.helpers.streaming
    monkeypatch.setattr(ref, "datetime", _SteppingDatetime)
    events: Events = []

    async def main() -> None:
        queue = ref.ChunkQueue(max_size=5, event_emitter=lambda t, d: events.append((t, d)))
        for i in range(5):
            await queue.put(i)
        for _ in range(5):
            await queue.get()
        await queue.put(5)
        dropping = ref.ChunkQueue(
            max_size=1, drop_on_overflow=True, event_emitter=lambda t, d: events.append((t, d))
        )
        await dropping.put(1)
        await dropping.put(2)
        await queue.close()

    asyncio.run(main())
    assert_golden(events, QUEUE_EVENTS)


async def test_queue_full_event_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    events: Events = []
    queue: ChunkQueue[int] = ChunkQueue(
        max_size=1, drop_on_overflow=True, event_emitter=lambda t, d: events.append((t, d))
    )
    await queue.put(1)

    def refuse(item: Any) -> None:
        raise trio.WouldBlock

    monkeypatch.setattr(queue._send, "send_nowait", refuse)
    assert await queue.put(2) is False
    assert events[-1] == (
        "stream.chunk_dropped",
        {"queue_size": 0, "max_size": 1, "reason": "queue_full"},
    )
    assert_golden(events[-1:], {"stream.chunk_dropped"})


def test_queue_full_event_reference_shape(
    reference: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = reference.helpers.streaming
    events: Events = []

    async def main() -> bool:
        queue = ref.ChunkQueue(
            max_size=1, drop_on_overflow=True, event_emitter=lambda t, d: events.append((t, d))
        )

        def refuse(item: Any) -> None:
            raise asyncio.QueueFull

        monkeypatch.setattr(queue._queue, "put_nowait", refuse)
        return bool(await queue.put(1))

    assert asyncio.run(main()) is False
    assert events == [
        ("stream.chunk_dropped", {"queue_size": 0, "max_size": 1, "reason": "queue_full"})
    ]
