"""BackpressureAwareEventSink: a bounded queue in front of a sink, drained by an owned worker."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import trio

from stageflow_trio._groups import unwrapping_groups
from stageflow_trio.events._metrics import BackpressureMetrics
from stageflow_trio.events._sink_worker import _Event, _SinkWorker
from stageflow_trio.events._sinks import EventEmitter, LoggingEventSink

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType


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

    Every accepted event is either delivered downstream or counted in
    ``metrics.dropped`` / ``metrics.undelivered``, logged, and passed to
    ``on_drop``: when the downstream rejects it (its ``emit`` raises; also
    counted in ``metrics.downstream_errors``) and when :meth:`stop` gives up
    on it.

    Args:
        downstream: Where events are delivered; ``None`` means a
            :class:`LoggingEventSink`.
        max_queue_size: Capacity of the queue; ``<= 0`` means unbounded.
        on_drop: Called as ``on_drop(event_type, data)`` for every event the
            sink gives up on. What it returns is ignored (so ``list.append``,
            a counter's method or a function returning a value all fit); its
            exceptions are logged and suppressed.

    Raises:
        TypeError: If ``downstream`` has no ``emit`` method, ``max_queue_size``
            is not an int, or ``on_drop`` is not callable.
    """

    def __init__(
        self,
        downstream: EventEmitter | None = None,
        *,
        max_queue_size: int = 1000,
        on_drop: Callable[[str, dict[str, Any] | None], object] | None = None,
    ) -> None:
        if downstream is not None and not callable(getattr(downstream, "emit", None)):
            raise TypeError(
                "downstream must be an EventSink (with async emit(*, type, data)) or None,"
                f" got {type(downstream).__name__}"
            )
        if on_drop is not None and not callable(on_drop):
            raise TypeError(f"on_drop must be callable or None, got {type(on_drop).__name__}")
        if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int):
            raise TypeError(
                f"max_queue_size must be an int (<= 0 for unbounded), got {type(max_queue_size).__name__}"
            )
        self._max_queue_size = max_queue_size
        self._send, receive = trio.open_memory_channel[_Event](
            math.inf if max_queue_size <= 0 else max_queue_size
        )
        self._send_nowait = self._send.send_nowait
        self._metrics = BackpressureMetrics()
        self._logger = logging.getLogger("stageflow_trio.events.backpressure")
        # The delivery side: the worker task, its in-flight event, giving up.
        self._worker = _SinkWorker(
            receive,
            LoggingEventSink() if downstream is None else downstream,
            self._metrics,
            on_drop,
            self._logger,
        )
        self._stop_done: trio.Event | None = None
        self._owner: AbstractAsyncContextManager[trio.Nursery] | None = None
        # Who must never wait on the stop (it would wait on itself): the worker's
        # task, and the task a stop runs in. A stop asked for by the worker's own
        # task (from inside the downstream's emit) waits in ``_pending_stop``
        # (drain, deadline, and the event other stop calls wait on) until the
        # delivery in progress returns.
        self._worker_task: trio.lowlevel.Task | None = None
        self._worker_scope: trio.CancelScope | None = None
        self._stop_task: trio.lowlevel.Task | None = None
        self._pending_stop: tuple[bool, float, trio.Event] | None = None
        # True while ``async with``'s exit runs stop(): the exit raises the stray
        # Cancelled (see stop) once the nursery is closed.
        self._stray_deferred = False

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
        return self._worker.running

    # -- ownership -----------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the worker as a task of ``nursery``; a no-op if it is already running.

        The worker runs until :meth:`stop` (or until ``nursery`` is cancelled),
        so the nursery does not close before one of those happens.

        A checkpoint. When the call that starts the worker returns,
        ``is_running`` is True. An event left half-delivered by a previously
        cancelled worker is counted as undelivered first.

        Raises:
            TypeError: If ``nursery`` is not a ``trio.Nursery`` (also while the
                worker already runs).
            RuntimeError: If ``nursery`` is closed (from ``nursery.start``).
        """
        if not isinstance(nursery, trio.Nursery):
            raise TypeError(
                f"BackpressureAwareEventSink.start: nursery must be a trio.Nursery; "
                f"got {type(nursery).__name__}"
            )
        worker = self._worker
        if worker.exited is not None:
            await trio.lowlevel.checkpoint()
            return
        worker.give_up_in_flight()
        exited = worker.exited = trio.Event()
        try:
            await nursery.start(self._run_worker, exited)
        except BaseException:
            # The worker never ran (closed nursery, or cancelled first).
            if worker.exited is exited and not worker.running:
                worker.exited = None
            raise
        self._logger.info(
            "BackpressureAwareEventSink started", extra={"max_queue_size": self._max_queue_size}
        )

    async def _run_worker(
        self,
        exited: trio.Event,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The worker task: ``_SinkWorker.run``, then a stop the worker asked for itself.

        Costs nothing per event: it only records the task and, when the worker
        exits, finishes a stop that was called from inside the downstream's emit.
        """
        self._worker_task = trio.lowlevel.current_task()
        cut = False
        try:
            with trio.CancelScope() as scope:
                self._worker_scope = scope
                await self._worker.run(exited, task_status=task_status)
            cut = scope.cancelled_caught
        finally:
            self._worker_task = None
            self._worker_scope = None
            pending, self._pending_stop = self._pending_stop, None
            if pending is not None:
                drain, deadline, done = pending
                try:
                    with trio.CancelScope(shield=True):
                        await self._stop_shielded(drain, deadline, timed_out=cut)
                finally:
                    self._stop_task = None
                    self._stop_done = None
                    done.set()

    async def __aenter__(self) -> BackpressureAwareEventSink:
        """Open a nursery that owns the worker and start it. A checkpoint.

        Raises:
            RuntimeError: If the sink is already inside another ``async with``.
        """
        if self._owner is not None:
            raise RuntimeError("this BackpressureAwareEventSink is already used in an `async with`")
        manager = self._owner = trio.open_nursery()
        # Cannot fail: it only enters a new cancel scope (not a checkpoint, and
        # trio keeps KeyboardInterrupt out of it); outside trio, open_nursery raised.
        nursery = await manager.__aenter__()
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
        internal nursery, so it is not wrapped in an ExceptionGroup); so does a
        SystemExit or KeyboardInterrupt the worker raised. A stray ``Cancelled``
        the downstream raised (see :meth:`stop`) is raised once the nursery is
        closed, unless the body raised (it was logged when it happened).
        """
        manager, self._owner = self._owner, None
        # stop() leaves a stray Cancelled to this method, which closes the nursery first.
        self._stray_deferred = True
        try:
            await self.stop()
        finally:
            self._stray_deferred = False
            # The worker has exited, so closing the nursery does not wait.
            if manager is not None:
                try:
                    # What the worker raised (SystemExit, or a KeyboardInterrupt in the
                    # downstream's emit) escapes as itself, not in the nursery's group.
                    with unwrapping_groups():
                        await manager.__aexit__(None, None, None)
                finally:
                    # A stop cut by KeyboardInterrupt/SystemExit cut a busy worker, or
                    # woke an idle one that had just been handed an event: it has
                    # exited now; the event it was delivering or holding is counted.
                    self._worker.give_up_in_flight()
                    self._give_up_rest([], "Stopped before delivering all events")
        if exc is None:
            self._raise_stray()
        else:
            self._worker.stray = None  # logged when it happened; the body's error goes on

    async def stop(self, *, drain: bool = True, timeout: float = 5.0) -> None:
        """Stop the worker, first delivering what is queued if ``drain``.

        The worker finishes the event it is delivering, then this task delivers
        the rest of the queue, all within ``timeout`` seconds on the trio clock.
        This runs shielded, so a cancelled caller still drains within the same
        budget. Events not delivered by then (or all queued events when
        ``drain`` is False; the worker is then cancelled mid-delivery) are
        removed from the queue, counted in ``metrics``, passed to ``on_drop``
        and logged. Works without a running worker too (it just drains).

        Idempotent: a call while another is in progress waits for it (shielded
        too: a cancelled caller gets ``Cancelled`` once that stop has ended); a
        call on a stopped, empty sink only checkpoints. The sink can be started
        again.

        Called from the worker's own task (the downstream's ``emit`` calling
        ``stop``), it cannot wait for the worker, which is its caller: it only
        checkpoints and returns. The delivery in progress then runs to its end
        (cut if it outlasts ``timeout``), the worker exits, and the worker's task
        drains the queue (``drain``) or gives it up (``drain=False``) as above,
        within what is left of ``timeout``; other tasks' calls to ``stop`` wait
        for that. Called from inside the downstream's ``emit`` while a stop is
        already in progress, it returns at once and that stop goes on.

        A checkpoint. Raises ``trio.Cancelled`` at the end if the caller was
        cancelled (the sink is stopped by then). A ``trio.Cancelled`` the
        downstream's ``emit`` raised outside a cancelled scope (a stray one: it
        saved it elsewhere and raised it again) counts its event as rejected by
        the downstream and is logged; the first one is raised at the end of the
        next ``stop`` from a task other than the worker's, once the sink is
        stopped.

        Raises:
            TypeError: If ``drain`` is not a bool, or ``timeout`` is not an int
                or float.
            ValueError: If ``timeout`` is negative or NaN.
        """
        if type(drain) is not bool:
            raise TypeError(f"drain must be a bool, got {type(drain).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(
                f"timeout must be a number of seconds (int or float), got {type(timeout).__name__}"
            )
        if not timeout >= 0:
            raise ValueError(f"timeout must be a non-negative number of seconds, got {timeout!r}")
        if await self._stop(drain, timeout) and not self._stray_deferred:
            self._raise_stray()

    def _raise_stray(self) -> None:
        """Raise the stray ``Cancelled`` the downstream raised, if it did (see ``stop``)."""
        worker = self._worker
        stray = worker.stray
        if stray is not None:
            worker.stray = None
            try:
                raise stray
            finally:
                del stray  # this frame is in its traceback: no cycle

    async def _stop(self, drain: bool, timeout: float) -> bool:
        """``stop`` once its arguments are checked; False when called from the task it stops."""
        task = trio.lowlevel.current_task()
        if task is self._worker_task or task is self._stop_task:
            # The task a stop would wait for: never wait on ourselves.
            if self._stop_done is None:
                self._stop_from_worker(task, drain, timeout)
            await trio.lowlevel.checkpoint()
            return False
        if self._stop_done is not None:
            # Shielded like the stop itself (which its timeout bounds): a
            # cancelled caller too finds the sink stopped when Cancelled comes.
            with trio.CancelScope(shield=True):
                await self._stop_done.wait()
            await trio.lowlevel.checkpoint()
            return True
        worker = self._worker
        if (
            worker.exited is None
            and worker.in_flight is None
            and worker.held is None
            and self.queue_size == 0
        ):
            await trio.lowlevel.checkpoint()
            return True
        done = self._stop_done = trio.Event()
        self._stop_task = task
        try:
            with trio.CancelScope(shield=True):
                await self._stop_shielded(drain, trio.current_time() + timeout)
        finally:
            self._stop_task = None
            self._stop_done = None
            done.set()
        await trio.lowlevel.checkpoint()
        return True

    def _stop_from_worker(self, task: trio.lowlevel.Task, drain: bool, timeout: float) -> None:
        """``stop`` from inside the downstream's emit: the worker stops after this delivery.

        ``_run_worker`` finishes the stop once the worker has exited; meanwhile
        ``stop`` calls from other tasks wait on ``_stop_done``.
        """
        deadline = trio.current_time() + timeout
        done = self._stop_done = trio.Event()
        self._stop_task = task
        self._pending_stop = (drain, deadline, done)
        self._worker.stopping = True
        # Set while the worker's task is the worker (stop() came from its emit).
        scope = self._worker_scope
        assert scope is not None
        # The rest of this delivery gets the same budget as stop's drain.
        scope.deadline = min(scope.deadline, deadline)

    async def _stop_shielded(
        self, drain: bool, deadline: float, *, timed_out: bool = False
    ) -> None:
        leftovers: list[_Event] = []
        worker = self._worker
        worker.stopping = True
        try:
            if drain and not timed_out:
                with trio.move_on_at(deadline) as budget:
                    await worker.wait_idle_exit()
                    # An event the worker was cancelled in the middle of.
                    worker.set_aside_in_flight(leftovers)
                    await worker.drain_here()
                timed_out = budget.cancelled_caught
            await worker.halt()
        except BaseException:
            # A KeyboardInterrupt or SystemExit cut the stop (the shield keeps
            # cancellation out, not those; the drain takes a stray Cancelled from
            # the downstream's emit as a rejected event): count what it leaves, so
            # nothing accepted is lost silently.
            self._give_up_interrupted(leftovers)
            raise
        finally:
            worker.stopping = False
        worker.set_aside_in_flight(leftovers)
        self._give_up_rest(
            leftovers,
            "Drain timeout, some events may be lost"
            if timed_out
            else "Stopped before delivering all events",
        )
        self._logger.info(
            "BackpressureAwareEventSink stopped", extra={"metrics": self._metrics.to_dict()}
        )

    def _give_up_interrupted(self, leftovers: list[_Event]) -> None:
        """Count the events a stop cut by KeyboardInterrupt/SystemExit leaves behind.

        A worker still delivering is cancelled where it is; its event stays in
        flight and is counted by the next ``start`` or ``stop``, as for any cut
        delivery. Everything else (set aside, held, in flight in this task's
        drain, queued) is counted now.
        """
        worker = self._worker
        if worker.running:
            worker.cut()
        else:
            worker.set_aside_in_flight(leftovers)
        self._give_up_rest(leftovers, "Stopped before delivering all events")

    def _give_up_rest(self, leftovers: list[_Event], message: str) -> None:
        """Count ``leftovers``, the held event and the queue as undelivered; warn if any."""
        worker = self._worker
        if worker.held is not None:
            leftovers.append(worker.held)
            worker.held = None
        leftovers.extend(worker.take_all())
        if leftovers:
            worker.give_up(leftovers)
            self._logger.warning(
                message,
                extra={"remaining": len(leftovers), "dropped_total": self._metrics.dropped},
            )

    # -- producers -----------------------------------------------------------

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Queue the event, waiting for room if the queue is full.

        A checkpoint. Does not start a worker: with none running and a full
        queue this waits until a worker or :meth:`stop` makes room.

        Called from the task that delivers this sink's events (the downstream's
        ``emit`` emitting into its own sink, from the worker or from a draining
        :meth:`stop`), it never waits: only that task could make room, so
        waiting would hang it. A full queue then drops the event as
        :meth:`try_emit` does (counted, logged, passed to ``on_drop``).

        Raises:
            trio.Cancelled: If cancelled while waiting; the event was not queued.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._send_nowait((type, data))
        except trio.WouldBlock:
            task = trio.lowlevel.current_task()
            if task is self._worker_task or task is self._stop_task:
                self.try_emit(type=type, data=data)
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            await self._send.send((type, data))
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
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
            self._worker.call_on_drop(type, data)
            return False
        # record_emit() inlined: this is the per-event hot path.
        metrics = self._metrics
        metrics.emitted += 1
        metrics.last_emit_time = time.monotonic()
        return True
