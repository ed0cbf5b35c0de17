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

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, Final
from uuid import UUID

import attrs
import trio

from stageflow_trio._engine._errors import first_leaf
from stageflow_trio._errors import StageflowError
from stageflow_trio._globals import register_global_reset
from stageflow_trio._time import utc_now_iso as _timestamp
from stageflow_trio._time import uuid4
from stageflow_trio.events import emit_event, get_event_sink
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.utils.frozen import FrozenDict

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

logger: logging.Logger = logging.getLogger("stageflow_trio.subpipeline")

DEFAULT_MAX_SUBPIPELINE_DEPTH: Final = 5
"""How deeply subpipelines may nest by default: a run at depth 5 cannot spawn."""

SubpipelineRunner = Callable[[PipelineContext], Awaitable[Any]]


def _id_str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


# The payload builders are shared by the event classes' to_dict and the spawner,
# which builds the payloads directly (no event object per spawn).


def _spawned_payload(
    parent_run_id: UUID,
    child_run_id: UUID,
    parent_stage_id: str,
    pipeline_name: str,
    correlation_id: UUID | None,
    timestamp: str,
) -> dict[str, Any]:
    return {
        "parent_run_id": str(parent_run_id),
        "child_run_id": str(child_run_id),
        "parent_stage_id": parent_stage_id,
        "pipeline_name": pipeline_name,
        "correlation_id": None if correlation_id is None else str(correlation_id),
        "timestamp": timestamp,
    }


def _completed_payload(
    parent_run_id: UUID, child_run_id: UUID, pipeline_name: str, duration_ms: float, timestamp: str
) -> dict[str, Any]:
    return {
        "parent_run_id": str(parent_run_id),
        "child_run_id": str(child_run_id),
        "pipeline_name": pipeline_name,
        "duration_ms": duration_ms,
        "timestamp": timestamp,
    }


def _failed_payload(
    parent_run_id: UUID,
    child_run_id: UUID,
    pipeline_name: str,
    error_message: str,
    duration_ms: float,
    timestamp: str,
) -> dict[str, Any]:
    return {
        "parent_run_id": str(parent_run_id),
        "child_run_id": str(child_run_id),
        "pipeline_name": pipeline_name,
        "error_message": error_message,
        "duration_ms": duration_ms,
        "timestamp": timestamp,
    }


