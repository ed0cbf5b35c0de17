"""An event that the tasks of several trio runs, in several threads, may share.

A ``trio.Event`` belongs to the run whose tasks wait on it: ``set()`` reschedules
each waiting task through the *calling* thread's run, so an event set from
another thread's run trips an assertion in trio (``task._runner is self``) there,
and the waiter, already taken off the event's queue, is never woken. Objects that
one process keeps for every run (the process-wide approval service's in-memory
backend) use :class:`CrossRunEvent` instead.
"""

from __future__ import annotations

import contextlib
import threading

import trio


class CrossRunEvent:
    """A one-shot flag any trio run (in any thread) may wait for, and any code may set.

    Each run that waits gets a ``trio.Event`` of its own. ``set()`` sets the
    calling run's event at once (exactly what ``trio.Event.set`` does, so within
    one run the waiters wake in the same order) and hands every other run's
    event to that run with ``TrioToken.run_sync_soon``; a run that has finished
    meanwhile is skipped. ``set()`` may be called outside any run, from any thread.
    """

    __slots__ = ("_flag", "_lock", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._lock = threading.Lock()
        self._waiters: dict[trio.lowlevel.TrioToken, trio.Event] = {}

    def is_set(self) -> bool:
        """Whether :meth:`set` has been called."""
        return self._flag

    async def wait(self) -> None:
        """Wait until the flag is set; a checkpoint (also when it already is).

        Raises:
            trio.Cancelled: the caller was cancelled while waiting.
        """
        event = None if self._flag else self._waiter(trio.lowlevel.current_trio_token())
        if event is None:
            await trio.lowlevel.checkpoint()
            return
        await event.wait()

    def _waiter(self, token: trio.lowlevel.TrioToken) -> trio.Event | None:
        """The event the run of ``token`` waits on; None once the flag is set."""
        with self._lock:
            if self._flag:
                return None
            event = self._waiters.get(token)
            if event is None:
                event = self._waiters[token] = trio.Event()
            return event

    def set(self) -> None:
        """Set the flag and wake every waiter, in whichever run (and thread) it waits."""
        with self._lock:
            if self._flag:
                return
            self._flag = True
            waiters, self._waiters = self._waiters, {}
        try:
            here: trio.lowlevel.TrioToken | None = trio.lowlevel.current_trio_token()
        except RuntimeError:
            here = None
        for token, event in waiters.items():
            if token is here:
                event.set()
            else:
                # A run that has finished meanwhile: its waiters are gone with it.
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(event.set)
