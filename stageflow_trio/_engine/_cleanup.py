"""Shielded, time-bounded cleanup: CleanupRegistry, cleanup_on_cancel, run_with_cleanup."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar, TypeVarTuple

import trio

logger = logging.getLogger("stageflow_trio.cancellation")

T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")
CleanupCallback = Callable[[], Awaitable[None]]

_MIN_CALLBACK_TIMEOUT = 0.01


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
        self._entries: list[tuple[CleanupCallback, str]] = []

    def register(self, callback: CleanupCallback, *, name: str | None = None) -> None:
        """Add ``callback`` (an async function with no arguments), under ``name`` if given.

        Without a name (or with an empty one) the report uses the callback's
        ``__cleanup_name__``, ``__name__`` or ``repr``.

        Raises:
            TypeError: ``callback`` is not callable (it would fail only in :meth:`run_all`).
        """
        if not callable(callback):
            raise TypeError(
                f"CleanupRegistry.register: callback must be a callable; got {type(callback).__name__}"
            )
        self._entries.append((callback, name or _callback_name(callback)))

    def unregister(self, callback: CleanupCallback) -> bool:
        """Remove the earliest registration equal to ``callback``; ``True`` if one was found."""
        index = self._index_of(callback)
        if index is None:
            return False
        del self._entries[index]
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
        ``max(timeout / n, 0.01)`` seconds (``n`` callbacks). A callback that overruns
        is cancelled and reported as ``TimeoutError("Cleanup timed out: <name>")``; one
        that raises is reported with its exception; either way the next one runs.

        A checkpoint (after the callbacks, never before them, so cleanup runs even in
        an already-cancelled scope).

        Returns:
            ``(completed names, [(name, exception), ...])``, in the order they ran.

        Raises:
            trio.Cancelled: If the surrounding scope was cancelled; raised only once
                every callback has had its turn and the registry is empty.
        """
        completed: list[str] = []
        failed: list[tuple[str, Exception]] = []
        if self._entries:
            share = max(timeout / len(self._entries), _MIN_CALLBACK_TIMEOUT)
            for callback, name in reversed(list(self._entries)):
                await _run_one(callback, name, share, completed, failed)
            self._entries.clear()
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
        BaseException: Whatever ``coro`` raises (including ``trio.Cancelled``), after
            the cleanup.
    """
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