class MaxDepthExceededError(StageflowError):
    """A spawn would nest subpipelines deeper than the spawner's ``max_depth``.

    Attributes:
        current_depth: The depth of the parent run that tried to spawn.
        max_depth: The spawner's limit.
        parent_run_id: The parent run's id.
    """

    def __init__(self, current_depth: int, max_depth: int, parent_run_id: UUID | None) -> None:
        self.current_depth = current_depth
        self.max_depth = max_depth
        self.parent_run_id = parent_run_id
        super().__init__(
            f"Subpipeline depth {current_depth} exceeds maximum allowed depth {max_depth}. "
            f"Parent run: {parent_run_id}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.current_depth, self.max_depth, self.parent_run_id))


# -- events ------------------------------------------------------------------


@attrs.frozen
class PipelineSpawnedChildEvent:
    """The payload of ``pipeline.spawned_child``: a child run is about to start."""

    parent_run_id: UUID
    child_run_id: UUID
    parent_stage_id: str
    pipeline_name: str
    correlation_id: UUID | None
    timestamp: str = attrs.field(factory=_timestamp)

    def to_dict(self) -> dict[str, Any]:
        """Ids as strings; keys in the reference's order."""
        return _spawned_payload(
            self.parent_run_id,
            self.child_run_id,
            self.parent_stage_id,
            self.pipeline_name,
            self.correlation_id,
            self.timestamp,
        )


@attrs.frozen
class PipelineChildCompletedEvent:
    """The payload of ``pipeline.child_completed``: a child run returned."""

    parent_run_id: UUID
    child_run_id: UUID
    pipeline_name: str
    duration_ms: float = 0.0
    timestamp: str = attrs.field(factory=_timestamp)

    def to_dict(self) -> dict[str, Any]:
        """Ids as strings; keys in the reference's order."""
        return _completed_payload(
            self.parent_run_id,
            self.child_run_id,
            self.pipeline_name,
            self.duration_ms,
            self.timestamp,
        )


@attrs.frozen
class PipelineChildFailedEvent:
    """The payload of ``pipeline.child_failed``: a child run raised an exception."""

    parent_run_id: UUID
    child_run_id: UUID
    pipeline_name: str
    error_message: str
    duration_ms: float = 0.0
    timestamp: str = attrs.field(factory=_timestamp)

    def to_dict(self) -> dict[str, Any]:
        """Ids as strings; keys in the reference's order."""
        return _failed_payload(
            self.parent_run_id,
            self.child_run_id,
            self.pipeline_name,
            self.error_message,
            self.duration_ms,
            self.timestamp,
        )


@attrs.frozen
class PipelineCanceledEvent:
    """The payload of ``pipeline.canceled``: a run was cancelled by ``cancel_with_children``.

    ``cascade_depth`` is 0 for the run named in the call, 1 for its children, and so on.
    """

    pipeline_run_id: UUID
    parent_run_id: UUID | None = None
    reason: str = "user_requested"
    cascade_depth: int = 0
    timestamp: str = attrs.field(factory=_timestamp)

    def to_dict(self) -> dict[str, Any]:
        """Ids as strings (``parent_run_id`` None for a root); keys in the reference's order."""
        return {
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "parent_run_id": _id_str(self.parent_run_id),
            "reason": self.reason,
            "cascade_depth": self.cascade_depth,
            "timestamp": self.timestamp,
        }


# -- result ------------------------------------------------------------------


def _freeze_data(value: Mapping[str, Any] | None) -> FrozenDict[str, Any] | None:
    if value is None or isinstance(value, FrozenDict):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"data must be a mapping or None, got {type(value).__name__}")
    return FrozenDict(value)


@attrs.frozen
class SubpipelineResult:
    """The outcome of one child run.

    Attributes:
        success: True when the child's runner returned.
        child_run_id: The child run's id.
        data: What the runner returned (a dict as is, anything else under
            ``"result"``), read-only; None when the child did not succeed.
        error: Why the child did not succeed, else None.
        duration_ms: How long the child ran, on the trio clock.
    """

    success: bool
    child_run_id: UUID
    data: FrozenDict[str, Any] | None = attrs.field(default=None, converter=_freeze_data)
    error: str | None = None
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """``success``, ``child_run_id`` (str) and ``duration_ms``, plus ``data`` and
        ``error`` when they are not empty (as the reference)."""
        result: dict[str, Any] = {
            "success": self.success,
            "child_run_id": str(self.child_run_id),
            "duration_ms": self.duration_ms,
        }
        if self.data:
            result["data"] = dict(self.data)
        if self.error:
            result["error"] = self.error
        return result


# -- tracker -----------------------------------------------------------------


