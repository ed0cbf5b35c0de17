"""Structured cancellation and cleanup for pipeline runs, on trio.

- :class:`CancellationToken`: a run's "please stop" flag (first reason wins, sync
  callbacks) that can also cancel bound ``trio.CancelScope`` objects, so a running stage
  is interrupted at its next checkpoint instead of being polled.
- :class:`CleanupRegistry`: async cleanup callbacks run last-in first-out, each shielded
  from outside cancellation and limited to its share of a time budget.
- :class:`StructuredTaskGroup`: the reference's task-group wrapper as a thin shim over a
  nursery, with a token and a registry that always runs on exit.
- :func:`cleanup_on_cancel` / :func:`run_with_cleanup`: one cleanup guaranteed after a
  block or an awaitable.

See ``docs/cancellation.md`` for what escapes from each and why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar, TypeVarTuple, cast

import trio

from stageflow_trio._engine._errors import unwrap_group

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "CancellationToken",
    "CleanupRegistry",
    "StructuredTaskGroup",
    "cleanup_on_cancel",
    "run_with_cleanup",
]

logger = logging.getLogger("stageflow_trio.cancellation")

T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")
CleanupCallback = Callable[[], Awaitable[None]]

_MIN_CALLBACK_TIMEOUT = 0.01


class CancellationToken:
    """A cooperative cancellation flag that can also drive trio cancel scopes.

    ``cancel`` is synchronous and cheap; the first reason given wins. Callbacks run
    synchronously inside the first ``cancel`` call, in registration order; an
    ``Exception`` from one is logged and the rest still run.
    """

    __slots__ = ("_callbacks", "_cancelled", "_event", "_reason")

    def __init__(self) -> None:
        self._cancelled = False
        self._reason: str | None = None
        self._callbacks: list[Callable[[], object]] = []
        self._event: trio.Event | None = None  # created only if someone waits

    @property
    def is_cancelled(self) -> bool:
        """Whether :meth:`cancel` has been called."""
        return self._cancelled

    @property
    def reason(self) -> str | None:
        """The reason given to the first :meth:`cancel` call, or ``None``."""
        return self._reason

    def cancel(self, reason: str = "Cancellation requested") -> None:
        """Request cancellation; later calls are ignored (the first reason wins).

        Runs the registered callbacks (bound scopes are cancelled with ``reason``), wakes
        every :meth:`wait`. Not a checkpoint; safe to call from sync code in a trio task.
        """
        if self._cancelled:
            return
        self._cancelled = True
        self._reason = reason
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("Error in cancellation callback")
        if self._event is not None:
            self._event.set()

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` on cancellation; at once if the token is already cancelled.

        When called at once, an error from ``callback`` propagates to the caller (as in
        the reference); callbacks run later by :meth:`cancel` have their errors logged.
        """
        if self._cancelled:
            callback()
        else:
            self._callbacks.append(callback)

    def bind_scope(self, scope: trio.CancelScope) -> Callable[[], None]:
        """Make :meth:`cancel` also cancel ``scope``, with the token's reason.

        If the token is already cancelled, ``scope`` is cancelled now.

        Returns:
            A function that undoes the binding (call it once the scope has exited so the
            token does not keep it alive); calling it more than once is harmless.
        """

        def cancel_scope() -> None:
            scope.cancel(reason=self._reason)

        if self._cancelled:
            cancel_scope()
            return _noop

        self._callbacks.append(cancel_scope)

        def unbind() -> None:
            with contextlib.suppress(ValueError):  # already unbound, or cancel() ran
                self._callbacks.remove(cancel_scope)

        return unbind

    async def wait(self) -> None:
        """Block until the token is cancelled.

        A checkpoint, even when already cancelled.

        Raises:
            trio.Cancelled: If the surrounding scope is cancelled first.
        """
        if self._cancelled:
            await trio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()


