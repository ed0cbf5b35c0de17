"""The graphs' cheap event paths send exactly what the slow ones did.

Stage events come from a per-run template (the ids stringified once), nothing is
built for a NoOpEventSink, the timestamp text is formatted per second plus the
microseconds; a context class with its own ``record_stage_event`` or
``try_emit_event`` still gets every call.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio import _time
from stageflow_trio._engine import _unified_events
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.events.sink import NoOpEventSink
from stageflow_trio.pipeline.dag import (
    StageGraph,
    StageSpec,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.interceptors import BaseInterceptor
from stageflow_trio.stages import context as stages_context
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from tests.pipeline.graph_helpers import REQUEST_ID, RUN_ID, spec, stage_ctx

OTHER_REQUEST = uuid.UUID("33333333-3333-4333-8333-333333333333")


def _without_timestamp(data: dict[str, Any] | None) -> dict[str, Any]:
    assert data is not None
    assert isinstance(data["timestamp"], str)
    return {k: v for k, v in data.items() if k != "timestamp"}


class _RecordingNoOp(NoOpEventSink):
    """A NoOpEventSink subclass that keeps events: only the exact class is skipped."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))


@pytest.fixture
def timestamps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every stage-event timestamp made through the graphs' template."""
    made: list[str] = []

    def counting() -> str:
        text = _time.utc_now_iso()
        made.append(text)
        return text

    monkeypatch.setattr(stages_context, "utc_now_iso", counting)
    # The unified run's started / completed events fill per-run templates there.
    monkeypatch.setattr(_unified_events, "utc_now_iso", counting)
    return made


# -- the timestamp text ------------------------------------------------------------


@pytest.mark.parametrize(
    "nanoseconds",
    [
        0,
        999,  # below a microsecond: floored to .000000, which isoformat leaves out
        1_000,
        1_764_999_999_999_999_999,
        1_765_000_000_000_000_000,  # the next second, no microseconds
        1_765_000_000_123_456_789,
    ],
)
def test_utc_now_iso_is_the_isoformat_of_the_instant(
    monkeypatch: pytest.MonkeyPatch, nanoseconds: int
) -> None:
    monkeypatch.setattr(_time, "_wall_ns", lambda: nanoseconds)
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1000)
    assert _time.utc_now_iso() == expected.isoformat()


def test_every_microsecond_digit_group_formats_as_isoformat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = 1_765_000_000 * 10**9
    for group in range(1000):
        for micros in (group, group * 1000):  # the last three digits, then the first three
            nanoseconds = base + micros * 1000
            monkeypatch.setattr(_time, "_wall_ns", lambda n=nanoseconds: n)
            expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
                microseconds=nanoseconds // 1000
            )
            assert _time.utc_now_iso() == expected.isoformat()


@given(
    st.lists(
        st.integers(min_value=0, max_value=4_102_444_800 * 10**9)  # to 2100
        | st.integers(min_value=1_765_000_000 * 10**9, max_value=1_765_000_002 * 10**9),
        min_size=1,
        max_size=20,
    )
)
def test_any_sequence_of_readings_formats_as_isoformat(readings: list[int]) -> None:
    # The per-millisecond and per-second caches never pair an instant with another's text.
    for nanoseconds in readings:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_time, "_wall_ns", lambda n=nanoseconds: n)
            text = _time.utc_now_iso()
        expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1000)
        assert text == expected.isoformat()


def test_utc_now_iso_formats_a_new_second_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([5_000_000_001_000, 5_000_000_002_000, 6_000_000_000_000])
    monkeypatch.setattr(_time, "_wall_ns", lambda: next(readings))
    assert [_time.utc_now_iso() for _ in range(3)] == [
        "1970-01-01T01:23:20.000001+00:00",
        "1970-01-01T01:23:20.000002+00:00",
        "1970-01-01T01:40:00+00:00",
    ]


# -- the legacy graph --------------------------------------------------------------


async def _first(ctx: PipelineContext) -> None:
    # Stages may assign to the context they share: later events carry the new values.
    ctx.topology = "changed"
    ctx.request_id = OTHER_REQUEST


async def _second(ctx: PipelineContext) -> dict[str, Any]:
    return {"ok": True}


def _legacy_graph() -> StageGraph:
    return StageGraph(
        [
            StageSpec(name="first", runner=_first),
            StageSpec(name="second", runner=_second, dependencies=("first",)),
        ],
        interceptors=[],
    )


