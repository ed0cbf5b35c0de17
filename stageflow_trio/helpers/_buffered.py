"""BufferedExporter: batches events in front of another exporter."""

from __future__ import annotations

import logging
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Self

import trio

from stageflow_trio._args import check_callable, check_int, check_number, type_of
from stageflow_trio._groups import unwrapping_groups
from stageflow_trio.helpers._exporters import _check_event, _check_events
from stageflow_trio.helpers._lifetime import SingleUseLifetime

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from stageflow_trio.helpers._exporters import (
        AnalyticsEvent,
        AnalyticsExporter,
        OverflowCallback,
    )


logger: logging.Logger = logging.getLogger("stageflow_trio.helpers.analytics")


class BufferedExporter(SingleUseLifetime):
    """Collects events and hands them to another exporter in batches.

    A batch goes out when ``batch_size`` events are buffered, on ``flush()``, on
    ``close()``, and every ``flush_interval_seconds`` while a timed flush runs.

    **The timed flush needs an owner.** Use ``async with BufferedExporter(...)``
    (the block owns it and closes the exporter on exit) or pass ``nursery=``
    (then call ``close()`` before that nursery's block ends). It starts on the
    first export. Without an owner there is no timed flush: only batch size,
    ``flush()`` and ``close()`` write.

    When the buffer holds ``max_buffer_size`` events, the oldest is dropped and
    ``on_overflow(dropped_count, buffer_size)`` is called. When an export leaves
    the buffer at least ``high_water_mark`` full, ``on_overflow(-1, buffer_size)``
    is called once; the warning re-arms after an export that leaves it below
    half that ratio. Callback errors are logged and ignored.

    An export that does not complete a batch never waits for a write in
    progress. One that completes a batch (or arrives while such an export is
    waiting, so that events stay in call order) waits for the write in progress
    first and buffers its event only then, so an export that raised
    ``Cancelled`` has buffered nothing. Every exported event is either handed to
    the underlying exporter, still buffered, or counted in ``dropped_count``: a
    batch whose hand-off raises or is cancelled is counted as dropped, and so is
    what is still buffered when ``close()`` is cancelled.

    Args:
        exporter: Where batches go.
        sink: stageflow 1.2's other name for ``exporter``.
        batch_size: Buffered events that trigger a write.
        flush_interval_seconds: Period of the timed flush.
        flush_interval: stageflow 1.2's other name for ``flush_interval_seconds``
            (used instead of it when given).
        max_buffer_size: Capacity (at least 1); the oldest event is dropped beyond it.
        on_overflow: ``(dropped_count, buffer_size) -> None``; ``-1`` means high water.
        high_water_mark: Fill ratio (0-1) that triggers the high-water warning.
        nursery: Owner of the timed flush, instead of ``async with``.

    Raises:
        TypeError: an argument has the wrong type (``exporter`` lacks async
            ``export_batch()`` / ``close()``, ``batch_size`` is not an int, ...),
            neither ``exporter`` nor ``sink`` is given, or both are.
        ValueError: ``batch_size`` or ``max_buffer_size`` is less than 1,
            ``flush_interval_seconds`` is not a finite number > 0, or
            ``high_water_mark`` is not in (0, 1].
    """

    def __init__(
        self,
        exporter: AnalyticsExporter | None = None,
        *,
        sink: AnalyticsExporter | None = None,
        batch_size: int = 100,
        flush_interval_seconds: float = 10.0,
        flush_interval: float | None = None,
        max_buffer_size: int = 10000,
        on_overflow: OverflowCallback | None = None,
        high_water_mark: float = 0.8,
        nursery: trio.Nursery | None = None,
    ) -> None:
        owner = "BufferedExporter"
        if sink is not None:
            if exporter is not None:
                raise TypeError(f"{owner}: pass exporter or its other name sink, not both")
            exporter = sink
        elif exporter is None:
            raise TypeError(f"{owner}: exporter is required (or its other name, sink)")
        if flush_interval is not None:
            check_number(owner, "flush_interval", flush_interval, minimum=0, above=True)
            flush_interval_seconds = flush_interval
        # A wrong exporter would otherwise fail only at the first batch write.
        if not (
            callable(getattr(exporter, "export_batch", None))
            and callable(getattr(exporter, "close", None))
        ):
            raise TypeError(
                f"{owner}: exporter must be an AnalyticsExporter (with async export_batch() "
                f"and close()); got {type_of(exporter)}"
            )
        check_int(owner, "batch_size", batch_size, minimum=1)
        check_number(owner, "flush_interval_seconds", flush_interval_seconds, minimum=0, above=True)
        check_int(owner, "max_buffer_size", max_buffer_size, minimum=1)
        check_callable(owner, "on_overflow", on_overflow, optional=True)
        check_number(owner, "high_water_mark", high_water_mark, minimum=0, above=True)
        if high_water_mark > 1:
            raise ValueError(
                f"{owner}: high_water_mark must be a fill ratio <= 1; got {high_water_mark!r}"
            )
        if nursery is not None and not isinstance(nursery, trio.Nursery):
            raise TypeError(
                f"{owner}: nursery must be a trio.Nursery or None; got {type_of(nursery)}"
            )
        self._exporter = exporter
        self._batch_size = batch_size
        self._flush_interval = flush_interval_seconds
        self._max_buffer = max_buffer_size
        self._on_overflow = on_overflow
        self._high_water_mark = high_water_mark
        self._nursery = nursery
        self._buffer: deque[AnalyticsEvent] = deque()
        # Serializes hand-offs so batches reach the exporter in order; an export
        # takes it only to complete a batch (the reference's export always took
        # its lock, held across the write, d25).
        self._write_lock = trio.Lock()
        # Exports waiting for the write lock to buffer their event; while any
        # wait, later exports queue behind them (the lock is FIFO).
        self._waiting = 0
        self._stop = trio.Event()
        self._loop_started = False
        self._closed = False
        self._init_lifetime()
        self._dropped_count = 0
        self._high_water_warned = False

    @property
    def buffer_size(self) -> int:
        """Events waiting in the buffer."""
        return len(self._buffer)

    @property
    def dropped_count(self) -> int:
        """Events dropped: overflow, plus failed or cancelled hand-offs."""
        return self._dropped_count

    @property
    def stats(self) -> dict[str, Any]:
        """buffer_size, max_buffer_size, dropped_count, fill_ratio, high_water_warned."""
        return {
            "buffer_size": len(self._buffer),
            "max_buffer_size": self._max_buffer,
            "dropped_count": self._dropped_count,
            "fill_ratio": len(self._buffer) / self._max_buffer,
            "high_water_warned": self._high_water_warned,
        }

    def _notify(self, dropped: int) -> None:
        if self._on_overflow is None:
            return
        try:
            self._on_overflow(dropped, len(self._buffer))
        except Exception:
            logger.warning("BufferedExporter on_overflow callback failed", exc_info=True)

    def _start_flush_loop(self, nursery: trio.Nursery) -> None:
        try:
            nursery.start_soon(self._flush_loop)
        except RuntimeError as exc:
            raise RuntimeError(
                "BufferedExporter: the nursery that owns its timed flush has already "
                "exited; close() the exporter before its nursery block ends, or use "
                "`async with BufferedExporter(...)`"
            ) from exc
        self._loop_started = True

    async def _flush_loop(self) -> None:
        while True:
            with trio.move_on_after(self._flush_interval):
                await self._stop.wait()
            if self._closed:
                return
            try:
                await self._flush()
            except Exception:
                # The batch is already counted as dropped; keep the timer alive.
                logger.warning("BufferedExporter timed flush failed", exc_info=True)

    async def export(self, event: AnalyticsEvent) -> None:
        """Buffer one event; write a batch if ``batch_size`` is reached.

        A checkpoint. If this event completes a batch, the call first waits for
        any write in progress, then buffers the event and writes the batch.
        **If cancelled, the event was not buffered**: either the call was
        cancelled before buffering it (nothing changed), or while writing the
        batch it completed (that batch is then counted in ``dropped_count``).

        Raises:
            TypeError: ``event`` is not an :class:`AnalyticsEvent`.
            RuntimeError: The ``nursery=`` owner has exited (timed flush cannot start).
            Exception: Whatever the underlying exporter raises on a batch write.
        """
        _check_event("BufferedExporter.export", "event", event)
        await trio.lowlevel.checkpoint()
        if not self._loop_started and not self._closed and self._nursery is not None:
            self._start_flush_loop(self._nursery)
        if not self._waiting and len(self._buffer) + 1 < self._batch_size:
            self._buffer_event(event)  # below batch size: no wait, no checkpoint
            return
        # The only cancellable wait comes before the event is buffered.
        self._waiting += 1
        try:
            await self._write_lock.acquire()
        finally:
            self._waiting -= 1
        try:
            # No checkpoint from here until the write.
            self._buffer_event(event)
            if len(self._buffer) >= self._batch_size:
                await self._write_buffered()
        finally:
            self._write_lock.release()

    def _buffer_event(self, event: AnalyticsEvent) -> None:
        """Append ``event``, dropping the oldest when full; tell ``on_overflow``. No checkpoint."""
        buffer = self._buffer
        if len(buffer) >= self._max_buffer:
            buffer.popleft()
            self._dropped_count += 1
            self._notify(self._dropped_count)
        buffer.append(event)
        fill_ratio = len(buffer) / self._max_buffer
        if fill_ratio >= self._high_water_mark and not self._high_water_warned:
            self._high_water_warned = True
            self._notify(-1)
        elif fill_ratio < self._high_water_mark * 0.5:
            self._high_water_warned = False

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        """Buffer several events, one :meth:`export` each. A checkpoint (one per event).

        Raises:
            TypeError: ``events`` is not a list of :class:`AnalyticsEvent`
                (checked before any event is buffered).
        """
        # Checked up front: a bad item used to fail only after the events
        # before it were buffered, and None failed with "not iterable".
        events = _check_events("BufferedExporter.export_batch", events)
        if not events:
            await trio.lowlevel.checkpoint()
        for event in events:
            await self.export(event)

    async def _flush(self) -> None:
        async with self._write_lock:
            await self._write_buffered()

    async def _write_buffered(self) -> None:
        """Hand everything buffered to the exporter. The caller holds the write lock."""
        if not self._buffer:
            return
        batch = list(self._buffer)
        self._buffer.clear()
        try:
            await self._exporter.export_batch(batch)
        except BaseException:
            self._dropped_count += len(batch)
            raise

    async def flush(self) -> None:
        """Write everything buffered, after any write already in progress. A checkpoint.

        Raises:
            Exception: Whatever the underlying exporter raises (the batch is then
                counted in ``dropped_count``).
        """
        await self._flush()

    async def close(self) -> None:
        """Stop the timed flush, write what is buffered, close the underlying exporter.

        A checkpoint. The underlying exporter's ``close()`` is called even if the
        final write fails or is cancelled; in a cancelled scope it runs cancelled
        too, so it completes only if it shields itself (as
        :class:`JSONFileExporter`'s does). Events that could not be handed over
        are counted in ``dropped_count``.
        """
        self._closed = True
        self._stop.set()
        dropped_before = self._dropped_count
        try:
            await self._flush()
        except BaseException:
            self._dropped_count += len(self._buffer)
            self._buffer.clear()
            # Loud, as the event sink's stop is: a shutdown whose final write failed or
            # was cut (a downstream that hangs past the shutdown's deadline) lost these.
            if self._dropped_count > dropped_before:
                logger.warning(
                    "BufferedExporter closed before writing %d events (dropped_count=%d)",
                    self._dropped_count - dropped_before,
                    self._dropped_count,
                )
            raise
        finally:
            await self._exporter.close()

    async def __aenter__(self) -> Self:
        """Enter the exporter's lifetime: it owns the timed flush, ``close()`` on exit.

        A checkpoint, before anything starts: if cancelled there, the exporter
        is untouched (and can still be entered).

        Raises:
            RuntimeError: The exporter was already entered (single use).
        """
        await trio.lowlevel.checkpoint()
        return await super().__aenter__()

    @asynccontextmanager
    async def _owned(self) -> AsyncIterator[BufferedExporter]:
        if self._nursery is not None:
            try:
                yield self
            finally:
                await self.close()
            return
        with unwrapping_groups():
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    yield self
                finally:
                    # close() also stops the timed flush, so the nursery can exit.
                    await self.close()
