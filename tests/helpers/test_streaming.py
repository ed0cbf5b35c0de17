"""Streaming primitives: AudioChunk, BackpressureMonitor, ChunkQueue, StreamingBuffer, utilities."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.errors import StageflowError
from stageflow_trio.helpers.streaming import (
    AudioChunk,
    AudioFormat,
    BackpressureMonitor,
    BackpressureStats,
    ChunkQueue,
    QueueEmpty,
    StreamConfig,
    StreamingBuffer,
    calculate_audio_duration_ms,
    encode_audio_for_logging,
)
from stageflow_trio.lowlevel import DEFAULT_CALLS, checkpoint_budget

Event = tuple[str, dict[str, Any]]


class Recorder:
    """An event_emitter that records (event_type, data) pairs."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        self.events.append((event_type, data))

    def types(self) -> list[str]:
        return [event_type for event_type, _ in self.events]


def failing_emitter(event_type: str, data: dict[str, Any]) -> None:
    raise RuntimeError("emitter down")


# --- values ---------------------------------------------------------------------------


def test_audio_format_values() -> None:
    assert [f.value for f in AudioFormat] == [
        "pcm_16",
        "pcm_24",
        "pcm_32",
        "float_32",
        "mp3",
        "ogg_opus",
        "wav",
        "webm",
    ]


def test_stream_config_defaults_and_frozen() -> None:
    config = StreamConfig()
    assert (
        config.chunk_size,
        config.sample_rate,
        config.channels,
        config.format,
        config.buffer_duration_ms,
    ) == (4096, 16000, 1, AudioFormat.PCM_16, 100)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.chunk_size = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("size", "fmt", "channels", "rate", "expected"),
    [
        (3200, AudioFormat.PCM_16, 1, 16000, 100.0),
        (3200, AudioFormat.PCM_24, 1, 16000, 50.0),
        (3200, AudioFormat.FLOAT_32, 1, 16000, 50.0),
        (3200, AudioFormat.PCM_16, 2, 16000, 50.0),
        (960, AudioFormat.PCM_16, 1, 48000, 10.0),
        (0, AudioFormat.PCM_16, 1, 16000, 0.0),
    ],
)
def test_audio_chunk_duration(
    size: int, fmt: AudioFormat, channels: int, rate: int, expected: float
) -> None:
    chunk = AudioChunk(data=b"\x01" * size, format=fmt, channels=channels, sample_rate=rate)
    assert chunk.duration_ms == expected


def test_audio_chunk_to_dict() -> None:
    chunk = AudioChunk(
        data=b"\x00\xffab",
        sample_rate=8000,
        channels=2,
        format=AudioFormat.WAV,
        timestamp_ms=12.5,
        sequence=3,
        is_final=True,
        metadata={"speaker": "a"},
    )
    assert chunk.to_dict() == {
        "data": base64.b64encode(b"\x00\xffab").decode("ascii"),
        "sample_rate": 8000,
        "channels": 2,
        "format": "wav",
        "timestamp_ms": 12.5,
        "sequence": 3,
        "is_final": True,
        "metadata": {"speaker": "a"},
    }
    assert type(chunk.to_dict()["metadata"]) is dict


def test_audio_chunk_from_dict_defaults() -> None:
    chunk = AudioChunk.from_dict({"data": base64.b64encode(b"abcd").decode()})
    assert chunk == AudioChunk(data=b"abcd")
    assert (chunk.sample_rate, chunk.channels, chunk.format) == (16000, 1, AudioFormat.PCM_16)
    assert (chunk.timestamp_ms, chunk.sequence, chunk.is_final, chunk.metadata) == (
        0.0,
        0,
        False,
        {},
    )


def test_audio_chunk_from_dict_errors() -> None:
    with pytest.raises(KeyError, match=r"^\"AudioChunk.from_dict: missing required key 'data'\"$"):
        AudioChunk.from_dict({"sample_rate": 8000})
    with pytest.raises(
        binascii.Error,
        match=r"^AudioChunk.from_dict: 'data' must be base64 text \(Incorrect padding\)$",
    ):
        AudioChunk.from_dict({"data": "abc"})
    with pytest.raises(ValueError, match=r"^'aiff' is not a valid AudioFormat$"):
        AudioChunk.from_dict({"data": "", "format": "aiff"})