class ChildRunTracker:
    """The parent/child links between pipeline runs, and counters about them.

    Every method is a checkpoint and then runs without one, so concurrent tasks
    see each change whole (the reference needed an ``asyncio.Lock`` for this;
    under trio a task is only interrupted at a checkpoint). A cancelled call
    changes nothing.
    """

    def __init__(self) -> None:
        # Children are kept in insertion order (a dict used as an ordered set), so
        # traversals and cancellation cascades are deterministic.
        self._children: dict[UUID, dict[UUID, None]] = {}
        self._parents: dict[UUID, UUID] = {}
        self._registration_count = 0
        self._unregistration_count = 0
        self._lookup_count = 0
        self._tree_traversal_count = 0
        self._cleanup_count = 0
        self._max_concurrent_children = 0
        self._max_depth_seen = 0

    # The spawner's synchronous entry points: spawn and cancel_with_children must
    # not give up control between reading the tree and acting on it.

    def _register(self, parent_id: UUID, child_id: UUID) -> None:
        children = self._children.setdefault(parent_id, {})
        children[child_id] = None
        self._parents[child_id] = parent_id
        self._max_concurrent_children = max(self._max_concurrent_children, len(children))
        self._registration_count += 1

    def _unregister(self, parent_id: UUID, child_id: UUID) -> None:
        children = self._children.get(parent_id)
        if children is not None:
            children.pop(child_id, None)
            if not children:
                del self._children[parent_id]
        self._parents.pop(child_id, None)
        self._unregistration_count += 1

    def _subtree(self, run_id: UUID) -> list[tuple[UUID, UUID | None, int]]:
        """``(run, parent, depth)`` for ``run_id`` and its descendants, deepest first.

        Within a depth, runs come in breadth-first, registration order. Counts a
        lookup per run visited, as the reference's recursive walk did.
        """
        order: list[tuple[UUID, UUID | None, int]] = [(run_id, self._parents.get(run_id), 0)]
        seen = {run_id}
        index = 0
        while index < len(order):
            current, _, depth = order[index]
            index += 1
            self._lookup_count += 1
            for child in self._children.get(current, ()):
                if child not in seen:
                    seen.add(child)
                    order.append((child, current, depth + 1))
        order.sort(key=lambda item: -item[2])
        return order

    async def register_child(self, parent_id: UUID, child_id: UUID) -> None:
        """Record ``child_id`` as a child of ``parent_id``. A checkpoint."""
        await trio.lowlevel.checkpoint()
        self._register(parent_id, child_id)

    async def unregister_child(self, parent_id: UUID, child_id: UUID) -> None:
        """Forget that ``child_id`` is a child of ``parent_id``. A checkpoint."""
        await trio.lowlevel.checkpoint()
        self._unregister(parent_id, child_id)

    async def get_children(self, parent_id: UUID) -> set[UUID]:
        """A copy of the ids of ``parent_id``'s children. A checkpoint."""
        await trio.lowlevel.checkpoint()
        self._lookup_count += 1
        return set(self._children.get(parent_id, ()))

    async def get_parent(self, child_id: UUID) -> UUID | None:
        """The parent of ``child_id``, or None. A checkpoint."""
        await trio.lowlevel.checkpoint()
        self._lookup_count += 1
        return self._parents.get(child_id)

    async def get_all_descendants(self, run_id: UUID) -> set[UUID]:
        """Children, grandchildren and so on of ``run_id``. A checkpoint."""
        await trio.lowlevel.checkpoint()
        descendants: set[UUID] = set()
        to_visit = [run_id]
        while to_visit:
            for child in self._children.get(to_visit.pop(), ()):
                if child not in descendants:
                    descendants.add(child)
                    to_visit.append(child)
        self._tree_traversal_count += 1
        return descendants

    async def get_root_run(self, run_id: UUID) -> UUID:
        """The top-most ancestor of ``run_id`` (``run_id`` itself for a root). A checkpoint.

        Updates ``max_depth_seen`` with the number of links walked. A cycle of
        links (only possible through :meth:`register_child` misuse) stops the walk
        at the first run seen twice, where the reference looped forever.
        """
        await trio.lowlevel.checkpoint()
        current = run_id
        seen = {run_id}
        depth = 0
        while current in self._parents:
            parent = self._parents[current]
            if parent in seen:
                break
            seen.add(parent)
            current = parent
            depth += 1
        self._lookup_count += 1
        self._max_depth_seen = max(self._max_depth_seen, depth)
        return current

    async def cleanup_run(self, run_id: UUID) -> None:
        """Forget ``run_id``'s own link to its parent and its list of children. A checkpoint.

        As in the reference, the children keep their link to ``run_id``
        (:meth:`get_parent` still names it).
        """
        await trio.lowlevel.checkpoint()
        parent = self._parents.pop(run_id, None)
        if parent is not None:
            siblings = self._children.get(parent)
            if siblings is not None:
                siblings.pop(run_id, None)
                if not siblings:
                    del self._children[parent]
        self._children.pop(run_id, None)
        self._cleanup_count += 1

    async def get_metrics(self) -> dict[str, Any]:
        """The counters, plus the current numbers of parents and children. A checkpoint.

        Keys: ``registration_count``, ``unregistration_count``, ``lookup_count``,
        ``tree_traversal_count``, ``cleanup_count``, ``max_concurrent_children``,
        ``max_depth_seen``, ``active_parents``, ``active_children``,
        ``total_relationships`` (registrations minus unregistrations).
        """
        await trio.lowlevel.checkpoint()
        return {
            "registration_count": self._registration_count,
            "unregistration_count": self._unregistration_count,
            "lookup_count": self._lookup_count,
            "tree_traversal_count": self._tree_traversal_count,
            "cleanup_count": self._cleanup_count,
            "max_concurrent_children": self._max_concurrent_children,
            "max_depth_seen": self._max_depth_seen,
            "active_parents": len(self._children),
            "active_children": len(self._parents),
            "total_relationships": self._registration_count - self._unregistration_count,
        }

    async def reset_metrics(self) -> None:
        """Set every counter to zero (the links are kept). A checkpoint."""
        await trio.lowlevel.checkpoint()
        self._registration_count = 0
        self._unregistration_count = 0
        self._lookup_count = 0
        self._tree_traversal_count = 0
        self._cleanup_count = 0
        self._max_concurrent_children = 0
        self._max_depth_seen = 0


