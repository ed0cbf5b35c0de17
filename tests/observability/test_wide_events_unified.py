"""Wide events from UnifiedStageGraph (the reference emits them from the legacy graph only)."""

from __future__ import annotations

import pytest
import trio

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.testing import RecordingEventSink
from tests.pipeline.graph_helpers import RUN_ID, spec, stage_ctx

STAGE_KEYS = {
    "pipeline_run_id",
    "request_id",
    "session_id",
    "user_id",
    "org_id",
    "topology",
    "execution_mode",
    "service",
    "stage",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "error",
    "data_keys",
}


async def test_stage_and_pipeline_wide_events(autojump_clock: trio.abc.Clock) -> None:
    sink = RecordingEventSink()

    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok(zeta=1, alpha=2)

    graph = UnifiedStageGraph(
        [spec("a", slow), spec("b", deps=["a"])],
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    await graph.run(stage_ctx(event_sink=sink))
    stage_events = sink.of_type("stage.wide")
    assert [e["stage"] for e in stage_events if e] == ["a", "b"]
    first = stage_events[0]
    assert first is not None
    assert set(first) == STAGE_KEYS
    assert first["data_keys"] == ["alpha", "zeta"]
    assert first["pipeline_run_id"] == str(RUN_ID)
    assert first["status"] == "completed"
    assert first["service"] == "pipeline"
    [pipeline] = sink.of_type("pipeline.wide")
    assert pipeline is not None
    assert pipeline["pipeline_name"] == "test_topology"
    assert pipeline["status"] == "completed"
    assert pipeline["stage_counts"] == {"completed": 2}
    assert pipeline["duration_ms"] == 1000
    assert [d["stage"] for d in pipeline["stage_details"]] == ["a", "b"]


async def test_pipeline_name_names_the_pipeline_wide_event() -> None:
    sink = RecordingEventSink()
    named = UnifiedStageGraph([spec("a")], pipeline_name="checkout", emit_pipeline_wide_event=True)
    await named.run(stage_ctx(event_sink=sink))
    # Empty means "not given": the context's topology, as without it.
    unnamed = UnifiedStageGraph([spec("a")], pipeline_name="", emit_pipeline_wide_event=True)
    await unnamed.run(stage_ctx(event_sink=sink))
    assert [e["pipeline_name"] for e in sink.of_type("pipeline.wide") if e] == [
        "checkout",
        "test_topology",
    ]
    with pytest.raises(
        TypeError, match=r"^UnifiedStageGraph: pipeline_name must be a str or None; got int$"
    ):
        UnifiedStageGraph([spec("a")], pipeline_name=3)  # type: ignore[arg-type]


async def test_a_failed_run_reports_failed() -> None:
    sink = RecordingEventSink()

    async def boom(ctx: StageContext) -> StageOutput:
        raise ValueError("boom")

    graph = UnifiedStageGraph(
        [spec("ok"), spec("bad", boom, ["ok"])],
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx(event_sink=sink))
    bad = next(e for e in sink.of_type("stage.wide") if e and e["stage"] == "bad")
    assert bad["status"] == "failed"
    assert bad["error"] == "boom"
    [pipeline] = sink.of_type("pipeline.wide")
    assert pipeline is not None
    assert pipeline["status"] == "failed"
    assert pipeline["stage_counts"] == {"completed": 1, "failed": 1}


async def test_a_cancelled_run_reports_cancelled() -> None:
    sink = RecordingEventSink()

    async def stop(ctx: StageContext) -> StageOutput:
        return StageOutput.cancel(reason="enough")

    graph = UnifiedStageGraph([spec("stop", stop)], emit_pipeline_wide_event=True)
    with pytest.raises(UnifiedPipelineCancelled):
        await graph.run(stage_ctx(event_sink=sink))
    assert sink.of_type("stage.wide") == []
    [pipeline] = sink.of_type("pipeline.wide")
    assert pipeline is not None
    assert pipeline["status"] == "cancelled"


async def test_wide_events_are_off_by_default() -> None:
    sink = RecordingEventSink()
    await UnifiedStageGraph([spec("a")]).run(stage_ctx(event_sink=sink))
    assert sink.of_type("stage.wide") == []
    assert sink.of_type("pipeline.wide") == []
