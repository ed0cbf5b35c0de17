"""Shielded, time-bounded cleanup: CleanupRegistry, cleanup_on_cancel, run_with_cleanup."""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar, TypeVarTuple

import trio

from stageflow_trio._args import unfit_for_float

logger: logging.Logger = logging.getLogger("stageflow_trio.cancellation")

T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")
CleanupCallback = Callable[[], Awaitable[None]]

_MIN_CALLBACK_TIMEOUT = 0.01


def check_cleanup_timeout(parameter: str, value: object) -> float:
    """``value`` as a cleanup timeout in seconds, checked where it is taken.

    A cleanup timeout is read only once the work is over, so a bad one found then would
    skip the cleanup; it is refused up front instead.

    Raises:
        TypeError: ``value`` is not an int or a float (``bool`` included).
        ValueError: ``value`` is NaN, negative or an int too large for a float.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{parameter} must be a number of seconds (int or float), got {type(value).__name__}"
        )
    if (size := unfit_for_float(value)) is not None:
        raise ValueError(
            f"{parameter} must be a number of seconds a float can hold (math.inf for no limit), "
            f"got {size}"
        )
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"{parameter} must be a non-negative number of seconds, got {value!r}")
    return seconds


def _callback_name(callback: CleanupCallback) -> str:
    # A user-set __cleanup_name__ (the reference's mechanism) is still honoured;
    # partials and other callables without __name__ fall back to their repr.
    name = getattr(callback, "__cleanup_name__", None)
    if isinstance(name, str):
        return name
    name = getattr(callback, "__name__", None)
    return name if isinstance(name, str) else repr(callback)


class CleanupRegistry:
    """Async cleanup callbacks, run last-registered first by :meth:`run_all`.

    Names are kept beside the callbacks, never set on them, so bound methods and
    partials register fine; :meth:`name_of` reads a name back.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        # The shared empty tuple until the first registration: a graph run makes a
        # registry that most runs never register with, and an empty list is one
        # more object per run in flight for the garbage collector to walk.
        self._entries: list[tuple[CleanupCallback, str]] | tuple[()] = ()

    def register(self, callback: CleanupCallback, *, name: str | None = None) -> None:
        """Add ``callback`` (an async function with no arguments), under ``name`` if given.

        Without a name (or with an empty one) the report uses the callback's
        ``__cleanup_name__``, ``__name__`` or ``repr``.

        Raises:
            TypeError: ``callback`` is not callable (it would fail only in :meth:`run_all`),
                or ``name`` is neither a str nor None.
        """
        if not callable(callback):
            raise TypeError(
                f"CleanupRegistry.register: callback must be a callable; got {type(callback).__name__}"
            )
        if name is not None and not isinstance(name, str):
            # It would show up as a non-str name in run_all's report.
            raise TypeError(
                f"CleanupRegistry.register: name must be a str or None; got {type(name).__name__}"
            )
        entry = (callback, name or _callback_name(callback))
        entries = self._entries
        if type(entries) is list:
            entries.append(entry)
        else:
            self._entries = [entry]

    def unregister(self, callback: CleanupCallback) -> bool:
        """Remove the earliest registration equal to ``callback``; ``True`` if one was found."""
        index = self._index_of(callback)
        if index is None:
            return False
        del self._entries[index]  # type: ignore[union-attr]  # found: a list
        return True

    def name_of(self, callback: CleanupCallback) -> str:
        """The name :meth:`run_all` reports for ``callback`` (the reference's ``__cleanup_name__``).

        Raises:
            ValueError: If ``callback`` is not registered.
        """
        index = self._index_of(callback)
        if index is None:
            raise ValueError(f"callback {callback!r} is not registered in this CleanupRegistry")
        return self._entries[index][1]

    def _index_of(self, callback: CleanupCallback) -> int | None:
        # Equality, like list.remove: a fresh bound method equals the registered one.
        for index, (registered, _) in enumerate(self._entries):
            if registered == callback:
                return index
        return None

    @property
    def pending_count(self) -> int:
        """How many callbacks are registered."""
        return len(self._entries)

    async def run_all(
        self, *, timeout: float = 10.0
    ) -> tuple[list[str], list[tuple[str, Exception]]]:
        """Run every callback, last registered first, then empty the registry.

        Each callback runs shielded from outside cancellation, limited to
        ``max(timeout / n, 0.01)`` seconds (``n`` callbacks when it starts). A callback
        registered while it runs is run too, next (last registered first), with the
        same limit, while the ``n`` shares last (each callback counts at least 0.01 s,
        and the shares of those still to run are kept for them);
        one that comes up after they are spent is reported as
        ``TimeoutError("Cleanup timed out before it ran: <name>")`` without running, so
        a callback that registers another each time it runs cannot keep ``run_all``
        going for ever. One unregistered before its turn does not run. A callback that
        overruns is cancelled and reported as ``TimeoutError("Cleanup timed out:
        <name>")``; one that raises is reported with its exception; either way the next
        one runs. One that raises a BaseException (a KeyboardInterrupt, or a stray
        ``trio.Cancelled`` that is not its slot's) does not stop the others either:
        the first such exception is raised once they all ran.

        A checkpoint (after the callbacks, never before them, so cleanup runs even in
        an already-cancelled scope).

        Returns:
            ``(completed names, [(name, exception), ...])``, in the order they ran.

        Raises:
            TypeError: ``timeout`` is not a number (nothing runs).
            ValueError: ``timeout`` is NaN or negative (nothing runs).
            trio.Cancelled: If the surrounding scope was cancelled; raised only once
                every callback has had its turn and the registry is empty.
            KeyboardInterrupt / SystemExit / a stray trio.Cancelled: a callback
                raised it (the first one, if several did); raised once every other
                callback has had its turn.
        """
        timeout = check_cleanup_timeout("timeout", timeout)
        completed: list[str] = []
        failed: list[tuple[str, Exception]] = []
        entries = self._entries
        if entries:
            present = len(entries)  # the callbacks registered before this call
            share = max(timeout / present, _MIN_CALLBACK_TIMEOUT)
            # What the callbacks may spend together (each counted at least the floor):
            # the ones registered while this runs get what the others left of it.
            budget = share * present
            spent = 0.0
            began = trio.current_time()
            # Popped one at a time, so a callback registered while this runs (by a
            # callback, or by a task still running) is the last registered and runs
            # next, with the same share, instead of being dropped.
            # A KeyboardInterrupt or SystemExit from one callback (trio delivers a
            # Ctrl-C even in the shielded scope) does not keep the others from
            # running: it is raised once they all ran, as CancellationToken.cancel
            # does with its callbacks.
            interrupt: BaseException | None = None
            while entries:
                callback, name = entries.pop()
                limit = share
                if len(entries) < present:
                    present -= 1  # one registered before this call
                else:
                    # Registered while this runs: only within what is left, or a
                    # callback that registers another each time would never let
                    # run_all end (and it is shielded from outside cancellation).
                    # (Half the floor: the sum of the floors may round just above it.)
                    left = budget - spent
                    # And within the time really left once the shares of the callbacks
                    # still to run are kept for them, or late ones could spend those
                    # too and run_all overrun its timeout.
                    if math.isfinite(budget):
                        reserved = present * share
                        left = min(left, budget - (trio.current_time() - began) - reserved)
                    if left < _MIN_CALLBACK_TIMEOUT / 2:
                        failed.append(
                            (name, TimeoutError(f"Cleanup timed out before it ran: {name}"))
                        )
                        logger.warning("Cleanup timed out before it ran: %s", name)
                        continue
                    limit = min(share, left)  # never past what is left
                started = trio.current_time()
                try:
                    await _run_one(callback, name, limit, completed, failed)
                except BaseException as exc:  # noqa: BLE001 - raised below, once all ran
                    # A KeyboardInterrupt or SystemExit, or a stray Cancelled the
                    # callback raised (the surrounding scope's cannot reach a shielded
                    # callback, and the slot catches its own): deferred (audit 22: a
                    # stray Cancelled ended the loop; the rest never ran and stayed
                    # registered).
                    if interrupt is None:
                        interrupt = exc
                spent += max(trio.current_time() - started, _MIN_CALLBACK_TIMEOUT)
            if interrupt is not None:
                try:
                    raise interrupt
                finally:
                    del interrupt  # no reference cycle through this frame
        await trio.lowlevel.checkpoint()
        return completed, failed


