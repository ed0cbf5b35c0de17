"""Shared by the auth tests: fixed ids, and contexts with recording sinks for both sides."""

from __future__ import annotations

from types import ModuleType
from typing import Any
from uuid import UUID

from stageflow_trio.stages.context import PipelineContext
from tests.fakes import RefRecorder, pipeline_context

RUN_ID = UUID("11111111-1111-1111-1111-111111111111")
REQUEST_ID = UUID("22222222-2222-2222-2222-222222222222")
USER = "33333333-3333-3333-3333-333333333333"
ORG = "44444444-4444-4444-4444-444444444444"
OTHER_ORG = "55555555-5555-5555-5555-555555555555"
MOCK_USER = "00000000-0000-0000-0000-000000000001"
MOCK_SESSION = "00000000-0000-0000-0000-000000000099"


def our_ctx(data: dict[str, Any]) -> tuple[PipelineContext, RefRecorder]:
    """A PipelineContext with fixed run and request ids, ``data``, and a recording sink."""
    sink = RefRecorder()
    ctx = pipeline_context(
        pipeline_run_id=RUN_ID, request_id=REQUEST_ID, data=dict(data), event_sink=sink
    )
    return ctx, sink


def ref_ctx(reference: ModuleType, data: dict[str, Any]) -> tuple[Any, RefRecorder]:
    """The reference's PipelineContext with the same ids, data and a recording sink."""
    sink = RefRecorder()
    ctx = reference.stages.context.PipelineContext(
        pipeline_run_id=RUN_ID,
        request_id=REQUEST_ID,
        session_id=None,
        user_id=None,
        org_id=None,
        interaction_id=None,
        event_sink=sink,
        data=dict(data),
    )
    return ctx, sink


def without_timestamps(events: list[tuple[str, dict[str, Any] | None]]) -> list[Any]:
    """The recorded events with each payload's (wall-clock) timestamp checked and removed."""
    out = []
    for event_type, data in events:
        assert data is not None
        payload = dict(data)
        assert isinstance(payload.pop("timestamp"), str)
        out.append((event_type, payload))
    return out
