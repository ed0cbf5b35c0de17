"""Tool definitions (v2): what a tool does, who may run it, whether it needs approval or can be undone.

- :class:`ToolDefinition` describes one tool for the
  :class:`~stageflow_trio.tools.executor_v2.AdvancedToolExecutor`: its handler,
  the execution modes ("behaviors") allowed to use it, whether a human must
  approve each call, and how to reverse a call.
- :class:`ToolInput` is what a handler receives: the action's id and payload
  plus the run's correlation ids and execution mode.
- :class:`ToolOutput` is what a handler returns; :class:`UndoMetadata` is what
  the undo store keeps for a reversible call.
- :class:`Action` is the shape of an action: any object with ``id`` (a UUID),
  ``type`` (the action type) and ``payload`` (a dict).

The dict fields (payloads, output data, artifacts) are held as given, not
copied: a handler sees the action's own payload dict, as in the reference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias
from uuid import UUID

import attrs

from stageflow_trio._args import check_callable, check_flag, type_of
from stageflow_trio._exports import publish
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now_iso
from stageflow_trio.tools._action import Action as Action

if TYPE_CHECKING:
    from stageflow_trio.protocols import ExecutionContext

__all__ = [
    "Action",
    "ToolDefinition",
    "ToolHandler",
    "ToolInput",
    "ToolOutput",
    "UndoHandler",
    "UndoMetadata",
]


def _id_str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


@frozen_compat
@attrs.frozen
class ToolInput:
    """The input of a tool handler: an action with its run's correlation ids.

    Attributes:
        action_id: The action's id.
        tool_name: The name of the tool handling the action.
        payload: The action's payload (the same dict, not a copy).
        behavior: The execution mode of the run, or None.
        pipeline_run_id: The run's id, or None.
        request_id: The request's id, or None.
    """

    action_id: UUID
    tool_name: str
    payload: dict[str, Any]
    behavior: str | None = None
    pipeline_run_id: UUID | None = None
    request_id: UUID | None = None

    @classmethod
    def from_action(
        cls, action: Action, tool_name: str, ctx: ExecutionContext | None = None
    ) -> ToolInput:
        """``action`` as the input of tool ``tool_name``, correlated with ``ctx``.

        ``behavior``, ``pipeline_run_id`` and ``request_id`` are the context's
        ``execution_mode``, ``pipeline_run_id`` and ``request_id`` (all None
        without a context).

        Raises:
            TypeError: ``action`` has no ``id`` or ``payload`` (not an Action), or
                ``ctx`` is neither None nor an object with ``execution_mode``,
                ``pipeline_run_id`` and ``request_id``.
        """
        owner = "ToolInput.from_action"
        if not (hasattr(action, "id") and hasattr(action, "payload")):
            raise TypeError(
                f"{owner}: action must be an Action (with id and payload); got {type_of(action)}"
            )
        if ctx is not None and not all(
            hasattr(ctx, name) for name in ("execution_mode", "pipeline_run_id", "request_id")
        ):
            raise TypeError(
                f"{owner}: ctx must be an ExecutionContext (with execution_mode, "
                f"pipeline_run_id and request_id) or None; got {type_of(ctx)}"
            )
        if ctx is None:
            return cls(action_id=action.id, tool_name=tool_name, payload=action.payload)
        return cls(
            action_id=action.id,
            tool_name=tool_name,
            payload=action.payload,
            behavior=ctx.execution_mode,
            pipeline_run_id=ctx.pipeline_run_id,
            request_id=ctx.request_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """All six fields; ids as strings, or None when absent."""
        return {
            "action_id": str(self.action_id),
            "tool_name": self.tool_name,
            "payload": self.payload,
            "behavior": self.behavior,
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "request_id": _id_str(self.request_id),
        }


@frozen_compat
@attrs.frozen
class UndoMetadata:
    """What the undo store keeps for a reversible call.

    Attributes:
        action_id: The action that can be undone.
        tool_name: The name of the tool that ran it.
        undo_data: The tool's own data for reversing it.
        created_at: When it ran (ISO 8601, UTC; now by default).
    """

    action_id: UUID
    tool_name: str
    undo_data: dict[str, Any]
    created_at: str = attrs.field(factory=utc_now_iso)

    def to_dict(self) -> dict[str, Any]:
        """All four fields; ``action_id`` as a string."""
        return {
            "action_id": str(self.action_id),
            "tool_name": self.tool_name,
            "undo_data": self.undo_data,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UndoMetadata:
        """The inverse of :meth:`to_dict`; a missing ``created_at`` means now.

        Raises:
            KeyError: ``action_id``, ``tool_name`` or ``undo_data`` is missing.
            ValueError: ``action_id`` is not a UUID string.
            TypeError: ``action_id`` is not a str.
        """
        created_at = data.get("created_at")
        action_id = data["action_id"]
        if not isinstance(action_id, str):
            raise TypeError(
                f"UndoMetadata.from_dict: action_id must be a UUID string; got {type_of(action_id)}"
            )
        return cls(
            action_id=UUID(action_id),
            tool_name=data["tool_name"],
            undo_data=data["undo_data"],
            created_at=utc_now_iso() if created_at is None else created_at,
        )


@frozen_compat
@attrs.frozen
class ToolOutput:
    """What a tool handler returns.

    Attributes:
        success: Whether the call succeeded.
        data: The call's result data, or None.
        error: The error message of a failed call, or None.
        artifacts: Artifacts the call produced, or None.
        undo_metadata: The data needed to reverse the call (stored by the
            executor when the tool is undoable and the call succeeded), or None.
    """

    success: bool
    data: dict[str, Any] | None = None
    error: str | None = None
    artifacts: list[dict[str, Any]] | None = None
    undo_metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``success``, then each other field only when it is not None."""
        result: dict[str, Any] = {"success": self.success}
        if self.data is not None:
            result["data"] = self.data
        if self.error is not None:
            result["error"] = self.error
        if self.artifacts is not None:
            result["artifacts"] = self.artifacts
        if self.undo_metadata is not None:
            result["undo_metadata"] = self.undo_metadata
        return result

    @classmethod
    def ok(
        cls,
        data: dict[str, Any] | None = None,
        artifacts: list[dict[str, Any]] | None = None,
        undo_metadata: dict[str, Any] | None = None,
    ) -> ToolOutput:
        """A successful output."""
        return cls(success=True, data=data, artifacts=artifacts, undo_metadata=undo_metadata)

    @classmethod
    def fail(cls, error: str) -> ToolOutput:
        """A failed output with ``error`` as its message."""
        return cls(success=False, error=error)


