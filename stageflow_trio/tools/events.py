"""The typed payloads of the tool lifecycle and approval events.

The :class:`~stageflow_trio.tools.executor_v2.AdvancedToolExecutor` emits, in order:

- ``tool.invoked``: the tool was found for the action;
- ``tool.denied``: the run's execution mode may not use it, or approval timed out;
- ``approval.requested`` / ``approval.decided``: the human-in-the-loop round;
- ``tool.started``, then ``tool.completed`` or ``tool.failed``;
- ``tool.undone`` / ``tool.undo_failed``: an undo afterwards.

Each class's ``to_dict()`` is the event's payload: the tool events share
``tool_name``, ``action_id``, ``pipeline_run_id``, ``request_id`` and
``timestamp`` (ids as strings or None; the timestamp ISO 8601 UTC), then add
their own keys.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now_iso

__all__ = [
    "ApprovalDecidedEvent",
    "ApprovalRequestedEvent",
    "ToolCompletedEvent",
    "ToolDeniedEvent",
    "ToolEventBase",
    "ToolFailedEvent",
    "ToolInvokedEvent",
    "ToolStartedEvent",
    "ToolUndoFailedEvent",
    "ToolUndoneEvent",
]


def _id_str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


@frozen_compat
@attrs.frozen
class ToolEventBase:
    """The fields every tool event carries.

    Attributes:
        tool_name: The tool's name.
        action_id: The action's id.
        pipeline_run_id: The run's id, or None.
        request_id: The request's id, or None.
        timestamp: When the event was made (ISO 8601, UTC).
    """

    tool_name: str
    action_id: UUID
    pipeline_run_id: UUID | None = None
    request_id: UUID | None = None
    timestamp: str = attrs.field(factory=utc_now_iso)

    def _base_dict(self) -> dict[str, Any]:
        return {
            "tool_name": self.tool_name,
            "action_id": str(self.action_id),
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "request_id": _id_str(self.request_id),
            "timestamp": self.timestamp,
        }

    def to_dict(self) -> dict[str, Any]:
        """The five shared keys."""
        return self._base_dict()


@frozen_compat
@attrs.frozen
class ToolInvokedEvent(ToolEventBase):
    """``tool.invoked``: an action arrived and its tool was found.

    Attributes:
        payload_summary: The payload with long strings and large containers shortened.
        behavior: The run's execution mode.
    """

    payload_summary: dict[str, Any] = attrs.field(factory=dict)
    behavior: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The shared keys, ``payload_summary`` and ``behavior``."""
        return {
            **self._base_dict(),
            "payload_summary": self.payload_summary,
            "behavior": self.behavior,
        }


@frozen_compat
@attrs.frozen
class ToolStartedEvent(ToolEventBase):
    """``tool.started``: the handler is about to run (the shared keys only)."""


@frozen_compat
@attrs.frozen
class ToolCompletedEvent(ToolEventBase):
    """``tool.completed``: the handler returned.

    Attributes:
        duration_ms: How long the handler ran.
        output_summary: Which parts of the output are present (``success``,
            ``has_data``, ``has_error``, ``has_artifacts``, ``has_undo_metadata``).
        artifacts_count: How many artifacts the output holds.
    """

    duration_ms: float = 0.0
    output_summary: dict[str, Any] = attrs.field(factory=dict)
    artifacts_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The shared keys, ``duration_ms``, ``output_summary`` and ``artifacts_count``."""
        return {
            **self._base_dict(),
            "duration_ms": self.duration_ms,
            "output_summary": self.output_summary,
            "artifacts_count": self.artifacts_count,
        }


@frozen_compat
@attrs.frozen
class ToolFailedEvent(ToolEventBase):
    """``tool.failed``: the handler raised.

    Attributes:
        duration_ms: How long the handler ran.
        error_code: The exception's class name.
        error_message: ``str()`` of the exception.
    """

    duration_ms: float = 0.0
    error_code: str = "execution_error"
    error_message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The shared keys, ``duration_ms``, ``error_code`` and ``error_message``."""
        return {
            **self._base_dict(),
            "duration_ms": self.duration_ms,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }


@frozen_compat
@attrs.frozen
class ToolDeniedEvent(ToolEventBase):
    """``tool.denied``: the call will not run.

    Attributes:
        reason: ``"behavior_not_allowed"`` or ``"approval_timeout"``.
        behavior: The run's execution mode.
        allowed_behaviors: The modes the tool allows (a list in the payload).
    """

    reason: str = ""
    behavior: str | None = None
    allowed_behaviors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The shared keys, ``reason``, ``behavior`` and ``allowed_behaviors``."""
        return {
            **self._base_dict(),
            "reason": self.reason,
            "behavior": self.behavior,
            "allowed_behaviors": list(self.allowed_behaviors),
        }


@frozen_compat
@attrs.frozen
class ToolUndoneEvent(ToolEventBase):
    """``tool.undone``: an action was reversed.

    Attributes:
        duration_ms: How long the undo handler ran.
        original_action_timestamp: When the action ran (the undo metadata's ``created_at``).
    """

    duration_ms: float = 0.0
    original_action_timestamp: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The shared keys, ``duration_ms`` and ``original_action_timestamp``."""
        return {
            **self._base_dict(),
            "duration_ms": self.duration_ms,
            "original_action_timestamp": self.original_action_timestamp,
        }


@frozen_compat
@attrs.frozen
class ToolUndoFailedEvent(ToolEventBase):
    """``tool.undo_failed``: the undo handler raised.

    Attributes:
        error_message: ``str()`` of the exception.
        reason: The exception's class name.
    """

    error_message: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The shared keys, ``error_message`` and ``reason``."""
        return {**self._base_dict(), "error_message": self.error_message, "reason": self.reason}


@frozen_compat
@attrs.frozen
class ApprovalRequestedEvent:
    """``approval.requested``: a call waits for a human decision.

    Attributes:
        request_id: The approval request's id.
        tool_name: The tool's name.
        action_id: The action's id.
        pipeline_run_id: The run's id, or None.
        approval_message: What the approver is asked.
        timestamp: When the event was made (ISO 8601, UTC).
    """

    request_id: UUID
    tool_name: str
    action_id: UUID
    pipeline_run_id: UUID | None = None
    approval_message: str = ""
    timestamp: str = attrs.field(factory=utc_now_iso)

    def to_dict(self) -> dict[str, Any]:
        """All six fields; ids as strings or None."""
        return {
            "request_id": str(self.request_id),
            "tool_name": self.tool_name,
            "action_id": str(self.action_id),
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "approval_message": self.approval_message,
            "timestamp": self.timestamp,
        }


@frozen_compat
@attrs.frozen
class ApprovalDecidedEvent:
    """``approval.decided``: the decision arrived.

    Attributes:
        request_id: The approval request's id.
        tool_name: The tool's name.
        action_id: The action's id.
        decision: ``"approved"`` or ``"denied"``.
        decided_by: Who decided, or None (the executor does not fill it in).
        pipeline_run_id: The run's id, or None.
        timestamp: When the event was made (ISO 8601, UTC).
    """

    request_id: UUID
    tool_name: str
    action_id: UUID
    decision: str
    decided_by: UUID | None = None
    pipeline_run_id: UUID | None = None
    timestamp: str = attrs.field(factory=utc_now_iso)

    def to_dict(self) -> dict[str, Any]:
        """All seven fields; ids as strings or None."""
        return {
            "request_id": str(self.request_id),
            "tool_name": self.tool_name,
            "action_id": str(self.action_id),
            "decision": self.decision,
            "decided_by": _id_str(self.decided_by),
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "timestamp": self.timestamp,
        }