def test_audio_chunk_is_frozen_and_coerces_data() -> None:
    chunk = AudioChunk(data=bytearray(b"ab"), metadata={"k": 1})
    assert type(chunk.data) is bytes
    assert chunk.data == b"ab"
    assert AudioChunk(data=memoryview(b"xy")).data == b"xy"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        chunk.sequence = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        chunk.metadata["k"] = 2
    with pytest.raises(TypeError, match=r"^AudioChunk.data must be bytes, got str$"):
        AudioChunk(data="ab")  # type: ignore[arg-type]


json_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))

audio_chunks = st.builds(
    AudioChunk,
    data=st.binary(max_size=64),
    sample_rate=st.integers(1, 96000),
    channels=st.integers(1, 8),
    format=st.sampled_from(AudioFormat),
    timestamp_ms=st.floats(allow_nan=False, allow_infinity=False),
    sequence=st.integers(0, 2**31),
    is_final=st.booleans(),
    metadata=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
)


@given(audio_chunks)
def test_audio_chunk_round_trip(chunk: AudioChunk) -> None:
    assert AudioChunk.from_dict(chunk.to_dict()) == chunk


@given(audio_chunks)
def test_audio_chunk_matches_reference(reference: ModuleType, chunk: AudioChunk) -> None:
    ref = reference.helpers.streaming
    ref_chunk = ref.AudioChunk(
        data=chunk.data,
        sample_rate=chunk.sample_rate,
        channels=chunk.channels,
        format=ref.AudioFormat(chunk.format.value),
        timestamp_ms=chunk.timestamp_ms,
        sequence=chunk.sequence,
        is_final=chunk.is_final,
        metadata=dict(chunk.metadata),
    )
    assert chunk.to_dict() == ref_chunk.to_dict()
    assert chunk.duration_ms == ref_chunk.duration_ms


# --- BackpressureMonitor ------------------------------------------------------------------


def test_monitor_record_put_and_latch() -> None:
    monitor = BackpressureMonitor()
    monitor.record_put(50, 100)
    assert (monitor.fill_percentage, monitor.should_throttle()) == (50.0, False)
    monitor.record_put(80, 100)
    assert (monitor.fill_percentage, monitor.should_throttle()) == (80.0, True)
    monitor.record_put(21, 100)  # between the marks: the latch holds
    assert monitor.should_throttle() is True
    monitor.record_put(20, 100)
    assert monitor.should_throttle() is False
    monitor.record_put(79, 100)
    assert monitor.should_throttle() is False
    assert monitor.stats == BackpressureStats(total_items=5, max_queue_size=80)


def test_monitor_custom_marks_and_unbounded() -> None:
    monitor = BackpressureMonitor(high_water_mark=50, low_water_mark=10)
    monitor.record_put(5, 10)
    assert monitor.should_throttle() is True
    monitor.record_put(7, 0)  # unbounded queue: fill 0
    assert monitor.fill_percentage == 0
    assert monitor.should_throttle() is False
    monitor.record_put(3)  # default max_size 100
    assert monitor.fill_percentage == 3.0


def test_monitor_blocked_and_drop_counters() -> None:
    monitor = BackpressureMonitor()
    monitor.record_blocked(2.5)
    monitor.record_blocked(1.5)
    monitor.record_drop()
    monitor.record_put(1, 10)
    stats = monitor.stats
    assert stats == BackpressureStats(
        total_items=1, dropped_items=1, blocked_puts=2, max_queue_size=1, total_blocked_ms=4.0
    )
    assert stats.to_dict() == {
        "total_items": 1,
        "dropped_items": 1,
        "blocked_puts": 2,
        "max_queue_size": 1,
        "total_blocked_ms": 4.0,
        "drop_rate": 1.0,
    }


def test_stats_snapshot_is_frozen_and_drop_rate_guards_zero() -> None:
    monitor = BackpressureMonitor()
    before = monitor.stats
    monitor.record_drop()
    assert before.dropped_items == 0
    assert monitor.stats.to_dict()["drop_rate"] == 1.0  # dropped / max(total, 1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        before.total_items = 3  # type: ignore[misc]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.integers(0, 120), st.integers(-1, 100)),
            st.tuples(st.just("blocked"), st.floats(0, 1000)),
            st.tuples(st.just("drop")),
        ),
        max_size=30,
    )
)
def test_monitor_matches_reference(reference: ModuleType, ops: list[tuple[Any, ...]]) -> None:
    ref = reference.helpers.streaming
    ours, theirs = BackpressureMonitor(), ref.BackpressureMonitor()
    for op in ops:
        for monitor in (ours, theirs):
            if op[0] == "put":
                monitor.record_put(op[1], op[2])
            elif op[0] == "blocked":
                monitor.record_blocked(op[1])
            else:
                monitor.record_drop()
        assert ours.should_throttle() == theirs.should_throttle()
        assert ours.fill_percentage == theirs.fill_percentage
    assert ours.stats.to_dict() == theirs.stats.to_dict()