def _noop() -> None:
    return None


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
        """
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


class TaskHandle(Generic[T]):
    """What :meth:`StructuredTaskGroup.create_task` returns: a view of one task.

    Mirrors the parts of ``asyncio.Task`` that make sense under a nursery.
    """

    __slots__ = ("_done", "_error", "_name", "_result", "_scope", "_state")

    def __init__(self, name: str) -> None:
        self._name = name
        self._scope = trio.CancelScope()
        self._state = "pending"  # -> "finished" | "failed" | "cancelled"
        self._result: T | None = None
        self._error: BaseException | None = None
        self._done: trio.Event | None = None

    def __repr__(self) -> str:
        return f"<TaskHandle {self._name!r} {self._state}>"

    def get_name(self) -> str:
        """The task's name."""
        return self._name

    def done(self) -> bool:
        """Whether the task has finished, failed or been cancelled."""
        return self._state != "pending"

    def cancelled(self) -> bool:
        """Whether the task ended by cancellation (its own or its group's)."""
        return self._state == "cancelled"

    def cancel(self) -> None:
        """Cancel this task only, at its next checkpoint. Not a checkpoint."""
        self._scope.cancel(reason="TaskHandle.cancel() called")

    def result(self) -> T:
        """The task's return value.

        Raises:
            RuntimeError: If the task has not finished or was cancelled.
            BaseException: The task's own error, if it failed.
        """
        if self._state == "finished":
            return cast("T", self._result)
        if self._state == "failed":
            assert self._error is not None
            raise self._error
        raise RuntimeError(f"task {self._name!r} has no result: it is {self._state}")

    def exception(self) -> BaseException | None:
        """The task's error, or ``None`` if it returned normally.

        Raises:
            RuntimeError: If the task has not finished or was cancelled.
        """
        if self._state in ("finished", "failed"):
            return self._error
        raise RuntimeError(f"task {self._name!r} has no exception: it is {self._state}")

    async def wait(self) -> T:
        """Wait for the task to end and return :meth:`result`. Always a checkpoint."""
        if self._state == "pending":
            if self._done is None:
                self._done = trio.Event()
            await self._done.wait()
        else:
            await trio.lowlevel.checkpoint()
        return self.result()

    def _end(self, state: str) -> None:
        self._state = state
        if self._done is not None:
            self._done.set()


async def _await_coroutine(coro: Awaitable[T]) -> T:
    return await coro


