"""A run's engine work does not grow with the runs in flight (docs/performance.md, round 17).

At 1,000 runs at once a realistic run executes as many instructions as one run at
a time (counted with callgrind): what it costs more there is memory and the garbage
collector, as for the reference. This test holds the engine's part of that where a
test can count it: the lines of stageflow_trio executed per run, with a sink that
keeps every event, are the same one run at a time and with many runs of one graph
in flight (a Python loop over the runs in flight would add lines per run with their
number). Every budgeted call is a full checkpoint here, so the count does not depend
on the checkpoint budget's real-time trigger.
"""

from __future__ import annotations

import sys
import types
import uuid
from pathlib import Path
from typing import Any

import trio

import stageflow_trio
from stageflow_trio._budget import checkpoint_budget
from stageflow_trio.context import ContextSnapshot
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.core import PipelineTimer, StageContext, StageKind, StageOutput
from stageflow_trio.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec
from stageflow_trio.stages.inputs import StageInputs

_PACKAGE = str(Path(stageflow_trio.__file__).parent)


class _Collector:
    """Keeps every event, as the benchmark's sink does."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))


async def _stage(ctx: StageContext) -> StageOutput:
    await trio.lowlevel.checkpoint()
    return StageOutput.ok(value=1)


def _realistic() -> UnifiedStageGraph:
    """The benchmark's shape: guard, two enrichers at once, transform, work."""
    return UnifiedStageGraph(
        [
            UnifiedStageSpec(name="guard", runner=_stage, kind=StageKind.GUARD),
            UnifiedStageSpec(
                name="profile", runner=_stage, kind=StageKind.ENRICH, dependencies=("guard",)
            ),
            UnifiedStageSpec(
                name="memory", runner=_stage, kind=StageKind.ENRICH, dependencies=("guard",)
            ),
            UnifiedStageSpec(
                name="transform",
                runner=_stage,
                kind=StageKind.TRANSFORM,
                dependencies=("profile", "memory"),
            ),
            UnifiedStageSpec(
                name="work", runner=_stage, kind=StageKind.WORK, dependencies=("transform",)
            ),
        ]
    )


def _context(sink: _Collector) -> StageContext:
    identity = RunIdentity(pipeline_run_id=uuid.UUID(int=1), request_id=uuid.UUID(int=2))
    snapshot: ContextSnapshot[Any] = ContextSnapshot(
        run_id=identity, topology="t", execution_mode="m"
    )
    return StageContext(
        snapshot=snapshot,
        inputs=StageInputs(snapshot=snapshot),
        stage_name="root",
        timer=PipelineTimer(),
        event_sink=sink,
    )


async def _lines_per_run(in_flight: int, batches: int) -> float:
    """Lines of the package executed per run, ``batches`` times ``in_flight`` runs at once."""
    graph = _realistic()
    sink = _Collector()
    ctx = _context(sink)
    await graph.run(ctx)  # warm up: caches, the run's templates' strings
    lines = 0

    def count(frame: types.FrameType, event: str, arg: object) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
        return count

    def trace(frame: types.FrameType, event: str, arg: object) -> Any:
        # Called as each frame starts or resumes: only the package's lines count.
        return count if frame.f_code.co_filename.startswith(_PACKAGE) else None

    with checkpoint_budget(calls=1):
        previous = sys.gettrace()  # a coverage tracer, say: put back afterwards
        sys.settrace(trace)
        try:
            for _ in range(batches):
                async with trio.open_nursery() as nursery:
                    for _ in range(in_flight):
                        nursery.start_soon(graph.run, ctx)
        finally:
            sys.settrace(previous)
    assert len(sink.events) == 11 * (in_flight * batches + 1)
    return lines / (in_flight * batches)


async def test_engine_lines_per_run_do_not_grow_with_runs_in_flight() -> None:
    one_at_a_time = await _lines_per_run(1, 100)
    many = await _lines_per_run(400, 1)
    # trio orders each batch of ready tasks at random, which decides in which task
    # transform and work run (the first root's steps pass through run_in_context):
    # a few lines either way. A loop over the runs in flight would add hundreds.
    assert abs(many - one_at_a_time) <= 0.02 * one_at_a_time, (one_at_a_time, many)
