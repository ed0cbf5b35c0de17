"""A stage that opens its own nursery still ends with ``stage.X.cancelled`` when interrupted.

Interrupted, such a stage raises a ``BaseExceptionGroup`` of ``trio.Cancelled`` (the
nursery's tasks' and its body's), not a bare ``Cancelled``; both graphs must still
report the stage as cancelled, with the reason, and let the cancellation propagate.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline, StageGraph, StageSpec, UnifiedStageExecutionError
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
)
from tests.fakes import payload


async def two_sleepers() -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 10)
        nursery.start_soon(trio.sleep, 10)
        await trio.sleep(10)


async def test_unified_graph(autojump_clock: trio.abc.Clock) -> None:
    async def fan_out(ctx: StageContext) -> StageOutput:
        await two_sleepers()
        return StageOutput.ok()

    sink = RecordingEventSink()
    graph = Pipeline().with_stage("fan_out", fan_out, StageKind.WORK).build()
    with trio.move_on_after(2) as scope:
        await graph.run(create_test_stage_context(event_sink=sink))
    assert scope.cancelled_caught
    assert sink.types() == [
        "stage.fan_out.started",
        "stage.fan_out.cancelled",
        "pipeline_cancelled",
    ]
    data = payload(sink.of_type("stage.fan_out.cancelled")[0])
    assert (data["duration_ms"], data["reason"]) == (2000, "deadline exceeded")


async def test_legacy_graph(autojump_clock: trio.abc.Clock) -> None:
    async def fan_out(ctx: PipelineContext) -> dict[str, Any]:
        await two_sleepers()
        return {}

    sink = RecordingEventSink()
    graph = StageGraph([StageSpec(name="fan_out", runner=fan_out)], interceptors=[])
    with trio.move_on_after(3) as scope:
        await graph.run(create_test_pipeline_context(event_sink=sink))
    assert scope.cancelled_caught
    assert sink.types() == [
        "stage.fan_out.started",
        "stage.fan_out.cancelled",
        "pipeline_cancelled",
    ]
    data = payload(sink.of_type("stage.fan_out.cancelled")[0])
    assert (data["duration_ms"], data["reason"]) == (3000, "deadline exceeded")


async def test_a_group_with_an_error_is_still_a_failure(autojump_clock: trio.abc.Clock) -> None:
    """An error raised among the cancellations fails the stage as before (no cancelled event)."""

    async def broken(ctx: StageContext) -> StageOutput:
        async def boom() -> None:
            raise KeyError("boom")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(boom)
            await trio.sleep(10)
        return StageOutput.ok()

    sink = RecordingEventSink()
    graph = Pipeline().with_stage("broken", broken, StageKind.WORK).build()
    with pytest.raises(
        UnifiedStageExecutionError,
        match=r"^Stage 'broken' failed: Exceptions from Trio nursery \(1 sub-exception\)$",
    ):
        await graph.run(create_test_stage_context(event_sink=sink))
    assert "stage.broken.cancelled" not in sink.types()
    assert "stage.broken.failed" in sink.types()


@pytest.mark.parametrize("legacy", [False, True])
async def test_a_keyboard_interrupt_in_a_group_is_not_a_cancellation(legacy: bool) -> None:
    async def interrupt() -> None:
        raise KeyboardInterrupt

    async def stopped() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(interrupt)
            await trio.sleep_forever()

    sink = RecordingEventSink()
    if legacy:

        async def legacy_stage(ctx: PipelineContext) -> dict[str, Any]:
            await stopped()
            return {}

        graph = StageGraph([StageSpec(name="s", runner=legacy_stage)], interceptors=[])
        with pytest.raises(KeyboardInterrupt):
            await graph.run(create_test_pipeline_context(event_sink=sink))
    else:

        async def stage(ctx: StageContext) -> StageOutput:
            await stopped()
            return StageOutput.ok()

        unified = Pipeline().with_stage("s", stage, StageKind.WORK).build()
        with pytest.raises(KeyboardInterrupt):
            await unified.run(create_test_stage_context(event_sink=sink))
    assert sink.types()[0] == "stage.s.started"
    assert "stage.s.cancelled" not in sink.types()


async def cleanup_that_raises_while_cancelled() -> None:
    """Interrupted, the stage's nursery raises a group of a Cancelled and a ValueError."""

    async def cleanup_fails() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise ValueError("cleanup broke")  # the bug under test

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cleanup_fails)
        await trio.sleep_forever()


@pytest.mark.parametrize("legacy", [False, True])
async def test_an_error_among_the_cancellations_ends_the_stage_failed(
    legacy: bool, autojump_clock: trio.abc.Clock
) -> None:
    # The group holds a Cancelled and the cleanup's ValueError: the ValueError is the
    # stage's error, as it would be for the same stage without a nursery (audit 15:
    # the bare ValueError used to escape the graph), and the stage gets its
    # terminal event.
    sink = RecordingEventSink()
    if legacy:

        async def legacy_stage(ctx: PipelineContext) -> dict[str, Any]:
            await cleanup_that_raises_while_cancelled()
            return {}

        graph = StageGraph([StageSpec(name="s", runner=legacy_stage)], interceptors=[])
        with trio.move_on_after(2):
            results = await graph.run(create_test_pipeline_context(event_sink=sink))
        # A legacy stage's error is its failed result; the run goes on and returns.
        assert (results["s"].status, results["s"].error) == ("failed", "cleanup broke")
    else:

        async def stage(ctx: StageContext) -> StageOutput:
            await cleanup_that_raises_while_cancelled()
            return StageOutput.ok()

        unified = Pipeline().with_stage("s", stage, StageKind.WORK).build()
        with (
            pytest.raises(UnifiedStageExecutionError, match=r"^Stage 's' failed: cleanup broke$"),
            trio.move_on_after(2),
        ):
            await unified.run(create_test_stage_context(event_sink=sink))
    stage_events = [t for t in sink.types() if t.startswith("stage.")]
    assert stage_events == ["stage.s.started", "stage.s.failed"]
    data = payload(sink.of_type("stage.s.failed")[0])
    assert (data["duration_ms"], data["error"]) == (2000, "cleanup broke")
