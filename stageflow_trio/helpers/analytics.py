"""Analytics exporters: ship pipeline events to files, the console or your own backend.

- :class:`AnalyticsEvent`: the exported record.
- :class:`AnalyticsExporter`: the protocol (``export``, ``export_batch``, ``flush``,
  ``close``, all async) to implement for Snowflake, BigQuery, ...
- :class:`JSONFileExporter`, :class:`ConsoleExporter`: ready-made exporters.
- :class:`BufferedExporter`: batches events in front of another exporter.
- :class:`CompositeExporter`: fans out to several exporters concurrently.
- :class:`AnalyticsSink`: an event sink (``emit`` / ``try_emit``) that exports.

Background work has a visible owner. ``BufferedExporter``'s timed flush and
``AnalyticsSink.try_emit``'s exports run in a nursery: the one opened by
``async with`` or the one passed as ``nursery=``. Without one there is no timed
flush, and ``try_emit`` holds events until :meth:`AnalyticsSink.flush_pending`.

Example::

    async with BufferedExporter(JSONFileExporter("events.jsonl"), batch_size=100) as out:
        await out.export(AnalyticsEvent(event_type="stage.completed", stage_name="llm"))
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from stageflow_trio._engine._errors import unwrapping_groups
from stageflow_trio._time import parse_uuid, utc_now
from stageflow_trio.events.sink import _run_registry
from stageflow_trio.utils.frozen import FrozenDict

if TYPE_CHECKING:
    import io
    import os
    from collections.abc import AsyncIterator, Awaitable, Mapping
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType
    from uuid import UUID

    from trio._file_io import AsyncIOWrapper

__all__ = [
    "AnalyticsEvent",
    "AnalyticsExporter",
    "AnalyticsSink",
    "BufferedExporter",
    "CompositeExporter",
    "ConsoleExporter",
    "JSONFileExporter",
]

logger = logging.getLogger(__name__)

OverflowCallback = Callable[[int, int], None]
"""``on_overflow(dropped_count, buffer_size)``; ``dropped_count == -1`` signals high water."""


def _freeze(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    return value if type(value) is FrozenDict else FrozenDict(value)


@attrs.frozen
class AnalyticsEvent:
    """One exported analytics record.

    Attributes:
        event_type: E.g. ``"stage.completed"``.
        timestamp: When it happened; defaults to now (UTC).
        data: Event payload, held read-only.
        pipeline_run_id: The run's id. Kept exactly as given: :class:`AnalyticsSink`
            passes on whatever the event data held (often a string).
        stage_name: Stage name, if any.
        duration_ms: Duration in milliseconds, if any.
        metadata: Extra data, held read-only.
    """

    event_type: str
    timestamp: datetime = attrs.field(factory=utc_now)
    data: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_freeze)
    pipeline_run_id: UUID | None = None
    stage_name: str | None = None
    duration_ms: float | None = None
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_freeze)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict.

        ``event_type``, ``timestamp`` (ISO 8601) and ``data`` are always present;
        ``pipeline_run_id`` (as a string) and ``stage_name`` only when truthy,
        ``duration_ms`` when not None, ``metadata`` when not empty.
        """
        result: dict[str, Any] = {
            "event_type": self.event_type,
            "timestamp": self.timestamp.isoformat(),
            "data": dict(self.data),
        }
        if self.pipeline_run_id:
            result["pipeline_run_id"] = str(self.pipeline_run_id)
        if self.stage_name:
            result["stage_name"] = self.stage_name
        if self.duration_ms is not None:
            result["duration_ms"] = self.duration_ms
        if self.metadata:
            result["metadata"] = dict(self.metadata)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnalyticsEvent:
        """Rebuild an event from :meth:`to_dict` output.

        Raises:
            KeyError: ``event_type`` or ``timestamp`` is missing.
            ValueError: ``timestamp`` is not ISO 8601, or ``pipeline_run_id`` is not
                a UUID string.
        """
        for key in ("event_type", "timestamp"):
            if key not in data:
                raise KeyError(f"AnalyticsEvent.from_dict: missing required key {key!r}")
        timestamp = data["timestamp"]
        if isinstance(timestamp, str):
            timestamp = datetime.fromisoformat(timestamp)
        run_id = data.get("pipeline_run_id")
        return cls(
            event_type=data["event_type"],
            timestamp=timestamp,
            data=data.get("data", {}),
            pipeline_run_id=parse_uuid(run_id, "pipeline_run_id") if run_id else None,
            stage_name=data.get("stage_name"),
            duration_ms=data.get("duration_ms"),
            metadata=data.get("metadata", {}),
        )


