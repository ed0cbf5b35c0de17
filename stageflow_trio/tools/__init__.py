"""Tools: capability units that execute agent actions.

- :mod:`~stageflow_trio.tools.base`: the ``Tool`` protocol and ``BaseTool``.
- :mod:`~stageflow_trio.tools.registry`: the legacy ``ToolRegistry`` (global
  singleton, ``@tool``, ``register_tool``) and ``parse_and_resolve`` for model
  tool calls.
- :mod:`~stageflow_trio.tools.diff`: text, JSON Patch and dict diffs.
- :mod:`~stageflow_trio.tools.executor`: the v1 ``ToolExecutor`` (with
  ``spawn_subpipeline``).
- :mod:`~stageflow_trio.tools.adapters`: a plain dict as an ExecutionContext.

The v2 definitions and executor, approval, undo, tool errors and tool events
are not ported yet (docs/parity.md lists them).
"""

from __future__ import annotations

from .adapters import DictContextAdapter as DictContextAdapter
from .adapters import adapt_context as adapt_context
from .base import BaseTool as BaseTool
from .base import Tool as Tool
from .diff import DiffLine as DiffLine
from .diff import DiffResult as DiffResult
from .diff import DiffType as DiffType
from .diff import diff_json as diff_json
from .diff import diff_structured as diff_structured
from .diff import diff_text as diff_text
from .executor import ToolExecutor as ToolExecutor
from .registry import ResolvedToolCall as ResolvedToolCall
from .registry import ToolRegistry as ToolRegistry
from .registry import UnresolvedToolCall as UnresolvedToolCall
from .registry import clear_tool_registry as clear_tool_registry
from .registry import get_tool_registry as get_tool_registry
from .registry import register_tool as register_tool
from .registry import tool as tool

# The reference's tools.__all__ also lists the names of definitions, errors,
# events, executor_v2, undo and approval: they join here with their modules.
__all__ = [
    "BaseTool",
    "DictContextAdapter",
    "DiffLine",
    "DiffResult",
    "DiffType",
    "ResolvedToolCall",
    "Tool",
    "ToolExecutor",
    "ToolRegistry",
    "UnresolvedToolCall",
    "adapt_context",
    "clear_tool_registry",
    "diff_json",
    "diff_structured",
    "diff_text",
    "get_tool_registry",
    "register_tool",
    "tool",
]
