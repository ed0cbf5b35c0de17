"""SubpipelineSpawner, gathered by :mod:`stageflow_trio.pipeline.subpipeline`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final
from uuid import UUID

import trio

from stageflow_trio._args import error_text
from stageflow_trio._budget import cancel_called, checkpoint_due
from stageflow_trio._groups import first_leaf
from stageflow_trio._time import utc_now_iso as _timestamp
from stageflow_trio._time import uuid4
from stageflow_trio.events import emit_event, get_event_sink
from stageflow_trio.pipeline._child_tracker import ChildRunTracker
from stageflow_trio.pipeline._subpipeline_values import (
    DEFAULT_MAX_SUBPIPELINE_DEPTH,
    MaxDepthExceededError,
    PipelineCanceledEvent,
    SubpipelineResult,
    SubpipelineRunner,
    _completed_payload,
    _failed_payload,
    _id_str,
    _spawned_payload,
    logger,
)
from stageflow_trio.stages.context import PipelineContext

# How many cancelled runs a spawner remembers by default (about 220 bytes each).
_DEFAULT_MAX_CANCELED_RUNS: Final = 10_000


class _ChildRun:
    """A child run in progress: its context, its cancel scope, who spawned it."""

    __slots__ = (
        "cancel_reason",
        "correlation_id",
        "ctx",
        "depth",
        "ids",
        "open_children",
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
        # Set by cancel_with_children: the spawner's record of this run's
        # cancellation while it holds the run, whatever its bounded table forgets.
        self.cancel_reason: str | None = None
        # (parent_run_id, run_id) as strings, made by the spawned_child event.
        self.ids: tuple[str, str] | None = None
        # How many child runs this spawner started under this run are running or
        # retained (see SubpipelineSpawner._retained).
        self.open_children = 0

    def id_strings(self) -> tuple[str, str]:
        """``(str(parent_run_id), str(run_id))``, for the events (only a child with a parent)."""
        ids = self.ids
        # Made by the spawned_child event, which every spawn sends before any other
        # event of the child (both are sent only for a child with a parent).
        assert ids is not None
        return ids


class _LastIdText:
    """``str(id)``, kept for the last id asked for (by identity: the same UUID object)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        # One tuple, replaced whole: a reader never pairs one id with another's string.
        self._last: tuple[UUID | None, str] = (None, "")

    def __call__(self, value: UUID) -> str:
        last = self._last
        if last[0] is value:
            return last[1]
        text = str(value)
        self._last = (value, text)
        return text


