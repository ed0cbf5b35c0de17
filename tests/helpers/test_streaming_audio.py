"""The streaming values and utilities: AudioFormat, StreamConfig, AudioChunk, and the
audio size helpers."""

from __future__ import annotations

import base64
import binascii
import math
from types import ModuleType

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.helpers.streaming import (
    AudioChunk,
    AudioFormat,
    StreamConfig,
    calculate_audio_duration_ms,
    encode_audio_for_logging,
)

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
