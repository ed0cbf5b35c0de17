"""The scheduling kernel both graphs share.

A :class:`Topology` is computed once per graph (dependency sets, children,
in-degrees, roots), so a run costs O(stages + edges). A :class:`DagRun` holds
one run's state; the graph object holds none, so one graph can run many times
concurrently.

One nursery per run owns every stage task (a chain, which never has two
stages ready at once, needs no nursery: its run is one cancel scope). A stage
task runs its stage, then hands the completion to :meth:`DagRun.run_stage`
(synchronously, in the same task) which returns the stages that became ready. The first of those runs next
in the same task, after a checkpoint; the others get tasks of their own. A
chain therefore costs no task spawn per stage, and a fan-out spawns exactly one
task per extra branch. Between two inline stages the task passes a checkpoint
under the library's checkpoint budget (:mod:`stageflow_trio._budget`): it always
checks for cancellation, and it lets the scheduler switch at least every 64
stages and after any stretch of 1 ms, so stages that never await cannot starve
other tasks for long.

Stopping a run (a failure, a CANCEL output, a cancelled token) records the
outcome on the run and cancels the run's scope: running stages are
interrupted at their next checkpoint, and the graph raises the recorded
outcome after the run's scope has exited, so nothing the run started is alive
by then.
"""

from __future__ import annotations

import contextvars
import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import trio

from stageflow_trio._budget import cancel_called, checkpoint_due, schedule_point_due

if TYPE_CHECKING:
    import types
    from collections.abc import Coroutine, Generator, Mapping, Sequence

_T = TypeVar("_T")


class run_in_context(Generic[_T]):  # used like a function: await run_in_context(...)
    """Await ``coro`` with each of its steps run inside ``context``, in this task.

    What trio does for a task (``task.context.run(coro.send, ...)``), one level
    down: the context variables ``coro`` sets stay in ``context``, and the
    caller's own are left alone, without a task spawn or a scheduler pass. trio's
    traps pass through unchanged; what trio sends or throws in goes on to ``coro``.
    ``context`` must not be entered elsewhere while this runs.

    Stack introspection sees through it: it looks like a generator-based
    coroutine whose frame is ``coro``'s and which delegates to what ``coro``
    awaits, so ``trio.lowlevel.Task.iter_await_frames`` lists ``coro``'s frame
    once and goes on below it (every trio version: older ones need a frame there).
    """

    __slots__ = ("_context", "_coro")

    def __init__(self, context: contextvars.Context, coro: Coroutine[Any, Any, _T]) -> None:
        # The context, not its bound ``run``: one object less for the collector to
        # walk per run in flight, and a method call costs no more than the bound one.
        self._context = context
        self._coro = coro

    @property
    def gi_frame(self) -> types.FrameType | None:
        """``coro``'s frame (None once it has finished)."""
        frame: types.FrameType | None = getattr(self._coro, "cr_frame", None)
        return frame

    @property
    def gi_yieldfrom(self) -> object:
        """What ``coro`` is awaiting now."""
        return getattr(self._coro, "cr_await", None)

    def __await__(self) -> Generator[Any, Any, _T]:
        return self  # type: ignore[return-value]  # the iterator protocol, by hand

    def __next__(self) -> Any:
        return self._context.run(self._coro.send, None)

    def send(self, value: Any) -> Any:
        # The coroutine's StopIteration carries its return value out to the await.
        try:
            return self._context.run(self._coro.send, value)
        finally:
            # trio sends an exception as an outcome.Error: this frame is in that
            # exception's traceback, so keeping the outcome here would be a cycle.
            del value

    def throw(
        self,
        typ: type[BaseException] | BaseException,
        val: BaseException | None = None,
        tb: types.TracebackType | None = None,
    ) -> Any:
        # CPython delegates a throw with (type, value, traceback); pass one exception on.
        exc = val if val is not None else typ if isinstance(typ, BaseException) else typ()
        if tb is not None:
            exc = exc.with_traceback(tb)
        try:
            return self._context.run(self._coro.throw, exc)
        finally:
            # This frame is in the traceback of what the throw raises: no cycle through it.
            del exc, typ, val, tb

    def close(self) -> None:
        self._context.run(self._coro.close)