async def _run_one(
    callback: CleanupCallback,
    name: str,
    timeout: float,
    completed: list[str],
    failed: list[tuple[str, Exception]],
) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(timeout) as deadline:
        try:
            await callback()
        except Exception as exc:
            failed.append((name, exc))
            logger.exception("Cleanup failed: %s", name)
            return
    if deadline.cancelled_caught:
        failed.append((name, TimeoutError(f"Cleanup timed out: {name}")))
        logger.warning("Cleanup timed out: %s", name)
    else:
        completed.append(name)
        logger.debug("Cleanup completed: %s", name)


@asynccontextmanager
async def cleanup_on_cancel(
    cleanup: CleanupCallback, *, name: str | None = None
) -> AsyncIterator[None]:
    """Run ``await cleanup()`` when the block ends: normally, by an error or by cancellation.

    The cleanup is shielded from outside cancellation and has no time limit: keep it
    short, or use :func:`run_with_cleanup` for a bounded one. An error from the cleanup
    is logged (when ``name`` is given) and propagates, with the block's own error as its
    ``__context__``. Leaving the block normally is a checkpoint.
    """
    try:
        yield
    finally:
        with trio.CancelScope(shield=True):
            try:
                await cleanup()
            except Exception:
                if name:
                    logger.exception("Cleanup failed: %s", name)
                raise
        if name:
            logger.debug("Cleanup completed: %s", name)
    await trio.lowlevel.checkpoint()


async def run_with_cleanup(
    coro: Awaitable[T],
    cleanup: CleanupCallback,
    *,
    cleanup_timeout: float = 5.0,
) -> T:
    """Await ``coro``, then always ``await cleanup()``, and return ``coro``'s result.

    The cleanup runs shielded for at most ``cleanup_timeout`` seconds; overrunning it,
    or the cleanup raising, is logged and never raised. A checkpoint.

    Raises:
        TypeError: ``cleanup_timeout`` is not a number (checked before ``coro`` runs).
        ValueError: ``cleanup_timeout`` is NaN or negative.
        BaseException: Whatever ``coro`` raises (including ``trio.Cancelled``), after
            the cleanup.
    """
    try:
        cleanup_timeout = check_cleanup_timeout("cleanup_timeout", cleanup_timeout)
    except BaseException:
        # Never awaited: close it, so Python does not warn about it.
        if inspect.iscoroutine(coro):
            coro.close()
        raise
    try:
        result = await coro
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(cleanup_timeout) as deadline:
                try:
                    await cleanup()
                except TimeoutError:
                    logger.warning("Cleanup timed out")
                except Exception:
                    logger.exception("Cleanup failed")
            if deadline.cancelled_caught:
                logger.warning("Cleanup timed out")
    await trio.lowlevel.checkpoint()
    return result
