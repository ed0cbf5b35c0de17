"""Audio values, the StreamingBuffer jitter buffer, and the telemetry helper they share."""

from __future__ import annotations

import base64
import binascii
import logging
import math
from collections.abc import Callable, Mapping
from enum import Enum
from fractions import Fraction
from typing import Any, TypeVar

import attrs

from stageflow_trio._args import check_callable, check_flag, check_int, check_number, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.utils.frozen import FrozenDict

logger: logging.Logger = logging.getLogger("stageflow_trio.helpers.streaming")

EventEmitter = Callable[[str, dict[str, Any]], object]
"""Telemetry callback: ``emitter(event_type, data)``; its return value is ignored (a sink's
``try_emit`` returns a bool) and its errors are logged, never raised."""

T = TypeVar("T")

# Bytes per sample StreamingBuffer assumes (PCM_16), and the size of one drop step.
_PCM16_BYTES = 2
_DROP_STEP_MS = 50


def _emit(emitter: EventEmitter | None, event_type: str, data: dict[str, Any]) -> None:
    """Call ``emitter``; a failing emitter is logged so that the stream keeps working."""
    if emitter is None:
        return
    try:
        emitter(event_type, data)
    except Exception:
        logger.warning("stream telemetry emitter failed on %s", event_type, exc_info=True)


def _freeze(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    if type(value) is FrozenDict:
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"AudioChunk: metadata must be a mapping; got {type_of(value)}")
    return FrozenDict(value)


def _to_bytes(value: bytes | bytearray | memoryview) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"AudioChunk.data must be bytes, got {type(value).__name__}")


def _check_format(owner: str, value: object) -> None:
    if not isinstance(value, AudioFormat):
        allowed = ", ".join(member.name for member in AudioFormat)
        raise TypeError(
            f"{owner}: format must be an AudioFormat ({allowed}); got {type_of(value)} {value!r}"
        )


def _check_chunk(chunk: object) -> None:
    """Raise TypeError unless ``chunk`` looks like an audio chunk (``data`` and ``duration_ms``)."""
    data = getattr(chunk, "data", None)
    duration = getattr(chunk, "duration_ms", None)
    if (
        isinstance(data, (bytes, bytearray, memoryview))
        and not isinstance(duration, bool)
        and isinstance(duration, int | float)
    ):
        return
    raise TypeError(
        "StreamingBuffer.add_chunk: chunk must be an AudioChunk (or have bytes-like data"
        f" and a number duration_ms); got {type_of(chunk)}"
    )


def _check_layout(owner: str, sample_rate: object, channels: object) -> None:
    # Both divide the duration maths: 0 would fail later with ZeroDivisionError.
    check_int(owner, "sample_rate", sample_rate, minimum=1)
    check_int(owner, "channels", channels, minimum=1)


class AudioFormat(Enum):
    """Audio encodings a chunk can carry."""

    PCM_16 = "pcm_16"
    PCM_24 = "pcm_24"
    PCM_32 = "pcm_32"
    FLOAT_32 = "float_32"
    MP3 = "mp3"
    OGG_OPUS = "ogg_opus"
    WAV = "wav"
    WEBM = "webm"


@frozen_compat
@attrs.frozen
class StreamConfig:
    """Default stream parameters.

    Attributes:
        chunk_size: Chunk size in bytes.
        sample_rate: Sample rate in Hz.
        channels: Number of channels.
        format: Audio encoding.
        buffer_duration_ms: Target buffer length in milliseconds.
    """

    chunk_size: int = 4096
    sample_rate: int = 16000
    channels: int = 1
    format: AudioFormat = AudioFormat.PCM_16
    buffer_duration_ms: int = 100

    def __attrs_post_init__(self) -> None:
        owner = "StreamConfig"
        check_int(owner, "chunk_size", self.chunk_size, minimum=1)
        _check_layout(owner, self.sample_rate, self.channels)
        _check_format(owner, self.format)
        check_int(owner, "buffer_duration_ms", self.buffer_duration_ms, minimum=0)


