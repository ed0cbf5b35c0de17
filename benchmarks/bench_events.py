"""Backpressure event sink throughput: stageflow (asyncio) against stageflow_trio (trio).

Every workload pushes a burst of N events into a BackpressureAwareEventSink whose
downstream only counts them, and times it until the last event has been
delivered. Reference and trio runs are interleaved in one process; each row is
the median over the repeats, in seconds per event.

Workloads:
    burst_worker: N ``try_emit`` calls, the running worker delivers them all,
        then ``stop()``. The reference's worker takes one event per
        ``wait_for(queue.get(), 0.1)``.
    burst_stop_drain: N ``try_emit`` calls, then ``stop(drain=True)`` right away
        (the reference drains in ``stop`` itself, without its worker).
    emit_stream: N ``await sink.emit(...)`` calls into a 1000-slot queue while
        the worker delivers concurrently, then ``stop()``.
    floor_collect: N ``try_emit`` calls into a plain list-collecting sink (no
        queue): the cost of the loop and the call alone.

Run: ``python benchmarks/bench_events.py [--smoke]``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import trio

from stageflow_trio.events import BackpressureAwareEventSink

FULL_N = 20_000
FULL_REPEATS = 7
SMOKE_N = 200


class _Counter:
    """A downstream sink that counts events and sets ``done`` at the target count.

    ``event`` is the event class of the loop it runs under (asyncio's or trio's).
    """

    def __init__(self, target: int, event: type[asyncio.Event] | type[trio.Event]) -> None:
        self.count = 0
        self.target = target
        self.done = event()

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.count += 1
        if self.count == self.target:
            self.done.set()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.count += 1


class _Collector:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))


_DATA = {"stage": "s", "n": 1}


# -- reference (asyncio) -----------------------------------------------------


async def _ref_burst_worker(n: int) -> float:
    from stageflow.events.sink import BackpressureAwareEventSink as RefSink

    counter = _Counter(n, asyncio.Event)
    sink = RefSink(counter, max_queue_size=n)
    await sink.start()
    start = time.perf_counter()
    for _ in range(n):
        sink.try_emit(type="e", data=_DATA)
    await counter.done.wait()
    await sink.stop()
    elapsed = time.perf_counter() - start
    assert counter.count == n
    return elapsed


async def _ref_burst_stop_drain(n: int) -> float:
    from stageflow.events.sink import BackpressureAwareEventSink as RefSink

    counter = _Counter(n, asyncio.Event)
    sink = RefSink(counter, max_queue_size=n)
    await sink.start()
    start = time.perf_counter()
    for _ in range(n):
        sink.try_emit(type="e", data=_DATA)
    await sink.stop()
    elapsed = time.perf_counter() - start
    assert counter.count == n
    return elapsed


async def _ref_emit_stream(n: int) -> float:
    from stageflow.events.sink import BackpressureAwareEventSink as RefSink

    counter = _Counter(n, asyncio.Event)
    sink = RefSink(counter, max_queue_size=1000)
    await sink.start()
    start = time.perf_counter()
    for _ in range(n):
        await sink.emit(type="e", data=_DATA)
    await sink.stop()
    elapsed = time.perf_counter() - start
    assert counter.count == n
    return elapsed


async def _ref_floor(n: int) -> float:
    sink = _Collector()
    start = time.perf_counter()
    for _ in range(n):
        sink.try_emit(type="e", data=_DATA)
    elapsed = time.perf_counter() - start
    assert len(sink.events) == n
    return elapsed


# -- stageflow_trio ----------------------------------------------------------


async def _trio_burst_worker(n: int) -> float:
    counter = _Counter(n, trio.Event)
    async with BackpressureAwareEventSink(counter, max_queue_size=n) as sink:
        start = time.perf_counter()
        for _ in range(n):
            sink.try_emit(type="e", data=_DATA)
        await counter.done.wait()
        await sink.stop()
        elapsed = time.perf_counter() - start
    assert counter.count == n
    return elapsed


async def _trio_burst_stop_drain(n: int) -> float:
    counter = _Counter(n, trio.Event)
    async with BackpressureAwareEventSink(counter, max_queue_size=n) as sink:
        start = time.perf_counter()
        for _ in range(n):
            sink.try_emit(type="e", data=_DATA)
        await sink.stop()
        elapsed = time.perf_counter() - start
    assert counter.count == n
    return elapsed


async def _trio_emit_stream(n: int) -> float:
    counter = _Counter(n, trio.Event)
    async with BackpressureAwareEventSink(counter, max_queue_size=1000) as sink:
        start = time.perf_counter()
        for _ in range(n):
            await sink.emit(type="e", data=_DATA)
        await sink.stop()
        elapsed = time.perf_counter() - start
    assert counter.count == n
    return elapsed


async def _trio_floor(n: int) -> float:
    return await _ref_floor(n)  # the same plain loop, run under trio


_WORKLOADS: list[
    tuple[
        str,
        Callable[[int], Coroutine[Any, Any, float]],
        Callable[[int], Coroutine[Any, Any, float]],
    ]
] = [
    ("burst_worker", _ref_burst_worker, _trio_burst_worker),
    ("burst_stop_drain", _ref_burst_stop_drain, _trio_burst_stop_drain),
    ("emit_stream", _ref_emit_stream, _trio_emit_stream),
    ("floor_collect", _ref_floor, _trio_floor),
]


def run(smoke: bool = False) -> list[dict[str, object]]:
    """Measure every workload; rows hold the median seconds per event of each side."""
    n = SMOKE_N if smoke else FULL_N
    repeats = 1 if smoke else FULL_REPEATS
    samples: dict[str, tuple[list[float], list[float]]] = {
        name: ([], []) for name, _, _ in _WORKLOADS
    }
    for _ in range(repeats):
        for name, reference, ours in _WORKLOADS:
            samples[name][0].append(asyncio.run(reference(n)) / n)
            samples[name][1].append(trio.run(ours, n) / n)
    return [
        {
            "workload": name,
            "reference_s": statistics.median(ref_samples),
            "trio_s": statistics.median(trio_samples),
        }
        for name, (ref_samples, trio_samples) in samples.items()
    ]


def main() -> None:
    rows = run(smoke="--smoke" in sys.argv[1:])
    print(f"{'workload':<18} {'reference us/ev':>16} {'trio us/ev':>12} {'speed-up':>9}")
    for row in rows:
        ref_s = float(row["reference_s"])  # type: ignore[arg-type]
        trio_s = float(row["trio_s"])  # type: ignore[arg-type]
        print(
            f"{row['workload']!s:<18} {ref_s * 1e6:>16.3f} {trio_s * 1e6:>12.3f} {ref_s / trio_s:>8.1f}x"
        )


if __name__ == "__main__":
    main()
