"""ChunkQueue throughput: stageflow 0.9.1 under asyncio vs stageflow_trio under trio.

Workloads (seconds per chunk, median over repeats, the two libraries interleaved
in one process so that machine noise hits both alike):

- ``chunk_queue_pair``: a producer task puts N chunks into a ChunkQueue(max_size=100)
  and closes it; a consumer task drains it with ``async for``.
- ``chunk_queue_put_get_one_task``: one task does ``put`` then ``get``, N times.

Run: ``python benchmarks/bench_streaming.py`` (add ``--smoke`` for a tiny run).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import trio

from stageflow_trio.helpers.streaming import AudioChunk, ChunkQueue

FULL_N = 20_000
SMOKE_N = 200
FULL_REPEATS = 7
PAYLOAD = b"\x00\x01" * 160  # 10 ms of 16 kHz mono PCM_16


async def _pair(queue: Any, chunks: list[Any], spawn_pair: Callable[..., Any]) -> float:
    async def producer() -> None:
        for chunk in chunks:
            await queue.put(chunk)
        await queue.close()

    async def consumer() -> None:
        async for _ in queue:
            pass

    start = time.perf_counter()
    await spawn_pair(producer, consumer)
    return (time.perf_counter() - start) / len(chunks)


async def _one_task(queue: Any, chunks: list[Any]) -> float:
    start = time.perf_counter()
    for chunk in chunks:
        await queue.put(chunk)
        await queue.get()
    return (time.perf_counter() - start) / len(chunks)


async def _asyncio_pair(producer: Callable[[], Any], consumer: Callable[[], Any]) -> None:
    await asyncio.gather(producer(), consumer())


async def _trio_pair(producer: Callable[[], Any], consumer: Callable[[], Any]) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        nursery.start_soon(consumer)


def _reference_runs(n: int) -> dict[str, Callable[[], float]]:
    from stageflow.helpers import streaming as ref

    chunks = [ref.AudioChunk(data=PAYLOAD, sequence=i) for i in range(n)]
    return {
        "chunk_queue_pair": lambda: asyncio.run(
            _pair(ref.ChunkQueue(max_size=100), chunks, _asyncio_pair)
        ),
        "chunk_queue_put_get_one_task": lambda: asyncio.run(
            _one_task(ref.ChunkQueue(max_size=100), chunks)
        ),
    }


def _trio_runs(n: int) -> dict[str, Callable[[], float]]:
    chunks = [AudioChunk(data=PAYLOAD, sequence=i) for i in range(n)]
    return {
        "chunk_queue_pair": lambda: trio.run(
            _pair, ChunkQueue[AudioChunk](max_size=100), chunks, _trio_pair
        ),
        "chunk_queue_put_get_one_task": lambda: trio.run(
            _one_task, ChunkQueue[AudioChunk](max_size=100), chunks
        ),
    }


def run(smoke: bool = False) -> list[dict[str, object]]:
    """Measure every workload; return ``{"workload", "reference_s", "trio_s"}`` rows.

    Times are seconds per chunk (median over repeats). ``smoke`` runs a tiny
    size once, to check that the benchmark works.
    """
    n = SMOKE_N if smoke else FULL_N
    repeats = 1 if smoke else FULL_REPEATS
    reference, ours = _reference_runs(n), _trio_runs(n)
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in ours}
    for repeat in range(repeats):
        for name, (ref_times, trio_times) in samples.items():
            # Alternate which library goes first so warm-up effects do not favour one.
            if repeat % 2:
                trio_times.append(ours[name]())
                ref_times.append(reference[name]())
            else:
                ref_times.append(reference[name]())
                trio_times.append(ours[name]())
    return [
        {
            "workload": name,
            "reference_s": statistics.median(ref_times),
            "trio_s": statistics.median(trio_times),
        }
        for name, (ref_times, trio_times) in samples.items()
    ]


def main() -> None:
    rows = run(smoke="--smoke" in sys.argv[1:])
    print(f"{'workload':32} {'reference us':>13} {'trio us':>9} {'trio/ref':>9}")
    for row in rows:
        ref_s, trio_s = float(str(row["reference_s"])), float(str(row["trio_s"]))
        print(
            f"{row['workload']!s:32} {ref_s * 1e6:13.2f} {trio_s * 1e6:9.2f} {trio_s / ref_s:9.2f}"
        )


if __name__ == "__main__":
    main()
