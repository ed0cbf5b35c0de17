"""Audit 15 of the streaming helpers: differential checks against stageflow 0.9.1, bad input,
checkpoints, cancellation and huge inputs.

Each ``test_defect_*`` failed before its fix; the differential and fuzz tests pin what already
matched the reference (parity.md names every intended difference).
"""

from __future__ import annotations

import asyncio
import binascii
import math
import random
from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.helpers.streaming import (
    AudioChunk,
    BackpressureMonitor,
    ChunkQueue,
    QueueEmpty,
    RealtimeStageBus,
    StreamingBuffer,
    calculate_audio_duration_ms,
    create_realtime_stage_context,
    encode_audio_for_logging,
)
from stageflow_trio.testing import create_test_snapshot

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


# --- Defects -------------------------------------------------------------------------------


async def test_defect_publish_and_subscribe_steps_are_full_checkpoints() -> None:
    # publish and each subscribe step only spent ChunkQueue's checkpoint budget: a run of
    # them never let another task run (only the first of 64 calls was a schedule point).
    bus = RealtimeStageBus(default_max_size=0)
    for i in range(5):
        with trio.testing.assert_checkpoints():
            assert await bus.publish("tokens", i) is True
    steps = bus.subscribe("tokens")
    for i in range(5):
        with trio.testing.assert_checkpoints():
            assert await steps.__anext__() == i


async def test_defect_publish_loop_lets_a_consumer_run_between_items() -> None:
    bus = RealtimeStageBus(default_max_size=0)
    seen: list[tuple[int, int]] = []  # (items published so far, item)
    published = 0

    async def consume() -> None:
        async for item in bus.subscribe("tokens"):
            seen.append((published, item))

    async with trio.open_nursery() as nursery, bus:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(10):
            await bus.publish("tokens", i)
            published += 1
    assert [item for _, item in seen] == list(range(10))
    # The consumer kept up: no item waited while four more were published (trio orders
    # each batch at random: the lag is 1-3 here; without the checkpoints it was 9).
    assert max(count - item for count, item in seen) <= 4


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((100, 0), ValueError, "sample_rate must be at least 1; got 0"),
        ((100, 16000, 0), ValueError, "channels must be at least 1; got 0"),
        ((100, 16000, 1, 0), ValueError, "bytes_per_sample must be at least 1; got 0"),
        ((-100,), ValueError, "byte_count must be at least 0; got -100"),
        ((100, -16000), ValueError, "sample_rate must be at least 1; got -16000"),
        ((math.nan,), TypeError, "byte_count must be an int; got float"),
        (("100",), TypeError, "byte_count must be an int; got str"),
        ((100, 16000.0), TypeError, "sample_rate must be an int; got float"),
    ],
)
def test_defect_calculate_audio_duration_ms_rejects_bad_input(
    args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    # The reference (and the old port) raised a bare ZeroDivisionError for a zero rate,
    # channel count or sample width, and returned a negative or NaN duration silently.
    with pytest.raises(error, match=rf"^calculate_audio_duration_ms: {message}$"):
        calculate_audio_duration_ms(*args)


def test_calculate_audio_duration_ms_still_takes_int_subclasses() -> None:
    class Count(int):
        pass

    assert calculate_audio_duration_ms(Count(32000), Count(16000)) == 1000.0
    assert calculate_audio_duration_ms(0) == 0.0


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("abc",), TypeError, "data must be bytes-like; got str"),
        (([1, 2],), TypeError, "data must be bytes-like; got list"),
        ((b"abcdef", -2), ValueError, "max_bytes must be at least 0; got -2"),
        ((b"abcdef", None), TypeError, "max_bytes must be an int; got NoneType"),
        ((b"abcdef", 1.5), TypeError, "max_bytes must be an int; got float"),
        ((b"abcdef", True), TypeError, "max_bytes must be an int; got bool"),
    ],
)
def test_defect_encode_audio_for_logging_rejects_bad_input(
    args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    # max_bytes=-2 returned the bytes but the last two labelled as a sample; a str or list
    # failed inside base64 with a message that named no parameter.
    with pytest.raises(error, match=rf"^encode_audio_for_logging: {message}$"):
        encode_audio_for_logging(*args)


def test_encode_audio_for_logging_takes_bytes_like_data() -> None:
    assert encode_audio_for_logging(bytearray(b"abcdef"), 3) == "<audio:6B,sample:YWJj...>"
    assert encode_audio_for_logging(memoryview(b"abc"), 3) == "<audio:3B,data:YWJj>"
    assert encode_audio_for_logging(b"abc", 0) == "<audio:3B,sample:...>"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (("record_put", "5"), TypeError, r"record_put: queue_size must be an int; got str"),
        (("record_put", 5, "x"), TypeError, r"record_put: max_size must be an int; got str"),
        (("record_put", -1, 10), ValueError, r"record_put: queue_size must be at least 0; got -1"),
        (("record_put", 5.0, 10), TypeError, r"record_put: queue_size must be an int; got float"),
        (
            ("record_blocked", "x"),
            TypeError,
            r"record_blocked: blocked_ms must be a number; got str",
        ),
        (
            ("record_blocked", math.nan),
            ValueError,
            r"record_blocked: blocked_ms must be a finite number; got nan",
        ),
        (
            ("record_blocked", -1.0),
            ValueError,
            r"record_blocked: blocked_ms must be >= 0; got -1.0",
        ),
    ],
)
def test_defect_monitor_records_reject_bad_input_and_count_nothing(
    call: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    # record_put("5") counted the put and then failed comparing str with int;
    # record_blocked(nan) or a negative time corrupted total_blocked_ms silently.
    monitor = BackpressureMonitor()
    monitor.record_put(3, 10)
    before = monitor.stats
    name, *args = call
    with pytest.raises(error, match=rf"^BackpressureMonitor\.{message}$"):
        getattr(monitor, name)(*args)
    assert monitor.stats == before
    assert monitor.fill_percentage == 30.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bus_max_size": "10"}, "bus_max_size must be an int; got str"),
        ({"bus_drop_on_overflow": "yes"}, "bus_drop_on_overflow must be a bool; got str"),
        (
            {"bus": RealtimeStageBus(), "bus_max_size": 1.5},
            "bus_max_size must be an int; got float",
        ),
    ],
)
def test_defect_create_realtime_stage_context_names_its_own_parameters(
    kwargs: dict[str, Any], message: str
) -> None:
    # The error named RealtimeStageBus's default_max_size / default_drop_on_overflow,
    # parameters the caller never passed.
    with pytest.raises(TypeError, match=rf"^create_realtime_stage_context: {message}$"):
        create_realtime_stage_context(create_test_snapshot(), **kwargs)


