"""Audit 20: an observability callback that raises is logged and never fails the run.

A ``WideEventEmitter`` subclass whose ``emit_stage_event`` / ``emit_pipeline_event``
raises made both graphs' runs fail with its error (the reference 0.9.1's legacy graph
fails too), replacing a stage's error or a cancellation; a ``StageContext`` subclass
whose ``try_emit_event`` raises failed a unified run at ``pipeline_completed``. Each is
now a WARNING naming the event (and the stage) and the error, as a broken sink is, and
the run's outcome is the one a working emitter or context gives.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest
import trio

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.observability.wide_events import WideEventEmitter
from stageflow_trio.pipeline.dag import (
    StageExecutionError,
    StageGraph,
    StageSpec,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import pipeline_context
from tests.pipeline.graph_helpers import spec, stage_ctx

WIDE_LOGGER = "stageflow_trio.wide_events"


class BrokenEmitter(WideEventEmitter):
    """An emitter whose own emit methods raise (a user's subclass with a bug)."""

    def emit_stage_event(self, *, ctx: Any, result: StageResult, extra: Any = None) -> None:
        raise RuntimeError(f"emitter down at {result.name}")

    def emit_pipeline_event(self, **kwargs: Any) -> None:
        raise RuntimeError("emitter down at the run")


class Fatal(BaseException):
    """Not an Exception: must go through the graphs as it is."""


class FatalEmitter(WideEventEmitter):
    def emit_pipeline_event(self, **kwargs: Any) -> None:
        raise Fatal("stop")


def wide_records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, Any, Any, Any]]:
    return [
        (r.levelno, r.getMessage(), getattr(r, "event_type", None), r.stage, r.error)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == WIDE_LOGGER
    ]


def graph_options(emitter: WideEventEmitter) -> dict[str, Any]:
    return {
        "wide_event_emitter": emitter,
        "emit_stage_wide_events": True,
        "emit_pipeline_wide_event": True,
    }


def not_wide(sink: RecordingEventSink) -> list[str]:
    # Sorted: parallel stages may emit in either order.
    return sorted(t for t in sink.types() if not t.endswith(".wide"))


STAGE_DOWN = [
    (
        logging.WARNING,
        f"Failed to emit stage.wide for stage {name}: emitter down at {name}",
        "stage.wide",
        name,
        f"emitter down at {name}",
    )
    for name in ("first", "second", "third")
]
RUN_DOWN = (
    logging.WARNING,
    "Failed to emit pipeline.wide: emitter down at the run",
    "pipeline.wide",
    None,
    "emitter down at the run",
)


# --- legacy StageGraph ---------------------------------------------------------------------


def legacy_stages() -> list[StageSpec]:
    async def ok(ctx: PipelineContext) -> StageOutput:
        return StageOutput.ok(value=1)

    async def bad(ctx: PipelineContext) -> StageOutput:
        return StageOutput.fail(error="nope")

    async def boom(ctx: PipelineContext) -> None:
        raise ValueError("exploded")

    return [
        StageSpec(name="first", runner=ok),
        StageSpec(name="second", runner=bad, dependencies=("first",)),
        StageSpec(name="third", runner=boom, dependencies=("first",)),
    ]


def summary(results: dict[str, StageResult]) -> dict[str, tuple[str, dict[str, Any], Any]]:
    return {name: (r.status, dict(r.data), r.error) for name, r in results.items()}


async def test_legacy_run_with_a_raising_emitter_ends_as_with_a_working_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    working_sink = RecordingEventSink()
    working = await StageGraph(legacy_stages(), **graph_options(WideEventEmitter())).run(
        pipeline_context(event_sink=working_sink)
    )
    assert wide_records(caplog) == []
    sink = RecordingEventSink()
    results = await StageGraph(legacy_stages(), **graph_options(BrokenEmitter())).run(
        pipeline_context(event_sink=sink)
    )
    assert summary(results) == summary(working)
    assert summary(results)["third"] == ("failed", {}, "exploded")
    assert not_wide(sink) == not_wide(working_sink)
    assert sorted(wide_records(caplog), key=str) == sorted([*STAGE_DOWN, RUN_DOWN], key=str)


class Gate(BaseInterceptor):
    """Refuses stage ``third`` with a critical error: the legacy run fails with it."""

    name = "gate"

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        if stage_name == "third":
            raise CriticalInterceptorError("refused", self.name)
        return None

    async def after(self, stage_name: str, result: Any, ctx: PipelineContext) -> None:
        return None


async def test_legacy_stage_error_is_still_the_runs_error(caplog: pytest.LogCaptureFixture) -> None:
    # The failed stage.wide and pipeline.wide of a failed run both raise.
    graph = StageGraph(
        legacy_stages()[::2], interceptors=[Gate()], **graph_options(BrokenEmitter())
    )
    sink = RecordingEventSink()
    with pytest.raises(StageExecutionError) as caught:
        await graph.run(pipeline_context(event_sink=sink))
    assert caught.value.stage == "third"
    assert isinstance(caught.value.original, CriticalInterceptorError)
    assert sink.types()[-1] == "pipeline_failed"
    assert wide_records(caplog) == [STAGE_DOWN[0], STAGE_DOWN[2], RUN_DOWN]