class Topology:
    """The static shape of a graph: computed once, shared by every run."""

    __slots__ = ("chain", "children", "dep_sets", "deps", "indegree", "names", "roots")

    def __init__(self, dependencies: Mapping[str, Sequence[str]]) -> None:
        names = tuple(dependencies)
        deps: dict[str, tuple[str, ...]] = {}
        children: dict[str, list[str]] = {name: [] for name in names}
        for name in names:
            unique = tuple(dict.fromkeys(dependencies[name]))
            deps[name] = unique
            for dep in unique:
                # Every dependency is a stage of the graph: the graphs and the builder
                # refuse a missing one before a Topology is made.
                children[dep].append(name)
        self.names = names
        self.deps = deps
        self.dep_sets = {name: frozenset(d) for name, d in deps.items()}
        self.children = {name: tuple(c) for name, c in children.items()}
        self.indegree = {name: len(d) for name, d in deps.items()}
        self.roots = tuple(name for name in names if not deps[name])
        # One root and at most one dependant per stage: the stages run one after
        # another, so a run never starts a second task.
        self.chain = len(self.roots) == 1 and all(len(c) <= 1 for c in self.children.values())


class DagRun(ABC):
    """One run of a graph: its cancel scope (and nursery), the in-degree countdown, the outcome.

    Args:
        topology: The graph's shape.
        sequential: The stages can only run one after another (a chain, with
            nothing that reruns a stage while another runs): the run opens a
            cancel scope instead of a nursery, as it never starts a task.
    """

    __slots__ = (
        "error",
        "nursery",
        "remaining",
        "scope",
        "scope_reason",
        "sequential",
        "stopped",
        "stray",
        "topology",
    )

    def __init__(self, topology: Topology, *, sequential: bool = False) -> None:
        self.topology = topology
        self.sequential = sequential
        self.remaining = dict(topology.indegree)
        self.nursery: trio.Nursery | None = None
        # The scope stop() cancels: the nursery's, or the sequential run's own.
        self.scope: trio.CancelScope | None = None
        self.stopped = False
        # The reason stop() cancelled the scope with, when it was the first to.
        self.scope_reason: str | None = None
        self.error: Exception | None = None
        # A trio.Cancelled a stage raised while nothing around it was cancelled (a
        # saved cancellation raised again): re-raised by drive() once the run ended.
        self.stray: trio.Cancelled | None = None

    @abstractmethod
    async def run_stage(self, name: str) -> Sequence[str]:
        """Run stage ``name`` and record its completion; return the stages now ready."""

    def on_started(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Called inside the run's scope before the roots start (bind tokens here)."""

    async def drive(self) -> None:
        """Run every stage to completion or until :meth:`stop`. A checkpoint."""
        # Stages may never await, so the run's checkpoint is explicit, in two
        # halves: the cancellation point here, and a schedule point at the end
        # (the nursery's exit always makes one; a sequential run makes one when
        # the checkpoint budget says it is due). Neither end raises Cancelled
        # once the stages are done: their results stand.
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.sequential:
            with trio.CancelScope() as scope:
                self.scope = scope
                self.on_started()
                if not (self.stopped or cancel_called(scope)):
                    (first,) = self.topology.roots
                    await run_in_context(contextvars.copy_context(), self._stage_task(first))
            self._raise_stray()
            if schedule_point_due():
                await trio.lowlevel.cancel_shielded_checkpoint()
            return
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.scope = nursery.cancel_scope
            self.on_started()
            if not (self.stopped or cancel_called(nursery.cancel_scope)):
                # Indexed, not unpacked: a list of the other roots would stay in
                # this frame, for the collector to walk, until the run ends.
                roots = self.topology.roots
                first = roots[0]
                for index in range(1, len(roots)):
                    nursery.start_soon(self._stage_task, roots[index])
                # The first root runs in the nursery's own body (one task spawn and
                # one scheduler pass less per run), in a copy of the caller's
                # context, as a task of its own would: a context variable a stage
                # sets (a tenant, a correlation id) never reaches the caller.
                await run_in_context(contextvars.copy_context(), self._stage_task(first))
        self._raise_stray()

    def _raise_stray(self) -> None:
        """Re-raise the stray ``trio.Cancelled`` a stage raised, if one did (see _stage_task)."""
        stray = self.stray
        if stray is not None:
            self.stray = None
            try:
                raise stray
            finally:
                del stray  # this frame is in its traceback: no cycle

    def stop(self, reason: str | None = None) -> None:
        """Stop the run: no new stage starts, running ones are cancelled. Idempotent.

        ``reason`` becomes the cancel reason the interrupted stages see.
        """
        self.stopped = True
        scope = self.scope
        if scope is not None:
            if not cancel_called(scope):  # the first reason stands, as trio keeps it
                self.scope_reason = reason or "cancelled"
            scope.cancel(reason=reason)

    def own_cancel_reason(self) -> str | None:
        """Why the run cancelled its own scope; None if it did not.

        This, not the ``Cancelled`` a stage sees, says why the run's stages were
        interrupted: that exception may come from a scope inside the stage (a
        sleep whose deadline passed at the same moment).
        """
        scope = self.scope
        if scope is None or not cancel_called(scope):
            return None
        return self.scope_reason or self.unrecorded_cancel_reason()

    def unrecorded_cancel_reason(self) -> str | None:
        """Why the scope was cancelled without :meth:`stop`; None if not by the run.

        trio also cancels a nursery's scope when one of its tasks raises (an
        outer ``Cancelled``, a KeyboardInterrupt): the exception's reason says why.
        """
        return None

    def fail(self, error: Exception) -> None:
        """Record ``error`` as the run's outcome (the first one wins) and stop."""
        if self.error is None:
            self.error = error
        self.stop("another stage failed")

    def release_children(self, name: str) -> list[str]:
        """Count ``name`` as done for its dependants; return those now ready."""
        ready: list[str] = []
        remaining = self.remaining
        for child in self.topology.children[name]:
            left = remaining[child] - 1
            remaining[child] = left
            if left == 0:
                ready.append(child)
        return ready

    async def _stage_task(self, name: str) -> None:
        scope = self.scope
        assert scope is not None
        if cancel_called(scope):
            # Spawned before the run stopped (stop cancels the scope) or was
            # cancelled from outside, this task steps only now: the stage has not
            # started, and no new stage starts then. The checkpoint delivers the
            # cancellation the stage would have met first.
            await trio.lowlevel.checkpoint()
            return  # pragma: no cover - the checkpoint raises: the task is in the scope
        while True:
            try:
                ready = await self.run_stage(name)
            except Exception as exc:  # noqa: BLE001 - recorded, re-raised by the graph
                self.fail(exc)
                return
            except trio.Cancelled as exc:
                if trio.current_effective_deadline() == -math.inf:
                    raise  # the run, or a scope around it, was cancelled: as it is
                # A stray Cancelled (one the stage saved and raised again, or carried
                # past its own scope): nothing around the run was cancelled. Raised as
                # is, the nursery, whose scope trio cancels because a task raised,
                # would catch it and the run would end as if nothing had happened
                # (the legacy graph "completed" with no results). It ends the run and
                # reaches the caller, as the same stage in a chain's run does.
                # The first and only one: stop() cancels the scope, so every later
                # Cancelled in this run meets the deadline of -inf above.
                self.stray = exc
                self.stop(f"stage {name} raised trio.Cancelled outside a cancelled scope")
                return
            scope = self.scope
            assert scope is not None
            # Stopped by the run itself, or its scope cancelled from outside (a
            # token bound to it): start nothing more.
            if self.stopped or not ready or cancel_called(scope):
                return
            if len(ready) > 1:
                nursery = self.nursery
                assert nursery is not None, "a sequential run made two stages ready at once"
                for other in ready[1:]:
                    nursery.start_soon(self._stage_task, other)
            name = ready[0]
            del ready  # not held while the next stage runs (the collector walks it)
            # Continuing inline costs no scheduler pass. Cancellation is still seen
            # between any two stages, and the budget makes a chain of stages that
            # never await yield to other tasks.
            if checkpoint_due():
                await trio.lowlevel.checkpoint()
