"""Audit: wide-event helpers refuse arguments of the wrong type at the call."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stageflow_trio.observability import (
    WideEventEmitter,
    emit_pipeline_wide_event,
    emit_stage_wide_event,
)
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import pipeline_context

T0 = datetime(2026, 1, 2, tzinfo=UTC)
RESULT = StageResult(
    name="a", status="completed", started_at=T0, ended_at=T0 + timedelta(milliseconds=15)
)


def sink_of(ctx: Any) -> RecordingEventSink:
    sink = ctx.event_sink
    assert isinstance(sink, RecordingEventSink)
    return sink


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"result": None}, "result must be a StageResult; got NoneType"),
        ({"result": {"name": "a"}}, "result must be a StageResult; got dict"),
        ({"ctx": None}, "ctx must be a PipelineContext; got NoneType"),
        ({"extra": 5}, "extra must be a mapping or None; got int"),
    ],
)
def test_stage_event_arguments(kwargs: dict[str, Any], message: str) -> None:
    ctx = pipeline_context()
    args: dict[str, Any] = {"ctx": ctx, "result": RESULT, **kwargs}
    for where, call in (
        ("emit_stage_event", WideEventEmitter().emit_stage_event),
        ("build_stage_payload", WideEventEmitter.build_stage_payload),
    ):
        with pytest.raises(TypeError, match=f"^{re.escape(f'{where}: {message}')}$"):
            call(**args)
    with pytest.raises(TypeError, match=f"^{re.escape(f'emit_stage_event: {message}')}$"):
        emit_stage_wide_event(**args)
    assert sink_of(ctx).events == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"stage_results": [RESULT]},
            "stage_results must be a mapping of stage name to StageResult; got list",
        ),
        ({"stage_results": {"a": "done"}}, "stage_results['a'] must be a StageResult; got str"),
        ({"pipeline_name": 5}, "pipeline_name must be a str or None; got int"),
        ({"status": 5}, "status must be a str or None; got int"),
        ({"duration_ms": "12"}, "duration_ms must be an int or None; got str"),
        ({"duration_ms": True}, "duration_ms must be an int or None; got bool"),
        ({"started_at": "2026-01-01"}, "started_at must be a datetime or None; got str"),
        ({"extra": ["x"]}, "extra must be a mapping or None; got list"),
    ],
)
def test_pipeline_event_arguments(kwargs: dict[str, Any], message: str) -> None:
    ctx = pipeline_context()
    args: dict[str, Any] = {"ctx": ctx, "stage_results": {"a": RESULT}, **kwargs}
    with pytest.raises(TypeError, match=f"^{re.escape(f'emit_pipeline_event: {message}')}$"):
        emit_pipeline_wide_event(**args)
    with pytest.raises(TypeError, match=f"^{re.escape(f'build_pipeline_payload: {message}')}$"):
        WideEventEmitter.build_pipeline_payload(**args)
    assert sink_of(ctx).events == []


def test_a_naive_started_at_is_a_value_error() -> None:
    ctx = pipeline_context()
    with pytest.raises(
        ValueError,
        match=r"^emit_pipeline_event: started_at must be timezone-aware; got a naive datetime$",
    ):
        emit_pipeline_wide_event(ctx=ctx, stage_results={}, started_at=datetime(2026, 1, 1))


def test_emitter_must_be_a_wide_event_emitter() -> None:
    ctx = pipeline_context()
    with pytest.raises(
        TypeError,
        match=r"^emit_stage_wide_event: emitter must be a WideEventEmitter or None; got str$",
    ):
        emit_stage_wide_event(ctx=ctx, result=RESULT, emitter="x")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^emit_pipeline_wide_event: emitter must be a WideEventEmitter or None; got str$",
    ):
        emit_pipeline_wide_event(ctx=ctx, stage_results={}, emitter="x")  # type: ignore[arg-type]


def test_good_arguments_still_emit() -> None:
    ctx = pipeline_context()
    emit_stage_wide_event(ctx=ctx, result=RESULT, extra={"k": 1})
    emit_pipeline_wide_event(
        ctx=ctx, stage_results={"a": RESULT}, duration_ms=3, started_at=T0, status="completed"
    )
    (stage_type, stage), (pipeline_type, pipeline) = sink_of(ctx).events
    assert stage is not None
    assert pipeline is not None
    assert (stage_type, pipeline_type) == ("stage.wide", "pipeline.wide")
    assert (stage["duration_ms"], stage["extra"]) == (15, {"k": 1})
    assert (pipeline["status"], pipeline["duration_ms"]) == ("completed", 3)


def test_emit_uses_a_subclass_s_own_payloads() -> None:
    # emit_* skips build_*'s second check only for the class's own builders.
    class Tagged(WideEventEmitter):
        @staticmethod
        def build_stage_payload(**kwargs: Any) -> dict[str, Any]:
            return {"tag": "stage"}

        @staticmethod
        def build_pipeline_payload(**kwargs: Any) -> dict[str, Any]:
            return {"tag": "pipeline"}

    ctx = pipeline_context()
    Tagged().emit_stage_event(ctx=ctx, result=RESULT)
    Tagged().emit_pipeline_event(ctx=ctx, stage_results={"a": RESULT})
    assert sink_of(ctx).events == [
        ("stage.wide", {"tag": "stage"}),
        ("pipeline.wide", {"tag": "pipeline"}),
    ]
    WideEventEmitter().emit_stage_event(ctx=ctx, result=RESULT)
    data = sink_of(ctx).events[-1][1]
    assert data is not None
    assert data["stage"] == "a"