class AnalyticsExporter(Protocol):
    """What an exporter provides. Every method is async and should be a checkpoint."""

    async def export(self, event: AnalyticsEvent) -> None:
        """Export one event."""
        ...

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        """Export several events, in order."""
        ...

    async def flush(self) -> None:
        """Push out anything the exporter holds."""
        ...

    async def close(self) -> None:
        """Release the exporter's resources."""
        ...


def _json_line(event: AnalyticsEvent) -> str:
    return json.dumps(event.to_dict(), default=str) + "\n"


class JSONFileExporter:
    """Writes one JSON object per line (JSON Lines) to a file.

    The file is opened on the first export (parent directories are created),
    in append mode, or truncated with ``append=False``. File I/O runs in a
    worker thread, so the trio loop never blocks on the disk.

    ``close()`` closes the file even when the caller is cancelled (then raises
    ``Cancelled``). An export after ``close()`` opens the file again, with the
    same mode.

    Args:
        file_path: Where to write.
        append: Append to an existing file (True) or overwrite it (False).
    """

    def __init__(self, file_path: str | os.PathLike[str], *, append: bool = True) -> None:
        self._path = trio.Path(file_path)
        self._append = append
        self._file: AsyncIOWrapper[io.TextIOWrapper] | None = None
        self._lock = trio.Lock()
        self._event_count = 0

    @property
    def event_count(self) -> int:
        """Events written so far."""
        return self._event_count

    async def _ensure_open(self) -> AsyncIOWrapper[io.TextIOWrapper]:
        if self._file is None:
            await self._path.parent.mkdir(parents=True, exist_ok=True)
            if self._append:
                self._file = await trio.open_file(self._path, "a", encoding="utf-8")
            else:
                self._file = await trio.open_file(self._path, "w", encoding="utf-8")
        return self._file

    async def export(self, event: AnalyticsEvent) -> None:
        """Write one line. A checkpoint; raises ``OSError`` if the file cannot be written."""
        line = _json_line(event)
        async with self._lock:
            file = await self._ensure_open()
            await file.write(line)
            self._event_count += 1

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        """Write one line per event in a single write. A checkpoint."""
        text = "".join([_json_line(event) for event in events])
        async with self._lock:
            file = await self._ensure_open()
            await file.write(text)
            self._event_count += len(events)

    async def flush(self) -> None:
        """Flush the file's buffer to the OS. A checkpoint."""
        async with self._lock:
            if self._file is not None:
                await self._file.flush()

    async def close(self) -> None:
        """Close the file (if open). A checkpoint; shielded, so it also closes when cancelled."""
        with trio.CancelScope(shield=True):
            async with self._lock:
                if self._file is not None:
                    file, self._file = self._file, None
                    await file.aclose()
        await trio.lowlevel.checkpoint_if_cancelled()