def test_defect_create_realtime_stage_context_checks_the_snapshot() -> None:
    # A str was taken as the snapshot; the context failed later, at its first use.
    with pytest.raises(
        TypeError,
        match=r"^create_realtime_stage_context: snapshot must be a ContextSnapshot; got str$",
    ):
        create_realtime_stage_context("snapshot")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        (123, TypeError, r"RealtimeStageBus: channel name must be a str; got int"),
        (None, TypeError, r"RealtimeStageBus: channel name must be a str; got NoneType"),
        (["x"], TypeError, r"RealtimeStageBus: channel name must be a str; got list"),
        ("", ValueError, r"RealtimeStageBus channel name cannot be empty"),
    ],
)
async def test_defect_close_channel_checks_the_name(
    name: Any, error: type[Exception], message: str
) -> None:
    # close_channel(123) did nothing without a word (a typo left the channel open and its
    # subscribers waiting); a list failed with "unhashable type".
    bus = RealtimeStageBus()
    await bus.publish("123", 1)
    with pytest.raises(error, match=rf"^{message}$"):
        await bus.close_channel(name)
    stats = await bus.stats()
    assert list(stats) == ["123"]
    assert (stats["123"]["size"], stats["123"]["closed"]) == (1, False)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ("data", TypeError, r"AudioChunk\.from_dict: data must be a mapping; got str"),
        (None, TypeError, r"AudioChunk\.from_dict: data must be a mapping; got NoneType"),
        ({"data": 5}, TypeError, r"AudioChunk\.from_dict: 'data' must be base64 text; got int"),
        (
            {"data": "\u00e9"},
            binascii.Error,
            r"AudioChunk\.from_dict: 'data' must be base64 text \(string argument should "
            r"contain only ASCII characters\)",
        ),
    ],
)
def test_defect_from_dict_rejects_what_is_not_a_chunk_dict(
    data: Any, error: type[Exception], message: str
) -> None:
    # from_dict("data") failed with "string indices must be integers"; {"data": 5} inside
    # base64; non-ASCII text with a ValueError that named no key.
    with pytest.raises(error, match=rf"^{message}$"):
        AudioChunk.from_dict(data)


