"""Golden payloads of the tool and approval events (stageflow_trio.tools.events)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from stageflow_trio.tools import events
from stageflow_trio.tools.events import (
    ApprovalDecidedEvent,
    ApprovalRequestedEvent,
    ToolCompletedEvent,
    ToolDeniedEvent,
    ToolEventBase,
    ToolFailedEvent,
    ToolInvokedEvent,
    ToolStartedEvent,
    ToolUndoFailedEvent,
    ToolUndoneEvent,
)

ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
REQUEST = uuid.UUID("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")
RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQ = uuid.UUID("22222222-2222-4222-8222-222222222222")
USER = uuid.UUID("33333333-3333-4333-8333-333333333333")
TS = "2026-03-04T05:06:07.891234+00:00"
IDS: dict[str, Any] = {
    "tool_name": "edit",
    "action_id": ACTION,
    "pipeline_run_id": RUN,
    "request_id": REQ,
    "timestamp": TS,
}
BASE: dict[str, Any] = {
    "tool_name": "edit",
    "action_id": str(ACTION),
    "pipeline_run_id": str(RUN),
    "request_id": str(REQ),
    "timestamp": TS,
}

GOLDEN: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("ToolEventBase", IDS, BASE),
    ("ToolStartedEvent", IDS, BASE),
    (
        "ToolInvokedEvent",
        {**IDS, "payload_summary": {"doc": "d1"}, "behavior": "practice"},
        {**BASE, "payload_summary": {"doc": "d1"}, "behavior": "practice"},
    ),
    (
        "ToolCompletedEvent",
        {
            **IDS,
            "duration_ms": 12.5,
            "output_summary": {"success": True},
            "artifacts_count": 2,
        },
        {**BASE, "duration_ms": 12.5, "output_summary": {"success": True}, "artifacts_count": 2},
    ),
    (
        "ToolFailedEvent",
        {**IDS, "duration_ms": 3.0, "error_code": "ValueError", "error_message": "bad"},
        {**BASE, "duration_ms": 3.0, "error_code": "ValueError", "error_message": "bad"},
    ),
    (
        "ToolDeniedEvent",
        {
            **IDS,
            "reason": "behavior_not_allowed",
            "behavior": "practice",
            "allowed_behaviors": ("doc_edit",),
        },
        {
            **BASE,
            "reason": "behavior_not_allowed",
            "behavior": "practice",
            "allowed_behaviors": ["doc_edit"],
        },
    ),
    (
        "ToolUndoneEvent",
        {**IDS, "duration_ms": 1.0, "original_action_timestamp": "2026-03-04T00:00:00+00:00"},
        {**BASE, "duration_ms": 1.0, "original_action_timestamp": "2026-03-04T00:00:00+00:00"},
    ),
    (
        "ToolUndoFailedEvent",
        {**IDS, "error_message": "disk full", "reason": "OSError"},
        {**BASE, "error_message": "disk full", "reason": "OSError"},
    ),
    (
        "ApprovalRequestedEvent",
        {
            "request_id": REQUEST,
            "tool_name": "edit",
            "action_id": ACTION,
            "pipeline_run_id": RUN,
            "approval_message": "Approve edit?",
            "timestamp": TS,
        },
        {
            "request_id": str(REQUEST),
            "tool_name": "edit",
            "action_id": str(ACTION),
            "pipeline_run_id": str(RUN),
            "approval_message": "Approve edit?",
            "timestamp": TS,
        },
    ),
    (
        "ApprovalDecidedEvent",
        {
            "request_id": REQUEST,
            "tool_name": "edit",
            "action_id": ACTION,
            "decision": "approved",
            "decided_by": USER,
            "pipeline_run_id": RUN,
            "timestamp": TS,
        },
        {
            "request_id": str(REQUEST),
            "tool_name": "edit",
            "action_id": str(ACTION),
            "decision": "approved",
            "decided_by": str(USER),
            "pipeline_run_id": str(RUN),
            "timestamp": TS,
        },
    ),
]

# The same events with every optional field left out.
MINIMAL: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "ToolInvokedEvent",
        {"tool_name": "t", "action_id": ACTION, "timestamp": TS},
        {
            "tool_name": "t",
            "action_id": str(ACTION),
            "pipeline_run_id": None,
            "request_id": None,
            "timestamp": TS,
            "payload_summary": {},
            "behavior": None,
        },
    ),
    (
        "ToolCompletedEvent",
        {"tool_name": "t", "action_id": ACTION, "timestamp": TS},
        {
            "tool_name": "t",
            "action_id": str(ACTION),
            "pipeline_run_id": None,
            "request_id": None,
            "timestamp": TS,
            "duration_ms": 0.0,
            "output_summary": {},
            "artifacts_count": 0,
        },
    ),
    (
        "ToolFailedEvent",
        {"tool_name": "t", "action_id": ACTION, "timestamp": TS},
        {
            "tool_name": "t",
            "action_id": str(ACTION),
            "pipeline_run_id": None,
            "request_id": None,
            "timestamp": TS,
            "duration_ms": 0.0,
            "error_code": "execution_error",
            "error_message": "",
        },
    ),
    (
        "ToolDeniedEvent",
        {"tool_name": "t", "action_id": ACTION, "timestamp": TS},
        {
            "tool_name": "t",
            "action_id": str(ACTION),
            "pipeline_run_id": None,
            "request_id": None,
            "timestamp": TS,
            "reason": "",
            "behavior": None,
            "allowed_behaviors": [],
        },
    ),
    (
        "ToolUndoneEvent",
        {"tool_name": "t", "action_id": ACTION, "timestamp": TS},
        {
            "tool_name": "t",
            "action_id": str(ACTION),
            "pipeline_run_id": None,
            "request_id": None,
            "timestamp": TS,
            "duration_ms": 0.0,
            "original_action_timestamp": None,
        },
    ),
    (
        "ToolUndoFailedEvent",
        {"tool_name": "t", "action_id": ACTION, "timestamp": TS},
        {
            "tool_name": "t",
            "action_id": str(ACTION),
            "pipeline_run_id": None,
            "request_id": None,
            "timestamp": TS,
            "error_message": "",
            "reason": "",
        },
    ),
    (
        "ApprovalRequestedEvent",
        {"request_id": REQUEST, "tool_name": "t", "action_id": ACTION, "timestamp": TS},
        {
            "request_id": str(REQUEST),
            "tool_name": "t",
            "action_id": str(ACTION),
            "pipeline_run_id": None,
            "approval_message": "",
            "timestamp": TS,
        },
    ),
    (
        "ApprovalDecidedEvent",
        {
            "request_id": REQUEST,
            "tool_name": "t",
            "action_id": ACTION,
            "decision": "denied",
            "timestamp": TS,
        },
        {
            "request_id": str(REQUEST),
            "tool_name": "t",
            "action_id": str(ACTION),
            "decision": "denied",
            "decided_by": None,
            "pipeline_run_id": None,
            "timestamp": TS,
        },
    ),
]


def test_all_matches_the_reference(reference: ModuleType) -> None:
    assert sorted(events.__all__) == sorted(reference.tools.events.__all__)


@pytest.mark.parametrize(("name", "kwargs", "expected"), GOLDEN + MINIMAL)
def test_golden_payload(name: str, kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    payload = getattr(events, name)(**kwargs).to_dict()
    assert payload == expected
    assert list(payload) == list(expected)  # key order as in the reference


@pytest.mark.parametrize(("name", "kwargs", "expected"), GOLDEN + MINIMAL)
def test_payload_matches_the_reference(
    reference: ModuleType, name: str, kwargs: dict[str, Any], expected: dict[str, Any]
) -> None:
    theirs = getattr(reference.tools.events, name)(**kwargs).to_dict()
    ours = getattr(events, name)(**kwargs).to_dict()
    assert list(ours.items()) == list(theirs.items())


@pytest.mark.parametrize(
    "make",
    [
        lambda: ToolEventBase("t", ACTION),
        lambda: ToolStartedEvent("t", ACTION),
        lambda: ToolInvokedEvent("t", ACTION),
        lambda: ToolCompletedEvent("t", ACTION),
        lambda: ToolFailedEvent("t", ACTION),
        lambda: ToolDeniedEvent("t", ACTION),
        lambda: ToolUndoneEvent("t", ACTION),
        lambda: ToolUndoFailedEvent("t", ACTION),
        lambda: ApprovalRequestedEvent(REQUEST, "t", ACTION),
        lambda: ApprovalDecidedEvent(REQUEST, "t", ACTION, "approved"),
    ],
)
def test_timestamp_defaults_to_now_utc(make: Any) -> None:
    before = datetime.now(UTC)
    stamp = datetime.fromisoformat(make().to_dict()["timestamp"])
    after = datetime.now(UTC)
    assert stamp.utcoffset() == timedelta(0)
    assert before <= stamp <= after


def test_tool_events_share_the_base() -> None:
    for name in events.__all__:
        cls = getattr(events, name)
        assert issubclass(cls, ToolEventBase) == name.startswith("Tool")