@frozen_compat
@attrs.frozen
class AudioChunk:
    """One immutable chunk of audio.

    Attributes:
        data: Raw audio bytes (a bytearray or memoryview is copied to bytes).
        sample_rate: Sample rate in Hz.
        channels: Number of channels.
        format: Audio encoding.
        timestamp_ms: Offset from the start of the stream in milliseconds.
        sequence: Position of the chunk in its stream.
        is_final: Whether this is the last chunk of the stream.
        metadata: Extra data, held read-only.
    """

    data: bytes = attrs.field(converter=_to_bytes)
    sample_rate: int = 16000
    channels: int = 1
    format: AudioFormat = AudioFormat.PCM_16
    timestamp_ms: float = 0.0
    sequence: int = 0
    is_final: bool = False
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_freeze)

    def __attrs_post_init__(self) -> None:
        # Chunks are made per frame: the usual types pass on identity tests alone.
        if (
            type(self.sample_rate) is int
            and self.sample_rate > 0
            and type(self.channels) is int
            and self.channels > 0
            and type(self.format) is AudioFormat
            and (type(self.timestamp_ms) is float or type(self.timestamp_ms) is int)
            and type(self.sequence) is int
            and type(self.is_final) is bool
        ):
            return
        owner = "AudioChunk"
        _check_layout(owner, self.sample_rate, self.channels)
        _check_format(owner, self.format)
        check_number(owner, "timestamp_ms", self.timestamp_ms)
        check_int(owner, "sequence", self.sequence)
        check_flag(owner, "is_final", self.is_final)

    @property
    def duration_ms(self) -> float:
        """Length in milliseconds: 2 bytes per sample for PCM_16, 4 for every other format."""
        bytes_per_sample = 2 if self.format == AudioFormat.PCM_16 else 4
        samples = len(self.data) / (bytes_per_sample * self.channels)
        return (samples / self.sample_rate) * 1000

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``data`` becomes base64 ASCII text."""
        return {
            "data": base64.b64encode(self.data).decode("ascii"),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "format": self.format.value,
            "timestamp_ms": self.timestamp_ms,
            "sequence": self.sequence,
            "is_final": self.is_final,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AudioChunk:
        """Rebuild a chunk from :meth:`to_dict` output.

        Missing keys take the defaults (16000 Hz, 1 channel, ``pcm_16``, ...).

        Raises:
            TypeError: ``data`` is not a mapping, or its ``"data"`` is not a str or
                bytes-like (or another field has the wrong type).
            KeyError: ``data`` has no ``"data"`` key.
            binascii.Error: ``"data"`` is not valid base64 (non-ASCII text included).
            ValueError: ``"format"`` is not an :class:`AudioFormat` value.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"AudioChunk.from_dict: data must be a mapping; got {type_of(data)}")
        if "data" not in data:
            raise KeyError("AudioChunk.from_dict: missing required key 'data'")
        encoded = data["data"]
        if not isinstance(encoded, str | bytes | bytearray | memoryview):
            raise TypeError(
                f"AudioChunk.from_dict: 'data' must be base64 text; got {type_of(encoded)}"
            )
        try:
            raw = base64.b64decode(encoded)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise binascii.Error(
                f"AudioChunk.from_dict: 'data' must be base64 text ({exc})"
            ) from None
        return cls(
            data=raw,
            sample_rate=data.get("sample_rate", 16000),
            channels=data.get("channels", 1),
            format=AudioFormat(data.get("format", "pcm_16")),
            timestamp_ms=data.get("timestamp_ms", 0.0),
            sequence=data.get("sequence", 0),
            is_final=data.get("is_final", False),
            metadata=data.get("metadata", {}),
        )