def test_from_dict_still_takes_base64_bytes() -> None:
    assert AudioChunk.from_dict({"data": b"YWJj"}).data == b"abc"


def test_defect_read_of_a_huge_finite_duration_returns_what_is_buffered() -> None:
    # read(1e308) passed the finite-number check, then failed with OverflowError (the
    # byte count overflowed a float), as in the reference.
    events: list[tuple[str, dict[str, Any]]] = []
    buffer = StreamingBuffer(event_emitter=lambda kind, data: events.append((kind, data)))
    buffer.add_chunk(AudioChunk(data=bytes(64)))
    assert buffer.read(1e308) == bytes(64)
    assert buffer.stats["total_read"] == 64
    [(kind, data)] = events
    assert kind == "stream.buffer_underrun"
    assert data["bytes_requested"] == int(Fraction(32) * Fraction(1e308))
    assert data["bytes_available"] == 64


class _CountingBuffer(StreamingBuffer):
    reads = 0

    @property
    def duration_ms(self) -> float:
        type(self).reads += 1
        return super().duration_ms


def test_defect_add_chunk_makes_room_without_a_pass_per_step() -> None:
    # The drop loop took one pass (a duration_ms read and a delete) per 50 ms step: at
    # 10 Hz the step is 1 byte, and one add_chunk after a 2 MB chunk took over a second
    # (2 million passes); 50 MB took half a minute.
    buffer = _CountingBuffer(sample_rate=10, max_duration_ms=2000)
    buffer.add_chunk(AudioChunk(data=bytes(2_000_000), sample_rate=10))
    _CountingBuffer.reads = 0
    assert buffer.add_chunk(AudioChunk(data=b"\x00\x00", sample_rate=10)) == 1_999_962
    assert _CountingBuffer.reads < 10
    assert buffer.stats["bytes_buffered"] == 40
    assert buffer.stats["total_dropped"] == 1_999_962


class _Chunk:
    """A duck-typed chunk: any duration, NaN and negative ones included."""

    def __init__(self, data: bytes, duration_ms: float) -> None:
        self.data = data
        self.duration_ms = duration_ms


def _drop_loop(
    buffer_len: int, step: int, per_sample: int, rate: int, incoming: float, limit: float
) -> int:
    """The reference's drop loop on a length, one step at a time (the model)."""
    dropped = 0
    while step >= 1 and ((buffer_len / per_sample) / rate) * 1000 + incoming > limit:
        if buffer_len <= step:
            break
        buffer_len -= step
        dropped += step
    return dropped


@FUZZ
@given(
    st.sampled_from([10, 11, 20, 33, 8000, 11025, 16000, 44100, 48000]),
    st.integers(1, 3),
    st.one_of(st.integers(1, 3000), st.floats(0.01, 3000)),
    st.lists(
        st.tuples(
            st.integers(0, 30000),
            st.one_of(st.none(), st.floats(allow_nan=True), st.floats(-50, 5000)),
        ),
        max_size=6,
    ),
)
def test_add_chunk_drops_what_the_one_step_loop_drops(
    rate: int, channels: int, limit: float, adds: list[tuple[int, float | None]]
) -> None:
    buffer = StreamingBuffer(sample_rate=rate, channels=channels, max_duration_ms=limit)
    step = int((rate * channels * 2) / 1000 * 50)
    for size, duration in adds:
        chunk: Any = (
            AudioChunk(data=bytes(size), sample_rate=rate, channels=channels)
            if duration is None
            else _Chunk(bytes(size), duration)
        )
        before = buffer.stats["bytes_buffered"]
        expected = _drop_loop(before, step, 2 * channels, rate, chunk.duration_ms, limit)
        assert buffer.add_chunk(chunk) == expected
        assert buffer.stats["bytes_buffered"] == before - expected + size


