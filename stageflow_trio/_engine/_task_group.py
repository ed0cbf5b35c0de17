"""StructuredTaskGroup: the reference's task group as a thin shim over a nursery."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar, TypeVarTuple, cast

import trio

from stageflow_trio._engine._cleanup import CleanupRegistry, check_cleanup_timeout
from stageflow_trio._engine._token import CancellationToken, _noop
from stageflow_trio._groups import unwrap_group

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

logger: logging.Logger = logging.getLogger("stageflow_trio.cancellation")

T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")


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


def _check_instance(param: str, value: object, cls: type[Any]) -> None:
    if value is not None and not isinstance(value, cls):
        raise TypeError(
            f"StructuredTaskGroup: {param} must be a {cls.__name__} or None; "
            f"got {type(value).__name__}"
        )


def _describe(fn: object) -> str:
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) and name else repr(fn)


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
    ``stageflow_trio._groups``); trio's exception groups never do.

    Args:
        cleanup_timeout: Budget handed to :meth:`CleanupRegistry.run_all` on exit.
        cancel_token: Token to use (e.g. a run's token); a new one by default.
        cleanup_registry: Registry to use; a new one by default.

    Raises:
        TypeError: ``cleanup_timeout`` is not a number, ``cancel_token`` not a
            CancellationToken or ``cleanup_registry`` not a CleanupRegistry (or None).
        ValueError: ``cleanup_timeout`` is NaN or negative.
    """

    def __init__(
        self,
        *,
        cleanup_timeout: float = 10.0,
        cancel_token: CancellationToken | None = None,
        cleanup_registry: CleanupRegistry | None = None,
    ) -> None:
        self._cleanup_timeout = check_cleanup_timeout("cleanup_timeout", cleanup_timeout)
        # Checked here: a wrong object would fail only inside __aenter__, after the
        # nursery is open (leaving it open), or at exit, skipping the cleanup.
        _check_instance("cancel_token", cancel_token, CancellationToken)
        _check_instance("cleanup_registry", cleanup_registry, CleanupRegistry)
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
        object, as the reference took, is accepted too. As with ``nursery.start_soon``,
        ``async_fn(*args)`` is called here (which only creates its coroutine), so a bad
        call fails at once, not as a task failure. Not a checkpoint: the task starts at
        the caller's next one. ``name`` defaults to the function's qualified name; any
        other value is turned into a str, as ``asyncio.create_task`` does.

        Returns:
            A :class:`TaskHandle` for the task.

        Raises:
            RuntimeError: If called outside the ``async with`` block.
            TypeError: If a coroutine object is given together with ``args``, if ``coro``
                is neither callable nor a coroutine, or if ``coro(*args)`` does not
                return an awaitable (a sync function).
        """
        if self._nursery is None:
            if isinstance(coro, Coroutine):
                coro.close()  # never started: avoid the "never awaited" warning
            raise RuntimeError(
                "StructuredTaskGroup.create_task() needs an active group: "
                "call it inside 'async with StructuredTaskGroup() as tg:'"
            )
        awaitable: Awaitable[T]
        if isinstance(coro, Coroutine):
            if args:
                coro.close()
                raise TypeError(
                    "StructuredTaskGroup.create_task() takes either a coroutine object or "
                    "an async function and its arguments, not a coroutine and arguments"
                )
            awaitable = coro
        else:
            if not callable(coro):
                raise TypeError(
                    "StructuredTaskGroup.create_task(): coro must be an async function or a "
                    f"coroutine object; got {type(coro).__name__}"
                )
            # Called now, as trio's start_soon does, so that a sync function or wrong
            # arguments fail here, at the call, not as a task failure that cancels the
            # whole group. (Calling an async function only creates its coroutine.)
            awaitable = coro(*args)
            if not inspect.isawaitable(awaitable):
                raise TypeError(
                    f"StructuredTaskGroup.create_task(): {_describe(coro)} returned "
                    f"{type(awaitable).__name__}, not an awaitable: pass an async function "
                    "(async def) or a coroutine object"
                )
        # A name is turned into a str, as asyncio.create_task(name=...) does.
        task_name = _describe(coro) if name is None or name == "" else str(name)
        handle: TaskHandle[T] = TaskHandle(task_name)
        try:
            self._nursery.start_soon(self._run_task, handle, awaitable, name=task_name)
        except BaseException:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise
        return handle

    async def _run_task(
        self,
        handle: TaskHandle[Any],
        awaitable: Awaitable[Any],
    ) -> None:
        try:
            with handle._scope:
                handle._result = await awaitable
                handle._end("finished")
        except BaseException as exc:  # recorded for the handle, then always re-raised
            if isinstance(exc, trio.Cancelled):
                handle._end("cancelled")
            else:
                handle._error = exc
                handle._end("failed")
                self._cancel_token.cancel("Task failed")
            # The handle keeps the error, whose traceback has this frame: no cycle.
            del handle
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