# --- ChunkQueue ---------------------------------------------------------------------


async def test_queue_fifo_and_len() -> None:
    queue: ChunkQueue[int] = ChunkQueue(max_size=5)
    for i in range(3):
        assert await queue.put(i) is True
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == [0, 1, 2]
    assert len(queue) == 0
    assert queue.monitor.stats.total_items == 3


@pytest.mark.parametrize("max_size", [0, -1])
async def test_queue_non_positive_max_size_is_unbounded(max_size: int) -> None:
    recorder = Recorder()
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
    recorder = Recorder()
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
    recorder = Recorder()
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
    recorder = Recorder()
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
    recorder = Recorder()
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
    recorder = Recorder()
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
    recorder = Recorder()
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
    recorder = Recorder()
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

    ours_rec, ref_rec = Recorder(), Recorder()
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


# --- StreamingBuffer ------------------------------------------------------------------


def pcm(ms: float, rate: int = 16000, channels: int = 1) -> AudioChunk:
    return AudioChunk(data=b"\x00" * int(rate * channels * 2 * ms / 1000), sample_rate=rate)


def test_buffer_accumulates_and_reports_readiness() -> None:
    buffer = StreamingBuffer(target_duration_ms=100, max_duration_ms=500)
    assert buffer.add_chunk(pcm(60)) == 0
    assert (buffer.duration_ms, buffer.is_ready(), buffer.is_full()) == (60.0, False, False)
    buffer.add_chunk(pcm(40))
    assert buffer.is_ready() is True
    assert buffer.stats == {
        "duration_ms": 100.0,
        "bytes_buffered": 3200,
        "total_received": 3200,
        "total_read": 0,
        "total_dropped": 0,
        "is_ready": True,
        "underrun_active": False,
    }


def test_buffer_overflow_drops_oldest_in_50ms_steps() -> None:
    recorder = Recorder()
    buffer = StreamingBuffer(max_duration_ms=200, event_emitter=recorder)
    buffer.add_chunk(AudioChunk(data=bytes(range(256)) * 25))  # 6400 B = 200 ms
    assert buffer.is_full() is True
    dropped = buffer.add_chunk(pcm(70))  # needs 70 ms: two 50 ms steps
    assert dropped == 3200
    assert recorder.events == [
        (
            "stream.buffer_overflow",
            {"bytes_dropped": 3200, "buffer_duration_ms": 100.0, "max_duration_ms": 200},
        )
    ]
    assert buffer.stats["total_dropped"] == 3200
    assert buffer.stats["total_received"] == 6400 + 2240
    assert buffer.read(1)[:4] == (bytes(range(256)) * 25)[3200:3204]


def test_buffer_keeps_the_last_step_when_it_cannot_make_room() -> None:
    buffer = StreamingBuffer(max_duration_ms=100)
    buffer.add_chunk(pcm(40))  # 1280 B, less than one 1600 B step
    assert buffer.add_chunk(pcm(90)) == 0
    assert buffer.duration_ms == 130.0


def test_buffer_tiny_sample_rate_does_not_spin() -> None:
    buffer = StreamingBuffer(max_duration_ms=10, sample_rate=5)  # 50 ms step rounds to 0 B
    buffer.add_chunk(AudioChunk(data=b"\x00" * 10, sample_rate=5))
    assert buffer.add_chunk(AudioChunk(data=b"\x00" * 10, sample_rate=5)) == 0
    assert buffer.stats["bytes_buffered"] == 20


