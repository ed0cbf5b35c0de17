"""Tools. So far: the adapter that gives a plain dict the ExecutionContext API.

The tool registry, executor, approval and undo subsystem (checklist Phase 8) are not
ported yet.
"""

from __future__ import annotations

from .adapters import DictContextAdapter as DictContextAdapter
from .adapters import adapt_context as adapt_context

__all__ = ["DictContextAdapter", "adapt_context"]
