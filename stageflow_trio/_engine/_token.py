"""CancellationToken: a run's stop flag that also cancels bound cancel scopes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

logger: logging.Logger = logging.getLogger("stageflow_trio.cancellation")


def _noop() -> None:
    """An unbind function for a binding that never happened."""


class CancellationToken:
    """A cooperative cancellation flag that can also drive trio cancel scopes.

    ``cancel`` is synchronous and cheap; the first reason given wins. Callbacks run
    synchronously inside the first ``cancel`` call, in registration order; an
    ``Exception`` from one is logged and the rest still run. A token may be shared
    by any number of runs at once: binding and unbinding a run's scope cost O(1).
    """

    __slots__ = ("_callbacks", "_cancelled", "_event", "_reason")

    def __init__(self) -> None:
        self._cancelled = False
        self._reason: str | None = None
        # Keyed per registration, in registration order: an unbind is O(1) however
        # many runs share the token (a list's scan made many overlapping runs
        # quadratic).
        self._callbacks: dict[object, Callable[[], object] | trio.CancelScope] = {}
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
        A callback's ``Exception`` is logged; a ``BaseException`` (KeyboardInterrupt) is
        raised once every other callback has run and the waiters are woken.

        Raises:
            TypeError: ``reason`` is not a str (it becomes the scopes' cancel reason).
        """
        if type(reason) is not str and not isinstance(reason, str):
            raise TypeError(
                f"CancellationToken.cancel: reason must be a str; got {type(reason).__name__}"
            )
        if self._cancelled:
            return
        self._cancelled = True
        self._reason = reason
        callbacks, self._callbacks = self._callbacks, {}
        # A callback raising a BaseException (KeyboardInterrupt) must not keep the
        # rest (bound scopes) from running, nor wait() from waking: it is raised last.
        interrupt: BaseException | None = None
        try:
            for callback in callbacks.values():
                try:
                    if type(callback) is trio.CancelScope:  # bound by _bind_run_scope
                        callback.cancel(reason=reason)
                    else:
                        callback()
                except Exception:
                    logger.exception("Error in cancellation callback")
                except BaseException as exc:  # noqa: BLE001 - raised below, once all ran
                    if interrupt is None:
                        interrupt = exc
        finally:
            if self._event is not None:
                self._event.set()
        if interrupt is not None:
            try:
                raise interrupt
            finally:
                del interrupt

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` on cancellation; at once if the token is already cancelled.

        When called at once, an error from ``callback`` propagates to the caller (as in
        the reference); callbacks run later by :meth:`cancel` have their errors logged.
        """
        if self._cancelled:
            callback()
        else:
            self._callbacks[object()] = callback

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

        # The closure is its own key: unique to this binding.
        self._callbacks[cancel_scope] = cancel_scope

        def unbind() -> None:
            # Gone when already unbound, or when cancel() ran (it replaced the dict).
            self._callbacks.pop(cancel_scope, None)

        return unbind

    def _link(self, other: CancellationToken) -> Callable[[], None]:
        """Make :meth:`cancel` also cancel ``other``, with this token's reason; one way only.

        If this token is already cancelled, ``other`` is cancelled now.

        Returns:
            A function that undoes the link (call it when ``other``'s run has ended, so
            a long-lived token keeps nothing of it); harmless to call more than once.
        """
        # The reason goes as given, "" included: a run following this token then ends
        # as a run given it directly would ("Cancelled via token" for "").
        if self._cancelled:
            other.cancel(self._reason or "")
            return _noop

        def forward() -> None:
            other.cancel(self._reason or "")

        self._callbacks[forward] = forward

        def unlink() -> None:
            self._callbacks.pop(forward, None)

        return unlink

    def _bind_run_scope(self, scope: trio.CancelScope) -> None:
        """:meth:`bind_scope` for a graph run's own scope, undone by :meth:`_unbind_run_scope`.

        The scope is its own key and entry (a run binds its fresh scope once), so a
        binding allocates nothing: :meth:`bind_scope`'s two closures, their cells
        and tuples were seven objects the garbage collector walked per run in flight.
        """
        if self._cancelled:
            scope.cancel(reason=self._reason)
        else:
            self._callbacks[scope] = scope

    def _unbind_run_scope(self, scope: trio.CancelScope) -> None:
        """Undo :meth:`_bind_run_scope` (harmless when unbound, or after :meth:`cancel`)."""
        self._callbacks.pop(scope, None)

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
