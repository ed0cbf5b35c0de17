"""Helpers of the trio set-up tests (guest mode, Ctrl-C at every step).

- :func:`mock_clock`: an autojump ``MockClock``.
- :class:`SigintAtStep`: an instrument that sends this process SIGINT before task step
  ``at`` (trio delivers the KeyboardInterrupt to the main task at its next checkpoint,
  or, unrestricted, wherever it runs next, as a Ctrl-C landing then would), counts the
  steps, and keeps a ledger of the tasks alive.
- :class:`CancelAtStep`: the same, cancelling a scope instead (or moving its deadline).
- :func:`run_under_sigint`: one ``trio.run`` of a scenario with a :class:`SigintAtStep`.
- :func:`inline_run_sync`: ``trio.to_thread.run_sync`` without a thread (monkeypatched in
  by tests whose autojump clock must not jump while a store's statement runs).
- :func:`run_guest`: run an async function as a trio guest of an asyncio loop.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import outcome
import trio
import trio.testing

__all__ = [
    "HOST_CANCELLED",
    "CancelAtStep",
    "SigintAtStep",
    "TaskLedger",
    "inline_run_sync",
    "mock_clock",
    "run_guest",
    "run_under_sigint",
]

HOST_CANCELLED = "host cancelled the guest"


def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class TaskLedger(trio.abc.Instrument):
    """The tasks alive while it is installed (``alive``)."""

    def __init__(self) -> None:
        self.alive: set[trio.lowlevel.Task] = set()

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.alive.add(task)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.alive.discard(task)


class SigintAtStep(TaskLedger):
    """Sends this process SIGINT before task step ``at`` (if not None); counts steps, and
    keeps a ledger of the tasks alive."""

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.steps = 0
        self.sent = False
        self.handler: object = None
        super().__init__()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.steps == self.at:
            self.sent = True
            self.handler = signal.getsignal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        self.steps += 1


class CancelAtStep(TaskLedger):
    """Before task step ``at`` (if not None), cancels ``scope`` once (or, with
    ``deadline``, moves its deadline to now: trio then cancels it at its next schedule
    point); counts steps, and keeps a ledger of the tasks alive."""

    def __init__(self, at: int | None, *, deadline: bool = False) -> None:
        self.at = at
        self.deadline = deadline
        self.steps = 0
        self.scope: trio.CancelScope | None = None
        self.sent = False
        super().__init__()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.steps == self.at and self.scope is not None and not self.sent:
            self.sent = True
            if self.deadline:
                self.scope.deadline = trio.current_time()
            else:
                self.scope.cancel()
        self.steps += 1


class _Runnable(Protocol):
    async def run(self) -> object: ...


ScenarioT = TypeVar("ScenarioT", bound=_Runnable)


def run_under_sigint(
    make: Callable[[], ScenarioT], at: int | None, *, restrict: bool
) -> tuple[BaseException | None, ScenarioT, SigintAtStep]:
    """Run a fresh scenario's ``run`` with SIGINT sent before step ``at`` (None: never).

    ``restrict`` is trio's ``restrict_keyboard_interrupt_to_checkpoints``. Returns
    what the run raised (None if it returned), the scenario and the instrument,
    whose ``steps`` count the whole run when ``at`` is None.
    """
    scenario = make()
    instrument = SigintAtStep(at)
    error: BaseException | None = None
    try:
        trio.run(
            scenario.run,
            clock=mock_clock(),
            instruments=[instrument],
            restrict_keyboard_interrupt_to_checkpoints=restrict,
        )
    except BaseException as exc:  # inspected by the caller
        error = exc
    return error, scenario, instrument


async def inline_run_sync(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``trio.to_thread.run_sync`` without a thread: the call, then a schedule point no
    cancellation interrupts (a worker thread's call is not abandoned either)."""
    result = outcome.capture(fn, *args)
    await trio.lowlevel.cancel_shielded_checkpoint()
    return result.unwrap()


def run_guest(
    async_fn: Callable[[], Awaitable[Any]],
    *,
    clock: trio.abc.Clock | None = None,
    give_cancel: Callable[[Callable[[], None]], None] | None = None,
) -> outcome.Outcome[Any]:
    """Run ``async_fn`` as a trio guest of an asyncio loop; its outcome.

    ``give_cancel(cancel)``, when given, receives the host's ``cancel()`` before
    ``async_fn`` starts: the thread-safe call (``TrioToken.run_sync_soon``) that
    cancels the guest's outer scope, as a Qt/asyncio app's "stop" button does; the
    guest then ends with :data:`HOST_CANCELLED`.
    """
    scopes: list[trio.CancelScope] = []
    tokens: list[trio.lowlevel.TrioToken] = []

    async def guest_main() -> Any:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            tokens.append(trio.lowlevel.current_trio_token())
            if give_cancel is not None:
                give_cancel(lambda: tokens[0].run_sync_soon(scopes[0].cancel))
            return await async_fn()
        assert scope.cancelled_caught
        return HOST_CANCELLED

    async def host() -> outcome.Outcome[Any]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[outcome.Outcome[Any]] = loop.create_future()
        trio.lowlevel.start_guest_run(
            guest_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result,
            clock=clock,
        )
        return await done

    return asyncio.run(host())


async def saved_cancelled() -> trio.Cancelled:
    """A real ``trio.Cancelled``, caught by its own scope and kept: raised again later
    (user code saving one), nothing around the raise is cancelled."""
    saved: list[trio.Cancelled] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as exc:
            saved.append(exc)
            raise
    return saved[0]
