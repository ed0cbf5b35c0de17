"""Streaming primitives for audio and other real-time pipelines, on trio.

- :class:`ChunkQueue`: a bounded queue over a trio memory channel, with
  drop-oldest or blocking overflow, backpressure statistics and ``stream.*``
  telemetry events.
- :class:`StreamingBuffer`: a jitter buffer for PCM audio that drops the oldest
  audio in 50 ms steps when full and reports underruns.
- :class:`AudioChunk`, :class:`AudioFormat`, :class:`StreamConfig`: values.
- :class:`BackpressureMonitor` / :class:`BackpressureStats`: fill-level latch and
  counters.

Telemetry goes through an optional ``event_emitter(event_type, data)`` callback.
An emitter that raises is logged and ignored: telemetry never breaks a stream.

Example::

    queue: ChunkQueue[AudioChunk] = ChunkQueue(max_size=100)

    async def produce() -> None:
        await queue.put(AudioChunk(data=b"\\x00\\x00" * 160))
        await queue.close()

    async def consume() -> None:
        async for chunk in queue:
            handle(chunk.data)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from enum import Enum
from typing import Any, Generic, TypeVar

import attrs
import trio

from stageflow_trio._time import monotonic
from stageflow_trio.errors import StageflowError
from stageflow_trio.utils.frozen import FrozenDict

__all__ = [
    "AudioChunk",
    "AudioFormat",
    "BackpressureMonitor",
    "BackpressureStats",
    "ChunkQueue",
    "EventEmitter",
    "QueueEmpty",
    "StreamConfig",
    "StreamingBuffer",
    "calculate_audio_duration_ms",
    "encode_audio_for_logging",
]

logger = logging.getLogger(__name__)

EventEmitter = Callable[[str, dict[str, Any]], None]
"""Telemetry callback: ``emitter(event_type, data)``; its errors are logged, never raised."""

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
    return value if type(value) is FrozenDict else FrozenDict(value)


def _to_bytes(value: bytes | bytearray | memoryview) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"AudioChunk.data must be bytes, got {type(value).__name__}")


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
            KeyError: ``data`` has no ``"data"`` key.
            binascii.Error: ``"data"`` is not valid base64.
            ValueError: ``"format"`` is not an :class:`AudioFormat` value.
        """
        if "data" not in data:
            raise KeyError("AudioChunk.from_dict: missing required key 'data'")
        try:
            raw = base64.b64decode(data["data"])
        except binascii.Error as exc:
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