async def test_legacy_run_cancelled_from_outside_stays_cancelled(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def slow(ctx: PipelineContext) -> StageOutput:
        await trio.sleep(10)
        return StageOutput.ok()

    graph = StageGraph([StageSpec(name="slow", runner=slow)], **graph_options(BrokenEmitter()))
    sink = RecordingEventSink()
    with trio.move_on_after(1) as scope:
        await graph.run(pipeline_context(event_sink=sink))
    assert scope.cancelled_caught
    assert "pipeline_cancelled" in sink.types()
    assert wide_records(caplog) == [RUN_DOWN]


async def test_legacy_emitter_base_exception_is_not_swallowed() -> None:
    graph = StageGraph(legacy_stages()[:1], **graph_options(FatalEmitter()))
    with pytest.raises(Fatal):
        await graph.run(pipeline_context())


# --- UnifiedStageGraph ---------------------------------------------------------------------


async def test_unified_run_with_a_raising_emitter_ends_as_with_a_working_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def skip(ctx: StageContext) -> StageOutput:
        return StageOutput.skip(reason="not today")

    def stages() -> list[Any]:
        return [spec("first"), spec("second", skip, deps=["first"]), spec("third", deps=["first"])]

    working_sink = RecordingEventSink()
    working = await UnifiedStageGraph(stages(), **graph_options(WideEventEmitter())).run(
        stage_ctx(event_sink=working_sink)
    )
    assert wide_records(caplog) == []
    sink = RecordingEventSink()
    results = await UnifiedStageGraph(stages(), **graph_options(BrokenEmitter())).run(
        stage_ctx(event_sink=sink)
    )
    assert {n: (o.status, dict(o.data)) for n, o in results.items()} == {
        n: (o.status, dict(o.data)) for n, o in working.items()
    }
    assert not_wide(sink) == not_wide(working_sink)
    assert sorted(wide_records(caplog), key=str) == sorted([*STAGE_DOWN, RUN_DOWN], key=str)


async def test_unified_stage_error_is_still_the_runs_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def boom(ctx: StageContext) -> StageOutput:
        raise ValueError("exploded")

    graph = UnifiedStageGraph([spec("third", boom)], **graph_options(BrokenEmitter()))
    sink = RecordingEventSink()
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await graph.run(stage_ctx(event_sink=sink))
    assert caught.value.stage == "third"
    assert isinstance(caught.value.original, ValueError)
    assert sink.types()[-1] == "pipeline_failed"
    assert wide_records(caplog) == [STAGE_DOWN[2], RUN_DOWN]


async def test_unified_cancel_by_a_stage_is_still_the_runs_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def stop(ctx: StageContext) -> StageOutput:
        return StageOutput.cancel(reason="enough")

    graph = UnifiedStageGraph([spec("first", stop)], **graph_options(BrokenEmitter()))
    with pytest.raises(UnifiedPipelineCancelled):
        await graph.run(stage_ctx(event_sink=RecordingEventSink()))
    assert [r[1] for r in wide_records(caplog)] == [
        "Failed to emit stage.wide for stage first: emitter down at first",
        "Failed to emit pipeline.wide: emitter down at the run",
    ]


async def test_unified_run_cancelled_from_outside_stays_cancelled(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(10)
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("slow", slow)], **graph_options(BrokenEmitter()))
    sink = RecordingEventSink()
    with trio.move_on_after(1) as scope:
        await graph.run(stage_ctx(event_sink=sink))
    assert scope.cancelled_caught
    assert "pipeline_cancelled" in sink.types()
    assert wide_records(caplog) == [RUN_DOWN]


async def test_unified_emitter_base_exception_is_not_swallowed() -> None:
    graph = UnifiedStageGraph([spec("first")], **graph_options(FatalEmitter()))
    with pytest.raises(Fatal):
        await graph.run(stage_ctx())


async def test_the_log_names_the_emitters_own_event_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = BrokenEmitter(stage_event_type="audit.stage", pipeline_event_type="audit.run")
    await UnifiedStageGraph([spec("first")], **graph_options(emitter)).run(stage_ctx())
    assert [(r[1], r[2]) for r in wide_records(caplog)] == [
        ("Failed to emit audit.stage for stage first: emitter down at first", "audit.stage"),
        ("Failed to emit audit.run: emitter down at the run", "audit.run"),
    ]


# --- a context class's own try_emit_event --------------------------------------------------


@attrs.frozen
class LoudContext(StageContext):
    """A StageContext whose own try_emit_event raises (a user's subclass with a bug)."""

    def try_emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        raise RuntimeError(f"context down at {type}")


async def test_unified_run_survives_a_context_whose_try_emit_event_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    base = stage_ctx(event_sink=RecordingEventSink())
    ctx = LoudContext(
        snapshot=base.snapshot,
        inputs=base.inputs,
        stage_name="pipeline",
        timer=base.timer,
        event_sink=base.event_sink,
    )
    results = await UnifiedStageGraph([spec("first")]).run(ctx)
    assert {n: dict(o.data) for n, o in results.items()} == {"first": {"stage": "first"}}
    assert [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == "stageflow_trio.dag"
    ] == [
        (
            logging.WARNING,
            "Failed to emit event pipeline_completed: context down at pipeline_completed",
        )
    ]