class ConsoleExporter:
    """Prints events, one header line plus detail lines, for development.

    Args:
        colorize: Color the header by event type: red for error/fail, green for
            complete/success, blue for start, cyan otherwise.
        verbose: Also print ``data`` as JSON.
    """

    def __init__(self, *, colorize: bool = True, verbose: bool = False) -> None:
        self._colorize = colorize
        self._verbose = verbose
        self._event_count = 0

    @property
    def event_count(self) -> int:
        """Events printed so far."""
        return self._event_count

    def _format_event(self, event: AnalyticsEvent) -> str:
        kind = event.event_type
        color = reset = ""
        if self._colorize:
            reset = "\033[0m"
            if "error" in kind or "fail" in kind:
                color = "\033[91m"
            elif "complete" in kind or "success" in kind:
                color = "\033[92m"
            elif "start" in kind:
                color = "\033[94m"
            else:
                color = "\033[96m"
        clock = event.timestamp.strftime("%H:%M:%S.%f")[:-3]
        lines = [f"{color}[{clock}] {kind}{reset}"]
        if event.stage_name:
            lines.append(f"  stage: {event.stage_name}")
        if event.duration_ms is not None:
            lines.append(f"  duration: {event.duration_ms:.1f}ms")
        if self._verbose and event.data:
            lines.append(f"  data: {json.dumps(event.data, default=str)}")
        return "\n".join(lines)

    async def export(self, event: AnalyticsEvent) -> None:
        """Print one event. A checkpoint (before printing)."""
        await trio.lowlevel.checkpoint()
        print(self._format_event(event))
        self._event_count += 1

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        """Print several events. A checkpoint (before printing)."""
        await trio.lowlevel.checkpoint()
        for event in events:
            print(self._format_event(event))
            self._event_count += 1

    async def flush(self) -> None:
        """Nothing to flush. A checkpoint."""
        await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        """Nothing to close. A checkpoint."""
        await trio.lowlevel.checkpoint()


class BufferedExporter:
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

    Buffering never waits for a write in progress. Every exported event is
    either handed to the underlying exporter, still buffered, or counted in
    ``dropped_count``: a batch whose hand-off raises or is cancelled is counted
    as dropped, and so is what is still buffered when ``close()`` is cancelled.

    Args:
        exporter: Where batches go.
        batch_size: Buffered events that trigger a write.
        flush_interval_seconds: Period of the timed flush.
        max_buffer_size: Capacity (at least 1); the oldest event is dropped beyond it.
        on_overflow: ``(dropped_count, buffer_size) -> None``; ``-1`` means high water.
        high_water_mark: Fill ratio (0-1) that triggers the high-water warning.
        nursery: Owner of the timed flush, instead of ``async with``.

    Raises:
        ValueError: ``max_buffer_size`` is less than 1.
    """

    def __init__(
        self,
        exporter: AnalyticsExporter,
        *,
        batch_size: int = 100,
        flush_interval_seconds: float = 10.0,
        max_buffer_size: int = 10000,
        on_overflow: OverflowCallback | None = None,
        high_water_mark: float = 0.8,
        nursery: trio.Nursery | None = None,
    ) -> None:
        if max_buffer_size < 1:
            raise ValueError(f"max_buffer_size must be at least 1, got {max_buffer_size}")
        self._exporter = exporter
        self._batch_size = batch_size
        self._flush_interval = flush_interval_seconds
        self._max_buffer = max_buffer_size
        self._on_overflow = on_overflow
        self._high_water_mark = high_water_mark
        self._nursery = nursery
        self._buffer: deque[AnalyticsEvent] = deque()
        # Serializes hand-offs so batches reach the exporter in order; buffering
        # never takes it (the reference held its lock across the write, d25).
        self._write_lock = trio.Lock()
        self._stop = trio.Event()
        self._loop_started = False
        self._closed = False
        self._entered = False
        self._lifetime: AbstractAsyncContextManager[BufferedExporter] | None = None
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

        A checkpoint. If cancelled, the event was not buffered.

        Raises:
            RuntimeError: The ``nursery=`` owner has exited (timed flush cannot start).
            Exception: Whatever the underlying exporter raises on a batch write.
        """
        await trio.lowlevel.checkpoint()
        if not self._loop_started and not self._closed and self._nursery is not None:
            self._start_flush_loop(self._nursery)
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
        if len(buffer) >= self._batch_size:
            await self._flush()

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        """Buffer several events, one :meth:`export` each. A checkpoint (one per event)."""
        if not events:
            await trio.lowlevel.checkpoint()
        for event in events:
            await self.export(event)

    async def _flush(self) -> None:
        async with self._write_lock:
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

        A checkpoint. The underlying exporter is closed even if the final write
        fails or is cancelled; events that could not be handed over are counted
        in ``dropped_count``.
        """
        self._closed = True
        self._stop.set()
        try:
            await self._flush()
        except BaseException:
            self._dropped_count += len(self._buffer)
            self._buffer.clear()
            raise
        finally:
            await self._exporter.close()

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

    async def __aenter__(self) -> BufferedExporter:
        """Own the timed flush (in a new nursery unless ``nursery=`` was given).

        Raises:
            RuntimeError: The exporter was already entered (single use).
        """
        if self._entered:
            raise RuntimeError("BufferedExporter: `async with` can be entered only once")
        self._entered = True
        self._lifetime = self._owned()
        return await self._lifetime.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Close the exporter, then wait for the timed flush to end."""
        assert self._lifetime is not None
        return await self._lifetime.__aexit__(exc_type, exc, tb)


