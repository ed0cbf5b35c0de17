"""The legacy StageGraph with its default interceptor chain: stageflow (asyncio) vs stageflow_trio.

Each workload is a linear chain of N no-op stages run by the legacy
``StageGraph`` with the library's default interceptors (idempotency, timeout,
circuit breaker, tracing, metrics, child-tracker metrics, logging). The
reference runs under ``asyncio`` with its own ``PipelineContext``;
stageflow_trio under ``trio``. Timings are interleaved in one process, repeat
by repeat, and measured inside the running event loop (loop start-up is not
counted). Each row is the median CPU seconds per stage over the repeats.

The reference graph appends to ``/tmp/debug_voice_handler.log`` for every
stage (d5); that cost is part of what it does, so it is measured as is.

Run ``python -m benchmarks interceptors`` (add ``--smoke`` for a quick check).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import trio


class _RefNoop:
    async def execute(self, ctx: Any) -> None:
        return None


async def _trio_noop(ctx: Any) -> None:
    return None


def _ids() -> dict[str, Any]:
    return {
        "pipeline_run_id": uuid.UUID(int=1),
        "request_id": uuid.UUID(int=2),
        "session_id": uuid.UUID(int=3),
        "user_id": uuid.UUID(int=4),
        "org_id": uuid.UUID(int=5),
        "interaction_id": uuid.UUID(int=6),
    }


def _names(n: int) -> list[str]:
    return [f"stage_{i}" for i in range(n)]


def _ref_timer(n_stages: int, runs: int) -> Callable[[], float]:
    from stageflow.events.sink import NoOpEventSink
    from stageflow.pipeline.dag import StageGraph, StageSpec
    from stageflow.stages.context import PipelineContext

    names = _names(n_stages)
    # The reference's legacy graph instantiates the runner class, whatever its annotation says.
    runner: Any = _RefNoop
    specs = [
        StageSpec(name=name, runner=runner, dependencies=(names[i - 1],) if i else ())
        for i, name in enumerate(names)
    ]
    graph = StageGraph(specs)

    async def main() -> float:
        start = time.process_time()
        for _ in range(runs):
            ctx = PipelineContext(**_ids(), topology="bench", event_sink=NoOpEventSink())
            await graph.run(ctx)
        return (time.process_time() - start) / (runs * n_stages)

    return lambda: asyncio.run(main())


def _trio_timer(n_stages: int, runs: int) -> Callable[[], float]:
    from stageflow_trio.events.sink import NoOpEventSink
    from stageflow_trio.pipeline.dag import StageGraph, StageSpec
    from stageflow_trio.stages.context import PipelineContext

    names = _names(n_stages)
    specs = [
        StageSpec(name=name, runner=_trio_noop, dependencies=(names[i - 1],) if i else ())
        for i, name in enumerate(names)
    ]
    graph = StageGraph(specs)

    async def main() -> float:
        start = time.process_time()
        for _ in range(runs):
            ctx = PipelineContext(**_ids(), topology="bench", event_sink=NoOpEventSink())
            await graph.run(ctx)
        return (time.process_time() - start) / (runs * n_stages)

    return lambda: trio.run(main)


def run(smoke: bool = False) -> list[dict[str, object]]:
    """Time both libraries, interleaved repeat by repeat.

    Args:
        smoke: A tiny run (3-stage chain, a couple of runs, one repeat).

    Returns:
        One row per workload: ``{"workload", "reference_s", "trio_s"}``, the median
        CPU seconds per stage over the repeats.
    """
    if smoke:
        sizes, runs, repeats = [3], 2, 1
    else:
        sizes, runs, repeats = [1, 10, 50], 40, 9
    rows: list[dict[str, object]] = []
    for n_stages in sizes:
        ref_timer = _ref_timer(n_stages, max(1, runs * 10 // n_stages) if not smoke else runs)
        trio_timer = _trio_timer(n_stages, max(1, runs * 10 // n_stages) if not smoke else runs)
        if not smoke:
            ref_timer()  # warm-up
            trio_timer()
        ref_times: list[float] = []
        trio_times: list[float] = []
        for _ in range(repeats):
            ref_times.append(ref_timer())
            trio_times.append(trio_timer())
        rows.append(
            {
                "workload": f"legacy StageGraph, default interceptors, {n_stages}-stage chain (per stage)",
                "reference_s": statistics.median(ref_times),
                "trio_s": statistics.median(trio_times),
            }
        )
    return rows


if __name__ == "__main__":
    for row in run(smoke="--smoke" in sys.argv):
        ratio = row["trio_s"] / row["reference_s"]  # type: ignore[operator]
        print(
            f"{row['workload']}: reference {row['reference_s'] * 1e6:.1f} us,"  # type: ignore[operator]
            f" trio {row['trio_s'] * 1e6:.1f} us, ratio {ratio:.2f}"  # type: ignore[operator]
        )