async def test_legacy_stage_events_follow_the_context_a_stage_changed() -> None:
    sink = RecordingEventSink()
    ctx = create_test_pipeline_context(
        pipeline_run_id=RUN_ID, request_id=REQUEST_ID, event_sink=sink
    )
    expected_ids = (str(ctx.session_id), str(ctx.user_id))
    await _legacy_graph().run(ctx)
    stage_events = [(t, d) for t, d in sink.events if t.startswith("stage.")]
    assert [t for t, _ in stage_events] == [
        "stage.first.started",
        "stage.first.completed",
        "stage.second.started",
        "stage.second.completed",
    ]
    started = _without_timestamp(stage_events[0][1])
    assert started == {
        "request_id": str(REQUEST_ID),
        "session_id": expected_ids[0],
        "user_id": expected_ids[1],
        "org_id": None,
        "service": "test",
        "stage": "first",
        "status": "started",
        "topology": "test",
        "execution_mode": "test",
        "pipeline_run_id": str(RUN_ID),
    }
    completed = _without_timestamp(stage_events[1][1])
    assert list(completed) == [
        "request_id",
        "session_id",
        "user_id",
        "org_id",
        "service",
        "stage",
        "status",
        "topology",
        "execution_mode",
        "duration_ms",
        "pipeline_run_id",
    ]
    assert (completed["request_id"], completed["topology"]) == (str(OTHER_REQUEST), "changed")
    assert _without_timestamp(stage_events[3][1])["topology"] == "changed"


async def test_legacy_payload_keys_win_except_the_run_id() -> None:
    # record_stage_event's order: the payload overrides the template, the run id the payload.
    sink = RecordingEventSink()
    ctx = create_test_pipeline_context(pipeline_run_id=None, event_sink=sink)
    ctx.pipeline_run_id = None
    await _legacy_graph().run(ctx)
    completed = sink.of_type("stage.second.completed")[0]
    assert completed is not None
    assert "pipeline_run_id" not in completed
    assert list(completed)[-1] == "duration_ms"


async def test_legacy_events_are_not_built_for_a_noop_sink(timestamps: list[str]) -> None:
    ctx = create_test_pipeline_context(event_sink=NoOpEventSink())
    results = await _legacy_graph().run(ctx)
    assert [r.status for r in results.values()] == ["completed", "completed"]
    assert timestamps == []


async def test_legacy_events_reach_a_noop_subclass(timestamps: list[str]) -> None:
    sink = _RecordingNoOp()
    await _legacy_graph().run(create_test_pipeline_context(event_sink=sink))
    assert [t for t, _ in sink.events] == [
        "stage.first.started",
        "stage.first.completed",
        "stage.second.started",
        "stage.second.completed",
        "pipeline_completed",
    ]
    assert len(timestamps) == 4


@attrs.define(kw_only=True)
class _OwnEvents(PipelineContext):
    """A context class with its own event methods: the graph must call them."""

    calls: list[tuple[str, ...]] = attrs.field(factory=list)

    def record_stage_event(
        self, *, stage: str, status: str, payload: dict[str, Any] | None = None
    ) -> None:
        self.calls.append(("record", stage, status))

    def try_emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        self.calls.append(("emit", type))


async def test_legacy_calls_a_context_class_own_event_methods() -> None:
    ctx = _OwnEvents(
        pipeline_run_id=RUN_ID,
        request_id=None,
        session_id=None,
        user_id=None,
        org_id=None,
        interaction_id=None,
        event_sink=NoOpEventSink(),
    )
    await _legacy_graph().run(ctx)
    assert ctx.calls == [
        ("record", "first", "started"),
        ("record", "first", "completed"),
        ("record", "second", "started"),
        ("record", "second", "completed"),
        ("emit", "pipeline_completed"),
    ]


# -- the unified graph -------------------------------------------------------------


async def test_unified_stage_events_are_record_stage_event_on_the_view() -> None:
    sink = RecordingEventSink()
    ctx = stage_ctx(sink)
    await UnifiedStageGraph([spec("a")]).run(ctx)
    reference = RecordingEventSink()
    view = ctx.as_pipeline_context(data={"snapshot": ctx.snapshot})
    view.event_sink = reference
    view.record_stage_event(stage="a", status="started")
    view.record_stage_event(stage="a", status="completed", payload={"duration_ms": 0})
    ours = [(t, _without_timestamp(d)) for t, d in sink.events if t.startswith("stage.")]
    theirs = [(t, _without_timestamp(d)) for t, d in reference.events]
    assert ours == theirs
    assert [list(d) for _, d in ours] == [list(d) for _, d in theirs]