class CompositeExporter:
    """Sends every call to several exporters concurrently.

    Every exporter is called even if another fails; once all have finished,
    the first error raised is re-raised as itself (never an exception group).

    Args:
        exporters: The exporters to fan out to.
    """

    def __init__(self, exporters: list[AnalyticsExporter]) -> None:
        self._exporters = exporters

    async def _fan_out(self, call: Callable[[AnalyticsExporter], Awaitable[None]]) -> None:
        if not self._exporters:
            # An empty nursery is not a checkpoint.
            await trio.lowlevel.checkpoint()
            return
        errors: list[Exception] = []

        async def run_one(exporter: AnalyticsExporter) -> None:
            try:
                await call(exporter)
            except Exception as exc:  # noqa: BLE001 - re-raised once every exporter has finished
                errors.append(exc)

        with unwrapping_groups():
            async with trio.open_nursery() as nursery:
                for exporter in self._exporters:
                    nursery.start_soon(run_one, exporter)
        if errors:
            raise errors[0]

    async def export(self, event: AnalyticsEvent) -> None:
        """Export to every exporter. A checkpoint; raises the first exporter error."""
        await self._fan_out(lambda exporter: exporter.export(event))

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        """Export a batch to every exporter. A checkpoint; raises the first exporter error."""
        await self._fan_out(lambda exporter: exporter.export_batch(events))

    async def flush(self) -> None:
        """Flush every exporter. A checkpoint; raises the first exporter error."""
        await self._fan_out(lambda exporter: exporter.flush())

    async def close(self) -> None:
        """Close every exporter. A checkpoint; raises the first exporter error."""
        await self._fan_out(lambda exporter: exporter.close())


