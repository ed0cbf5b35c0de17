"""The errors of tool execution: not found, denied, approval denied or timed out, undo, failure.

Every class derives from :class:`ToolError` (and so from
:class:`~stageflow_trio.errors.StageflowError`), and ``to_dict()`` gives a
payload with stable keys: ``error_type``, ``message``, ``tool``, then each
class's own fields (ids as strings or None). The errors pickle with their
fields, so they cross process boundaries intact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stageflow_trio._args import error_text
from stageflow_trio._errors import StageflowError

if TYPE_CHECKING:
    from uuid import UUID

__all__ = [
    "ToolApprovalDeniedError",
    "ToolApprovalTimeoutError",
    "ToolDeniedError",
    "ToolError",
    "ToolExecutionError",
    "ToolNotFoundError",
    "ToolUndoError",
]


def _id_str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


class ToolError(StageflowError):
    """The base of every tool error.

    Attributes:
        tool: The tool concerned (a name or an action type), or None.
    """

    def __init__(self, message: str, tool: str | None = None) -> None:
        self.tool = tool
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        """``{"error_type": class name, "message": str(self), "tool": tool}``."""
        return {"error_type": type(self).__name__, "message": str(self), "tool": self.tool}

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.tool))


class ToolNotFoundError(ToolError):
    """No tool is registered for an action type.

    Attributes:
        action_type: The action type looked up (also ``tool``).
    """

    def __init__(self, action_type: str) -> None:
        self.action_type = action_type
        super().__init__(f"No tool registered for action type: {action_type}", tool=action_type)

    def to_dict(self) -> dict[str, Any]:
        """The base keys plus ``action_type``."""
        return {**super().to_dict(), "action_type": self.action_type}

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.action_type,))


class ToolDeniedError(ToolError):
    """The run's execution mode may not use the tool (behavior gating).

    Attributes:
        behavior: The run's execution mode.
        allowed_behaviors: The modes the tool allows.
    """

    def __init__(self, tool: str, behavior: str | None, allowed_behaviors: tuple[str, ...]) -> None:
        self.behavior = behavior
        self.allowed_behaviors = allowed_behaviors
        super().__init__(
            f"Tool '{tool}' denied: current behavior '{behavior}' "
            f"not in allowed behaviors {allowed_behaviors}",
            tool=tool,
        )

    def to_dict(self) -> dict[str, Any]:
        """The base keys plus ``behavior`` and ``allowed_behaviors`` (a list)."""
        return {
            **super().to_dict(),
            "behavior": self.behavior,
            "allowed_behaviors": list(self.allowed_behaviors),
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tool, self.behavior, self.allowed_behaviors))


class ToolApprovalDeniedError(ToolError):
    """A call that needed approval was not approved.

    The executor raises it without a ``request_id`` (as the reference does);
    the approval events carry the request id.

    Attributes:
        request_id: The approval request, or None.
        reason: Why (``"user_denied"`` by default; ``"timeout"`` for the subclass).
    """

    def __init__(
        self, tool: str, request_id: UUID | None = None, reason: str = "user_denied"
    ) -> None:
        self.request_id = request_id
        self.reason = reason
        super().__init__(f"Tool '{tool}' approval denied: {reason}", tool=tool)

    def to_dict(self) -> dict[str, Any]:
        """The base keys plus ``request_id`` (a string or None) and ``reason``."""
        return {**super().to_dict(), "request_id": _id_str(self.request_id), "reason": self.reason}

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tool, self.request_id, self.reason))


class ToolApprovalTimeoutError(ToolApprovalDeniedError):
    """No decision arrived within the approval timeout (``reason`` is ``"timeout"``).

    Attributes:
        timeout_seconds: The timeout that expired.
    """

    def __init__(
        self, tool: str, request_id: UUID | None = None, timeout_seconds: float = 0
    ) -> None:
        self.timeout_seconds = timeout_seconds
        super().__init__(tool=tool, request_id=request_id, reason="timeout")

    def to_dict(self) -> dict[str, Any]:
        """The approval-denied keys plus ``timeout_seconds``."""
        return {**super().to_dict(), "timeout_seconds": self.timeout_seconds}

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tool, self.request_id, self.timeout_seconds))


class ToolUndoError(ToolError):
    """An undo handler raised.

    Attributes:
        action_id: The action that could not be undone.
        reason: The handler's error message.
    """

    def __init__(self, tool: str, action_id: UUID, reason: str) -> None:
        self.action_id = action_id
        self.reason = reason
        super().__init__(
            f"Failed to undo action '{action_id}' for tool '{tool}': {reason}", tool=tool
        )

    def to_dict(self) -> dict[str, Any]:
        """The base keys plus ``action_id`` (a string) and ``reason``."""
        return {**super().to_dict(), "action_id": str(self.action_id), "reason": self.reason}

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tool, self.action_id, self.reason))


class ToolExecutionError(ToolError):
    """A tool handler raised; the handler's exception is ``cause`` (and ``__cause__``).

    Attributes:
        action_id: The action being run, or None.
        cause: The handler's exception, or None.
    """

    def __init__(
        self, tool: str, action_id: UUID | None = None, cause: Exception | None = None
    ) -> None:
        self.action_id = action_id
        self.cause = cause
        message = f"Tool '{tool}' execution failed"
        if cause is not None:
            message += f": {error_text(cause)}"  # a cause whose __str__ raises too
        super().__init__(message, tool=tool)

    def to_dict(self) -> dict[str, Any]:
        """The base keys plus ``action_id`` and ``cause`` (strings or None)."""
        return {
            **super().to_dict(),
            "action_id": _id_str(self.action_id),
            "cause": None if self.cause is None else error_text(self.cause),
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tool, self.action_id, self.cause))
