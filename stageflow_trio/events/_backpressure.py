"""BackpressureAwareEventSink: a bounded queue in front of a sink, drained by an owned worker."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

from stageflow_trio.events._metrics import BackpressureMetrics
from stageflow_trio.events._registry import _run_registry
from stageflow_trio.events._sinks import EventSink, LoggingEventSink

_Event = tuple[str, "dict[str, Any] | None"]

# The worker yields to the scheduler after this many deliveries in a row, so a
# downstream that never checkpoints cannot starve the rest of the program.
_FAIR_SHARE = 128


class BackpressureAwareEventSink:
    """A bounded queue in front of a downstream sink, drained by an owned worker task.

    Owning the worker (pick one)::

        async with BackpressureAwareEventSink(db_sink, max_queue_size=1000) as sink:
            sink.try_emit(type="stage.x.started", data={...})
        # leaving the block stops the worker, draining the queue (5 s budget)

        sink = BackpressureAwareEventSink(db_sink)
        await sink.start(nursery)      # the worker runs in your nursery
        ...
        await sink.stop(drain=True, timeout=5.0)

    Without a running worker the sink still accepts events (``try_emit``
    returns True while there is room) but nothing delivers them until a worker
    starts or :meth:`stop` drains them; nothing is started behind your back.

    Every accepted event is either delivered downstream or, if :meth:`stop`
    gives up on it, counted in ``metrics.dropped`` / ``metrics.undelivered``,
    logged, and passed to ``on_drop``.

    Args:
        downstream: Where events are delivered; ``None`` means a
            :class:`LoggingEventSink`.
        max_queue_size: Capacity of the queue; ``<= 0`` means unbounded.
        on_drop: Called as ``on_drop(event_type, data)`` for every event the
            sink gives up on. Its exceptions are logged and suppressed.

    Raises:
        TypeError: If ``max_queue_size`` is not an int.
    """

    def __init__(
        self,
        downstream: EventSink | None = None,
        *,
        max_queue_size: int = 1000,
        on_drop: Callable[[str, dict[str, Any] | None], None] | None = None,
    ) -> None:
        if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int):
            raise TypeError(
                f"max_queue_size must be an int (<= 0 for unbounded), got {type(max_queue_size).__name__}"
            )
        self._downstream: EventSink = LoggingEventSink() if downstream is None else downstream
        self._max_queue_size = max_queue_size
        self._send, self._receive = trio.open_memory_channel[_Event](
            math.inf if max_queue_size <= 0 else max_queue_size
        )
        self._send_nowait = self._send.send_nowait
        self._metrics = BackpressureMetrics()
        self._on_drop = on_drop
        self._logger = logging.getLogger("stageflow_trio.events.backpressure")
        # Worker state. ``_in_flight``: an event whose delivery started but has
        # not finished; if the worker dies holding one, ``start`` or ``stop``
        # counts it as undelivered (re-sending could duplicate it). ``_held``: an
        # event taken off the channel whose delivery has not started; whoever
        # delivers next (a new worker, or stop's drain) delivers it first.
        self._running = False
        self._worker_exited: trio.Event | None = None
        self._worker_scope: trio.CancelScope | None = None
        self._idle = False
        self._stopping = False
        self._in_flight: _Event | None = None
        self._held: _Event | None = None
        self._stop_done: trio.Event | None = None
        self._owner: AbstractAsyncContextManager[trio.Nursery] | None = None

    @property
    def metrics(self) -> BackpressureMetrics:
        """The live counters (the same object for the sink's lifetime)."""
        return self._metrics

    @property
    def queue_size(self) -> int:
        """Events waiting in the queue."""
        return self._send.statistics().current_buffer_used

    @property
    def is_running(self) -> bool:
        """True while the worker task is running."""
        return self._running

    # -- ownership -----------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the worker as a task of ``nursery``; a no-op if it is already running.

        The worker runs until :meth:`stop` (or until ``nursery`` is cancelled),
        so the nursery does not close before one of those happens.

        A checkpoint. When the call that starts the worker returns,
        ``is_running`` is True. An event left half-delivered by a previously
        cancelled worker is counted as undelivered first.

        Raises:
            RuntimeError: If ``nursery`` is closed (from ``nursery.start``).
        """
        if self._worker_exited is not None:
            await trio.lowlevel.checkpoint()
            return
        self._give_up_in_flight()
        exited = self._worker_exited = trio.Event()
        try:
            await nursery.start(self._run_worker, exited)
        except BaseException:
            # The worker never ran (closed nursery, or cancelled first).
            if self._worker_exited is exited and not self._running:
                self._worker_exited = None
            raise
        self._logger.info(
            "BackpressureAwareEventSink started", extra={"max_queue_size": self._max_queue_size}
        )

    async def __aenter__(self) -> BackpressureAwareEventSink:
        """Open a nursery that owns the worker and start it. A checkpoint.

        Raises:
            RuntimeError: If the sink is already inside another ``async with``.
        """
        if self._owner is not None:
            raise RuntimeError("this BackpressureAwareEventSink is already used in an `async with`")
        manager = self._owner = trio.open_nursery()
        try:
            nursery = await manager.__aenter__()
        except BaseException:
            self._owner = None
            raise
        try:
            await self.start(nursery)
        except BaseException:
            self._owner = None
            await manager.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop with drain (``stop()``'s defaults), then close the nursery.

        The body's exception passes through unchanged (it never goes through the
        internal nursery, so it is not wrapped in an ExceptionGroup).
        """
        manager, self._owner = self._owner, None
        try:
            await self.stop()
        finally:
            # The worker has exited, so closing the nursery does not wait.
            if manager is not None:
                await manager.__aexit__(None, None, None)

    async def stop(self, *, drain: bool = True, timeout: float = 5.0) -> None:
        """Stop the worker, first delivering what is queued if ``drain``.

        The worker finishes the event it is delivering, then this task delivers
        the rest of the queue, all within ``timeout`` seconds on the trio clock.
        This runs shielded, so a cancelled caller still drains within the same
        budget. Events not delivered by then (or all queued events when
        ``drain`` is False; the worker is then cancelled mid-delivery) are
        removed from the queue, counted in ``metrics``, passed to ``on_drop``
        and logged. Works without a running worker too (it just drains).

        Idempotent: a call while another is in progress waits for it; a call on
        a stopped, empty sink only checkpoints. The sink can be started again.

        A checkpoint. Raises ``trio.Cancelled`` at the end if the caller was
        cancelled (the sink is stopped by then).

        Raises:
            ValueError: If ``timeout`` is negative or NaN.
        """
        if not timeout >= 0:
            raise ValueError(f"timeout must be a non-negative number of seconds, got {timeout!r}")
        if self._stop_done is not None:
            await self._stop_done.wait()
            return
        if (
            self._worker_exited is None
            and self._in_flight is None
            and self._held is None
            and self.queue_size == 0
        ):
            await trio.lowlevel.checkpoint()
            return
        done = self._stop_done = trio.Event()
        try:
            with trio.CancelScope(shield=True):
                await self._stop_shielded(drain, timeout)
        finally:
            self._stop_done = None
            done.set()
        await trio.lowlevel.checkpoint()

    async def _stop_shielded(self, drain: bool, timeout: float) -> None:
        timed_out = False
        leftovers: list[_Event] = []
        self._stopping = True
        try:
            if drain:
                with trio.move_on_after(timeout) as budget:
                    await self._wait_worker_idle_exit()
                    # An event the worker was cancelled in the middle of.
                    self._set_aside_in_flight(leftovers)
                    await self._drain_here()
                timed_out = budget.cancelled_caught
            await self._halt_worker()
        finally:
            self._stopping = False
        self._set_aside_in_flight(leftovers)
        if self._held is not None:
            leftovers.append(self._held)
            self._held = None
        leftovers.extend(self._take_all())
        if leftovers:
            self._give_up(leftovers)
            message = (
                "Drain timeout, some events may be lost"
                if timed_out
                else "Stopped before delivering all events"
            )
            self._logger.warning(
                message,
                extra={"remaining": len(leftovers), "dropped_total": self._metrics.dropped},
            )
        self._logger.info(
            "BackpressureAwareEventSink stopped", extra={"metrics": self._metrics.to_dict()}
        )

    async def _wait_worker_idle_exit(self) -> None:
        """Ask the worker to exit after its current event, and wait for that."""
        exited = self._worker_exited
        if exited is None:
            return
        if self._idle and self._worker_scope is not None:
            # An idle worker holds nothing: wake it by cancelling its scope. If an
            # event reached it first, it keeps that event in ``_held`` for us.
            self._worker_scope.cancel()
        await exited.wait()

    async def _halt_worker(self) -> None:
        """Cancel the worker wherever it is and wait for it to exit."""
        exited = self._worker_exited
        if exited is None:
            return
        if self._worker_scope is not None:
            self._worker_scope.cancel()
        await exited.wait()

    async def _drain_here(self) -> None:
        """Deliver the queue from the calling task (the worker has exited)."""
        receive_nowait = self._receive.receive_nowait
        emit = self._downstream.emit
        count = 0
        while True:
            event = self._held
            if event is None:
                try:
                    event = receive_nowait()
                except trio.WouldBlock:
                    return
            else:
                self._held = None
            self._in_flight = event
            try:
                await emit(type=event[0], data=event[1])
            except Exception as exc:  # noqa: BLE001 - a broken downstream must not stop the drain
                self._log_downstream_error(event[0], exc)
            self._in_flight = None
            count += 1
            if count == _FAIR_SHARE:
                count = 0
                await trio.lowlevel.checkpoint()

    # -- the worker ----------------------------------------------------------

    async def _run_worker(
        self,
        exited: trio.Event,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        registry = _run_registry()
        registry.sinks.add(self)
        try:
            with trio.CancelScope() as scope:
                self._worker_scope = scope
                self._running = True
                task_status.started()
                await self._deliver_forever()
        finally:
            self._running = False
            self._worker_scope = None
            self._idle = False
            self._worker_exited = None
            registry.sinks.discard(self)
            exited.set()
            registry.wake_waiters()

    async def _deliver_forever(self) -> None:
        # Hot loop: take everything that is queued with receive_nowait and only
        # park in receive() when the queue is empty, so a burst costs one
        # wake-up, not one scheduler round trip per event. Going idle costs two
        # flag writes (no cancel scope per wait): events often trickle in one by
        # one, so the idle path is hot too.
        receive = self._receive
        receive_nowait = receive.receive_nowait
        emit = self._downstream.emit
        idle_waiters = _run_registry().idle_waiters
        count = 0
        while True:
            event = self._held
            if event is None:
                try:
                    event = receive_nowait()
                except trio.WouldBlock:
                    self._in_flight = None
                    if self._stopping:
                        return
                    if idle_waiters:
                        idle_waiters.unpark_all()
                    self._idle = True
                    try:
                        event = await receive.receive()
                    finally:
                        self._idle = False
                    if trio.current_effective_deadline() == -math.inf:
                        # Cancelled (by stop, or the owner) after the event was
                        # handed over: delivering it would be cut at the first
                        # checkpoint, so keep it for whoever delivers next.
                        self._held = event
                        return
            else:
                self._held = None
            self._in_flight = event
            try:
                await emit(type=event[0], data=event[1])
            except Exception as exc:  # noqa: BLE001 - a broken downstream must not kill the worker
                self._log_downstream_error(event[0], exc)
            if self._stopping:
                self._in_flight = None
                return
            count += 1
            if count == _FAIR_SHARE:
                self._in_flight = None
                count = 0
                await trio.lowlevel.checkpoint()

    def _log_downstream_error(self, event_type: str, exc: Exception) -> None:
        self._logger.error(
            "Failed to emit event to downstream: %s",
            exc,
            extra={"event_type": event_type, "error": str(exc)},
        )

    # -- giving up -----------------------------------------------------------

    def _set_aside_in_flight(self, events: list[_Event]) -> None:
        if self._in_flight is not None:
            events.append(self._in_flight)
            self._in_flight = None

    def _take_all(self) -> list[_Event]:
        taken: list[_Event] = []
        while True:
            try:
                taken.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                return taken

    def _give_up_in_flight(self) -> None:
        event = self._in_flight
        if event is None:
            return
        self._in_flight = None
        self._give_up([event])
        self._logger.warning(
            "Event delivery was interrupted by cancellation",
            extra={"event_type": event[0], "dropped_total": self._metrics.dropped},
        )

    def _give_up(self, events: list[_Event]) -> None:
        self._metrics.record_undelivered(len(events))
        for event_type, data in events:
            self._call_on_drop(event_type, data)

    def _call_on_drop(self, event_type: str, data: dict[str, Any] | None) -> None:
        if self._on_drop is None:
            return
        try:
            self._on_drop(event_type, data)
        except Exception:
            self._logger.exception("on_drop callback failed", extra={"event_type": event_type})

    # -- producers -----------------------------------------------------------

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Queue the event, waiting for room if the queue is full.

        A checkpoint. Does not start a worker: with none running and a full
        queue this waits until a worker or :meth:`stop` makes room.

        Raises:
            trio.Cancelled: If cancelled while waiting; the event was not queued.
        """
        await self._send.send((type, data))
        self._metrics.record_emit()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> bool:  # noqa: A002
        """Queue the event if there is room, without blocking.

        Never starts a worker (there is no owner to start it in): with none
        running the event waits in the queue.

        Returns:
            True if the event was queued; False if the queue was full, in which
            case the drop is counted in ``metrics``, logged as a warning and
            passed to ``on_drop``.
        """
        try:
            self._send_nowait((type, data))
        except trio.WouldBlock:
            self._metrics.record_drop()
            self._logger.warning(
                "Event dropped due to backpressure",
                extra={
                    "event_type": type,
                    "queue_size": self.queue_size,
                    "dropped_total": self._metrics.dropped,
                },
            )
            self._call_on_drop(type, data)
            return False
        # record_emit() inlined: this is the per-event hot path.
        metrics = self._metrics
        metrics.emitted += 1
        metrics.last_emit_time = time.monotonic()
        return True

    def _has_owned_pending(self) -> bool:
        if not self._running:
            return False
        if self._in_flight is not None or self._held is not None:
            return True
        stats = self._send.statistics()
        if stats.current_buffer_used:
            return True
        # A send to a parked receiver hands the event straight to the worker,
        # bypassing the buffer: the worker is then no longer in the wait queue.
        return self._idle and stats.tasks_waiting_receive == 0