# --- Differential against stageflow 0.9.1 ---------------------------------------------------

_QUEUE_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 5)),
        st.tuples(st.just("put_none"), st.just(0)),
        st.tuples(st.just("get"), st.just(0)),
        st.tuples(st.just("get_nowait"), st.just(0)),
        st.tuples(st.just("close"), st.just(0)),
        st.tuples(st.just("len"), st.just(0)),
    ),
    max_size=30,
)


async def _queue_session(module: Any, max_size: int, drop: bool, ops: list[tuple[str, int]]) -> Any:
    """One task's session: only calls that would not wait; returns results and events.

    Left out, as parity.md documents them: a second close (one end marker here) and the
    wall-clock timing of blocked puts.
    """
    events: list[tuple[str, dict[str, Any]]] = []
    queue = module.ChunkQueue(
        max_size,
        drop_on_overflow=drop,
        event_emitter=lambda kind, data: events.append((kind, dict(data))),
    )
    capacity = max_size if max_size > 0 else math.inf
    out: list[Any] = []
    for op, value in ops:
        if op in ("put", "put_none"):
            if not drop and not queue.is_closed and len(queue) >= capacity:
                continue
            out.append(await queue.put(None if op == "put_none" else value))
        elif op == "get":
            if len(queue) == 0 and not queue.is_closed:
                continue
            out.append(await queue.get())
        elif op == "get_nowait":
            try:
                out.append(queue.get_nowait())
            except (asyncio.QueueEmpty, QueueEmpty):
                out.append("empty")
        elif op == "close":
            if queue.is_closed:
                continue
            await queue.close()
            out.append("closed")
        else:
            out.append(len(queue))
        stats = queue.monitor.stats
        out.append(
            (
                stats.total_items,
                stats.dropped_items,
                stats.max_queue_size,
                queue.monitor.fill_percentage,
                queue.monitor.should_throttle(),
            )
        )
    kept = []
    for kind, data in events:
        if kind != "stream.producer_blocked":
            data.pop("blocked_puts", None)
            data.pop("total_blocked_ms", None)
            kept.append((kind, data))
    return out, kept


@FUZZ
@given(st.integers(-1, 5), st.booleans(), _QUEUE_OPS)
def test_chunk_queue_matches_reference(
    reference: ModuleType, max_size: int, drop: bool, ops: list[tuple[str, int]]
) -> None:
    theirs = asyncio.run(_queue_session(reference.helpers.streaming, max_size, drop, ops))
    import stageflow_trio.helpers.streaming as ours

    assert trio.run(_queue_session, ours, max_size, drop, ops) == theirs


def _buffer_session(
    module: Any, rate: int, channels: int, target: float, limit: float, ops: list[tuple[str, float]]
) -> Any:
    events: list[tuple[str, dict[str, Any]]] = []
    buffer = module.StreamingBuffer(
        target_duration_ms=target,
        max_duration_ms=limit,
        sample_rate=rate,
        channels=channels,
        event_emitter=lambda kind, data: events.append((kind, dict(data))),
    )
    out: list[Any] = []
    for op, value in ops:
        if op == "add":
            data = bytes(range(256)) * (int(value) // 256) + bytes(int(value) % 256)
            out.append(
                buffer.add_chunk(module.AudioChunk(data=data, sample_rate=rate, channels=channels))
            )
        elif op == "read":
            out.append(buffer.read(value))
        else:
            buffer.clear()
        out.append((buffer.stats, buffer.is_full(), buffer.is_ready()))
    return out, events


@FUZZ
@given(
    st.sampled_from([20, 8000, 11025, 16000, 44100, 48000]),
    st.integers(1, 2),
    st.one_of(st.integers(0, 400), st.floats(0, 400)),
    st.one_of(st.integers(1, 600), st.floats(0.01, 600)),
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 3000)),
            st.tuples(st.just("read"), st.one_of(st.integers(0, 200), st.floats(0, 200))),
            st.tuples(st.just("clear"), st.just(0)),
        ),
        max_size=20,
    ),
)
def test_streaming_buffer_matches_reference(
    reference: ModuleType,
    rate: int,
    channels: int,
    target: float,
    limit: float,
    ops: list[tuple[str, float]],
) -> None:
    import stageflow_trio.helpers.streaming as ours

    theirs = _buffer_session(reference.helpers.streaming, rate, channels, target, limit, ops)
    assert _buffer_session(ours, rate, channels, target, limit, ops) == theirs