# -- spawner -----------------------------------------------------------------


class _ChildRun:
    """A child run in progress: its context, its cancel scope, who spawned it."""

    __slots__ = (
        "cancel_reason",
        "correlation_id",
        "ctx",
        "depth",
        "parent_run_id",
        "parent_stage_id",
        "pipeline_name",
        "run_id",
        "scope",
    )

    def __init__(
        self,
        run_id: UUID,
        ctx: PipelineContext,
        parent_run_id: UUID | None,
        parent_stage_id: str,
        pipeline_name: str,
        correlation_id: UUID | None,
        depth: int,
    ) -> None:
        self.run_id = run_id
        self.depth = depth
        self.ctx = ctx
        self.parent_run_id = parent_run_id
        self.parent_stage_id = parent_stage_id
        self.pipeline_name = pipeline_name
        self.correlation_id = correlation_id
        self.scope = trio.CancelScope()
        self.cancel_reason: str | None = None


def _child_data(
    parent: PipelineContext,
    inherit_data: bool | Iterable[str],
    data_overrides: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """The child's starting ``data`` (1.2.0's ``fork`` rules), or None for the default ``{}``."""
    if isinstance(inherit_data, str) or not isinstance(inherit_data, bool | Iterable):
        raise TypeError(
            f"inherit_data must be a bool or an iterable of keys, got {type(inherit_data).__name__}"
        )
    if data_overrides is not None and not isinstance(data_overrides, Mapping):
        raise TypeError(
            f"data_overrides must be a mapping or None, got {type(data_overrides).__name__}"
        )
    if inherit_data is True:
        data = parent.data.copy()
    elif inherit_data is False:
        data = {}
    else:
        data = {key: parent.data[key] for key in inherit_data if key in parent.data}
    if data_overrides:
        data.update(data_overrides)
    return data or None


def _check_ctx(ctx: object) -> None:
    if not isinstance(ctx, PipelineContext):
        hint = (
            " (a StageContext gives one with ctx.as_pipeline_context())"
            if hasattr(ctx, "as_pipeline_context")
            else ""
        )
        raise TypeError(f"ctx must be a PipelineContext{hint}, got {type(ctx).__name__}")


class SubpipelineSpawner:
    """Spawns child pipeline runs, limits their nesting, and cancels them as a tree.

    Args:
        child_tracker: Where parent/child links are kept; the global tracker
            (:func:`get_child_tracker`, read now) when None.
        emit_events: Emit the ``pipeline.*`` events to the global event sink.
        max_depth: How deep children may nest: a run spawned at depth
            ``max_depth`` cannot spawn. Runs this spawner did not start are depth 0.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: ``max_depth`` is negative.
    """

    def __init__(
        self,
        child_tracker: ChildRunTracker | None = None,
        emit_events: bool = True,
        max_depth: int = DEFAULT_MAX_SUBPIPELINE_DEPTH,
    ) -> None:
        if child_tracker is not None and not isinstance(child_tracker, ChildRunTracker):
            raise TypeError(
                f"child_tracker must be a ChildRunTracker or None, got {type(child_tracker).__name__}"
            )
        if not isinstance(emit_events, bool):
            raise TypeError(f"emit_events must be a bool, got {type(emit_events).__name__}")
        if isinstance(max_depth, bool) or not isinstance(max_depth, int):
            raise TypeError(f"max_depth must be an int, got {type(max_depth).__name__}")
        if max_depth < 0:
            raise ValueError(f"max_depth must be >= 0, got {max_depth}")
        self._tracker = child_tracker if child_tracker is not None else get_child_tracker()
        self._emit_events = emit_events
        self._max_depth = max_depth
        self._canceled_runs: dict[UUID, str] = {}  # run id -> reason
        self._running: dict[UUID, _ChildRun] = {}  # also gives each running child's depth

    @property
    def max_depth(self) -> int:
        """How deep children may nest."""
        return self._max_depth

    @property
    def child_tracker(self) -> ChildRunTracker:
        """The tracker that holds this spawner's parent/child links."""
        return self._tracker

    @property
    def running_children(self) -> frozenset[UUID]:
        """The ids of the child runs this spawner has started and not yet finished."""
        return frozenset(self._running)

    async def spawn(
        self,
        pipeline_name: str,
        ctx: PipelineContext,
        correlation_id: UUID,
        parent_stage_id: str,
        runner: SubpipelineRunner,
        *,
        topology: str | None = None,
        execution_mode: str | None = None,
        inherit_data: bool | Iterable[str] = False,
        data_overrides: Mapping[str, Any] | None = None,
    ) -> SubpipelineResult:
        """Run ``runner`` on a fork of ``ctx`` as a child run, in this task, and wait for it.

        A checkpoint. The child context is ``ctx.fork(...)`` with a new run id
        (parent linkage kept), ``topology`` and ``execution_mode`` when given, and
        ``data`` from ``inherit_data`` (True: a copy of the parent's data; keys: those
        keys) updated with ``data_overrides``. The child runs inside its own cancel
        scope, which :meth:`cancel_with_children` cancels.

        When ``ctx`` has a run id, the child is registered with the tracker while
        it runs, and (with events on) ``pipeline.spawned_child`` is emitted
        before the runner starts and ``pipeline.child_completed`` or
        ``pipeline.child_failed`` after it ends, all to the global event sink.

        Returns:
            ``success=True`` and the runner's return value as ``data`` (a dict
            as is, anything else as ``{"result": value}``); ``success=False`` with
            ``error`` when the runner raised an exception (the first leaf of an
            exception group), when :meth:`cancel_with_children` stopped the child
            (``"Child pipeline canceled: {reason}"``, no ``child_failed`` event:
            ``pipeline.canceled`` reports it), or when the parent run was already
            cancelled, in which case nothing was started and no event is emitted.

        Raises:
            MaxDepthExceededError: ``ctx``'s run is at ``max_depth``; nothing started.
            TypeError: an argument has the wrong type.
            trio.Cancelled: this task was cancelled (the child with it).
        """
        await trio.lowlevel.checkpoint()
        child = self._begin(
            pipeline_name,
            ctx,
            correlation_id,
            parent_stage_id,
            runner,
            topology,
            execution_mode,
            inherit_data,
            data_overrides,
        )
        if isinstance(child, SubpipelineResult):
            return child
        try:
            await self._emit_spawned(child)
            return await self._run(child, runner)
        finally:
            self._finish(child)

    async def spawn_detached(
        self,
        pipeline_name: str,
        ctx: PipelineContext,
        correlation_id: UUID,
        parent_stage_id: str,
        runner: SubpipelineRunner,
        *,
        nursery: trio.Nursery | None = None,
        topology: str | None = None,
        execution_mode: str | None = None,
        inherit_data: bool | Iterable[str] = False,
        data_overrides: Mapping[str, Any] | None = None,
    ) -> UUID | None:
        """Start a child run in ``nursery`` and return its id without waiting for it.

        The trio form of the reference's fire-and-forget spawn
        (``asyncio.create_task(spawner.spawn(...))``): the child belongs to
        ``nursery``, whose block waits for it and whose cancellation cancels it. A
        checkpoint. When this returns, the child is registered and its
        ``pipeline.spawned_child`` event emitted; its outcome is reported only by
        the ``child_completed`` / ``child_failed`` events. Arguments as for
        :meth:`spawn`.

        Returns:
            The child run id, or None when the parent run was already cancelled
            (nothing started).

        Raises:
            TypeError: ``nursery`` is missing or not a ``trio.Nursery``.
            MaxDepthExceededError: as for :meth:`spawn`; nothing started.
        """
        if nursery is None:
            raise TypeError(
                "spawn_detached() needs nursery=: a detached child run must be owned by a "
                "nursery the caller opens (async with trio.open_nursery() as nursery); "
                "to run the child in this task, await spawn(...) instead"
            )
        if not isinstance(nursery, trio.Nursery):
            raise TypeError(f"nursery must be a trio.Nursery, got {type(nursery).__name__}")
        await trio.lowlevel.checkpoint()
        child = self._begin(
            pipeline_name,
            ctx,
            correlation_id,
            parent_stage_id,
            runner,
            topology,
            execution_mode,
            inherit_data,
            data_overrides,
        )
        if isinstance(child, SubpipelineResult):
            return None
        try:
            await self._emit_spawned(child)
            nursery.start_soon(self._run_detached, child, runner)
        except BaseException:
            self._finish(child)
            raise
        return child.run_id

    async def _run_detached(self, child: _ChildRun, runner: SubpipelineRunner) -> None:
        try:
            await self._run(child, runner)
        finally:
            self._finish(child)

    def _begin(
        self,
        pipeline_name: str,
        ctx: PipelineContext,
        correlation_id: UUID,
        parent_stage_id: str,
        runner: SubpipelineRunner,
        topology: str | None,
        execution_mode: str | None,
        inherit_data: bool | Iterable[str],
        data_overrides: Mapping[str, Any] | None,
    ) -> _ChildRun | SubpipelineResult:
        """Check, fork and register a child; no checkpoint, so nothing can slip in between.

        Returns the failed result to hand back when the parent is already cancelled.
        """
        if not isinstance(pipeline_name, str):
            raise TypeError(f"pipeline_name must be a str, got {type(pipeline_name).__name__}")
        _check_ctx(ctx)
        if not isinstance(parent_stage_id, str):
            raise TypeError(f"parent_stage_id must be a str, got {type(parent_stage_id).__name__}")
        if not callable(runner):
            raise TypeError(
                f"runner must be an async callable taking the child PipelineContext, "
                f"got {type(runner).__name__}"
            )
        data = (
            None
            if inherit_data is False and data_overrides is None
            else _child_data(ctx, inherit_data, data_overrides)
        )
        parent_run_id = ctx.pipeline_run_id
        running_parent = self._running.get(parent_run_id) if parent_run_id is not None else None
        depth = 0 if running_parent is None else running_parent.depth
        if depth >= self._max_depth:
            logger.error(
                "Max subpipeline depth exceeded: %d >= %d",
                depth,
                self._max_depth,
                extra={
                    "parent_run_id": _id_str(parent_run_id),
                    "current_depth": depth,
                    "max_depth": self._max_depth,
                },
            )
            raise MaxDepthExceededError(depth, self._max_depth, parent_run_id)
        child_run_id = uuid4()
        if ctx.canceled or (parent_run_id is not None and parent_run_id in self._canceled_runs):
            logger.info(
                "Parent run %s is canceled; child pipeline %s not started",
                parent_run_id,
                pipeline_name,
            )
            return SubpipelineResult(
                success=False,
                child_run_id=child_run_id,
                error=f"Parent run {parent_run_id} was canceled; the child pipeline was not started",
            )
        child_ctx = ctx.fork(
            child_run_id,
            parent_stage_id,
            correlation_id,
            topology=topology,
            execution_mode=execution_mode,
        )
        if data is not None:
            child_ctx.data.update(data)
        # No checkpoint from here until the caller's try block: the state below is
        # undone by _finish.
        child = _ChildRun(
            child_run_id,
            child_ctx,
            parent_run_id,
            parent_stage_id,
            pipeline_name,
            child_ctx.correlation_id,
            depth + 1,
        )
        self._running[child_run_id] = child
        if parent_run_id is not None:
            self._tracker._register(parent_run_id, child_run_id)
        return child

    def _finish(self, child: _ChildRun) -> None:
        if child.parent_run_id is not None:
            self._tracker._unregister(child.parent_run_id, child.run_id)
        self._running.pop(child.run_id, None)

    def _events_on(self, child: _ChildRun) -> bool:
        return self._emit_events and child.parent_run_id is not None

    async def _emit_spawned(self, child: _ChildRun) -> None:
        if self._events_on(child):
            assert child.parent_run_id is not None
            payload = _spawned_payload(
                child.parent_run_id,
                child.run_id,
                child.parent_stage_id,
                child.pipeline_name,
                child.correlation_id,
                _timestamp(),
            )
            await emit_event(type="pipeline.spawned_child", data=payload)

    async def _run(self, child: _ChildRun, runner: SubpipelineRunner) -> SubpipelineResult:
        """Run the child in its scope and report the outcome (the caller calls _finish)."""
        started = trio.current_time()
        value: Any = None
        error: Exception | None = None
        ran = False
        try:
            # The scope catches only its own cancellation (cancel_with_children); a
            # cancellation of this task passes through it to the parent.
            with child.scope:
                if not child.scope.cancel_called:  # cancelled before it started: run nothing
                    value = await runner(child.ctx)
                    ran = True
        except Exception as exc:  # noqa: BLE001 - a child failure becomes the result
            error = exc
        except BaseException:
            child.ctx.mark_canceled()
            raise
        duration_ms = (trio.current_time() - started) * 1000
        if error is None and not ran:
            child.ctx.mark_canceled()
            return SubpipelineResult(
                success=False,
                child_run_id=child.run_id,
                error=f"Child pipeline canceled: {child.cancel_reason}",
                duration_ms=duration_ms,
            )
        if error is None:
            if self._events_on(child):
                assert child.parent_run_id is not None
                payload = _completed_payload(
                    child.parent_run_id,
                    child.run_id,
                    child.pipeline_name,
                    duration_ms,
                    _timestamp(),
                )
                await emit_event(type="pipeline.child_completed", data=payload)
            return SubpipelineResult(
                success=True,
                child_run_id=child.run_id,
                data=value if isinstance(value, dict) else {"result": value},
                duration_ms=duration_ms,
            )
        message = str(first_leaf(error))
        del error  # no reference cycle through this frame
        logger.error("Child pipeline %s failed: %s", child.run_id, message)
        if self._events_on(child):
            assert child.parent_run_id is not None
            payload = _failed_payload(
                child.parent_run_id,
                child.run_id,
                child.pipeline_name,
                message,
                duration_ms,
                _timestamp(),
            )
            await emit_event(type="pipeline.child_failed", data=payload)
        return SubpipelineResult(
            success=False, child_run_id=child.run_id, error=message, duration_ms=duration_ms
        )

    async def cancel_with_children(
        self,
        run_id: UUID,
        reason: str = "user_requested",
        contexts: Mapping[UUID, PipelineContext] | None = None,
    ) -> list[UUID]:
        """Cancel ``run_id`` and every run below it, deepest first.

        A checkpoint, then, without another one: the subtree is read from the
        tracker, each run not cancelled before is marked (:meth:`is_canceled`, its
        context in ``contexts`` and the context this spawner forked for it get
        ``mark_canceled()``), and the cancel scope of each child run this spawner
        is running is cancelled, so those children stop at their next checkpoint
        (their owners wait for them to unwind) and no new child starts under any of
        them. Then, with events on, ``pipeline.canceled`` is emitted per newly
        cancelled run, deepest first (``cascade_depth`` 0 for ``run_id``). If this
        task is itself inside the cancelled subtree, the events not yet emitted
        when its cancellation arrives go out through the sink's ``try_emit``.

        A run this spawner did not start (the root of a tree, or a child of another
        spawner) is marked and reported, not stopped.

        Returns:
            The newly cancelled run ids, in the order of their events.
        """
        await trio.lowlevel.checkpoint()
        # No checkpoint from here to the events: the tree is cancelled as one.
        canceled: list[tuple[UUID, UUID | None, int]] = []
        for current, parent, depth in self._tracker._subtree(run_id):
            if current in self._canceled_runs:
                continue
            self._canceled_runs[current] = reason
            canceled.append((current, parent, depth))
            if contexts is not None and current in contexts:
                contexts[current].mark_canceled()
            child = self._running.get(current)
            if child is not None:
                child.cancel_reason = reason
                child.ctx.mark_canceled()
                child.scope.cancel(reason=f"cancel_with_children: {reason}")
        if self._emit_events:
            self._tracker._lookup_count += len(canceled)  # the reference's get_parent calls
            payloads = [
                PipelineCanceledEvent(
                    pipeline_run_id=current,
                    parent_run_id=parent,
                    reason=reason,
                    cascade_depth=depth,
                ).to_dict()
                for current, parent, depth in canceled
            ]
            await _emit_all("pipeline.canceled", payloads)
        return [current for current, _, _ in canceled]

    async def is_canceled(self, run_id: UUID) -> bool:
        """Whether :meth:`cancel_with_children` has cancelled ``run_id``. A checkpoint."""
        await trio.lowlevel.checkpoint()
        return run_id in self._canceled_runs


async def _emit_all(event_type: str, payloads: list[dict[str, Any]]) -> None:
    """Emit each payload in order; after a cancellation, hand the rest to ``try_emit``."""
    for index, data in enumerate(payloads):
        try:
            await emit_event(type=event_type, data=data)
        except trio.Cancelled:
            # A cancelled emit delivered nothing (the sink contract), so it and the
            # rest go out without waiting; then the cancellation goes on.
            sink = get_event_sink()
            try_emit = getattr(sink, "try_emit", None)
            if try_emit is not None:
                for rest in payloads[index:]:
                    try_emit(type=event_type, data=rest)
            raise


# -- the process-wide instances ---------------------------------------------
#
# As with the global event sink, set_* binds an instance for the current context
# (a trio task and the tasks it starts afterwards); without one, get_* returns a
# single process-wide instance created on first use, so every task shares it.

_tracker_var: ContextVar[ChildRunTracker | None] = ContextVar("child_tracker", default=None)
_spawner_var: ContextVar[SubpipelineSpawner | None] = ContextVar(
    "subpipeline_spawner", default=None
)
_default_tracker: ChildRunTracker | None = None
_default_spawner: SubpipelineSpawner | None = None


def get_child_tracker() -> ChildRunTracker:
    """The tracker set for this context, else the process-wide one (created on first use)."""
    global _default_tracker
    tracker = _tracker_var.get()
    if tracker is not None:
        return tracker
    if _default_tracker is None:
        _default_tracker = ChildRunTracker()
    return _default_tracker


def set_child_tracker(tracker: ChildRunTracker) -> None:
    """Use ``tracker`` in the current context (and the tasks it starts afterwards).

    Raises:
        TypeError: ``tracker`` is not a ChildRunTracker.
    """
    if not isinstance(tracker, ChildRunTracker):
        raise TypeError(f"tracker must be a ChildRunTracker, got {type(tracker).__name__}")
    _tracker_var.set(tracker)


def clear_child_tracker() -> None:
    """Forget the tracker set here and the process-wide one; the next get creates a new one."""
    global _default_tracker
    _tracker_var.set(None)
    _default_tracker = None


def get_subpipeline_spawner() -> SubpipelineSpawner:
    """The spawner set for this context, else the process-wide one (created on first use)."""
    global _default_spawner
    spawner = _spawner_var.get()
    if spawner is not None:
        return spawner
    if _default_spawner is None:
        _default_spawner = SubpipelineSpawner()
    return _default_spawner


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