class StructuredTaskGroup:
    """A nursery with a cancellation token and a cleanup registry attached.

    Example::

        async with StructuredTaskGroup() as tg:
            tg.create_task(fetch, "a")
            tg.create_task(fetch, "b")

    When a task raises, the token is cancelled with ``"Task failed"`` and every other
    task (and the block's body) is cancelled at its next checkpoint; when the body
    raises, the reason is ``"Exception in task group"``. Cancelling the token from
    anywhere cancels the tasks and the body, and the block then exits quietly.

    On exit, after every task has ended, the cleanup registry runs, shielded, even on
    success. Then the one error that ended the group escapes, unwrapped (see
    ``stageflow_trio._engine._errors``); trio's exception groups never do.

    Args:
        cleanup_timeout: Budget handed to :meth:`CleanupRegistry.run_all` on exit.
        cancel_token: Token to use (e.g. a run's token); a new one by default.
        cleanup_registry: Registry to use; a new one by default.
    """

    def __init__(
        self,
        *,
        cleanup_timeout: float = 10.0,
        cancel_token: CancellationToken | None = None,
        cleanup_registry: CleanupRegistry | None = None,
    ) -> None:
        self._cleanup_timeout = cleanup_timeout
        self._cancel_token = CancellationToken() if cancel_token is None else cancel_token
        self._cleanup_registry = CleanupRegistry() if cleanup_registry is None else cleanup_registry
        self._manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None
        self._unbind: Callable[[], None] = _noop
        self._used = False

    @property
    def cleanup_registry(self) -> CleanupRegistry:
        """The registry run on exit."""
        return self._cleanup_registry

    @property
    def cancel_token(self) -> CancellationToken:
        """The token that carries the group's cancellation reason."""
        return self._cancel_token

    def create_task(
        self,
        coro: Callable[[*_Ts], Awaitable[T]] | Coroutine[Any, Any, T],
        *args: *_Ts,
        name: str | None = None,
    ) -> TaskHandle[T]:
        """Start a task in the group: ``create_task(async_fn, *args)`` or ``create_task(coro)``.

        The trio form (an async function and its arguments) is preferred; a coroutine
        object, as the reference took, is accepted too. Not a checkpoint: the task
        starts at the caller's next one.

        Returns:
            A :class:`TaskHandle` for the task.

        Raises:
            RuntimeError: If called outside the ``async with`` block.
            TypeError: If a coroutine object is given together with ``args``.
        """
        if self._nursery is None:
            if isinstance(coro, Coroutine):
                coro.close()  # never started: avoid the "never awaited" warning
            raise RuntimeError(
                "StructuredTaskGroup.create_task() needs an active group: "
                "call it inside 'async with StructuredTaskGroup() as tg:'"
            )
        fn: Callable[..., Awaitable[T]]
        fn_args: tuple[object, ...]
        if isinstance(coro, Coroutine):
            if args:
                coro.close()
                raise TypeError(
                    "StructuredTaskGroup.create_task() takes either a coroutine object or "
                    "an async function and its arguments, not a coroutine and arguments"
                )
            fn, fn_args = _await_coroutine, (coro,)
        else:
            fn, fn_args = coro, args
        task_name = name or getattr(coro, "__qualname__", None) or repr(coro)
        handle: TaskHandle[T] = TaskHandle(task_name)
        self._nursery.start_soon(self._run_task, handle, fn, fn_args, name=task_name)
        return handle

    async def _run_task(
        self,
        handle: TaskHandle[Any],
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> None:
        try:
            with handle._scope:
                handle._result = await fn(*args)
                handle._end("finished")
        except BaseException as exc:  # recorded for the handle, then always re-raised
            if isinstance(exc, trio.Cancelled):
                handle._end("cancelled")
            else:
                handle._error = exc
                handle._end("failed")
                self._cancel_token.cancel("Task failed")
            raise
        if not handle.done():  # its own scope caught handle.cancel()
            handle._end("cancelled")

    async def __aenter__(self) -> StructuredTaskGroup:
        """Open the group's nursery. Not a checkpoint (like ``trio.open_nursery``).

        Raises:
            RuntimeError: If this group was already entered once.
        """
        if self._used:
            raise RuntimeError("StructuredTaskGroup cannot be entered twice: create a new one")
        self._used = True
        self._manager = trio.open_nursery()
        self._nursery = await self._manager.__aenter__()
        self._unbind = self._cancel_token.bind_scope(self._nursery.cancel_scope)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Wait for every task, run cleanup (shielded), then let one error escape.

        A checkpoint when nothing is raised.

        Raises:
            BaseException: The body's error or the first failed task's, unwrapped;
                ``trio.Cancelled`` if an outer scope cancelled the group.
        """
        assert self._manager is not None
        if exc is not None:
            self._cancel_token.cancel("Exception in task group")
        try:
            try:
                swallowed = bool(await self._manager.__aexit__(exc_type, exc, tb))
            finally:
                self._nursery = None
                self._unbind()
                await self._cleanup()
        except BaseExceptionGroup as eg:
            unwrap_group(eg)
        if exc is None or swallowed:
            # Surfaces an outer cancellation that arrived during the shielded cleanup.
            await trio.lowlevel.checkpoint()
        return swallowed

    async def _cleanup(self) -> None:
        if self._cleanup_registry.pending_count == 0:
            return
        with trio.CancelScope(shield=True):
            _, failed = await self._cleanup_registry.run_all(timeout=self._cleanup_timeout)
        if failed:
            logger.warning("Some cleanup callbacks failed: %s", [name for name, _ in failed])


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