@FUZZ
@given(
    st.binary(max_size=200),
    st.integers(0, 300),
    st.integers(0, 10**9),
    st.integers(1, 192000),
    st.integers(1, 8),
    st.integers(1, 4),
)
def test_audio_helpers_match_reference_on_valid_input(
    reference: ModuleType,
    data: bytes,
    max_bytes: int,
    count: int,
    rate: int,
    channels: int,
    width: int,
) -> None:
    ref = reference.helpers.streaming
    assert encode_audio_for_logging(data, max_bytes) == ref.encode_audio_for_logging(
        data, max_bytes
    )
    assert calculate_audio_duration_ms(
        count, rate, channels, width
    ) == ref.calculate_audio_duration_ms(count, rate, channels, width)
    chunk = ref.AudioChunk(data=data, sample_rate=rate, channels=channels)
    ours = AudioChunk.from_dict(chunk.to_dict())
    assert ours.to_dict() == chunk.to_dict()
    assert ours.duration_ms == chunk.duration_ms


# --- Cancellation and concurrency fuzz ------------------------------------------------------


@FUZZ
@given(
    st.integers(-1, 4),
    st.booleans(),
    st.integers(0, 2**32 - 1),
    st.integers(1, 3),
    st.integers(1, 3),
)
def test_queue_loses_and_duplicates_nothing_under_cancellation(
    max_size: int, drop: bool, seed: int, producers: int, consumers: int
) -> None:
    """Producers and consumers cancelled at random: every item a put accepted comes out
    once (or was counted as dropped), a cancelled put's item never comes out, per-producer
    order holds, len() is the channel's buffer, and close ends every consumer."""
    rng = random.Random(seed)

    async def main() -> None:
        queue: ChunkQueue[tuple[int, int]] = ChunkQueue(max_size, drop_on_overflow=drop)
        accepted: list[tuple[int, int]] = []
        cancelled: list[tuple[int, int]] = []
        got: list[tuple[int, int]] = []

        def check() -> None:
            assert len(queue) == queue._send.statistics().current_buffer_used
            assert max_size <= 0 or len(queue) <= max_size

        async def produce(producer: int) -> None:
            for i in range(rng.randint(0, 10)):
                with trio.CancelScope() as scope:
                    if rng.random() < 0.25:
                        scope.deadline = trio.current_time() + rng.random() / 100
                    if await queue.put((producer, i)):
                        accepted.append((producer, i))
                    check()
                if scope.cancelled_caught:
                    cancelled.append((producer, i))
                if rng.random() < 0.5:
                    await trio.sleep(rng.random() / 100)

        async def consume() -> None:
            while True:
                with trio.CancelScope() as scope:
                    if rng.random() < 0.25:
                        scope.deadline = trio.current_time() + rng.random() / 100
                    item = await queue.get()
                    check()
                    if item is None:
                        return
                    got.append(item)
                if rng.random() < 0.5:
                    await trio.sleep(rng.random() / 100)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for _ in range(consumers):
                    nursery.start_soon(consume)
                async with trio.open_nursery() as producing:
                    for producer in range(producers):
                        producing.start_soon(produce, producer)
                await queue.close()
        check()
        rest: list[tuple[int, int]] = []
        while True:
            try:
                item = queue.get_nowait()
            except QueueEmpty:
                break
            if item is not None:
                rest.append(item)
        delivered = got + rest
        assert len(set(delivered)) == len(delivered)
        assert not set(delivered) & set(cancelled)
        assert set(delivered) <= set(accepted)
        for producer in range(producers):
            mine = [i for p, i in delivered if p == producer]
            if consumers == 1:
                assert mine == sorted(mine)
        if drop:
            assert len(accepted) - len(delivered) == queue.monitor.stats.dropped_items
        else:
            assert sorted(delivered) == sorted(accepted)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
