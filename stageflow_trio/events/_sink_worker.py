"""The delivery side of BackpressureAwareEventSink: its worker task and the events it gives up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from stageflow_trio._args import error_text
from stageflow_trio._budget import cancelled_now
from stageflow_trio.events._registry import _run_registry

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from stageflow_trio.events._metrics import BackpressureMetrics
    from stageflow_trio.events._sinks import EventEmitter

_Event = tuple[str, "dict[str, Any] | None"]

# The worker yields to the scheduler after this many deliveries in a row, so a
# downstream that never checkpoints cannot starve the rest of the program.
_FAIR_SHARE = 128


class _SinkWorker:
    """Delivers a sink's queued events downstream and accounts for those it gives up.

    The sink owns one for its lifetime and decides when it runs: ``run`` is the
    worker task, and the sink's ``stop`` sets ``stopping``, calls
    ``wait_idle_exit``, ``drain_here`` and ``halt``, then gives up what is left.

    State. ``exited``: while a worker task is starting or running, the Event it
    sets when it exits; None otherwise. ``in_flight``: an event whose delivery
    started but has not finished; if the worker dies holding one, the sink's
    ``start`` or ``stop`` counts it as undelivered (re-sending could duplicate
    it). While ``drain_here`` runs (a stop delivering from its own task), the
    in-flight event is the drain's: a worker started meanwhile neither gives it
    up nor delivers anything while that stop goes on. ``held``: an event taken off the channel whose delivery has not
    started; whoever delivers next (a new worker, or stop's drain) delivers it
    first.

    Args:
        receive: The receiving end of the sink's queue.
        downstream: Where events are delivered.
        metrics: The sink's counters; events given up are recorded there.
        on_drop: The sink's ``on_drop`` callback, or None.
        logger: The sink's logger.
    """

    __slots__ = (
        "_downstream",
        "_drain_done",
        "_idle",
        "_logger",
        "_metrics",
        "_on_drop",
        "_receive",
        "_scope",
        "exited",
        "held",
        "in_flight",
        "running",
        "stopping",
        "stray",
    )

    def __init__(
        self,
        receive: trio.MemoryReceiveChannel[_Event],
        downstream: EventEmitter,
        metrics: BackpressureMetrics,
        on_drop: Callable[[str, dict[str, Any] | None], object] | None,
        logger: logging.Logger,
    ) -> None:
        self._receive = receive
        self._downstream = downstream
        self._metrics = metrics
        self._on_drop = on_drop
        self._logger = logger
        self.running = False
        self.exited: trio.Event | None = None
        self._scope: trio.CancelScope | None = None
        self._idle = False
        self.stopping = False
        self.in_flight: _Event | None = None
        self.held: _Event | None = None
        # Set while drain_here runs; set (and cleared) when it returns.
        self._drain_done: trio.Event | None = None
        # The first trio.Cancelled the downstream's emit raised outside a cancelled
        # scope; the sink's stop() raises it once the stop has ended.
        self.stray: trio.Cancelled | None = None

    # -- the worker task -----------------------------------------------------

    async def run(
        self,
        exited: trio.Event,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The worker task: deliver until stopped or cancelled, then set ``exited``."""
        registry = _run_registry()
        registry.sinks.add(self)
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                self.running = True
                task_status.started()
                drain = self._drain_done
                if drain is not None:
                    # Started while a stop delivers the queue from its own task:
                    # two deliverers would share ``in_flight`` (an event lost or
                    # counted twice) and reorder the queue. Wait for the drain.
                    await drain.wait()
                if not self.stopping:
                    # (Still stopping: that stop owns the queue and any event
                    # its drain left in flight, and halts this worker next.)
                    await self._deliver_forever()
        finally:
            self.running = False
            self._scope = None
            self._idle = False
            self.exited = None
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
            event = self.held
            if event is None:
                try:
                    event = receive_nowait()
                except trio.WouldBlock:
                    self.in_flight = None
                    if self.stopping:
                        return
                    if idle_waiters:
                        idle_waiters.unpark_all()
                    self._idle = True
                    try:
                        event = await receive.receive()
                    finally:
                        self._idle = False
                    if cancelled_now():
                        # Cancelled (by stop, or the owner) after the event was
                        # handed over: delivering it would be cut at the first
                        # checkpoint, so keep it for whoever delivers next.
                        self.held = event
                        return
            else:
                self.held = None
            self.in_flight = event
            try:
                await emit(type=event[0], data=event[1])
            except Exception as exc:  # noqa: BLE001 - a broken downstream must not kill the worker
                self._downstream_failed(event, exc)
            except trio.Cancelled as exc:
                if cancelled_now():
                    raise  # the worker was cancelled (stop, or its owner): as it is
                self._downstream_stray(event, exc)
            if self.stopping:
                self.in_flight = None
                return
            count += 1
            if count == _FAIR_SHARE:
                self.in_flight = None
                count = 0
                await trio.lowlevel.checkpoint()

    def _has_owned_pending(self) -> bool:
        """For wait_for_event_sink_tasks: ``run`` registers this worker while it runs.

        Registered means running: ``run`` sets ``running`` and registers the worker
        (and undoes both) with no checkpoint in between.
        """
        if self.in_flight is not None or self.held is not None:
            return True
        stats = self._receive.statistics()
        if stats.current_buffer_used:
            return True
        # A send to a parked receiver hands the event straight to the worker,
        # bypassing the buffer: the worker is then no longer in the wait queue.
        return self._idle and stats.tasks_waiting_receive == 0

    # -- stopping ------------------------------------------------------------

    async def wait_idle_exit(self) -> None:
        """Ask the worker to exit after its current event, and wait for that."""
        exited = self.exited
        if exited is None:
            return
        if self._idle and self._scope is not None:
            # An idle worker holds nothing: wake it by cancelling its scope. If an
            # event reached it first, it keeps that event in ``held`` for us.
            self._scope.cancel()
        await exited.wait()

    def cut(self) -> None:
        """Cancel the running worker wherever it is, without waiting for it to exit."""
        # A running worker has its scope: ``run`` sets both (and clears both) at once.
        scope = self._scope
        assert scope is not None
        scope.cancel()

    async def halt(self) -> None:
        """Cancel the worker wherever it is and wait for it to exit."""
        exited = self.exited
        if exited is None:
            return
        if self._scope is not None:
            self._scope.cancel()
        await exited.wait()

    async def drain_here(self) -> None:
        """Deliver the queue from the calling task (the worker has exited)."""
        done = self._drain_done = trio.Event()
        try:
            await self._drain()
        finally:
            self._drain_done = None
            done.set()

    async def _drain(self) -> None:
        receive_nowait = self._receive.receive_nowait
        emit = self._downstream.emit
        count = 0
        while True:
            event = self.held
            if event is None:
                try:
                    event = receive_nowait()
                except trio.WouldBlock:
                    return
            else:
                self.held = None
            self.in_flight = event
            try:
                await emit(type=event[0], data=event[1])
            except Exception as exc:  # noqa: BLE001 - a broken downstream must not stop the drain
                self._downstream_failed(event, exc)
            except trio.Cancelled as exc:
                if cancelled_now():
                    raise  # the stop's budget ran out: as it is
                self._downstream_stray(event, exc)
            self.in_flight = None
            count += 1
            if count == _FAIR_SHARE:
                count = 0
                await trio.lowlevel.checkpoint()

    def _downstream_failed(self, event: _Event, exc: Exception) -> None:
        """The downstream rejected ``event``: log it, count it, pass it to ``on_drop``."""
        # Counted here: no longer in flight, so an on_drop (or a log handler) raising
        # SystemExit/KeyboardInterrupt below cannot make a stop count it again.
        self.in_flight = None
        self._metrics.record_downstream_error()
        text = error_text(exc)  # a __str__ that raises must not end the worker
        self._logger.error(
            "Failed to emit event to downstream: %s",
            text,
            extra={"event_type": event[0], "error": text},
        )
        self.call_on_drop(event[0], event[1])

    def _downstream_stray(self, event: _Event, exc: trio.Cancelled) -> None:
        """The downstream's emit raised a ``trio.Cancelled`` that nothing around it cancelled.

        One it saved from another scope and raised again, say. Raised on, it would
        end the worker's task, and the nursery that task runs in, whose scope trio
        cancels because a task raised, would catch it: the owner's other tasks
        cancelled, nothing said. Instead the event counts as rejected by the
        downstream (as for an Exception) and the worker goes on; the first such
        ``Cancelled`` is kept for the sink's ``stop()`` to raise once it has ended.
        """
        self.in_flight = None
        self._metrics.record_downstream_error()
        self._logger.error(
            "Downstream emit raised trio.Cancelled outside a cancelled scope; the event "
            "is counted as not delivered and stop() raises that Cancelled",
            extra={"event_type": event[0], "error": "trio.Cancelled"},
            exc_info=exc,
        )
        if self.stray is None:
            self.stray = exc
        self.call_on_drop(event[0], event[1])

    # -- giving up -----------------------------------------------------------

    def set_aside_in_flight(self, events: list[_Event]) -> None:
        """Move the in-flight event, if any, to ``events``."""
        if self.in_flight is not None:
            events.append(self.in_flight)
            self.in_flight = None

    def take_all(self) -> list[_Event]:
        """Remove and return every queued event, without blocking."""
        taken: list[_Event] = []
        while True:
            try:
                taken.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                return taken

    def give_up_in_flight(self) -> None:
        """Give up the event a cancelled worker left half-delivered, if any.

        Not while ``drain_here`` runs: its in-flight event is being delivered.
        """
        event = self.in_flight
        if event is None or self._drain_done is not None:
            return
        self.in_flight = None
        self.give_up([event])
        self._logger.warning(
            "Event delivery was interrupted by cancellation",
            extra={"event_type": event[0], "dropped_total": self._metrics.dropped},
        )

    def give_up(self, events: list[_Event]) -> None:
        """Count ``events`` as undelivered and pass each to ``on_drop``."""
        self._metrics.record_undelivered(len(events))
        for event_type, data in events:
            self.call_on_drop(event_type, data)

    def call_on_drop(self, event_type: str, data: dict[str, Any] | None) -> None:
        """Call ``on_drop``; its exceptions are logged and suppressed.

        A ``trio.Cancelled`` it raises is stray (trio delivers a cancellation only
        at a checkpoint, and ``on_drop`` is synchronous: it saved one from another
        scope and raised it again). It is handled as the downstream's stray one is:
        logged, and the first such ``Cancelled`` kept for the sink's ``stop()`` to
        raise once it has ended. Raised here, it would end the worker's task (and
        the nursery it runs in would take it as its own cancellation), escape the
        caller's ``try_emit``, or cut a stop's give-up before the other events
        reached ``on_drop``.
        """
        if self._on_drop is None:
            return
        try:
            self._on_drop(event_type, data)
        except Exception:
            self._logger.exception("on_drop callback failed", extra={"event_type": event_type})
        except trio.Cancelled as exc:
            self._logger.exception(
                "on_drop callback raised trio.Cancelled outside a cancelled scope; "
                "stop() raises that Cancelled",
                extra={"event_type": event_type, "error": "trio.Cancelled"},
            )
            if self.stray is None:
                self.stray = exc
