"""The cancellation explorer's cost on the realistic 5-stage pipeline (stageflow_trio only).

Workloads, each the median over rounds, measured on a virtual clock
(``MockClock(autojump_threshold=0)``) as a test would run them:

    explore: one ``explore_cancellation`` of the realistic pipeline of
        ``bench_engine`` (guard, two parallel enrich, transform, work; each stage
        yields once), with the default invariants and a recording sink per run.
        Reported per checkpoint explored (each is one cancelled rerun plus the
        invariant checks); the note gives checkpoints explored per second.
        Explorations and plain runs alternate round by round; the ratio is the
        median of the rounds' ratios.
    plain run: the same run without the explorer, under ``checkpoint_budget(calls=1)``
        (the explorer's scheduling), with a fresh context and sink per run: what
        each explored checkpoint would cost with no instrument and no checks.

The reference has no explorer, so there is no reference column.
Run: ``python -m benchmarks explore`` (``--smoke`` for a quick pass).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import trio
import trio.testing

from benchmarks.bench_engine import OURS, REALISTIC, _realistic_runners
from stageflow_trio.lowlevel import checkpoint_budget
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_stage_context,
    current_run,
    explore_cancellation,
)

Row = dict[str, object]


def _graph() -> Any:
    return OURS.graph(REALISTIC, _realistic_runners(OURS))


def _explore_once() -> tuple[float, int]:
    """Seconds for one exploration, and how many checkpoints it explored."""
    graph = _graph()

    async def run() -> Any:
        return await graph.run(create_test_stage_context(event_sink=current_run().sink))

    async def main() -> tuple[float, int]:
        start = time.perf_counter()
        report = await explore_cancellation(run)
        return time.perf_counter() - start, len(report.explored)

    result: tuple[float, int] = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return result


def _plain_runs(reps: int) -> float:
    """Seconds per plain run (a new context and recording sink each time)."""
    graph = _graph()

    async def main() -> float:
        with checkpoint_budget(calls=1):
            start = time.perf_counter()
            for _ in range(reps):
                await graph.run(create_test_stage_context(event_sink=RecordingEventSink()))
            return (time.perf_counter() - start) / reps

    seconds: float = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return seconds


def run(smoke: bool) -> list[Row]:
    rounds = 1 if smoke else 15
    reps = 2 if smoke else 100
    per_checkpoint: list[float] = []
    plain: list[float] = []
    checkpoints = 0
    for _ in range(rounds):  # interleaved, so a load swing hits both alike
        seconds, checkpoints = _explore_once()
        per_checkpoint.append(seconds / checkpoints)
        plain.append(_plain_runs(reps))
    ratio = statistics.median(e / p for e, p in zip(per_checkpoint, plain, strict=True))
    explored = statistics.median(per_checkpoint)
    return [
        {
            "workload": "explore_cancellation, realistic 5-stage (per checkpoint explored)",
            "reference_s": None,
            "trio_s": explored,
            "note": f"{checkpoints} checkpoints, {1 / explored:,.0f} checkpoints/s",
        },
        {
            "workload": "realistic 5-stage plain run, checkpoint_budget(calls=1) (per run)",
            "reference_s": None,
            "trio_s": statistics.median(plain),
            "note": f"explored checkpoint / plain run = {ratio:.2f} (median of rounds)",
        },
    ]