ToolHandler: TypeAlias = Callable[[ToolInput], Awaitable[ToolOutput]]
"""An async function running a tool: ``async def handler(tool_input) -> ToolOutput``."""

UndoHandler: TypeAlias = Callable[[UndoMetadata], Awaitable[None]]
"""An async function reversing a call: ``async def undo(metadata) -> None``."""


def _check_text(owner: str, param: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{owner}: {param} must be a str; got {type_of(value)}")


def _behaviors(value: Iterable[str]) -> tuple[str, ...]:
    # A plain string would gate by substring ("doc" in "doc_edit"): a typo, not a list.
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(
            f"ToolDefinition: allowed_behaviors must be a tuple of str; got {type_of(value)}"
        )
    behaviors = tuple(value)
    for behavior in behaviors:
        _check_text("ToolDefinition", "allowed_behaviors item", behavior)
    return behaviors


@frozen_compat
@attrs.frozen
class ToolDefinition:
    """A tool for the :class:`~stageflow_trio.tools.executor_v2.AdvancedToolExecutor`.

    Attributes:
        name: The tool's name (what events and errors report).
        action_type: The action type the tool handles (what the executor looks it up by).
        handler: The async function running the tool.
        description: A human-readable description.
        input_schema: A JSON Schema of the payload (kept for callers; not enforced).
        allowed_behaviors: The execution modes allowed to use the tool; empty
            means every mode (an iterable is stored as a tuple).
        requires_approval: Whether each call waits for a human decision.
        approval_message: What the approval request shows (default ``"Approve {name}?"``).
        undoable: Whether calls can be reversed.
        undo_handler: The async function reversing a call.
        artifact_type: The type of artifact the tool produces, if any.

    Raises:
        TypeError: A field has the wrong type (the message names it).
    """

    name: str
    action_type: str
    handler: ToolHandler
    description: str = ""
    input_schema: dict[str, Any] = attrs.field(factory=dict)
    allowed_behaviors: tuple[str, ...] = attrs.field(default=(), converter=_behaviors)
    requires_approval: bool = False
    approval_message: str | None = None
    undoable: bool = False
    undo_handler: UndoHandler | None = None
    artifact_type: str | None = None

    def __attrs_post_init__(self) -> None:
        owner = "ToolDefinition"
        _check_text(owner, "name", self.name)
        _check_text(owner, "action_type", self.action_type)
        check_callable(owner, "handler", self.handler)
        _check_text(owner, "description", self.description)
        check_flag(owner, "requires_approval", self.requires_approval)
        check_flag(owner, "undoable", self.undoable)
        check_callable(owner, "undo_handler", self.undo_handler, optional=True)
        if self.approval_message is not None:
            _check_text(owner, "approval_message", self.approval_message)

    def is_behavior_allowed(self, behavior: str | None) -> bool:
        """Whether execution mode ``behavior`` may use the tool (any mode when none are listed)."""
        return not self.allowed_behaviors or behavior in self.allowed_behaviors

    def to_dict(self) -> dict[str, Any]:
        """Every field except the two handlers; ``allowed_behaviors`` as a list."""
        return {
            "name": self.name,
            "action_type": self.action_type,
            "description": self.description,
            "input_schema": self.input_schema,
            "allowed_behaviors": list(self.allowed_behaviors),
            "requires_approval": self.requires_approval,
            "approval_message": self.approval_message,
            "undoable": self.undoable,
            "artifact_type": self.artifact_type,
        }


publish(__name__)