def test_buffer_read_underrun_and_recovery() -> None:
    recorder = Recorder()
    buffer = StreamingBuffer(event_emitter=recorder)
    buffer.add_chunk(pcm(30))
    assert len(buffer.read(20)) == 640
    assert recorder.events == []
    assert len(buffer.read(20)) == 320  # only 10 ms left
    assert len(buffer.read(20)) == 0  # still in underrun: no second event
    assert recorder.events == [
        (
            "stream.buffer_underrun",
            {"bytes_requested": 640, "bytes_available": 320, "buffer_duration_ms": 10.0},
        )
    ]
    before = buffer.stats
    assert before["underrun_active"] is True
    buffer.add_chunk(pcm(40))
    assert len(buffer.read(20)) == 640
    assert recorder.events[-1] == ("stream.buffer_recovered", {"buffer_duration_ms": 40.0})
    assert buffer.stats["underrun_active"] is False
    assert buffer.stats["total_read"] == 640 + 320 + 640


def test_buffer_clear_keeps_counters() -> None:
    buffer = StreamingBuffer()
    buffer.add_chunk(pcm(50))
    buffer.clear()
    assert buffer.duration_ms == 0.0
    assert buffer.stats["total_received"] == 1600


def test_buffer_emitter_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    buffer = StreamingBuffer(max_duration_ms=100, event_emitter=failing_emitter)
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.helpers.streaming"):
        buffer.add_chunk(pcm(100))
        assert buffer.add_chunk(pcm(50)) == 1600
        assert len(buffer.read(500)) == 3200
    assert [record.getMessage() for record in caplog.records] == [
        "stream telemetry emitter failed on stream.buffer_overflow",
        "stream telemetry emitter failed on stream.buffer_underrun",
    ]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 4000)),
            st.tuples(st.just("read"), st.floats(0, 300)),
            st.tuples(st.just("clear")),
        ),
        max_size=25,
    ),
    st.sampled_from([(8000, 1), (16000, 1), (16000, 2), (44100, 2)]),
)
def test_buffer_matches_reference(
    reference: ModuleType, ops: list[tuple[Any, ...]], layout: tuple[int, int]
) -> None:
    ref = reference.helpers.streaming
    rate, channels = layout
    ours_rec, ref_rec = Recorder(), Recorder()
    kwargs: dict[str, Any] = {
        "target_duration_ms": 100,
        "max_duration_ms": 400,
        "sample_rate": rate,
        "channels": channels,
    }
    ours = StreamingBuffer(event_emitter=ours_rec, **kwargs)
    theirs = ref.StreamingBuffer(event_emitter=ref_rec, **kwargs)
    for op in ops:
        if op[0] == "add":
            data = bytes(i % 251 for i in range(op[1]))
            assert ours.add_chunk(
                AudioChunk(data=data, sample_rate=rate, channels=channels)
            ) == theirs.add_chunk(ref.AudioChunk(data=data, sample_rate=rate, channels=channels))
        elif op[0] == "read":
            assert ours.read(op[1]) == theirs.read(op[1])
        else:
            ours.clear()
            theirs.clear()
        assert ours.stats == theirs.stats
    assert ours_rec.events == ref_rec.events


# --- utilities ------------------------------------------------------------------------


def test_encode_audio_for_logging() -> None:
    assert encode_audio_for_logging(b"abc") == "<audio:3B,data:YWJj>"
    assert encode_audio_for_logging(b"abcdef", max_bytes=3) == "<audio:6B,sample:YWJj...>"
    assert encode_audio_for_logging(b"abc", max_bytes=3) == "<audio:3B,data:YWJj>"
    assert encode_audio_for_logging(b"") == "<audio:0B,data:>"


def test_calculate_audio_duration_ms() -> None:
    assert calculate_audio_duration_ms(32000) == 1000.0
    assert calculate_audio_duration_ms(32000, sample_rate=8000) == 2000.0
    assert calculate_audio_duration_ms(32000, channels=2) == 500.0
    assert calculate_audio_duration_ms(32000, bytes_per_sample=4) == 500.0
    assert math.isclose(calculate_audio_duration_ms(441, 44100, 1, 1), 10.0)


@given(st.binary(max_size=300), st.integers(0, 200))
def test_utilities_match_reference(reference: ModuleType, data: bytes, max_bytes: int) -> None:
    ref = reference.helpers.streaming
    assert encode_audio_for_logging(data, max_bytes) == ref.encode_audio_for_logging(
        data, max_bytes
    )
    assert calculate_audio_duration_ms(len(data), 22050, 2, 2) == (
        ref.calculate_audio_duration_ms(len(data), 22050, 2, 2)
    )


def _buffer_used(queue: ChunkQueue[int]) -> int:
    return queue._send.statistics().current_buffer_used


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
