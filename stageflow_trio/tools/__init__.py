"""Tools: capability units that execute agent actions.

- :mod:`~stageflow_trio.tools.base`: the ``Tool`` protocol and ``BaseTool``.
- :mod:`~stageflow_trio.tools.registry`: the legacy ``ToolRegistry`` (global
  singleton, ``@tool``, ``register_tool``) and ``parse_and_resolve`` for model
  tool calls.
- :mod:`~stageflow_trio.tools.definitions`: ``ToolDefinition`` (handler,
  behavior gating, approval, undo), ``ToolInput``, ``ToolOutput``, ``UndoMetadata``.
- :mod:`~stageflow_trio.tools.executor_v2`: ``AdvancedToolExecutor``, which runs
  actions with gating, human approval, lifecycle events and undo.
- :mod:`~stageflow_trio.tools.approval` and :mod:`~stageflow_trio.tools.undo`:
  the approval service and the undo store, with process-wide singletons.
- :mod:`~stageflow_trio.tools.errors` and :mod:`~stageflow_trio.tools.events`:
  the error classes and the typed event payloads.
- :mod:`~stageflow_trio.tools.diff`: text, JSON Patch and dict diffs.
- :mod:`~stageflow_trio.tools.executor`: the v1 ``ToolExecutor`` (with
  ``spawn_subpipeline``).
- :mod:`~stageflow_trio.tools.adapters`: a plain dict as an ExecutionContext.
"""

from __future__ import annotations

from .adapters import DictContextAdapter as DictContextAdapter
from .adapters import adapt_context as adapt_context
from .approval import ApprovalDecision as ApprovalDecision
from .approval import ApprovalRequest as ApprovalRequest
from .approval import ApprovalService as ApprovalService
from .approval import ApprovalStatus as ApprovalStatus
from .approval import clear_approval_service as clear_approval_service
from .approval import get_approval_service as get_approval_service
from .approval import set_approval_service as set_approval_service
from .base import BaseTool as BaseTool
from .base import Tool as Tool
from .definitions import Action as Action
from .definitions import ToolDefinition as ToolDefinition
from .definitions import ToolHandler as ToolHandler
from .definitions import ToolInput as ToolInput
from .definitions import ToolOutput as ToolOutput
from .definitions import UndoHandler as UndoHandler
from .definitions import UndoMetadata as UndoMetadata
from .diff import DiffLine as DiffLine
from .diff import DiffResult as DiffResult
from .diff import DiffType as DiffType
from .diff import diff_json as diff_json
from .diff import diff_structured as diff_structured
from .diff import diff_text as diff_text
from .errors import ToolApprovalDeniedError as ToolApprovalDeniedError
from .errors import ToolApprovalTimeoutError as ToolApprovalTimeoutError
from .errors import ToolDeniedError as ToolDeniedError
from .errors import ToolError as ToolError
from .errors import ToolExecutionError as ToolExecutionError
from .errors import ToolNotFoundError as ToolNotFoundError
from .errors import ToolUndoError as ToolUndoError
from .events import ApprovalDecidedEvent as ApprovalDecidedEvent
from .events import ApprovalRequestedEvent as ApprovalRequestedEvent
from .events import ToolCompletedEvent as ToolCompletedEvent
from .events import ToolDeniedEvent as ToolDeniedEvent
from .events import ToolEventBase as ToolEventBase
from .events import ToolFailedEvent as ToolFailedEvent
from .events import ToolInvokedEvent as ToolInvokedEvent
from .events import ToolStartedEvent as ToolStartedEvent
from .events import ToolUndoFailedEvent as ToolUndoFailedEvent
from .events import ToolUndoneEvent as ToolUndoneEvent
from .executor import ToolExecutor as ToolExecutor
from .executor_v2 import AdvancedToolExecutor as AdvancedToolExecutor
from .executor_v2 import ExecutionResult as ExecutionResult
from .executor_v2 import ToolExecutorConfig as ToolExecutorConfig
from .registry import ResolvedToolCall as ResolvedToolCall
from .registry import ToolRegistry as ToolRegistry
from .registry import UnresolvedToolCall as UnresolvedToolCall
from .registry import clear_tool_registry as clear_tool_registry
from .registry import get_tool_registry as get_tool_registry
from .registry import register_tool as register_tool
from .registry import tool as tool
from .undo import UndoStore as UndoStore
from .undo import clear_undo_store as clear_undo_store
from .undo import get_undo_store as get_undo_store
from .undo import set_undo_store as set_undo_store

__all__ = [
    "Action",
    "AdvancedToolExecutor",
    "ApprovalDecidedEvent",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalRequestedEvent",
    "ApprovalService",
    "ApprovalStatus",
    "BaseTool",
    "DictContextAdapter",
    "DiffLine",
    "DiffResult",
    "DiffType",
    "ExecutionResult",
    "ResolvedToolCall",
    "Tool",
    "ToolApprovalDeniedError",
    "ToolApprovalTimeoutError",
    "ToolCompletedEvent",
    "ToolDefinition",
    "ToolDeniedError",
    "ToolDeniedEvent",
    "ToolError",
    "ToolEventBase",
    "ToolExecutionError",
    "ToolExecutor",
    "ToolExecutorConfig",
    "ToolFailedEvent",
    "ToolHandler",
    "ToolInput",
    "ToolInvokedEvent",
    "ToolNotFoundError",
    "ToolOutput",
    "ToolRegistry",
    "ToolStartedEvent",
    "ToolUndoError",
    "ToolUndoFailedEvent",
    "ToolUndoneEvent",
    "UndoHandler",
    "UndoMetadata",
    "UndoStore",
    "UnresolvedToolCall",
    "adapt_context",
    "clear_approval_service",
    "clear_tool_registry",
    "clear_undo_store",
    "diff_json",
    "diff_structured",
    "diff_text",
    "get_approval_service",
    "get_tool_registry",
    "get_undo_store",
    "register_tool",
    "set_approval_service",
    "set_undo_store",
    "tool",
]
