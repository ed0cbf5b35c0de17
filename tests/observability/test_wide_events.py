"""Wide events: golden ``stage.wide`` / ``pipeline.wide`` payloads, emitter, graphs, reference."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.observability.wide_events import (
    WideEventEmitter,
    emit_pipeline_wide_event,
    emit_stage_wide_event,
)
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageGraph
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import RefRecorder, TryEmitOnlySink, pipeline_context
from tests.pipeline.graph_helpers import spec, stage_ctx

RUN_ID = uuid.UUID("44444444-4444-4444-8444-444444444444")
REQUEST_ID = uuid.UUID("55555555-5555-4555-8555-555555555555")
USER_ID = uuid.UUID("66666666-6666-4666-8666-666666666666")
T0 = datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)

CONTEXT_KEYS = [
    "pipeline_run_id",
    "request_id",
    "session_id",
    "user_id",
    "org_id",
    "topology",
    "execution_mode",
    "service",
]
SUMMARY_KEYS = [
    "stage",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "error",
    "data_keys",
]
STAGE_WIDE_KEYS = CONTEXT_KEYS + SUMMARY_KEYS
PIPELINE_WIDE_KEYS = [
    *CONTEXT_KEYS,
    "pipeline_name",
    "status",
    "duration_ms",
    "stage_counts",
    "stage_details",
]


def make_ctx(sink: Any = None, *, topology: str | None = "chat_fast") -> PipelineContext:
    return pipeline_context(
        pipeline_run_id=RUN_ID,
        request_id=REQUEST_ID,
        user_id=USER_ID,
        topology=topology,
        execution_mode="practice",
        service="chat",
        event_sink=sink,
    )


def result(
    name: str = "s",
    status: Any = "completed",
    *,
    ms: int = 250,
    data: dict[str, Any] | None = None,
    error: str | None = None,
) -> StageResult:
    return StageResult(
        name=name,
        status=status,
        started_at=T0,
        ended_at=T0 + timedelta(milliseconds=ms),
        data=data or {},
        error=error,
    )


def assert_str_or_null(payload: dict[str, Any], keys: list[str]) -> None:
    for key in keys:
        assert payload[key] is None or isinstance(payload[key], str), key


def assert_summary(summary: dict[str, Any]) -> None:
    assert list(summary) == SUMMARY_KEYS
    assert isinstance(summary["stage"], str)
    assert summary["status"] in ("completed", "failed")
    for key in ("started_at", "ended_at"):
        parsed = datetime.fromisoformat(summary[key])
        assert parsed.tzinfo is not None
        assert parsed.isoformat() == summary[key]
    assert isinstance(summary["duration_ms"], int)
    assert summary["error"] is None or isinstance(summary["error"], str)
    assert summary["data_keys"] == sorted(summary["data_keys"])


# --- stage.wide ---------------------------------------------------------------------------


def test_stage_payload_is_golden() -> None:
    payload = WideEventEmitter.build_stage_payload(
        ctx=make_ctx(), result=result(data={"zeta": 1, "alpha": 2, "mid": 3})
    )
    assert payload == {
        "pipeline_run_id": str(RUN_ID),
        "request_id": str(REQUEST_ID),
        "session_id": None,
        "user_id": str(USER_ID),
        "org_id": None,
        "topology": "chat_fast",
        "execution_mode": "practice",
        "service": "chat",
        "stage": "s",
        "status": "completed",
        "started_at": "2026-01-02T03:04:05.123000+00:00",
        "ended_at": "2026-01-02T03:04:05.373000+00:00",
        "duration_ms": 250,
        "error": None,
        "data_keys": ["alpha", "mid", "zeta"],
    }
    assert list(payload) == STAGE_WIDE_KEYS
    assert_str_or_null(payload, CONTEXT_KEYS[:5])
    assert_summary({key: payload[key] for key in SUMMARY_KEYS})


def test_stage_payload_carries_the_error_and_extra() -> None:
    extra = {"attempt": 2, "region": "eu"}
    payload = WideEventEmitter.build_stage_payload(
        ctx=make_ctx(), result=result(status="failed", error="boom"), extra=extra
    )
    assert payload["status"] == "failed"
    assert payload["error"] == "boom"
    assert payload["extra"] == extra
    assert payload["extra"] is not extra
    assert list(payload) == [*STAGE_WIDE_KEYS, "extra"]


def test_empty_extra_adds_no_key() -> None:
    payload = WideEventEmitter.build_stage_payload(ctx=make_ctx(), result=result(), extra={})
    assert "extra" not in payload


def test_ids_are_null_when_unset() -> None:
    ctx = pipeline_context(topology=None, execution_mode=None)
    payload = WideEventEmitter.build_stage_payload(ctx=ctx, result=result())
    assert [payload[key] for key in CONTEXT_KEYS] == [
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        "pipeline",
    ]


@given(st.dictionaries(st.text(max_size=8), st.integers(), max_size=12))
def test_data_keys_are_always_sorted(data: dict[str, int]) -> None:
    payload = WideEventEmitter.build_stage_payload(ctx=make_ctx(), result=result(data=data))
    assert payload["data_keys"] == sorted(data)


def test_emit_stage_event_goes_through_try_emit() -> None:
    sink = TryEmitOnlySink()
    ctx = make_ctx(sink)
    WideEventEmitter().emit_stage_event(ctx=ctx, result=result())
    assert [t for t, _ in sink.events] == ["stage.wide"]
    assert sink.events[0][1] == WideEventEmitter.build_stage_payload(ctx=ctx, result=result())


def test_emitter_event_types_can_be_renamed() -> None:
    sink = RecordingEventSink()
    emitter = WideEventEmitter(stage_event_type="custom.stage", pipeline_event_type="custom.run")
    ctx = make_ctx(sink)
    emitter.emit_stage_event(ctx=ctx, result=result())
    emitter.emit_pipeline_event(ctx=ctx, stage_results={"s": result()})
    assert sink.types() == ["custom.stage", "custom.run"]


def test_module_functions_use_a_default_or_the_given_emitter() -> None:
    sink = RecordingEventSink()
    ctx = make_ctx(sink)
    emit_stage_wide_event(ctx=ctx, result=result(), extra={"k": 1})
    emit_pipeline_wide_event(ctx=ctx, stage_results={"s": result()}, duration_ms=7, extra={"k": 2})
    custom = WideEventEmitter(stage_event_type="x.stage", pipeline_event_type="x.run")
    emit_stage_wide_event(ctx=ctx, result=result(), emitter=custom)
    emit_pipeline_wide_event(ctx=ctx, stage_results={}, emitter=custom)
    assert sink.types() == ["stage.wide", "pipeline.wide", "x.stage", "x.run"]
    stage_payload = sink.of_type("stage.wide")[0]
    assert stage_payload is not None
    assert stage_payload["extra"] == {"k": 1}
    run_payload = sink.of_type("pipeline.wide")[0]
    assert run_payload is not None
    assert run_payload["duration_ms"] == 7
    assert run_payload["extra"] == {"k": 2}


# --- pipeline.wide ------------------------------------------------------------------------


def test_pipeline_payload_is_golden() -> None:
    results = {
        "a": result("a", data={"b": 1, "a": 2}),
        "b": result("b", status="failed", error="bad", ms=10),
        "c": result("c", ms=0),
    }
    payload = WideEventEmitter.build_pipeline_payload(
        ctx=make_ctx(), stage_results=results, duration_ms=1234
    )
    assert list(payload) == PIPELINE_WIDE_KEYS
    assert payload["pipeline_name"] == "chat_fast"
    assert payload["status"] == "failed"
    assert payload["duration_ms"] == 1234
    assert payload["stage_counts"] == {"completed": 2, "failed": 1}
    assert [d["stage"] for d in payload["stage_details"]] == ["a", "b", "c"]
    for detail in payload["stage_details"]:
        assert_summary(detail)
    assert payload["stage_details"][0]["data_keys"] == ["a", "b"]
    assert payload["stage_details"][1]["error"] == "bad"
    assert payload["stage_details"][1]["duration_ms"] == 10
    assert_str_or_null(payload, CONTEXT_KEYS[:5])


@pytest.mark.parametrize(
    ("given_name", "topology", "expected"),
    [
        ("explicit", "topo", "explicit"),
        (None, "topo", "topo"),
        ("", "topo", "topo"),
        (None, None, "pipeline"),
        (None, "", "pipeline"),
    ],
)
def test_pipeline_name_fallback_chain(
    given_name: str | None, topology: str | None, expected: str
) -> None:
    payload = WideEventEmitter.build_pipeline_payload(
        ctx=make_ctx(topology=topology), stage_results={}, pipeline_name=given_name
    )
    assert payload["pipeline_name"] == expected


@pytest.mark.parametrize(
    ("statuses", "given_status", "expected"),
    [
        (["completed", "completed"], None, "completed"),
        (["completed", "failed"], None, "failed"),
        ([], None, "completed"),
        (["completed", "failed"], "cancelled", "cancelled"),
        (["completed"], "", "completed"),
    ],
)
def test_pipeline_status_rule(statuses: list[str], given_status: str | None, expected: str) -> None:
    results = {f"s{i}": result(f"s{i}", status=s) for i, s in enumerate(statuses)}
    payload = WideEventEmitter.build_pipeline_payload(
        ctx=make_ctx(), stage_results=results, status=given_status
    )
    assert payload["status"] == expected


def test_pipeline_duration_is_measured_from_started_at_when_not_given() -> None:
    started = datetime.now(UTC) - timedelta(seconds=2)
    payload = WideEventEmitter.build_pipeline_payload(
        ctx=make_ctx(), stage_results={}, started_at=started
    )
    assert 2000 <= payload["duration_ms"] < 60_000
    given = WideEventEmitter.build_pipeline_payload(
        ctx=make_ctx(), stage_results={}, started_at=started, duration_ms=5
    )
    assert given["duration_ms"] == 5
    neither = WideEventEmitter.build_pipeline_payload(ctx=make_ctx(), stage_results={})
    assert neither["duration_ms"] is None


# --- graphs with wide events on -----------------------------------------------------------


def _stages() -> list[StageSpec]:
    async def ok(ctx: PipelineContext) -> StageOutput:
        return StageOutput.ok(zeta=1, alpha=2)

    async def bad(ctx: PipelineContext) -> StageOutput:
        return StageOutput.fail(error="nope")

    async def boom(ctx: PipelineContext) -> None:
        raise ValueError("exploded")

    return [
        StageSpec(name="first", runner=ok),
        StageSpec(name="second", runner=bad, dependencies=("first",)),
        StageSpec(name="third", runner=boom, dependencies=("first",)),
    ]


async def test_legacy_graph_emits_stage_and_pipeline_wide_events() -> None:
    sink = RecordingEventSink()
    graph = StageGraph(_stages(), emit_stage_wide_events=True, emit_pipeline_wide_event=True)
    results = await graph.run(make_ctx(sink))
    stage_events = sink.of_type("stage.wide")
    assert sorted(p["stage"] for p in stage_events if p) == ["first", "second", "third"]
    by_stage = {p["stage"]: p for p in stage_events if p}
    assert by_stage["first"]["data_keys"] == ["alpha", "zeta"]
    assert by_stage["second"]["error"] == "nope"
    assert by_stage["third"]["error"] == "exploded"
    for payload in stage_events:
        assert payload is not None
        assert list(payload) == STAGE_WIDE_KEYS
        assert_str_or_null(payload, CONTEXT_KEYS[:5])
        assert_summary({key: payload[key] for key in SUMMARY_KEYS})
    [run_payload] = sink.of_type("pipeline.wide")
    assert run_payload is not None
    assert list(run_payload) == PIPELINE_WIDE_KEYS
    assert run_payload["pipeline_name"] == "chat_fast"
    assert run_payload["status"] == "failed"
    assert run_payload["stage_counts"] == {"completed": 1, "failed": 2}
    assert isinstance(run_payload["duration_ms"], int)
    assert [d["stage"] for d in run_payload["stage_details"]] == list(results)
    assert sink.types()[-1] == "pipeline.wide"


async def test_legacy_graph_emits_no_wide_events_by_default() -> None:
    sink = RecordingEventSink()
    await StageGraph(_stages()).run(make_ctx(sink))
    assert not [t for t in sink.types() if t.endswith(".wide")]


async def test_a_shared_emitter_enables_only_the_requested_events() -> None:
    sink = RecordingEventSink()
    emitter = WideEventEmitter(stage_event_type="mine.stage")
    graph = StageGraph(_stages(), wide_event_emitter=emitter, emit_stage_wide_events=True)
    await graph.run(make_ctx(sink))
    assert sink.types().count("mine.stage") == 3
    assert "pipeline.wide" not in sink.types()


# --- differential against the reference ---------------------------------------------------


def _ref_ctx(ref_context: Any, sink: Any) -> Any:
    return ref_context.PipelineContext(
        pipeline_run_id=RUN_ID,
        request_id=REQUEST_ID,
        session_id=None,
        user_id=USER_ID,
        org_id=None,
        interaction_id=None,
        topology="chat_fast",
        execution_mode="practice",
        service="chat",
        event_sink=sink,
    )


def test_payloads_equal_the_reference(reference: ModuleType) -> None:
    ref_wide = reference.observability.wide_events
    ref_context = reference.stages.context
    ref_result = reference.stages.result
    ref_ctx = _ref_ctx(ref_context, RefRecorder())
    cases = [
        ("a", "completed", {"z": 1, "a": 2}, None, 250),
        ("b", "failed", {}, "bad", 10),
    ]
    ours = {
        name: result(name, status=status, data=data, error=error, ms=ms)
        for name, status, data, error, ms in cases
    }
    theirs = {
        name: ref_result.StageResult(
            name=name,
            status=status,
            started_at=T0,
            ended_at=T0 + timedelta(milliseconds=ms),
            data=data,
            error=error,
        )
        for name, status, data, error, ms in cases
    }
    for name in ours:
        assert WideEventEmitter.build_stage_payload(
            ctx=make_ctx(), result=ours[name], extra={"x": 1}
        ) == ref_wide.WideEventEmitter.build_stage_payload(
            ctx=ref_ctx, result=theirs[name], extra={"x": 1}
        )
    for pipeline_name, status in [(None, None), ("named", "weird")]:
        assert WideEventEmitter.build_pipeline_payload(
            ctx=make_ctx(),
            stage_results=ours,
            pipeline_name=pipeline_name,
            status=status,
            duration_ms=3,
        ) == ref_wide.WideEventEmitter.build_pipeline_payload(
            ctx=ref_ctx,
            stage_results=theirs,
            pipeline_name=pipeline_name,
            status=status,
            duration_ms=3,
        )


def _shape(payload: dict[str, Any]) -> dict[str, Any]:
    """Payload with timestamps and durations replaced by their types."""
    shaped: dict[str, Any] = {}
    for key, value in payload.items():
        if key in ("started_at", "ended_at", "duration_ms"):
            shaped[key] = type(value).__name__
        elif key == "stage_details":
            shaped[key] = sorted((_shape(d) for d in value), key=lambda d: d["stage"])
        else:
            shaped[key] = value
    return shaped


async def test_legacy_graph_wide_events_match_the_reference(reference: ModuleType) -> None:
    ref_dag = reference.pipeline.dag
    ref_context = reference.stages.context
    ref_core = reference.core

    class Ok:
        async def execute(self, ctx: Any) -> Any:
            return ref_core.StageOutput.ok(zeta=1, alpha=2)

    class Bad:
        async def execute(self, ctx: Any) -> Any:
            return ref_core.StageOutput.fail(error="nope")

    class Boom:
        async def execute(self, ctx: Any) -> Any:
            raise ValueError("exploded")

    ref_graph = ref_dag.StageGraph(
        [
            ref_dag.StageSpec(name="first", runner=Ok),
            ref_dag.StageSpec(name="second", runner=Bad, dependencies=("first",)),
            ref_dag.StageSpec(name="third", runner=Boom, dependencies=("first",)),
        ],
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    ref_sink = RefRecorder()
    asyncio.run(ref_graph.run(_ref_ctx(ref_context, ref_sink)))

    sink = RecordingEventSink()
    graph = StageGraph(_stages(), emit_stage_wide_events=True, emit_pipeline_wide_event=True)
    await graph.run(make_ctx(sink))

    def wide(events: list[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
        stage = sorted(
            (_shape(data) for t, data in events if t == "stage.wide" and data),
            key=lambda d: d["stage"],
        )
        run = [_shape(data) for t, data in events if t == "pipeline.wide" and data]
        return {"stage": stage, "run": run}

    assert wide(sink.events) == wide(ref_sink.events)


# --- a broken sink never fails a run (issue 13, defect 11) -----------------------------------


class WideEventsFail(RecordingEventSink):
    """Records every event except wide ones, whose ``try_emit`` raises."""

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        if type.endswith(".wide"):
            raise RuntimeError("sink down")
        super().try_emit(type=type, data=data)


def wide_warnings(caplog: pytest.LogCaptureFixture) -> list[tuple[str, Any]]:
    return [
        (r.getMessage(), getattr(r, "stage", None))
        for r in caplog.records
        if r.name == "stageflow_trio.wide_events"
    ]


async def test_a_legacy_run_survives_a_sink_that_rejects_wide_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = WideEventsFail()
    graph = StageGraph(_stages(), emit_stage_wide_events=True, emit_pipeline_wide_event=True)
    results = await graph.run(make_ctx(sink))
    assert {name: r.status for name, r in results.items()} == {
        "first": "completed",
        "second": "failed",
        "third": "failed",
    }
    assert sorted(wide_warnings(caplog)) == [
        ("Failed to emit pipeline.wide: sink down", None),
        ("Failed to emit stage.wide for stage first: sink down", "first"),
        ("Failed to emit stage.wide for stage second: sink down", "second"),
        ("Failed to emit stage.wide for stage third: sink down", "third"),
    ]
    assert sorted(sink.types()) == [
        "pipeline_completed",
        "stage.first.completed",
        "stage.first.started",
        "stage.second.failed",
        "stage.second.started",
        "stage.third.failed",
        "stage.third.started",
    ]


async def test_a_unified_run_survives_a_sink_that_rejects_wide_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    graph = UnifiedStageGraph(
        [spec("a"), spec("b", deps=["a"])],
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    results = await graph.run(stage_ctx(event_sink=WideEventsFail()))
    assert {name: dict(out.data) for name, out in results.items()} == {
        "a": {"stage": "a"},
        "b": {"stage": "b"},
    }
    assert wide_warnings(caplog) == [
        ("Failed to emit stage.wide for stage a: sink down", "a"),
        ("Failed to emit stage.wide for stage b: sink down", "b"),
        ("Failed to emit pipeline.wide: sink down", None),
    ]


def test_a_payload_that_cannot_be_built_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = RecordingEventSink()
    broken = result("odd", data={1: "int key", "b": 2})  # type: ignore[dict-item]  # data_keys cannot be sorted
    WideEventEmitter().emit_stage_event(ctx=make_ctx(sink), result=broken)
    emit_pipeline_wide_event(ctx=make_ctx(sink), stage_results={"odd": broken})
    assert sink.events == []
    assert wide_warnings(caplog) == [
        (
            "Failed to emit stage.wide for stage odd: "
            "'<' not supported between instances of 'str' and 'int'",
            "odd",
        ),
        (
            "Failed to emit pipeline.wide: '<' not supported between instances of 'str' and 'int'",
            None,
        ),
    ]
