"""Catch tasks that outlive the run that started them.

:func:`assert_no_orphans` watches, with a trio :class:`~trio.abc.Instrument`, every
task spawned by the code inside its block (by the task that entered it, or by a task
that one spawned, at any depth), wherever the task was spawned: into a nursery of the
run, a nursery from outside it or the system nursery. When the block ends, any of
those tasks still alive is an orphan, and the block fails naming it.

The same watcher counts the schedule points of the watched tasks, which is how
:func:`stageflow_trio.testing.explore.explore_cancellation` numbers a run's
checkpoints and cancels it at one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["NoOrphans", "assert_no_orphans"]


class TaskWatcher(trio.abc.Instrument):
    """Track the tasks of one run, count their schedule points, cancel at one of them.

    ``root`` is the task that performs the run; while ``active``, every task spawned
    by a tracked task is tracked too. A step is what a task runs between two
    schedule points; ``steps`` counts the tracked tasks' steps and ``times`` holds
    the trio clock at each, less ``start`` (while ``record_times``). A task that
    exits leaves ``tracked``: state grows with the tasks alive, not with all run.

    With ``scope`` set, the watcher cancels it once: after step ``cancel_at_step``
    (0-based), from the run loop, outside any task (where trio itself expires
    deadlines), or when :meth:`cancel` is called. ``cancelled_at`` then holds the
    index of the last step before it (``cancelled_time`` the trio clock then),
    and ``interrupted`` the tracked tasks that
    received that cancellation's ``trio.Cancelled``, in the order they received
    it: a task blocked at the cancel receives it at once; a runnable one at its
    next unshielded checkpoint, possibly several steps later. ``on_interrupt`` is
    called with each such task as it receives it.

    How a task receives ``trio.Cancelled`` is seen from the scheduler: the
    cancelled scope's reason is unique to the cancel, trio hands it to every
    ``trio.Cancelled`` that cancellation raises, and each task is resumed with
    the outcome it is to receive, which ``before_task_step`` reads. (That outcome
    is the task's ``_next_send``, a private attribute of trio's ``Task``; should
    a future trio drop it, only the blocked tasks woken by the cancel itself are
    seen, as ``task_scheduled`` reports them.)
    """

    def __init__(self, root: trio.lowlevel.Task) -> None:
        self.reset(root)

    def reset(self, root: trio.lowlevel.Task) -> None:
        """Forget everything and watch a new run of ``root`` (installing an instrument costs more)."""
        self.root = root
        self.active = False
        #: Whether ``times`` gets the time of every step (the explorer's deadlines need it).
        self.record_times = True
        self.tracked: set[trio.lowlevel.Task] = {root}
        self.alive: dict[trio.lowlevel.Task, None] = {}  # insertion-ordered set
        self.steps: int = 0
        self.start: float = 0.0
        self.times: list[float] = []
        self.scope: trio.CancelScope | None = None
        self.cancel_at_step: int | None = None
        self.cancelled_at: int | None = None
        self.cancelled_time: float | None = None
        self.on_cancel: Callable[[], None] | None = None
        self.on_interrupt: Callable[[trio.lowlevel.Task], None] | None = None
        self.interrupted: list[trio.lowlevel.Task] = []
        self._cancelling = False
        self._reason: str | None = None
        self._exited: trio.lowlevel.Task | None = None

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if not self.active:
            return
        try:
            spawner = trio.lowlevel.current_task()
        except RuntimeError:  # pragma: no cover - spawned by the run loop itself: not ours
            return
        if spawner in self.tracked:
            self.tracked.add(task)
            self.alive[task] = None

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.alive.pop(task, None)
        # trio reports the exit inside the task's last step: after_task_step forgets it.
        self._exited = task

    def task_scheduled(self, task: trio.lowlevel.Task) -> None:
        # Woken by the cancel itself: blocked, so resumed with trio.Cancelled.
        if self._cancelling and task in self.tracked:
            self._interrupt(task)

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._reason is None or task not in self.tracked:
            return
        error = getattr(getattr(task, "_next_send", None), "error", None)
        # Only this cancel's trio.Cancelled: an inner timeout firing inside a
        # shielded cleanup, or a nursery cancelling its children, is not it.
        if isinstance(error, trio.Cancelled) and error.reason == self._reason:
            self._interrupt(task)

    def _interrupt(self, task: trio.lowlevel.Task) -> None:
        if task in self.interrupted:
            return
        self.interrupted.append(task)
        if self.on_interrupt is not None:
            self.on_interrupt(task)

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        exited = task is self._exited
        if exited:
            self._exited = None
        if self.active and task in self.tracked:
            index = self.steps
            self.steps += 1
            if self.record_times:
                # To the nanosecond: far finer than any timer, and free of float dust.
                self.times.append(round(trio.current_time() - self.start, 9))
            if index == self.cancel_at_step:
                self.cancel(f"checkpoint {index}")
        if exited and task is not self.root:
            # An exited task spawns and steps no more: forgetting it keeps a long block
            # (a soak test under assert_no_orphans) from holding every task it ever ran.
            self.tracked.discard(task)

    def cancel(self, where: str) -> None:
        """Cancel ``scope`` (once), noting which tasks that interrupted."""
        scope = self.scope
        if scope is None or self.cancelled_at is not None:
            return
        self.cancelled_at = self.steps - 1
        self.cancelled_time = trio.current_time()
        if self.on_cancel is not None:
            self.on_cancel()
        # The reason tells this cancel's trio.Cancelled from any other's.
        self._reason = f"explore_cancellation: {where}"
        self._cancelling = True
        try:
            scope.cancel(self._reason)
        finally:
            self._cancelling = False

    def orphans(self) -> list[str]:
        """The names of the tracked tasks still alive, in spawn order."""
        return [task.name for task in self.alive]


def _orphan_message(names: list[str]) -> str:
    listed = ", ".join(repr(name) for name in names)
    return (
        f"{len(names)} task(s) started during the run outlived it: {listed}"
        " (a task must not outlive the run that started it)"
    )


class NoOrphans:
    """What :func:`assert_no_orphans` returns: a sync and async context manager.

    Attributes:
        orphans: After the block, the names of the tasks that outlived it (empty when
            the block passed, or when it ended with an exception of its own).
    """

    def __init__(self) -> None:
        self.orphans: list[str] = []
        self._watcher: TaskWatcher | None = None

    def __enter__(self) -> NoOrphans:
        if self._watcher is not None:
            raise RuntimeError("assert_no_orphans(): this block is already in use")
        watcher = self._watcher = TaskWatcher(trio.lowlevel.current_task())
        watcher.record_times = False  # only the explorer reads them: O(1) memory per step
        trio.lowlevel.add_instrument(watcher)
        watcher.active = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        watcher = self._watcher
        assert watcher is not None
        self._watcher = None
        watcher.active = False
        trio.lowlevel.remove_instrument(watcher)
        self.orphans = watcher.orphans()
        # An exception from the block explains more than the orphans it left behind.
        if exc_type is None and self.orphans:
            raise AssertionError(_orphan_message(self.orphans))

    async def __aenter__(self) -> NoOrphans:
        await trio.lowlevel.checkpoint()
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Fail naming the orphans, as :meth:`__exit__`; a checkpoint when the block raised nothing."""
        self.__exit__(exc_type, exc, tb)
        if exc_type is None:
            await trio.lowlevel.checkpoint()


def assert_no_orphans() -> NoOrphans:
    """Fail if a task started inside the block is still running when the block ends.

    Use it around one run, as ``with assert_no_orphans():`` or ``async with
    assert_no_orphans():`` inside a trio task. Every task spawned by the block's
    code, directly or by a task it started, is watched, wherever it was spawned;
    the block raises ``AssertionError`` naming those still alive when it ends
    (unless the block raised first). The async form is a checkpoint on entry, and
    on exit when the block raised nothing. It holds state for the tasks alive, not
    for every task the block ran, so it can wrap a soak test of many runs.

    Raises:
        RuntimeError: called outside a trio run.
        AssertionError: a watched task outlived the block.
    """

    return NoOrphans()
