"""Tools. So far: the adapter that gives a plain dict the ExecutionContext API, and the
v1 :class:`ToolExecutor` (with ``spawn_subpipeline``).

The tool registry, the v2 executor, approval and undo are not ported
yet (docs/parity.md lists them).
"""

from __future__ import annotations

from .adapters import DictContextAdapter as DictContextAdapter
from .adapters import adapt_context as adapt_context
from .executor import ToolExecutor as ToolExecutor

__all__ = ["DictContextAdapter", "ToolExecutor", "adapt_context"]
