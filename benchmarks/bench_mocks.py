"""MockLLMProvider streaming: stageflow 0.9.1 under asyncio vs stageflow_trio under trio.

Workload (seconds per chunk, median over repeats, the two libraries interleaved in one
process so that machine noise hits both alike):

- ``mock_llm_stream_1000_chunks``: ``async for`` over ``MockLLMProvider.stream`` of a
  1,000-character answer with ``chunk_size=1``, i.e. 1,000 chunks.

Both streams sleep 10 ms between chunks, so in real time each takes 10 s whatever the
library. The sleeps run in virtual time instead, which leaves the cost of the streaming
machinery itself. Each library gets a clock that jumps to the next timer whenever the
loop would block: asyncio an event loop with such a clock (``_FastForwardLoop``), trio a
``trio.abc.Clock`` doing the same (``_FastForwardClock``).

A baseline row, ``sleep_10ms_loop``, times a bare loop of the same sleeps
(``asyncio.sleep(0.01)`` vs ``trio.sleep(0.01)``) on the same clocks: the stream costs
what its sleeps cost, so this row bounds the stream's ratio.

Another row, ``..._mockclock``, runs the trio side on ``trio.testing.MockClock(
autojump_threshold=0)`` instead, the clock tests use: its autojump goes through trio's
"all tasks blocked" machinery, which costs about 60 us per sleep on its own.

The ``..._real_clock`` row streams 200 chunks on the real clock, the rate a consumer
sees: both libraries sleep 10 ms a chunk, and each sleep overshoots a little (timer
slack and the loop's own work), so the row compares the whole period per chunk.

Run: ``python benchmarks/bench_mocks.py`` (add ``--smoke`` for a tiny run).
"""

from __future__ import annotations

import asyncio
import math
import selectors
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import trio
import trio.testing

from stageflow_trio.helpers.mocks import MockLLMProvider

FULL_N = 1_000
SMOKE_N = 20
FULL_REPEATS = 7


class _FastForwardSelector(selectors.DefaultSelector):
    """Never blocks: a select that would wait ``timeout`` seconds moves the loop's clock instead."""

    def __init__(self, loop_clock: list[float]) -> None:
        super().__init__()
        self._clock = loop_clock

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout:
            self._clock[0] += timeout
        return list(super().select(0))


class _FastForwardLoop(asyncio.SelectorEventLoop):
    """An asyncio loop in virtual time, asyncio's counterpart of an autojump MockClock."""

    def __init__(self) -> None:
        self._virtual = [0.0]
        super().__init__(selector=_FastForwardSelector(self._virtual))

    def time(self) -> float:
        return self._virtual[0]


class _FastForwardClock(trio.abc.Clock):
    """trio's counterpart of ``_FastForwardLoop``: idle waits move the clock, not time."""

    def __init__(self) -> None:
        self._now = 0.0

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        # trio asks only when no task can run: jump to the next deadline at once.
        if deadline == math.inf:
            return math.inf
        self._now = max(self._now, deadline)
        return 0.0


async def _consume(llm: Any) -> float:
    start = time.perf_counter()
    count = 0
    async for _ in llm.stream("prompt", chunk_size=1):
        count += 1
    elapsed = time.perf_counter() - start
    return elapsed / count


async def _asyncio_sleeps(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await asyncio.sleep(0.01)
    return (time.perf_counter() - start) / n


async def _trio_sleeps(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await trio.sleep(0.01)
    return (time.perf_counter() - start) / n


def _run_asyncio(coro: Coroutine[Any, Any, float]) -> float:
    with asyncio.Runner(loop_factory=_FastForwardLoop) as runner:
        return runner.run(coro)


def _reference_run(n: int) -> Callable[[], float]:
    from stageflow.helpers import mocks as ref

    def run() -> float:
        return _run_asyncio(_consume(ref.MockLLMProvider(responses=["x" * n])))

    return run


def _trio_run(n: int, make_clock: Callable[[], trio.abc.Clock]) -> Callable[[], float]:
    def run() -> float:
        llm = MockLLMProvider(responses=["x" * n])
        return trio.run(_consume, llm, clock=make_clock())

    return run


def _mock_clock() -> trio.abc.Clock:
    return trio.testing.MockClock(autojump_threshold=0)


REAL_N = 200
SMOKE_REAL_N = 5
REAL_REPEATS = 3


def _reference_real(n: int) -> Callable[[], float]:
    from stageflow.helpers import mocks as ref

    def run() -> float:
        return asyncio.run(_consume(ref.MockLLMProvider(responses=["x" * n])))

    return run


def _trio_real(n: int) -> Callable[[], float]:
    def run() -> float:
        return trio.run(_consume, MockLLMProvider(responses=["x" * n]))

    return run


def _real_clock_row(smoke: bool) -> dict[str, object]:
    """Seconds per chunk on the real clock (median of a few alternating runs)."""
    n = SMOKE_REAL_N if smoke else REAL_N
    ref_times: list[float] = []
    trio_times: list[float] = []
    for repeat in range(1 if smoke else REAL_REPEATS):
        runs = [(ref_times, _reference_real(n)), (trio_times, _trio_real(n))]
        for times, run_once in runs[:: -1 if repeat % 2 else 1]:
            times.append(run_once())
    return {
        "workload": f"mock_llm_stream_{n}_chunks_real_clock",
        "reference_s": statistics.median(ref_times),
        "trio_s": statistics.median(trio_times),
        "note": "per chunk on the real clock (10 ms sleeps): the rate a consumer sees",
    }


def run(smoke: bool = False) -> list[dict[str, object]]:
    """Measure the workload; return ``{"workload", "reference_s", "trio_s", "note"}`` rows.

    Times are seconds per chunk (median over repeats). ``smoke`` runs a tiny size once.
    """
    n = SMOKE_N if smoke else FULL_N
    repeats = 1 if smoke else FULL_REPEATS
    workloads: dict[str, tuple[Callable[[], float], Callable[[], float], str]] = {
        f"mock_llm_stream_{n}_chunks": (
            _reference_run(n),
            _trio_run(n, _FastForwardClock),
            "per chunk; both on a fast-forward clock",
        ),
        f"mock_llm_stream_{n}_chunks_mockclock": (
            _reference_run(n),
            _trio_run(n, _mock_clock),
            "per chunk; trio on MockClock(autojump_threshold=0)",
        ),
        "sleep_10ms_loop": (
            lambda: _run_asyncio(_asyncio_sleeps(n)),
            lambda: trio.run(_trio_sleeps, n, clock=_FastForwardClock()),
            "baseline: a bare loop of the same sleeps, per sleep",
        ),
    }
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in workloads}
    for repeat in range(repeats):
        for name, (reference, ours, _) in workloads.items():
            ref_times, trio_times = samples[name]
            # Alternate which library goes first so warm-up effects do not favour one.
            if repeat % 2:
                trio_times.append(ours())
                ref_times.append(reference())
            else:
                ref_times.append(reference())
                trio_times.append(ours())
    rows: list[dict[str, object]] = [
        {
            "workload": name,
            "reference_s": statistics.median(ref_times),
            "trio_s": statistics.median(trio_times),
            "note": workloads[name][2],
        }
        for name, (ref_times, trio_times) in samples.items()
    ]
    rows.append(_real_clock_row(smoke))
    return rows


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
