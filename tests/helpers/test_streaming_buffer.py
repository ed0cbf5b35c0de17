"""StreamingBuffer: accumulation, overflow in 50 ms steps, underrun and recovery."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.helpers.streaming import AudioChunk, StreamingBuffer
from tests.fakes import RecordingEmitter, failing_emitter


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
    recorder = RecordingEmitter()
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
    recorder = RecordingEmitter()
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
    ours_rec, ref_rec = RecordingEmitter(), RecordingEmitter()
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


# -- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "error", "message"),
    [
        (-20, ValueError, r"^StreamingBuffer\.read: duration_ms must be >= 0; got -20$"),
        (-0.5, ValueError, r"^StreamingBuffer\.read: duration_ms must be >= 0; got -0\.5$"),
        (
            float("nan"),
            ValueError,
            r"^StreamingBuffer\.read: duration_ms must be a finite number; got nan$",
        ),
        (
            float("inf"),
            ValueError,
            r"^StreamingBuffer\.read: duration_ms must be a finite number; got inf$",
        ),
        ("20", TypeError, r"^StreamingBuffer\.read: duration_ms must be a number; got str$"),
        (None, TypeError, r"^StreamingBuffer\.read: duration_ms must be a number; got NoneType$"),
        (True, TypeError, r"^StreamingBuffer\.read: duration_ms must be a number; got bool$"),
    ],
)
def test_read_rejects_a_bad_duration_and_leaves_the_buffer_alone(
    duration: Any, error: type[Exception], message: str
) -> None:
    # read(-20) used to return all but the last 20 ms and count -640 bytes read.
    buffer = StreamingBuffer()
    buffer.add_chunk(pcm(100))  # 3200 B
    with pytest.raises(error, match=message):
        buffer.read(duration)
    assert (buffer.stats["bytes_buffered"], buffer.stats["total_read"]) == (3200, 0)


def test_read_of_zero_returns_nothing_and_total_read_counts_bytes_returned() -> None:
    buffer = StreamingBuffer()
    buffer.add_chunk(pcm(100))  # 3200 B
    assert buffer.read(0) == b""
    assert len(buffer.read(20)) == 640
    assert len(buffer.read(500)) == 2560  # a short read counts what it returned
    assert (buffer.stats["total_read"], buffer.stats["bytes_buffered"]) == (3200, 0)


@pytest.mark.parametrize("chunk", [b"xx", bytearray(b"xx"), None, 42, "pcm"])
def test_add_chunk_rejects_what_is_not_a_chunk(chunk: Any) -> None:
    buffer = StreamingBuffer()
    with pytest.raises(
        TypeError,
        match=(
            r"^StreamingBuffer\.add_chunk: chunk must be an AudioChunk \(or have bytes-like data"
            rf" and a number duration_ms\); got {type(chunk).__name__}$"
        ),
    ):
        buffer.add_chunk(chunk)
    assert buffer.stats["total_received"] == 0


class _TextChunk:
    data = "not bytes"
    duration_ms = 1.0


def test_add_chunk_rejects_a_chunk_like_object_without_bytes() -> None:
    with pytest.raises(TypeError, match=r"^StreamingBuffer\.add_chunk: .* got _TextChunk$"):
        StreamingBuffer().add_chunk(_TextChunk())  # type: ignore[arg-type]


def test_add_chunk_takes_a_reference_audio_chunk(reference: ModuleType) -> None:
    # The reference reads only .data and .duration_ms; a migrating caller's chunks still work.
    buffer = StreamingBuffer()
    assert buffer.add_chunk(reference.helpers.streaming.AudioChunk(data=b"\x00" * 640)) == 0
    assert (buffer.stats["total_received"], buffer.duration_ms) == (640, 20.0)
