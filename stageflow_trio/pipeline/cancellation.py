"""Structured cancellation and cleanup for pipeline runs, on trio.

- :class:`CancellationToken`: a run's "please stop" flag (first reason wins, sync
  callbacks) that can also cancel bound ``trio.CancelScope`` objects, so a running stage
  is interrupted at its next checkpoint instead of being polled.
- :class:`CleanupRegistry`: async cleanup callbacks run last-in first-out, each shielded
  from outside cancellation and limited to its share of a time budget.
- :class:`StructuredTaskGroup`: the reference's task-group wrapper as a thin shim over a
  nursery, with a token and a registry that always runs on exit.
- :func:`cleanup_on_cancel` / :func:`run_with_cleanup`: one cleanup guaranteed after a
  block or an awaitable.

See ``docs/cancellation.md`` for what escapes from each and why.
"""

from __future__ import annotations

from stageflow_trio._engine._cleanup import CleanupCallback as CleanupCallback
from stageflow_trio._engine._cleanup import CleanupRegistry as CleanupRegistry
from stageflow_trio._engine._cleanup import cleanup_on_cancel as cleanup_on_cancel
from stageflow_trio._engine._cleanup import run_with_cleanup as run_with_cleanup
from stageflow_trio._engine._task_group import StructuredTaskGroup as StructuredTaskGroup
from stageflow_trio._engine._task_group import TaskHandle as TaskHandle
from stageflow_trio._engine._token import CancellationToken as CancellationToken
from stageflow_trio._exports import publish

__all__ = [
    "CancellationToken",
    "CleanupRegistry",
    "StructuredTaskGroup",
    "cleanup_on_cancel",
    "run_with_cleanup",
]

publish(__name__)