class AnalyticsSink:
    """An event sink (``emit`` / ``try_emit``) that exports events as analytics.

    An event is exported unless its type contains one of ``exclude_patterns``;
    if ``include_patterns`` is given, its type must also contain one of them.
    ``data`` becomes the event's data, and its ``pipeline_run_id`` (as given),
    ``stage`` and ``duration_ms`` entries fill those fields.

    ``try_emit`` is synchronous. It starts the export in the sink's nursery: the
    one opened by ``async with AnalyticsSink(...)`` or the one passed as
    ``nursery=``. **Without a nursery it holds the event** (its return value says
    so) until :meth:`flush_pending` is awaited; ``async with`` also flushes on
    exit. Exports in flight count as owned work for
    :func:`~stageflow_trio.events.sink.wait_for_event_sink_tasks`. Export errors in those tasks are logged, not raised into the nursery;
    an export cancelled before it finished goes back to the pending events.

    Args:
        exporter: Where events go.
        include_patterns: Substrings of event types to keep (default: all).
        exclude_patterns: Substrings of event types to drop.
        nursery: Where ``try_emit`` starts exports.
    """

    def __init__(
        self,
        exporter: AnalyticsExporter,
        *,
        include_patterns: list[str] | None = None,
        exclude_patterns: list[str] | None = None,
        nursery: trio.Nursery | None = None,
    ) -> None:
        self._exporter = exporter
        self._include = include_patterns
        self._exclude = exclude_patterns or []
        self._nursery = nursery
        self._pending: deque[AnalyticsEvent] = deque()
        self._in_flight = 0
        self._entered = False
        self._lifetime: AbstractAsyncContextManager[AnalyticsSink] | None = None

    @property
    def pending_count(self) -> int:
        """Events held by ``try_emit`` (or returned by a cancelled export) and not yet exported."""
        return len(self._pending)

    def _should_export(self, event_type: str) -> bool:
        if any(pattern in event_type for pattern in self._exclude):
            return False
        if self._include:
            return any(pattern in event_type for pattern in self._include)
        return True

    @staticmethod
    def _to_event(event_type: str, data: dict[str, Any] | None) -> AnalyticsEvent:
        return AnalyticsEvent(
            event_type=event_type,
            data=data or {},
            pipeline_run_id=data.get("pipeline_run_id") if data else None,
            stage_name=data.get("stage") if data else None,
            duration_ms=data.get("duration_ms") if data else None,
        )

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Export the event now (unless filtered out). A checkpoint.

        Raises:
            Exception: Whatever the exporter raises.
        """
        await trio.lowlevel.checkpoint()
        if self._should_export(type):
            await self._exporter.export(self._to_event(type, data))

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> bool:  # noqa: A002
        """Start exporting the event in the sink's nursery, or hold it.

        Returns:
            ``True`` if an export task was started; ``False`` if the event was
            filtered out or, with no nursery, held for :meth:`flush_pending`.

        Raises:
            RuntimeError: The nursery passed as ``nursery=`` has exited.
        """
        if not self._should_export(type):
            return False
        event = self._to_event(type, data)
        if self._nursery is None:
            self._pending.append(event)
            return False
        try:
            self._nursery.start_soon(self._export_owned, event)
        except RuntimeError as exc:
            raise RuntimeError(
                "AnalyticsSink.try_emit: the nursery it exports in has already exited; "
                "keep the sink inside its nursery block or use `async with AnalyticsSink(...)`"
            ) from exc
        if not self._in_flight:
            # Owned background work: wait_for_event_sink_tasks() waits for it.
            _run_registry().sinks.add(self)
        self._in_flight += 1
        return True

    def _has_owned_pending(self) -> bool:
        return self._in_flight > 0

    async def _export_owned(self, event: AnalyticsEvent) -> None:
        try:
            await self._exporter.export(event)
        except Exception:
            logger.warning("AnalyticsSink export of %s failed", event.event_type, exc_info=True)
        except BaseException:
            # Cancelled before the exporter confirmed it: keep it for flush_pending().
            self._pending.append(event)
            raise
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                registry = _run_registry()
                registry.sinks.discard(self)
                registry.wake_waiters()

    async def flush_pending(self) -> int:
        """Export the held events in order. A checkpoint.

        An event leaves the pending list only once its export returned, so a
        failure or cancellation leaves it (and those after it) pending.

        Returns:
            How many events were exported.

        Raises:
            Exception: Whatever the exporter raises.
        """
        await trio.lowlevel.checkpoint()
        exported = 0
        while self._pending:
            await self._exporter.export(self._pending[0])
            self._pending.popleft()
            exported += 1
        return exported

    @asynccontextmanager
    async def _owned(self) -> AsyncIterator[AnalyticsSink]:
        if self._nursery is not None:
            yield self
        else:
            try:
                with unwrapping_groups():
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        yield self
            finally:
                self._nursery = None
        await self.flush_pending()

    async def __aenter__(self) -> AnalyticsSink:
        """Own the exports ``try_emit`` starts (a new nursery unless ``nursery=`` was given).

        Raises:
            RuntimeError: The sink was already entered (single use).
        """
        if self._entered:
            raise RuntimeError("AnalyticsSink: `async with` can be entered only once")
        self._entered = True
        self._lifetime = self._owned()
        return await self._lifetime.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Wait for started exports, then export what is still pending."""
        assert self._lifetime is not None
        return await self._lifetime.__aexit__(exc_type, exc, tb)
