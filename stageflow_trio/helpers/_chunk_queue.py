"""ChunkQueue over a trio memory channel, with its backpressure monitor and statistics."""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any, Generic

import attrs
import trio
from trio.lowlevel import checkpoint, checkpoint_if_cancelled

from stageflow_trio._budget import schedule_point_due
from stageflow_trio._time import monotonic
from stageflow_trio.errors import StageflowError
from stageflow_trio.helpers._audio import EventEmitter, T, _emit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

logger = logging.getLogger("stageflow_trio.helpers.streaming")


@attrs.frozen
class BackpressureStats:
    """A snapshot of a :class:`BackpressureMonitor`'s counters.

    Attributes:
        total_items: Items put.
        dropped_items: Items dropped on overflow.
        blocked_puts: Puts that waited for room more than 1 ms.
        max_queue_size: Largest queue size seen after a put.
        total_blocked_ms: Milliseconds spent waiting in blocked puts.
    """

    total_items: int = 0
    dropped_items: int = 0
    blocked_puts: int = 0
    max_queue_size: int = 0
    total_blocked_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The counters plus ``drop_rate = dropped_items / max(total_items, 1)``."""
        return {
            "total_items": self.total_items,
            "dropped_items": self.dropped_items,
            "blocked_puts": self.blocked_puts,
            "max_queue_size": self.max_queue_size,
            "total_blocked_ms": self.total_blocked_ms,
            "drop_rate": self.dropped_items / max(self.total_items, 1),
        }


class BackpressureMonitor:
    """Counts puts, drops and blocked time, and latches a throttle flag on fill level.

    The throttle turns on when a put leaves the queue at least ``high_water_mark``
    percent full and off again only when a put leaves it at most
    ``low_water_mark`` percent full.

    Args:
        high_water_mark: Fill percentage that starts throttling.
        low_water_mark: Fill percentage that ends throttling.
    """

    __slots__ = (
        "_blocked_puts",
        "_dropped_items",
        "_fill_pct",
        "_high_water",
        "_low_water",
        "_max_queue_size",
        "_throttling",
        "_total_blocked_ms",
        "_total_items",
    )

    def __init__(self, *, high_water_mark: int = 80, low_water_mark: int = 20) -> None:
        self._high_water = high_water_mark
        self._low_water = low_water_mark
        self._total_items = 0
        self._dropped_items = 0
        self._blocked_puts = 0
        self._max_queue_size = 0
        self._total_blocked_ms = 0.0
        self._fill_pct: float = 0.0
        self._throttling = False

    @property
    def stats(self) -> BackpressureStats:
        """A snapshot of the counters (a new frozen object on every read)."""
        return BackpressureStats(
            total_items=self._total_items,
            dropped_items=self._dropped_items,
            blocked_puts=self._blocked_puts,
            max_queue_size=self._max_queue_size,
            total_blocked_ms=self._total_blocked_ms,
        )

    def record_put(self, queue_size: int, max_size: int = 100) -> None:
        """Count a put that left ``queue_size`` items in a queue of ``max_size``.

        ``max_size <= 0`` (unbounded) gives a fill of 0.
        """
        self._total_items += 1
        if queue_size > self._max_queue_size:
            self._max_queue_size = queue_size
        self._fill_pct = (queue_size / max_size) * 100 if max_size > 0 else 0
        if self._fill_pct >= self._high_water:
            self._throttling = True
        elif self._fill_pct <= self._low_water:
            self._throttling = False

    def record_blocked(self, blocked_ms: float) -> None:
        """Count a put that waited ``blocked_ms`` milliseconds for room."""
        self._blocked_puts += 1
        self._total_blocked_ms += blocked_ms

    def record_drop(self) -> None:
        """Count a dropped item."""
        self._dropped_items += 1

    def should_throttle(self) -> bool:
        """Whether the producer should slow down (the latched throttle flag)."""
        return self._throttling

    @property
    def fill_percentage(self) -> float:
        """Fill percentage recorded by the last put."""
        return self._fill_pct


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
    """

    def __init__(
        self,
        max_size: int = 100,
        *,
        drop_on_overflow: bool = False,
        event_emitter: EventEmitter | None = None,
    ) -> None:
        # trio's 0 is a rendezvous channel; asyncio's 0 meant unbounded.
        capacity: float = max_size if max_size > 0 else math.inf
        self._send, self._receive = trio.open_memory_channel[T | None](capacity)
        self._max_size = max_size
        self._drop_on_overflow = drop_on_overflow
        self._closed = False
        self._monitor = BackpressureMonitor()
        self._event_emitter = event_emitter
        self._throttle_active = False
        # Kept by hand: the channel's statistics() builds an object per call.
        self._size = 0

    @property
    def monitor(self) -> BackpressureMonitor:
        """The queue's backpressure monitor."""
        return self._monitor

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __len__(self) -> int:
        """Items put and not yet taken (the end marker included).

        As with ``asyncio.Queue.qsize``, an item handed straight to a waiting
        ``get`` counts until that ``get`` returns, and an item whose ``put``
        waited for room counts once that ``put`` returns.
        """
        return self._size

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
        if schedule_point_due():
            await checkpoint()
        else:
            await checkpoint_if_cancelled()
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
                try:
                    await self._send.send(item)
                except trio.ClosedResourceError:
                    return False
                self._size += 1
                elapsed_ms = (monotonic() - start) * 1000
                if elapsed_ms > 1:
                    self._monitor.record_blocked(elapsed_ms)
                    if self._event_emitter is not None:
                        _emit(
                            self._event_emitter,
                            "stream.producer_blocked",
                            {"blocked_ms": elapsed_ms, "queue_size": self._size},
                        )
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
            self._size -= 1
            self._record_drop("overflow")
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self._record_drop("queue_full")
            return False
        self._size += 1
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
        monitor.record_put(size, self._max_size)
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
        if schedule_point_due():
            await checkpoint()
        else:
            await checkpoint_if_cancelled()
        receive = self._receive
        try:
            item = receive.receive_nowait()
        except trio.WouldBlock:
            try:
                item = await receive.receive()
            except trio.EndOfChannel:
                return None
        except trio.EndOfChannel:
            return None
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
        self._size -= 1
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
            self._size += 1
        self._send.close()
        await checkpoint()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        item = await self.get()
        if item is None:
            raise StopAsyncIteration
        return item
