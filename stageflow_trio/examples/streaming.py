"""Streaming audio with backpressure, shown in virtual time.

A microphone task produces a 20 ms PCM chunk every 20 ms for one second. A
transcriber takes 30 ms per chunk, so it falls behind. Two ChunkQueues hold the
chunks between them:

1. ``drop_on_overflow=False``: the microphone waits for room
   (``stream.producer_blocked``), so every chunk arrives, late;
2. ``drop_on_overflow=True``: the microphone never waits and the oldest chunks
   are dropped (``stream.chunk_dropped``), so what arrives is recent.

The queues' telemetry goes through a BackpressureAwareEventSink whose worker an
``async with`` block owns; the example prints the events it delivered. The run
uses trio.testing.MockClock with autojump, so the second of audio passes
instantly and every run prints the same. Run it: ``python -m stageflow_trio.examples streaming``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio
import trio.testing

from stageflow_trio.events import BackpressureAwareEventSink
from stageflow_trio.examples import _run_main
from stageflow_trio.helpers.streaming import AudioChunk, ChunkQueue

__all__ = ["main", "stream"]

CHUNK_MS = 20
CHUNKS = 50
WORK_MS = 30


class CountingSink:
    """The downstream sink: counts event types and remembers the first of each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, dict[str, Any] | None] = {}

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:
        await trio.lowlevel.checkpoint()
        self.try_emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:
        self.counts[type] += 1
        self.first.setdefault(type, data)


async def microphone(queue: ChunkQueue[AudioChunk]) -> None:
    silence = b"\x00\x00" * (16000 * CHUNK_MS // 1000)  # 20 ms of 16 kHz PCM_16
    for i in range(CHUNKS):
        await queue.put(AudioChunk(data=silence, sequence=i, timestamp_ms=i * CHUNK_MS))
        await trio.sleep(CHUNK_MS / 1000)
    await queue.close()


async def transcriber(queue: ChunkQueue[AudioChunk], heard: list[int]) -> None:
    async for chunk in queue:
        await trio.sleep(WORK_MS / 1000)
        heard.append(chunk.sequence)


async def stream(drop_on_overflow: bool, sink: BackpressureAwareEventSink) -> dict[str, Any]:
    """One second of audio through a ChunkQueue of 10; what the transcriber heard."""

    def emit(type_: str, data: dict[str, Any]) -> bool:
        # An EventEmitter may return anything (it is ignored): here try_emit's False when
        # the sink is full, which the sink counts as a drop.
        return sink.try_emit(type=type_, data=data)

    queue: ChunkQueue[AudioChunk] = ChunkQueue(
        max_size=10, drop_on_overflow=drop_on_overflow, event_emitter=emit
    )
    heard: list[int] = []
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(microphone, queue)
        nursery.start_soon(transcriber, queue, heard)
    stats = queue.monitor.stats
    return {
        "heard": len(heard),
        "last_heard": heard[-1],
        "finished_at": round(trio.current_time() - started, 3),
        "dropped": stats.dropped_items,
        "blocked_puts": stats.blocked_puts,
    }


async def main() -> dict[str, Any]:
    downstream = CountingSink()
    async with BackpressureAwareEventSink(downstream, max_queue_size=100) as sink:
        waiting = await stream(drop_on_overflow=False, sink=sink)
        dropping = await stream(drop_on_overflow=True, sink=sink)
    # Leaving the block stopped the worker after delivering what was queued.
    for name, outcome in (("wait for room", waiting), ("drop oldest", dropping)):
        print(
            f"{name:>13}: heard {outcome['heard']}/{CHUNKS} chunks (last #{outcome['last_heard']}), "
            f"done after {outcome['finished_at']:.2f}s, dropped {outcome['dropped']}, "
            f"blocked puts {outcome['blocked_puts']}"
        )
    print("telemetry delivered downstream:")
    for event_type, count in sorted(downstream.counts.items()):
        print(f"  {event_type:<24} x{count:<3} first: {downstream.first[event_type]}")
    metrics = sink.metrics
    print(f"sink: emitted {metrics.emitted}, dropped {metrics.dropped}")
    return {
        "waiting": waiting,
        "dropping": dropping,
        "events": dict(downstream.counts),
        "sink_dropped": metrics.dropped,
    }


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main, clock=trio.testing.MockClock(autojump_threshold=0))