@attrs.frozen
class BackpressureStats:
    """A snapshot of a :class:`BackpressureMonitor`'s counters.

    Attributes:
        total_items: Items put.
        dropped_items: Items dropped on overflow.
        blocked_puts: Puts that waited for room more than 1 ms.
        max_queue_size: Largest queue size seen after a put.
        total_blocked_ms: Milliseconds spent waiting in blocked puts.
    """

    total_items: int = 0
    dropped_items: int = 0
    blocked_puts: int = 0
    max_queue_size: int = 0
    total_blocked_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The counters plus ``drop_rate = dropped_items / max(total_items, 1)``."""
        return {
            "total_items": self.total_items,
            "dropped_items": self.dropped_items,
            "blocked_puts": self.blocked_puts,
            "max_queue_size": self.max_queue_size,
            "total_blocked_ms": self.total_blocked_ms,
            "drop_rate": self.dropped_items / max(self.total_items, 1),
        }


class BackpressureMonitor:
    """Counts puts, drops and blocked time, and latches a throttle flag on fill level.

    The throttle turns on when a put leaves the queue at least ``high_water_mark``
    percent full and off again only when a put leaves it at most
    ``low_water_mark`` percent full.

    Args:
        high_water_mark: Fill percentage that starts throttling.
        low_water_mark: Fill percentage that ends throttling.
    """

    __slots__ = (
        "_blocked_puts",
        "_dropped_items",
        "_fill_pct",
        "_high_water",
        "_low_water",
        "_max_queue_size",
        "_throttling",
        "_total_blocked_ms",
        "_total_items",
    )

    def __init__(self, *, high_water_mark: int = 80, low_water_mark: int = 20) -> None:
        self._high_water = high_water_mark
        self._low_water = low_water_mark
        self._total_items = 0
        self._dropped_items = 0
        self._blocked_puts = 0
        self._max_queue_size = 0
        self._total_blocked_ms = 0.0
        self._fill_pct: float = 0.0
        self._throttling = False

    @property
    def stats(self) -> BackpressureStats:
        """A snapshot of the counters (a new frozen object on every read)."""
        return BackpressureStats(
            total_items=self._total_items,
            dropped_items=self._dropped_items,
            blocked_puts=self._blocked_puts,
            max_queue_size=self._max_queue_size,
            total_blocked_ms=self._total_blocked_ms,
        )

    def record_put(self, queue_size: int, max_size: int = 100) -> None:
        """Count a put that left ``queue_size`` items in a queue of ``max_size``.

        ``max_size <= 0`` (unbounded) gives a fill of 0.
        """
        self._total_items += 1
        if queue_size > self._max_queue_size:
            self._max_queue_size = queue_size
        self._fill_pct = (queue_size / max_size) * 100 if max_size > 0 else 0
        if self._fill_pct >= self._high_water:
            self._throttling = True
        elif self._fill_pct <= self._low_water:
            self._throttling = False

    def record_blocked(self, blocked_ms: float) -> None:
        """Count a put that waited ``blocked_ms`` milliseconds for room."""
        self._blocked_puts += 1
        self._total_blocked_ms += blocked_ms

    def record_drop(self) -> None:
        """Count a dropped item."""
        self._dropped_items += 1

    def should_throttle(self) -> bool:
        """Whether the producer should slow down (the latched throttle flag)."""
        return self._throttling

    @property
    def fill_percentage(self) -> float:
        """Fill percentage recorded by the last put."""
        return self._fill_pct


class QueueEmpty(trio.WouldBlock, StageflowError):
    """Raised by :meth:`ChunkQueue.get_nowait` when no item is ready.

    Replaces ``asyncio.QueueEmpty``; being a ``trio.WouldBlock`` it also reads as
    trio's usual "would have to wait" signal.
    """


class ChunkQueue(Generic[T]):
    """A bounded FIFO for stream chunks on a trio memory channel.

    When the queue is full, ``put`` either waits for room (the default) or, with
    ``drop_on_overflow=True``, drops the oldest item and never waits.
    ``max_size <= 0`` means unbounded, as with ``asyncio.Queue``.

    ``close()`` marks the queue closed, emits ``stream.queue_closed`` with the
    final counters, queues a ``None`` end marker if there is room, and closes the
    sending side: a ``put`` waiting for room at that moment returns ``False``.
    Consumers drain what is left and then get ``None`` (``async for`` stops).

    Telemetry events (``event_emitter(type, data)``):

    - ``stream.chunk_dropped``: ``{queue_size, max_size, reason}``, reason
      ``"overflow"`` (oldest dropped) or ``"queue_full"`` (new item dropped).
    - ``stream.producer_blocked``: ``{blocked_ms, queue_size}`` after a put waited
      more than 1 ms (engine clock, so ``MockClock`` drives it).
    - ``stream.throttle_started`` / ``stream.throttle_ended``:
      ``{fill_percentage, queue_size}`` when the monitor's throttle flag flips.
    - ``stream.queue_closed``: ``{total_items, dropped_items, blocked_puts,
      max_queue_size, total_blocked_ms}``.

    Args:
        max_size: Capacity; ``<= 0`` means unbounded.
        drop_on_overflow: Drop the oldest item instead of waiting when full.
        event_emitter: Optional telemetry callback.
    """

    def __init__(
        self,
        max_size: int = 100,
        *,
        drop_on_overflow: bool = False,
        event_emitter: EventEmitter | None = None,
    ) -> None:
        # trio's 0 is a rendezvous channel; asyncio's 0 meant unbounded.
        capacity: float = max_size if max_size > 0 else math.inf
        self._send, self._receive = trio.open_memory_channel[T | None](capacity)
        self._max_size = max_size
        self._drop_on_overflow = drop_on_overflow
        self._closed = False
        self._monitor = BackpressureMonitor()
        self._event_emitter = event_emitter
        self._throttle_active = False

    @property
    def monitor(self) -> BackpressureMonitor:
        """The queue's backpressure monitor."""
        return self._monitor

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __len__(self) -> int:
        """Items waiting in the queue (the end marker included)."""
        return self._send.statistics().current_buffer_used

    async def put(self, item: T) -> bool:
        """Add ``item``, waiting for room unless the queue drops on overflow.

        Always a checkpoint. If cancelled, the item was not added.

        Returns:
            ``True`` if the item was queued; ``False`` if the queue is closed (also
            when it closes while this put waits for room) or the item was dropped.
        """
        await trio.lowlevel.checkpoint()
        if self._closed:
            return False
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            if self._drop_on_overflow:
                if not self._drop_oldest_then_send(item):
                    return False
            else:
                start = monotonic()
                try:
                    await self._send.send(item)
                except trio.ClosedResourceError:
                    return False
                elapsed_ms = (monotonic() - start) * 1000
                if elapsed_ms > 1:
                    self._monitor.record_blocked(elapsed_ms)
                    if self._event_emitter is not None:
                        _emit(
                            self._event_emitter,
                            "stream.producer_blocked",
                            {"blocked_ms": elapsed_ms, "queue_size": len(self)},
                        )
        self._after_put()
        return True

    def _drop_oldest_then_send(self, item: T) -> bool:
        try:
            self._receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            pass
        else:
            self._record_drop("overflow")
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self._record_drop("queue_full")
            return False
        return True

    def _record_drop(self, reason: str) -> None:
        self._monitor.record_drop()
        if self._event_emitter is not None:
            _emit(
                self._event_emitter,
                "stream.chunk_dropped",
                {"queue_size": len(self), "max_size": self._max_size, "reason": reason},
            )

    def _after_put(self) -> None:
        size = len(self)
        monitor = self._monitor
        monitor.record_put(size, self._max_size)
        throttling = monitor.should_throttle()
        if throttling == self._throttle_active:
            return
        self._throttle_active = throttling
        if self._event_emitter is not None:
            _emit(
                self._event_emitter,
                "stream.throttle_started" if throttling else "stream.throttle_ended",
                {"fill_percentage": monitor.fill_percentage, "queue_size": size},
            )

    async def get(self) -> T | None:
        """Take the next item, waiting for one if the queue is open and empty.

        Always a checkpoint. If cancelled, no item was taken.

        Returns:
            The next item, or ``None`` once the queue is closed and drained (or
            when the end marker queued by :meth:`close` comes out).
        """
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            # receive() raises EndOfChannel without a schedule point.
            await trio.lowlevel.checkpoint()
            return None

    def get_nowait(self) -> T | None:
        """Take the next item without waiting.

        Returns:
            The next item (``None`` if it is the end marker).

        Raises:
            QueueEmpty: No item is waiting.
        """
        try:
            return self._receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            raise QueueEmpty("ChunkQueue is empty") from None

    async def close(self) -> None:
        """Close the queue; see the class docstring. A checkpoint.

        The queue is closed even if the caller is cancelled; ``Cancelled`` is
        raised afterwards.
        """
        self._closed = True
        stats = self._monitor.stats
        _emit(
            self._event_emitter,
            "stream.queue_closed",
            {
                "total_items": stats.total_items,
                "dropped_items": stats.dropped_items,
                "blocked_puts": stats.blocked_puts,
                "max_queue_size": stats.max_queue_size,
                "total_blocked_ms": stats.total_blocked_ms,
            },
        )
        # Full: consumers see the channel end instead. Closed: a second close().
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait(None)
        self._send.close()
        await trio.lowlevel.checkpoint()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        item = await self.get()
        if item is None:
            raise StopAsyncIteration
        return item


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

        Returns:
            Bytes dropped to make room (0 if none).
        """
        dropped = 0
        step = int(self._bytes_per_ms * _DROP_STEP_MS)
        incoming_ms = chunk.duration_ms
        # step < 1 (sample rates below 10 Hz) could never make room: stop instead of spinning.
        while step >= 1 and self.duration_ms + incoming_ms > self._max_ms:
            if len(self._buffer) <= step:
                break
            del self._buffer[:step]
            dropped += step
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

    def read(self, duration_ms: float = 20) -> bytes:
        """Take up to ``duration_ms`` of audio from the front (less if not buffered)."""
        requested = int(self._bytes_per_ms * duration_ms)
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
        self._total_read += available
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


def encode_audio_for_logging(data: bytes, max_bytes: int = 100) -> str:
    """A log-safe summary of audio bytes.

    Returns:
        ``<audio:{n}B,data:{base64}>`` when ``len(data) <= max_bytes``, else
        ``<audio:{n}B,sample:{base64 of the first max_bytes}...>``.
    """
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
    """Milliseconds of audio in ``byte_count`` bytes of raw samples."""
    samples = byte_count / (bytes_per_sample * channels)
    return (samples / sample_rate) * 1000
