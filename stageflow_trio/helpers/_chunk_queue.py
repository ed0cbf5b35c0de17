"""ChunkQueue: a bounded FIFO for stream chunks over a trio memory channel."""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING, Generic

import trio
from trio.lowlevel import checkpoint

from stageflow_trio._budget import checkpoint_due
from stageflow_trio._time import monotonic
from stageflow_trio.errors import StageflowError
from stageflow_trio.helpers._audio import EventEmitter, T, _emit
from stageflow_trio.helpers._monitor import BackpressureMonitor

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

logger: logging.Logger = logging.getLogger("stageflow_trio.helpers.streaming")


class QueueEmpty(trio.WouldBlock, StageflowError):
    """Raised by :meth:`ChunkQueue.get_nowait` when no item is ready.

    Replaces ``asyncio.QueueEmpty``; being a ``trio.WouldBlock`` it also reads as
    trio's usual "would have to wait" signal.
    """


class ChunkQueue(Generic[T]):
    """A bounded FIFO for stream chunks on a trio memory channel.

    When the queue is full, ``put`` either waits for room (the default) or, with
    ``drop_on_overflow=True``, drops the oldest item and never waits.
    ``max_size <= 0`` means unbounded, as with ``asyncio.Queue``.

    ``close()`` marks the queue closed, emits ``stream.queue_closed`` with the
    final counters, queues a ``None`` end marker if there is room, and closes the
    sending side: a ``put`` waiting for room at that moment returns ``False``.
    Consumers drain what is left and then get ``None`` (``async for`` stops).

    Telemetry events (``event_emitter(type, data)``):

    - ``stream.chunk_dropped``: ``{queue_size, max_size, reason}``, reason
      ``"overflow"`` (oldest dropped) or ``"queue_full"`` (new item dropped).
    - ``stream.producer_blocked``: ``{blocked_ms, queue_size}`` after a put waited
      more than 1 ms (engine clock, so ``MockClock`` drives it).
    - ``stream.throttle_started`` / ``stream.throttle_ended``:
      ``{fill_percentage, queue_size}`` when the monitor's throttle flag flips.
    - ``stream.queue_closed``: ``{total_items, dropped_items, blocked_puts,
      max_queue_size, total_blocked_ms}``.

    Args:
        max_size: Capacity; ``<= 0`` means unbounded.
        drop_on_overflow: Drop the oldest item instead of waiting when full.
        event_emitter: Optional telemetry callback.

    Raises:
        TypeError: an argument has the wrong type (``max_size`` is not an int, ...).
    """

    def __init__(
        self,
        max_size: int = 100,
        *,
        drop_on_overflow: bool = False,
        event_emitter: EventEmitter | None = None,
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int):
            raise TypeError(f"ChunkQueue: max_size must be an int; got {type(max_size).__name__}")
        if not isinstance(drop_on_overflow, bool):
            raise TypeError(
                f"ChunkQueue: drop_on_overflow must be a bool; got {type(drop_on_overflow).__name__}"
            )
        if event_emitter is not None and not callable(event_emitter):
            raise TypeError(
                "ChunkQueue: event_emitter must be a callable or None; "
                f"got {type(event_emitter).__name__}"
            )
        # trio's 0 is a rendezvous channel; asyncio's 0 meant unbounded.
        capacity: float = max_size if max_size > 0 else math.inf
        self._send, self._receive = trio.open_memory_channel[T | None](capacity)
        self._max_size = max_size
        self._drop_on_overflow = drop_on_overflow
        self._closed = False
        self._monitor = BackpressureMonitor()
        self._event_emitter = event_emitter
        self._throttle_active = False
        # The channel's buffer length, mirrored: its statistics() builds an object
        # per call, too slow for every put. The mirror moves by one on the fast
        # paths and is re-read from statistics() whenever a task of ours may be
        # parked on the other side (a send can then hand its item straight to a
        # parked get, and a receive can pull a parked put's item into the buffer).
        # The parked counts are upper bounds: raised before a task parks, and set
        # from statistics() on every re-read.
        self._size = 0
        self._gets_parked = 0
        self._puts_parked = 0

    @property
    def monitor(self) -> BackpressureMonitor:
        """The queue's backpressure monitor."""
        return self._monitor

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __len__(self) -> int:
        """Items waiting in the queue (the end marker included); never above a bounded ``max_size``.

        An item handed straight to a waiting ``get`` never waits in the queue, so
        it is not counted; an item whose ``put`` waited for room counts from the
        moment a ``get`` made room for it.
        """
        return self._size

    def _resync(self) -> None:
        stats = self._send.statistics()
        self._size = stats.current_buffer_used
        self._gets_parked = stats.tasks_waiting_receive
        self._puts_parked = stats.tasks_waiting_send

    def _sent(self) -> None:
        # After a send_nowait: buffered, unless it went to a parked get.
        if self._gets_parked:
            self._resync()
        else:
            self._size += 1

    def _received(self) -> None:
        # After a receive_nowait: one out, unless a parked put's item moved in.
        if self._puts_parked:
            self._resync()
        else:
            self._size -= 1

    async def put(self, item: T) -> bool:
        """Add ``item``, waiting for room unless the queue drops on overflow.

        A checkpoint under the checkpoint budget (:mod:`stageflow_trio.lowlevel`):
        cancellation is checked on every call, and a cancelled put has not added
        its item; a schedule point comes when one is due, and always when the
        put waits for room.

        Returns:
            ``True`` if the item was queued; ``False`` if the queue is closed (also
            when it closes while this put waits for room) or the item was dropped.
        """
        if checkpoint_due():
            await checkpoint()
        if self._closed:
            return False
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            if self._drop_on_overflow:
                if not self._drop_oldest_then_send(item):
                    return False
            else:
                start = monotonic()
                self._puts_parked += 1
                try:
                    await self._send.send(item)
                except trio.ClosedResourceError:
                    return False
                finally:
                    self._resync()
                elapsed_ms = (monotonic() - start) * 1000
                if elapsed_ms > 1:
                    self._monitor.record_blocked(elapsed_ms)
                    if self._event_emitter is not None:
                        _emit(
                            self._event_emitter,
                            "stream.producer_blocked",
                            {"blocked_ms": elapsed_ms, "queue_size": self._size},
                        )
        else:  # self._sent(), inlined on the hot path
            if self._gets_parked:
                self._resync()
            else:
                self._size += 1
        self._after_put()
        return True

    def _drop_oldest_then_send(self, item: T) -> bool:
        try:
            self._receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            pass
        else:
            self._received()
            self._record_drop("overflow")
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self._record_drop("queue_full")
            return False
        self._sent()
        return True

    def _record_drop(self, reason: str) -> None:
        self._monitor.record_drop()
        if self._event_emitter is not None:
            _emit(
                self._event_emitter,
                "stream.chunk_dropped",
                {"queue_size": self._size, "max_size": self._max_size, "reason": reason},
            )

    def _after_put(self) -> None:
        size = self._size
        monitor = self._monitor
        monitor._record_put(size, self._max_size)
        throttling = monitor.should_throttle()
        if throttling == self._throttle_active:
            return
        self._throttle_active = throttling
        if self._event_emitter is not None:
            _emit(
                self._event_emitter,
                "stream.throttle_started" if throttling else "stream.throttle_ended",
                {"fill_percentage": monitor.fill_percentage, "queue_size": size},
            )

    async def get(self) -> T | None:
        """Take the next item, waiting for one if the queue is open and empty.

        A checkpoint under the checkpoint budget, like :meth:`put`: a cancelled
        get has taken no item; it always yields when it has to wait.

        Returns:
            The next item, or ``None`` once the queue is closed and drained (or
            when the end marker queued by :meth:`close` comes out).
        """
        if checkpoint_due():
            await checkpoint()
        receive = self._receive
        try:
            item = receive.receive_nowait()
        except trio.WouldBlock:
            self._gets_parked += 1
            try:
                return await receive.receive()
            except trio.EndOfChannel:
                return None
            finally:
                self._resync()
        except trio.EndOfChannel:
            return None
        # self._received(), inlined on the hot path.
        if self._puts_parked:
            self._resync()
        else:
            self._size -= 1
        return item

    def get_nowait(self) -> T | None:
        """Take the next item without waiting.

        Returns:
            The next item (``None`` if it is the end marker).

        Raises:
            QueueEmpty: No item is waiting.
        """
        try:
            item = self._receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            raise QueueEmpty("ChunkQueue is empty") from None
        self._received()
        return item

    async def close(self) -> None:
        """Close the queue; see the class docstring. A checkpoint.

        The queue is closed even if the caller is cancelled; ``Cancelled`` is
        raised afterwards.
        """
        self._closed = True
        stats = self._monitor.stats
        _emit(
            self._event_emitter,
            "stream.queue_closed",
            {
                "total_items": stats.total_items,
                "dropped_items": stats.dropped_items,
                "blocked_puts": stats.blocked_puts,
                "max_queue_size": stats.max_queue_size,
                "total_blocked_ms": stats.total_blocked_ms,
            },
        )
        # Full: consumers see the channel end instead. Closed: a second close().
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait(None)
            self._sent()
        self._send.close()
        await checkpoint()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        item = await self.get()
        if item is None:
            raise StopAsyncIteration
        return item