def _check_data_args(inherit_data: object, data_overrides: object) -> None:
    """The spawner's checks of what ``PipelineContext.fork`` builds the child's data from.

    Made before anything starts (and before the depth check), in the spawner's words.
    """
    if isinstance(inherit_data, str) or not isinstance(inherit_data, bool | Iterable):
        raise TypeError(
            f"inherit_data must be a bool or an iterable of keys, got {type(inherit_data).__name__}"
        )
    if data_overrides is not None and not isinstance(data_overrides, Mapping):
        raise TypeError(
            f"data_overrides must be a mapping or None, got {type(data_overrides).__name__}"
        )


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
            ``max_depth`` cannot spawn. Runs this spawner did not start are depth 0,
            so ``max_depth=0`` makes a spawner whose every spawn raises
            :class:`MaxDepthExceededError` (as in the reference: a way to forbid
            subpipelines).
        max_canceled_runs: How many cancelled runs :meth:`is_canceled` and
            :meth:`spawn` remember past the child runs this spawner still holds:
            the ones most recently cancelled or asked about. None remembers every
            one, as the reference does (the table then grows by one entry per
            cancelled run, for the spawner's life).

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: ``max_depth`` is negative or ``max_canceled_runs`` below 1.
    """

    def __init__(
        self,
        child_tracker: ChildRunTracker | None = None,
        emit_events: bool = True,
        max_depth: int = DEFAULT_MAX_SUBPIPELINE_DEPTH,
        *,
        max_canceled_runs: int | None = _DEFAULT_MAX_CANCELED_RUNS,
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
        if max_canceled_runs is not None:
            if isinstance(max_canceled_runs, bool) or not isinstance(max_canceled_runs, int):
                raise TypeError(
                    f"max_canceled_runs must be an int or None, got {type(max_canceled_runs).__name__}"
                )
            if max_canceled_runs < 1:
                raise ValueError(f"max_canceled_runs must be >= 1 or None, got {max_canceled_runs}")
        if child_tracker is None:
            # Through the public module, so that a patched get_child_tracker is used
            # (as the reference, whose spawner reads its own module's global).
            from stageflow_trio.pipeline import subpipeline

            child_tracker = subpipeline.get_child_tracker()
        self._tracker = child_tracker
        self._emit_events = emit_events
        self._max_depth = max_depth
        self._max_canceled_runs = max_canceled_runs
        # Run id -> reason, least recently cancelled or asked about first. Bounded:
        # a service's global spawner sees cancelled request trees for days, and
        # cannot tell when a root it did not start has ended. A child run this
        # spawner holds needs no entry (its cancel_reason answers), so dropping
        # the oldest entry never forgets a run the spawner can still stop.
        self._canceled_runs: OrderedDict[UUID, str] = OrderedDict()
        self._running: dict[UUID, _ChildRun] = {}  # also gives each running child's depth
        # Finished child runs that still have a running descendant this spawner
        # started (a detached grandchild in an outer nursery). The tracker has
        # dropped their link to their parent, as the reference's does; the spawner
        # keeps it so that cancel_with_children still reaches those descendants.
        self._retained: dict[UUID, _ChildRun] = {}
        # The strings of the last parent run id and correlation id the events
        # wrote: the children of one parent share them.
        self._parent_text = _LastIdText()
        self._correlation_text = _LastIdText()

    @property
    def max_depth(self) -> int:
        """How deep children may nest."""
        return self._max_depth

    @property
    def max_canceled_runs(self) -> int | None:
        """How many cancelled runs this spawner remembers past those it holds (None: all)."""
        return self._max_canceled_runs

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

        A checkpoint under the checkpoint budget (a cancellation point on every
        call; see :func:`stageflow_trio.lowlevel.cooperative_checkpoint`), and
        whatever checkpoints ``runner`` makes. The child context is ``ctx.fork(...)`` with a new run id
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
            cancelled (``ctx.canceled``, or :meth:`is_canceled` would say so), in
            which case nothing was started and no event is emitted.

        Raises:
            MaxDepthExceededError: ``ctx``'s run is at ``max_depth``; nothing started.
            TypeError: an argument has the wrong type.
            trio.Cancelled: this task was cancelled (the child with it).
        """
        if checkpoint_due():
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

        The child is started with ``nursery.start``: it is checked, registered and
        announced under this call, and moved into ``nursery`` only then, so an
        error on the way (a bad argument, the depth limit, the sink failing on
        ``spawned_child``) is raised here with nothing left registered.

        Returns:
            The child run id, or None when the parent run was already cancelled
            (nothing started).

        Raises:
            TypeError: ``nursery`` is missing or not a ``trio.Nursery``, or another
                argument has the wrong type.
            RuntimeError: ``nursery`` is closed (its ``async with`` block has
                exited); nothing was registered or emitted.
            MaxDepthExceededError: as for :meth:`spawn`; nothing started.
            trio.Cancelled: this task was cancelled before the child was handed
                to ``nursery``; the child is unregistered and its runner was not called.
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
        entered: list[bool] = []
        try:
            child_id: UUID | None = await nursery.start(
                self._start_detached,
                entered,
                (
                    pipeline_name,
                    ctx,
                    correlation_id,
                    parent_stage_id,
                    runner,
                    topology,
                    execution_mode,
                    inherit_data,
                    data_overrides,
                ),
            )
        except RuntimeError:
            if entered:  # raised by the child's own start-up (a sink error): as is
                raise
            # trio refused the task before it ran: the nursery is closed.
            raise RuntimeError(
                "spawn_detached(): nursery is closed to new arrivals (its async with block "
                "has exited); pass a nursery whose block is still running"
            ) from None
        return child_id

    async def _start_detached(
        self,
        entered: list[bool],
        args: tuple[
            str,
            PipelineContext,
            UUID,
            str,
            SubpipelineRunner,
            str | None,
            str | None,
            bool | Iterable[str],
            Mapping[str, Any] | None,
        ],
        *,
        task_status: trio.TaskStatus[UUID | None],
    ) -> None:
        """The detached child's task: start-up under ``nursery.start``, then the run."""
        entered.append(True)
        child = self._begin(*args)
        if isinstance(child, SubpipelineResult):
            task_status.started(None)
            return
        try:
            await self._emit_spawned(child)
        except BaseException:
            self._finish(child)
            raise
        task_status.started(child.run_id)
        try:
            # When the caller was cancelled during this start-up (its scope, or a
            # Ctrl-C), started() leaves this task in start()'s cancelled nursery and
            # spawn_detached raises Cancelled: the runner must not begin then (its code
            # up to its first checkpoint would run for a spawn the caller saw fail).
            await trio.lowlevel.checkpoint_if_cancelled()
            await self._run(child, args[4])
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
        # The child context would carry them as given, into every event and snapshot.
        if topology is not None and type(topology) is not str:
            raise TypeError(f"topology must be a str or None, got {type(topology).__name__}")
        if execution_mode is not None and type(execution_mode) is not str:
            raise TypeError(
                f"execution_mode must be a str or None, got {type(execution_mode).__name__}"
            )
        if inherit_data is not False or data_overrides is not None:
            _check_data_args(inherit_data, data_overrides)
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
        # The parent when this spawner holds it: running, or ended with a running
        # descendant (rare: _retained is almost always empty).
        parent = running_parent
        if parent is None and self._retained and parent_run_id is not None:
            parent = self._retained.get(parent_run_id)
        if (
            ctx.canceled
            or (parent is not None and parent.cancel_reason is not None)
            or (parent_run_id is not None and parent_run_id in self._canceled_runs)
        ):
            if parent_run_id is not None and parent_run_id in self._canceled_runs:
                # A run still trying to spawn is still alive: keep remembering it.
                self._canceled_runs.move_to_end(parent_run_id)
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
            inherit_data=inherit_data,
            data_overrides=data_overrides,
        )
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
            if parent is not None:
                parent.open_children += 1
        return child

    def _finish(self, child: _ChildRun) -> None:
        """Unregister a child that has ended; keep its parent link while runs below it go on.

        Called once per child, however it ended. No checkpoint.
        """
        if child.parent_run_id is not None:
            self._tracker._unregister(child.parent_run_id, child.run_id)
        self._running.pop(child.run_id, None)
        if child.open_children:
            # A child it started outlives it (detached into an outer nursery): keep
            # the link up the tree for cancel_with_children until that one ends.
            self._retained[child.run_id] = child
            return
        # Release the ancestors that were retained only for this run.
        current = child
        while current.parent_run_id is not None:
            parent = self._running.get(current.parent_run_id) or self._retained.get(
                current.parent_run_id
            )
            if parent is None:
                break
            parent.open_children -= 1
            if parent.open_children or parent.run_id not in self._retained:
                break
            del self._retained[parent.run_id]
            current = parent

    def _events_on(self, child: _ChildRun) -> bool:
        return self._emit_events and child.parent_run_id is not None

    async def _emit_spawned(self, child: _ChildRun) -> None:
        if self._events_on(child):
            assert child.parent_run_id is not None
            child.ids = (self._parent_text(child.parent_run_id), str(child.run_id))
            correlation_id = child.correlation_id
            correlation_text = (
                None if correlation_id is None else self._correlation_text(correlation_id)
            )
            payload = _spawned_payload(
                *child.ids,
                child.parent_stage_id,
                child.pipeline_name,
                correlation_text,
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
                if cancel_called(child.scope):
                    # Cancelled before it started (while its spawned_child event was
                    # being emitted): run nothing, and raise the Cancelled here, so
                    # that it goes to the outermost cancelled scope. When the parent
                    # run was cancelled in the same call, its spawn must end as
                    # cancelled too, not go on as if this child had merely failed.
                    await trio.lowlevel.checkpoint_if_cancelled()
                else:
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
                    *child.id_strings(),
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
        # error_text: a child error whose __str__ raises is still the child's failure.
        message = error_text(first_leaf(error))
        del error  # no reference cycle through this frame
        logger.error("Child pipeline %s failed: %s", child.run_id, message)
        if self._events_on(child):
            assert child.parent_run_id is not None
            payload = _failed_payload(
                *child.id_strings(),
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
        spawner) is marked and reported, not stopped. The spawner cannot tell when
        such a run ends, so it remembers it among the ``max_canceled_runs`` runs
        last cancelled or asked about (see :meth:`is_canceled`); a run it has
        forgotten counts as not cancelled before, and is marked and reported again.
        Its context, given in ``contexts``, stays marked: spawns with that context
        are refused for good.

        The subtree includes the runs below a child that has already ended: a
        child that handed a grandchild to an outer nursery with
        :meth:`spawn_detached` and returned is no longer linked to its parent in
        the tracker (as in the reference), but this spawner keeps that link until
        the grandchild ends, so the grandchild is cancelled (``cascade_depth``
        counts the ended child, which is neither marked nor reported).

        Returns:
            The newly cancelled run ids, in the order of their events.

        Raises:
            TypeError: ``run_id`` is not a UUID (a str id would match none of the
                UUIDs the spawner records) or ``reason`` is not a str; nothing is
                marked or emitted.
        """
        if not isinstance(run_id, UUID):
            raise TypeError(f"run_id must be a UUID, got {type(run_id).__name__}")
        if not isinstance(reason, str):
            raise TypeError(f"reason must be a str, got {type(reason).__name__}")
        await trio.lowlevel.checkpoint()
        # No checkpoint from here to the events: the tree is cancelled as one.
        canceled: list[tuple[UUID, UUID | None, int]] = []
        retained = self._retained
        links: dict[UUID, list[UUID]] | None = None
        if retained:
            links = {}
            for ended in retained.values():
                if ended.parent_run_id is not None:
                    links.setdefault(ended.parent_run_id, []).append(ended.run_id)
        canceled_runs = self._canceled_runs
        limit = self._max_canceled_runs
        for current, parent, depth in self._tracker._subtree(run_id, links):
            child = self._running.get(current)
            held = child if child is not None or not retained else retained.get(current)
            if (
                current in canceled_runs
                or (held is not None and held.cancel_reason is not None)
                or (depth and current in retained)
            ):
                continue
            canceled_runs[current] = reason
            if limit is not None and len(canceled_runs) > limit:
                canceled_runs.popitem(last=False)
            canceled.append((current, parent, depth))
            if contexts is not None and current in contexts:
                contexts[current].mark_canceled()
            if held is not None:
                held.cancel_reason = reason
            if child is not None:
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
        """Whether :meth:`cancel_with_children` has cancelled ``run_id``. A checkpoint.

        True for a cancelled child run this spawner still holds (running, or
        ended with a descendant still running), and for the ``max_canceled_runs``
        runs most recently cancelled or asked about: a True answer, like a spawn
        refused under the run, keeps the run remembered. An older run is
        forgotten, and the answer for it is False.

        Raises:
            TypeError: ``run_id`` is not a UUID (a str id would match none of the
                UUIDs the spawner records, and the answer would always be False).
        """
        if not isinstance(run_id, UUID):
            raise TypeError(f"run_id must be a UUID, got {type(run_id).__name__}")
        await trio.lowlevel.checkpoint()
        if run_id in self._canceled_runs:
            self._canceled_runs.move_to_end(run_id)
            return True
        held = self._running.get(run_id) or self._retained.get(run_id)
        return held is not None and held.cancel_reason is not None


async def _emit_all(event_type: str, payloads: list[dict[str, Any]]) -> None:
    """Emit each payload in order; after a cancellation, hand the rest to ``try_emit``."""
    for index, data in enumerate(payloads):
        try:
            await emit_event(type=event_type, data=data)
        except (trio.Cancelled, KeyboardInterrupt):
            # A cancelled emit delivered nothing (the sink contract), so it and the
            # rest go out without waiting; then the cancellation goes on. A Ctrl-C
            # lands at the emit's checkpoint the same way.
            sink = get_event_sink()
            try_emit = getattr(sink, "try_emit", None)
            if try_emit is not None:
                for rest in payloads[index:]:
                    try_emit(type=event_type, data=rest)
            raise
