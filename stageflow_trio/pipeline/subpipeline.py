"""Subpipelines: child pipeline runs spawned from a stage, tracked as a tree, cancelled as one.

- :class:`ChildRunTracker` keeps the parent/child links of running child runs.
- :class:`SubpipelineSpawner` runs a child: it forks the parent's
  :class:`~stageflow_trio.stages.context.PipelineContext`, enforces the nesting
  limit, emits the ``pipeline.*`` lifecycle events and returns a
  :class:`SubpipelineResult`.
- :meth:`SubpipelineSpawner.cancel_with_children` cancels a run's subtree.

The trio design: every child run executes inside its own ``trio.CancelScope``,
entered in the task that spawned it, so a child is always owned by its parent
run. Cancelling the parent (a failed sibling stage, a cancel token, a deadline)
cancels the child with it; :meth:`~SubpipelineSpawner.cancel_with_children`
cancels the scopes of a whole subtree at once, which the reference only flagged.
A child's failure comes back to the parent as a ``SubpipelineResult``, never as
an exception group.
"""

from __future__ import annotations

from contextvars import ContextVar

from stageflow_trio._exports import publish
from stageflow_trio._globals import install_once, register_global_reset
from stageflow_trio.pipeline._child_tracker import ChildRunTracker as ChildRunTracker
from stageflow_trio.pipeline._child_tracker import clear_child_tracker as clear_child_tracker
from stageflow_trio.pipeline._child_tracker import get_child_tracker as get_child_tracker
from stageflow_trio.pipeline._child_tracker import set_child_tracker as set_child_tracker
from stageflow_trio.pipeline._spawner import SubpipelineSpawner as SubpipelineSpawner
from stageflow_trio.pipeline._subpipeline_values import (
    DEFAULT_MAX_SUBPIPELINE_DEPTH as DEFAULT_MAX_SUBPIPELINE_DEPTH,
)
from stageflow_trio.pipeline._subpipeline_values import (
    MaxDepthExceededError as MaxDepthExceededError,
)
from stageflow_trio.pipeline._subpipeline_values import (
    PipelineCanceledEvent as PipelineCanceledEvent,
)
from stageflow_trio.pipeline._subpipeline_values import (
    PipelineChildCompletedEvent as PipelineChildCompletedEvent,
)
from stageflow_trio.pipeline._subpipeline_values import (
    PipelineChildFailedEvent as PipelineChildFailedEvent,
)
from stageflow_trio.pipeline._subpipeline_values import (
    PipelineSpawnedChildEvent as PipelineSpawnedChildEvent,
)
from stageflow_trio.pipeline._subpipeline_values import SubpipelineResult as SubpipelineResult

__all__ = [
    "DEFAULT_MAX_SUBPIPELINE_DEPTH",
    "ChildRunTracker",
    "MaxDepthExceededError",
    "PipelineCanceledEvent",
    "PipelineChildCompletedEvent",
    "PipelineChildFailedEvent",
    "PipelineSpawnedChildEvent",
    "SubpipelineResult",
    "SubpipelineSpawner",
    "clear_child_tracker",
    "clear_subpipeline_spawner",
    "get_child_tracker",
    "get_subpipeline_spawner",
    "set_child_tracker",
    "set_subpipeline_spawner",
]

# -- the process-wide instances ---------------------------------------------
#
# As with the global event sink, set_* binds an instance for the current context
# (a trio task and the tasks it starts afterwards); without one, get_* returns a
# single process-wide instance created on first use, so every task shares it.

_spawner_var: ContextVar[SubpipelineSpawner | None] = ContextVar(
    "subpipeline_spawner", default=None
)
_default_spawner: SubpipelineSpawner | None = None


def get_subpipeline_spawner() -> SubpipelineSpawner:
    """The spawner set for this context, else the process-wide one (created on first use)."""
    spawner = _spawner_var.get()
    if spawner is not None:
        return spawner
    spawner = _default_spawner
    if spawner is None:
        # Two threads may get here at once: both get the one installed first.
        spawner = install_once(globals(), "_default_spawner", SubpipelineSpawner())
    return spawner


def set_subpipeline_spawner(spawner: SubpipelineSpawner) -> None:
    """Use ``spawner`` in the current context (and the tasks it starts afterwards).

    Raises:
        TypeError: ``spawner`` is not a SubpipelineSpawner.
    """
    if not isinstance(spawner, SubpipelineSpawner):
        raise TypeError(f"spawner must be a SubpipelineSpawner, got {type(spawner).__name__}")
    _spawner_var.set(spawner)


def clear_subpipeline_spawner() -> None:
    """Forget the spawner set here and the process-wide one; the next get creates a new one."""
    global _default_spawner
    _spawner_var.set(None)
    _default_spawner = None


def _reset() -> None:
    clear_subpipeline_spawner()
    clear_child_tracker()


register_global_reset(_reset)

publish(__name__)
