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

from stageflow_trio._exports import publish

from ._audio import AudioChunk as AudioChunk
from ._audio import AudioFormat as AudioFormat
from ._audio import EventEmitter as EventEmitter
from ._audio import StreamConfig as StreamConfig
from ._audio import StreamingBuffer as StreamingBuffer
from ._audio import calculate_audio_duration_ms as calculate_audio_duration_ms
from ._audio import encode_audio_for_logging as encode_audio_for_logging
from ._chunk_queue import ChunkQueue as ChunkQueue
from ._chunk_queue import QueueEmpty as QueueEmpty
from ._monitor import BackpressureMonitor as BackpressureMonitor
from ._monitor import BackpressureStats as BackpressureStats

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

publish(__name__)
