"""The checkpoint budget: a cancellation check on every call, a schedule point when due.

A trio checkpoint is two things: a point where cancellation is delivered and a
point where the scheduler may switch tasks. trio currently switches at every
checkpoint, which costs one pass of its run loop (about 2.5 us in CPython) even
when nothing else is runnable. trio's docs say this policy "might change", and
trio issue #1757 (open; a maintainer calls it "a pure optimization") proposes
skipping the switch when the task switched recently.

This module applies that policy to the library's hottest data-path calls
(``OutputBag.write``, ``ContextBag.write``, ``ChunkQueue.put`` and ``get``), to
the engine between two stages that run in one task, where a graph enters a
stage's interceptor chain, and to ``SubpipelineSpawner.spawn``; a chain-shaped
graph run ends with a shielded schedule point when one is due. Each call:

- always checks for cancellation (what ``trio.lowlevel.checkpoint_if_cancelled``
  checks, read synchronously by :func:`checkpoint_due`), so a cancelled call
  raises ``Cancelled`` before it changes anything;
- makes a full schedule point (``trio.lowlevel.checkpoint``) when one is due:
  on the first budgeted call of a thread, on every ``calls``-th budgeted call
  after a schedule point (so at most ``calls - 1`` in a row without one), or
  once ``seconds`` of real time have passed since the last.

The state is per thread (trio runs one at a time in a thread, and a new run
carries on the thread's budget): while a task runs, only it can spend the
budget, so no task makes more than ``calls - 1`` budgeted calls in a row without
a schedule point. (At a schedule point trio may run the same task again first
in its next batch, so another task can wait for up to about two budgets.) :class:`checkpoint_budget` changes the policy for a block;
``checkpoint_budget(calls=1)`` restores trio's switch-every-time behaviour (what
``trio.testing.assert_checkpoints`` checks).

One thing a budgeted call does not see at once: an expired *deadline*. trio
turns a passed deadline into a cancellation when its run loop runs, that is at
a schedule point, so a deadline that passes during a run of budgeted calls takes
effect at the next schedule point (within ``calls`` calls or ``seconds``). An
explicit ``cancel()`` is seen by the very next call.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import trio

from stageflow_trio._args import unfit_for_float
from stageflow_trio._globals import register_global_reset

DEFAULT_CALLS = 64
"""Every this-many-th budgeted call after a schedule point is a schedule point."""

DEFAULT_SECONDS = 0.001
"""Real time after which the next budgeted call makes a schedule point (1 ms,
inside the 0.5-5 ms range trio issue #1757 discusses)."""

# The wall clock in integer nanoseconds, not perf_counter: OutputBag.write reads
# it once per call for both its budget and its entry's timestamp (exact to the
# microsecond, as datetime.now() is). A step forward brings one schedule point
# early; a step back holds the time trigger off for as long as the step, and
# the calls bound still holds. (On Windows before Python 3.13 this clock ticks
# every ~15.6 ms, so the time trigger is that coarse there.)
_clock = time.time_ns


# Far beyond any clock reading: what seconds=math.inf becomes.
_NEVER = 1 << 100


def _nanoseconds(seconds: float) -> int:
    """``seconds`` in the clock's nanoseconds; inf and anything beyond ``_NEVER`` is ``_NEVER``."""
    span = seconds * 1e9
    return _NEVER if span >= _NEVER else round(span)


class _BudgetState:
    __slots__ = ("blocks", "calls", "calls_left", "deadline", "seconds", "span")

    def __init__(self) -> None:
        self.calls = DEFAULT_CALLS
        self.seconds = DEFAULT_SECONDS
        # The same in the clock's integer nanoseconds (int with int is the
        # fastest arithmetic and comparison on the hot path).
        self.span = _nanoseconds(DEFAULT_SECONDS)
        # 0 makes the first budgeted call of a thread a schedule point.
        self.calls_left = 0
        self.deadline = 0
        # Open checkpoint_budget blocks, oldest first: (entry token, calls, seconds).
        self.blocks: list[tuple[object, int, float]] = []

    def apply_blocks(self) -> None:
        """Use the policy of the newest open block (the default if none); start fresh."""
        if self.blocks:
            _, self.calls, self.seconds = self.blocks[-1]
        else:
            self.calls, self.seconds = DEFAULT_CALLS, DEFAULT_SECONDS
        self.span = _nanoseconds(self.seconds)
        self.calls_left = 0


# One state per thread, shared by the trio runs of that thread; a plain object
# behind one thread-local lookup is faster than a threading.local subclass's
# attributes.
_local = threading.local()


def _thread_state() -> _BudgetState:
    try:
        state: _BudgetState = _local.state
    except AttributeError:
        state = _local.state = _BudgetState()
    return state


def _reset() -> None:
    # Tests start from the default policy and a fresh budget, whatever ran before.
    _local.state = _BudgetState()


register_global_reset(_reset)


def schedule_point_due(now: int | None = None) -> bool:
    """Spend one call of the budget; whether this call must be a schedule point.

    Synchronous; the budgeted calls use :func:`checkpoint_due`, which adds the
    cancellation check. A ``True`` answer starts a fresh budget.

    Args:
        now: ``time.time_ns()`` if the caller has just read it (so one clock
            read serves both); read here when omitted.
    """
    try:
        state: _BudgetState = _local.state
    except AttributeError:
        state = _thread_state()
    if now is None:
        now = _clock()
    left = state.calls_left
    if left <= 1 or now >= state.deadline:
        state.calls_left = state.calls
        state.deadline = now + state.span
        return True
    state.calls_left = left - 1
    return False


# Where trio keeps the running task (what trio.lowlevel.current_task reads):
# read directly, it saves that function's call on every budgeted call. None if a
# trio release moves it; then the public function is used.
_RUN_CONTEXT: Any
try:
    from trio._core import _run as _trio_run

    _RUN_CONTEXT = _trio_run.GLOBAL_RUN_CONTEXT
except (ImportError, AttributeError):  # pragma: no cover - a trio without it
    _RUN_CONTEXT = None


def checkpoint_due(now: int | None = None) -> bool:
    """Spend one call of the budget; whether this call must make a full checkpoint.

    True when a schedule point is due (as :func:`schedule_point_due`) or the
    calling task is cancelled, so a hot path is one synchronous call and, in
    the common case, no await at all::

        if checkpoint_due():
            await trio.lowlevel.checkpoint()  # raises Cancelled when cancelled

    That is what ``schedule_point_due()`` followed by
    ``trio.lowlevel.checkpoint_if_cancelled()`` does, without the coroutine: the
    cancellation test reads the running task where ``trio.lowlevel.current_task``
    reads it and its cancel status the way ``checkpoint_if_cancelled`` itself
    does (trio keeps it on the task, with no public accessor short of
    ``current_effective_deadline()``, which walks the scope chain). Should a trio
    release move either, every call takes the full checkpoint: slower, never
    wrong. One difference: a KeyboardInterrupt pending
    for the main task is delivered at the next schedule point rather than at the
    next call.

    Args:
        now: ``time.time_ns()`` if the caller has just read it; read here when omitted.

    Raises:
        RuntimeError: Called outside a trio task.
    """
    # schedule_point_due's lines, inlined: one call less on every budgeted call.
    try:
        state: _BudgetState = _local.state
    except AttributeError:
        state = _thread_state()
    if now is None:
        now = _clock()
    left = state.calls_left
    if left <= 1 or now >= state.deadline:
        state.calls_left = state.calls
        state.deadline = now + state.span
        return True
    state.calls_left = left - 1
    try:
        task = _RUN_CONTEXT.task
        if task._cancel_status.effectively_cancelled:
            return True
        # Counted as checkpoint_if_cancelled counts it (trio.testing's
        # assert_checkpoints reads the count).
        task._cancel_points += 1
    except AttributeError:
        # Outside a trio task (current_task raises RuntimeError then), or a trio
        # that keeps these elsewhere: a full checkpoint decides.
        trio.lowlevel.current_task()
        return True
    return False


def cancelled_now() -> bool:
    """Whether the calling task is cancelled: ``trio.current_effective_deadline() == -inf``.

    Read from the task's cancel status, where :func:`checkpoint_due` reads it (that
    function inlines the read on its hot path), instead of walking every scope around
    the task. A trio that keeps the status elsewhere gets the public walk. (A
    deadline that has passed counts from the next schedule point, as for a budgeted
    call.)
    """
    try:
        return bool(_RUN_CONTEXT.task._cancel_status.effectively_cancelled)
    except AttributeError:  # pragma: no cover - a trio that keeps it elsewhere
        return trio.current_effective_deadline() == -math.inf


def cancel_called(scope: trio.CancelScope) -> bool:
    """``scope.cancel_called`` for a scope with no deadline, without reading the clock.

    trio's property reads the clock on every call (to cancel a scope whose
    deadline has passed), 0.2 us of the engine's per-stage bookkeeping; the
    scopes the engine and the spawner test (a run's, a nursery's, a child
    run's) never have a deadline, so trio's flag alone is the answer. A trio
    that keeps the flag elsewhere gets the property.
    """
    try:
        return scope._cancel_called
    except AttributeError:  # pragma: no cover - a trio that keeps it elsewhere
        return scope.cancel_called


def _current_owner() -> object:
    """The calling trio task, or None outside a trio run."""
    try:
        return trio.lowlevel.current_task()
    except RuntimeError:
        return None


async def cooperative_checkpoint() -> None:
    """A checkpoint under the budget: always a cancellation point, a schedule point when due.

    Use it in your own hot loops where a full ``trio.lowlevel.checkpoint()`` per
    iteration costs too much.

    Raises:
        trio.Cancelled: The calling task is cancelled.
    """
    if checkpoint_due():
        await trio.lowlevel.checkpoint()


class checkpoint_budget:
    """Use another budget in this thread (so in its trio run) for a ``with`` block.

    While blocks are open, the newest one still open decides, also when blocks
    opened by different tasks close out of order; when none is open, the
    defaults apply. The budget starts fresh when a block opens and when it
    closes: the next budgeted call is a schedule point. It is a plain context
    manager, not a decorator (a decorated ``async def`` would run after the
    block had closed).

    Args:
        calls: A schedule point at least every ``calls`` budgeted calls; ``1``
            makes every budgeted call a full trio checkpoint.
        seconds: A schedule point once this much real time has passed since the
            last one; ``0`` also makes every call one, ``math.inf`` leaves only
            the ``calls`` bound.

    Raises:
        TypeError: ``calls`` is not an int or ``seconds`` not a real number.
        ValueError: ``calls`` is below 1, or ``seconds`` negative or NaN.

    Example::

        with checkpoint_budget(calls=1):
            with trio.testing.assert_checkpoints():
                await bag.write("stage", output)
    """

    __slots__ = ("_calls", "_entries", "_seconds")

    def __init__(self, calls: int = DEFAULT_CALLS, seconds: float = DEFAULT_SECONDS) -> None:
        if isinstance(calls, bool) or not isinstance(calls, int):
            raise TypeError(f"calls must be an int, got {type(calls).__name__}")
        if calls < 1:
            raise ValueError(f"calls must be >= 1, got {calls}")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"seconds must be a real number, got {type(seconds).__name__}")
        if (size := unfit_for_float(seconds)) is not None:
            raise ValueError(f"seconds must be a number a float can hold, got {size}")
        if math.isnan(seconds) or seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self._calls = calls
        self._seconds = float(seconds)
        # One (task, token) per entry: the same object may be entered again, by
        # this task or another one, and each exit must close its own entry.
        self._entries: list[tuple[object, object]] = []

    def __enter__(self) -> None:
        token = object()
        self._entries.append((_current_owner(), token))
        state = _thread_state()
        state.blocks.append((token, self._calls, self._seconds))
        state.apply_blocks()

    def __exit__(self, *exc_info: object) -> None:
        owner = _current_owner()
        entries = self._entries
        index = len(entries) - 1
        while index > 0 and entries[index][0] is not owner:
            index -= 1
        _, token = entries.pop(index)
        state = _thread_state()
        # Blocks opened by two tasks may close in either order: drop this one
        # wherever it is, and the newest block still open decides.
        state.blocks = [block for block in state.blocks if block[0] is not token]
        state.apply_blocks()