class StreamingBuffer:
    """A jitter buffer for PCM_16 audio.

    Chunks are appended as bytes. When a chunk would push the buffer past
    ``max_duration_ms``, the oldest audio is dropped in 50 ms steps (while more
    than one step is buffered) and ``stream.buffer_overflow`` is emitted with
    ``{bytes_dropped, buffer_duration_ms, max_duration_ms}``. A read that gets
    less than it asked for emits ``stream.buffer_underrun``
    (``{bytes_requested, bytes_available, buffer_duration_ms}``) once; the next
    full read emits ``stream.buffer_recovered`` (``{buffer_duration_ms}``).

    Args:
        target_duration_ms: Level at which :meth:`is_ready` turns true.
        max_duration_ms: Capacity in milliseconds.
        sample_rate: Sample rate in Hz.
        channels: Number of channels.
        event_emitter: Optional telemetry callback.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: a duration is negative or not finite, ``max_duration_ms`` is
            not above 0, or ``sample_rate`` / ``channels`` is below 1.
    """

    def __init__(
        self,
        *,
        target_duration_ms: float = 200,
        max_duration_ms: float = 2000,
        sample_rate: int = 16000,
        channels: int = 1,
        event_emitter: EventEmitter | None = None,
    ) -> None:
        owner = "StreamingBuffer"
        check_number(owner, "target_duration_ms", target_duration_ms, minimum=0)
        check_number(owner, "max_duration_ms", max_duration_ms, minimum=0, above=True)
        _check_layout(owner, sample_rate, channels)
        check_callable(owner, "event_emitter", event_emitter, optional=True)
        self._target_ms = target_duration_ms
        self._max_ms = max_duration_ms
        self._sample_rate = sample_rate
        self._channels = channels
        self._buffer = bytearray()
        self._total_received = 0
        self._total_read = 0
        self._total_dropped = 0
        self._event_emitter = event_emitter
        self._underrun_active = False
        self._bytes_per_ms = (sample_rate * channels * _PCM16_BYTES) / 1000

    @property
    def duration_ms(self) -> float:
        """Buffered audio in milliseconds."""
        samples = len(self._buffer) / (_PCM16_BYTES * self._channels)
        return (samples / self._sample_rate) * 1000

    def is_ready(self) -> bool:
        """Whether at least ``target_duration_ms`` is buffered."""
        return self.duration_ms >= self._target_ms

    def is_full(self) -> bool:
        """Whether at least ``max_duration_ms`` is buffered."""
        return self.duration_ms >= self._max_ms

    def add_chunk(self, chunk: AudioChunk) -> int:
        """Append ``chunk.data``, first dropping old audio if it would not fit.

        Besides an :class:`AudioChunk`, any object with bytes-like ``data`` and
        a number ``duration_ms`` is taken, as the reference takes it (a
        reference ``AudioChunk``, say).

        Returns:
            Bytes dropped to make room (0 if none).

        Raises:
            TypeError: ``chunk`` is not such an object (raw bytes, for one).
        """
        if type(chunk) is not AudioChunk:
            _check_chunk(chunk)
        dropped = 0
        step = int(self._bytes_per_ms * _DROP_STEP_MS)
        incoming_ms = chunk.duration_ms
        # step < 1 (sample rates below 10 Hz) could never make room: stop instead of spinning.
        if step >= 1 and self.duration_ms + incoming_ms > self._max_ms:
            dropped = self._steps_to_drop(step, incoming_ms) * step
            del self._buffer[:dropped]
        if dropped > 0:
            self._total_dropped += dropped
            _emit(
                self._event_emitter,
                "stream.buffer_overflow",
                {
                    "bytes_dropped": dropped,
                    "buffer_duration_ms": self.duration_ms,
                    "max_duration_ms": self._max_ms,
                },
            )
        self._buffer.extend(chunk.data)
        self._total_received += len(chunk.data)
        return dropped

    def _steps_to_drop(self, step: int, incoming_ms: float) -> int:
        """How many ``step``-byte drops make room for ``incoming_ms`` of audio.

        The count of the reference's loop, which drops one step at a time while
        the chunk would not fit and more than one step is buffered, without its
        one pass per step (millions on a large buffer with a small step): the
        fit test is monotone in the buffer length, so bisection finds it with
        the very same float expression as :attr:`duration_ms`.
        """
        length = len(self._buffer)
        per_sample = _PCM16_BYTES * self._channels
        rate = self._sample_rate
        limit = self._max_ms

        def overflows(remaining: int) -> bool:
            return ((remaining / per_sample) / rate) * 1000 + incoming_ms > limit

        # The loop stops once at most one step is left: after ceil(length / step) - 1 drops.
        low, high = 0, max(0, -(-length // step) - 1)
        while low < high:
            middle = (low + high) // 2
            if overflows(length - middle * step):
                low = middle + 1
            else:
                high = middle
        return low

    def read(self, duration_ms: float = 20) -> bytes:
        """Take up to ``duration_ms`` of audio from the front (less if not buffered).

        ``stats["total_read"]`` grows by the number of bytes returned.

        Raises:
            TypeError: ``duration_ms`` is not an int or float.
            ValueError: ``duration_ms`` is negative, NaN or infinite.
        """
        # The usual call passes the identity tests alone; anything else is checked.
        if not (
            (type(duration_ms) is int or type(duration_ms) is float) and 0 <= duration_ms < math.inf
        ):
            check_number("StreamingBuffer.read", "duration_ms", duration_ms, minimum=0)
        wanted = self._bytes_per_ms * duration_ms
        if wanted < math.inf:
            requested = int(wanted)
        else:
            # A finite request too long for a float product (1e308 ms): count it exactly.
            requested = int(Fraction(self._bytes_per_ms) * Fraction(duration_ms))
        available = min(requested, len(self._buffer))
        if available < requested:
            if not self._underrun_active:
                self._underrun_active = True
                _emit(
                    self._event_emitter,
                    "stream.buffer_underrun",
                    {
                        "bytes_requested": requested,
                        "bytes_available": available,
                        "buffer_duration_ms": self.duration_ms,
                    },
                )
        elif self._underrun_active:
            self._underrun_active = False
            _emit(
                self._event_emitter,
                "stream.buffer_recovered",
                {"buffer_duration_ms": self.duration_ms},
            )
        data = bytes(self._buffer[:available])
        del self._buffer[:available]
        self._total_read += len(data)
        return data

    def clear(self) -> None:
        """Drop everything buffered (counters are kept)."""
        self._buffer.clear()

    @property
    def stats(self) -> dict[str, Any]:
        """Level and counters: duration_ms, bytes_buffered, total_received,
        total_read, total_dropped, is_ready, underrun_active."""
        return {
            "duration_ms": self.duration_ms,
            "bytes_buffered": len(self._buffer),
            "total_received": self._total_received,
            "total_read": self._total_read,
            "total_dropped": self._total_dropped,
            "is_ready": self.is_ready(),
            "underrun_active": self._underrun_active,
        }


def encode_audio_for_logging(data: bytes | bytearray | memoryview, max_bytes: int = 100) -> str:
    """A log-safe summary of audio bytes.

    Returns:
        ``<audio:{n}B,data:{base64}>`` when ``len(data) <= max_bytes``, else
        ``<audio:{n}B,sample:{base64 of the first max_bytes}...>``.

    Raises:
        TypeError: ``data`` is not bytes-like, or ``max_bytes`` is not an int.
        ValueError: ``max_bytes`` is negative.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"encode_audio_for_logging: data must be bytes-like; got {type_of(data)}")
    if type(max_bytes) is not int or max_bytes < 0:
        check_int("encode_audio_for_logging", "max_bytes", max_bytes, minimum=0)
    encoded = base64.b64encode(data[:max_bytes]).decode("ascii")
    if len(data) > max_bytes:
        return f"<audio:{len(data)}B,sample:{encoded}...>"
    return f"<audio:{len(data)}B,data:{encoded}>"


def calculate_audio_duration_ms(
    byte_count: int,
    sample_rate: int = 16000,
    channels: int = 1,
    bytes_per_sample: int = 2,
) -> float:
    """Milliseconds of audio in ``byte_count`` bytes of raw samples.

    Raises:
        TypeError: an argument is not an int.
        ValueError: ``byte_count`` is negative, or ``sample_rate``, ``channels``
            or ``bytes_per_sample`` is below 1.
    """
    # The usual call passes on identity tests alone; anything else is checked.
    if not (
        type(byte_count) is int
        and type(sample_rate) is int
        and type(channels) is int
        and type(bytes_per_sample) is int
        and byte_count >= 0
        and sample_rate > 0
        and channels > 0
        and bytes_per_sample > 0
    ):
        owner = "calculate_audio_duration_ms"
        check_int(owner, "byte_count", byte_count, minimum=0)
        check_int(owner, "sample_rate", sample_rate, minimum=1)
        check_int(owner, "channels", channels, minimum=1)
        check_int(owner, "bytes_per_sample", bytes_per_sample, minimum=1)
    samples = byte_count / (bytes_per_sample * channels)
    return (samples / sample_rate) * 1000
