"""Regressions found by the engine fuzz (test_audit13_engine_fuzz.py)."""

from __future__ import annotations

import math

import pytest
import trio

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.lowlevel import checkpoint_budget, cooperative_checkpoint
from stageflow_trio.pipeline.dag import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.testing import RecordingEventSink
from tests.pipeline.graph_helpers import spec, stage_ctx


async def test_the_first_stage_to_cancel_the_run_is_the_one_it_names(
    autojump_clock: trio.abc.Clock,
) -> None:
    # "first" runs in the nursery's body and stops the run; the tasks of "second"
    # and "slow" were spawned before it, and step only afterwards. The run was
    # stopped by "first": it is the one the exception and pipeline_cancelled name
    # (they named "second", whose cancel came last), and no stage starts after the
    # stop, so "second" and "slow" never start (no event of theirs).
    async def first(ctx: StageContext) -> StageOutput:
        return StageOutput.cancel(reason="first says stop")

    async def second(ctx: StageContext) -> StageOutput:
        return StageOutput.cancel(reason="second says stop")

    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok()

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("first", first), spec("second", second), spec("slow", slow)])
    with pytest.raises(UnifiedPipelineCancelled) as info:
        await graph.run(stage_ctx(event_sink=sink))
    assert (info.value.stage, info.value.reason) == ("first", "first says stop")
    assert [t for t in sink.types() if t.startswith("stage.")] == [
        "stage.first.started",
        "stage.first.completed",
    ]
    (ended,) = sink.of_type("pipeline_cancelled")
    assert ended is not None
    assert (ended["stage"], ended["reason"]) == ("first", "first says stop")
    assert trio.current_time() == 0


async def test_a_stage_spawned_before_the_run_stopped_does_not_start(
    autojump_clock: trio.abc.Clock,
) -> None:
    # "a" makes "x" and "y" ready: "y" gets a task, "x" runs at once and cancels the
    # run before "y"'s task steps. A stage that never awaits would otherwise run to
    # its end (started, completed) after the run had stopped.
    ran: list[str] = []

    async def a(ctx: StageContext) -> StageOutput:
        await trio.lowlevel.checkpoint()
        return StageOutput.ok()

    async def x(ctx: StageContext) -> StageOutput:
        ran.append("x")
        return StageOutput.cancel(reason="x says stop")

    async def y(ctx: StageContext) -> StageOutput:
        ran.append("y")
        return StageOutput.ok()

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("a", a), spec("x", x, deps=["a"]), spec("y", y, deps=["a"])])
    # A budget with no schedule point due between "a" and "x": "x" runs before
    # "y"'s task steps.
    with checkpoint_budget(calls=1000, seconds=math.inf):
        await cooperative_checkpoint()  # the fresh budget's schedule point
        with pytest.raises(UnifiedPipelineCancelled) as info:
            await graph.run(stage_ctx(event_sink=sink))
    assert (info.value.stage, ran) == ("x", ["x"])
    assert not [t for t in sink.types() if t.startswith("stage.y.")]
    assert sink.types()[-1] == "pipeline_cancelled"


async def test_a_later_cancel_from_a_shielded_stage_does_not_replace_the_first(
    autojump_clock: trio.abc.Clock,
) -> None:
    # "second" finishes its work shielded, so it returns its own cancel after
    # "first" has stopped the run: the run still reports "first".
    async def first(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.5)
        return StageOutput.cancel(reason="first says stop")

    async def second(ctx: StageContext) -> StageOutput:
        with trio.CancelScope(shield=True):
            await trio.sleep(1)
        return StageOutput.cancel(reason="second says stop")

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("first", first), spec("second", second)])
    with pytest.raises(UnifiedPipelineCancelled) as info:
        await graph.run(stage_ctx(event_sink=sink))
    assert (info.value.stage, info.value.reason) == ("first", "first says stop")
    (ended,) = sink.of_type("pipeline_cancelled")
    assert ended is not None
    assert (ended["stage"], ended["reason"]) == ("first", "first says stop")
    assert trio.current_time() == 1


async def test_a_failure_after_a_cancel_is_what_the_run_reports(
    autojump_clock: trio.abc.Clock,
) -> None:
    # docs/engine.md: a stage that fails while the run is being cancelled (its work
    # shielded) is what the run reports, not the earlier cancel.
    async def first(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.5)
        return StageOutput.cancel(reason="stop")

    async def second(ctx: StageContext) -> StageOutput:
        with trio.CancelScope(shield=True):
            await trio.sleep(1)
        raise ValueError("late failure")

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("first", first), spec("second", second)])
    with pytest.raises(UnifiedStageExecutionError, match="late failure") as info:
        await graph.run(stage_ctx(event_sink=sink))
    assert info.value.stage == "second"
    assert [t for t in sink.types() if not t.startswith("stage.")] == ["pipeline_failed"]