@pytest.mark.parametrize("how", ["raises", "returns fail", "is cancelled"])
async def test_unified_terminal_events_carry_the_duration_first_as_record_stage_event(
    how: str, autojump_clock: trio.abc.Clock
) -> None:
    async def stage(ctx: StageContext) -> StageOutput:
        if how == "raises":
            raise ValueError("boom")
        if how == "returns fail":
            return StageOutput.fail(error="boom")
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    sink = RecordingEventSink()
    ctx = stage_ctx(sink)
    graph = UnifiedStageGraph([spec("a", stage)])
    if how == "is cancelled":
        with trio.move_on_after(1) as outer:
            await graph.run(ctx)
        assert outer.cancelled_caught
    else:
        with pytest.raises(UnifiedStageExecutionError):
            await graph.run(ctx)
    status, extra = (
        ("cancelled", {"reason": "deadline exceeded"})
        if how == "is cancelled"
        else ("failed", {"error": "boom"})
    )
    reference = RecordingEventSink()
    view = ctx.as_pipeline_context(data={"snapshot": ctx.snapshot})
    view.event_sink = reference
    [data] = [d for t, d in sink.events if t == f"stage.a.{status}"]
    assert data is not None
    duration_ms = 1000 if how == "is cancelled" else 0
    assert data["duration_ms"] == duration_ms
    view.record_stage_event(stage="a", status=status, payload={"duration_ms": duration_ms, **extra})
    [(_, expected)] = reference.events
    assert _without_timestamp(data) == _without_timestamp(expected)
    assert list(data) == list(expected)  # type: ignore[arg-type]


class _Retopology(BaseInterceptor):
    """Changes the view's topology before stage ``b``: b's events must show it."""

    name = "retopology"

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        if stage_name == "b":
            ctx.topology = "rerouted"

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None


async def test_unified_stage_events_follow_the_view_an_interceptor_changed() -> None:
    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("a"), spec("b", deps=["a"])], interceptors=[_Retopology()])
    await graph.run(stage_ctx(sink))
    topologies = {
        t: _without_timestamp(d)["topology"] for t, d in sink.events if t.startswith("stage.")
    }
    assert topologies == {
        "stage.a.started": "test_topology",
        "stage.a.completed": "test_topology",
        "stage.b.started": "test_topology",  # before the interceptor ran
        "stage.b.completed": "rerouted",
    }


async def test_unified_events_are_not_built_for_a_noop_sink(timestamps: list[str]) -> None:
    results = await UnifiedStageGraph([spec("a"), spec("b", deps=["a"])]).run(
        stage_ctx(NoOpEventSink())
    )
    assert list(results) == ["a", "b"]
    assert timestamps == []


async def test_a_conditional_skip_sends_nothing_to_a_noop_sink(timestamps: list[str]) -> None:
    async def guard(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(skip_reason="not needed")

    results = await UnifiedStageGraph(
        [spec("guard", guard), spec("maybe", deps=["guard"], conditional=True)]
    ).run(stage_ctx(NoOpEventSink()))
    assert results["maybe"].data == {"reason": "not needed"}
    assert timestamps == []


async def test_unified_events_reach_a_noop_subclass(timestamps: list[str]) -> None:
    sink = _RecordingNoOp()
    await UnifiedStageGraph([spec("a")]).run(stage_ctx(sink))
    assert [t for t, _ in sink.events] == [
        "stage.a.started",
        "stage.a.completed",
        "pipeline_completed",
    ]
    assert len(timestamps) == 2


@attrs.frozen
class _OwnEmit(StageContext):
    emitted: list[str] = attrs.field(factory=list)

    def try_emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        self.emitted.append(type)


async def test_unified_calls_a_context_class_own_try_emit_event() -> None:
    base = stage_ctx(RecordingEventSink())
    ctx = _OwnEmit(
        snapshot=base.snapshot,
        inputs=base.inputs,
        stage_name="pipeline",
        timer=base.timer,
        event_sink=base.event_sink,
    )
    await UnifiedStageGraph([spec("a")]).run(ctx)
    assert ctx.emitted == ["pipeline_completed"]


async def test_unified_pipeline_events_carry_the_run_ids_once_made() -> None:
    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("a")])
    ctx = stage_ctx(sink)
    await graph.run(ctx)
    await graph.run(ctx)
    completed = sink.of_type("pipeline_completed")
    assert len(completed) == 2
    for data in completed:
        assert data is not None
        assert list(data) == [
            "pipeline_run_id",
            "request_id",
            "execution_mode",
            "stages_completed",
            "duration_ms",
        ]
        assert (data["pipeline_run_id"], data["request_id"]) == (str(RUN_ID), str(REQUEST_ID))


# -- both graphs: the run is a checkpoint in two halves --------------------------------


async def test_a_run_in_a_cancelled_scope_starts_no_stage() -> None:
    ran: list[str] = []

    async def unified_stage(ctx: StageContext) -> StageOutput:
        ran.append("unified")
        return StageOutput.ok()

    async def legacy_stage(ctx: PipelineContext) -> None:
        ran.append("legacy")

    with trio.CancelScope() as scope:
        scope.cancel()
        await UnifiedStageGraph([spec("a", unified_stage)]).run(stage_ctx())
    assert scope.cancelled_caught
    with trio.CancelScope() as scope:
        scope.cancel()
        await StageGraph([StageSpec(name="a", runner=legacy_stage)]).run(
            create_test_pipeline_context()
        )
    assert scope.cancelled_caught
    assert ran == []
