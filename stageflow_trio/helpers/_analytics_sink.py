"""CompositeExporter and AnalyticsSink: fanning events out to exporters."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Self

import trio

from stageflow_trio._args import type_of
from stageflow_trio._groups import unwrapping_groups
from stageflow_trio.events._registry import _run_registry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


from stageflow_trio.helpers._exporters import AnalyticsEvent, AnalyticsExporter
from stageflow_trio.helpers._lifetime import SingleUseLifetime

logger: logging.Logger = logging.getLogger("stageflow_trio.helpers.analytics")


_EXPORTER_METHODS = ("export", "export_batch", "flush", "close")
# Held events (no nursery) at which try_emit warns, once per time the count gets there:
# a sink installed without an owner that nobody flushes grows with every event.
PENDING_WARNING = 10_000


def _patterns(owner: str, param: str, value: object) -> list[str] | None:
    """``value`` as a list of str, or None; a bare str (a common slip) is refused."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{owner}: {param} must be a list of str or None; got {type_of(value)}")
    patterns = list(value)
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            raise TypeError(f"{owner}: {param}[{index}] must be a str; got {type_of(pattern)}")
    return patterns


class CompositeExporter:
    """Sends every call to several exporters concurrently.

    Every exporter is called even if another fails; once all have finished,
    the first error raised is re-raised as itself (never an exception group).
    A cancelled ``export`` / ``export_batch`` / ``flush`` calls no exporter; a
    cancelled ``close`` calls every one, then raises ``Cancelled``.

    Args:
        exporters: The exporters to fan out to (copied; may be empty).

    Raises:
        TypeError: ``exporters`` is not an iterable (None and a str are not), or
            an item lacks ``export``, ``export_batch``, ``flush`` or ``close``.
    """

    def __init__(self, exporters: list[AnalyticsExporter]) -> None:
        owner = "CompositeExporter"
        given: object = exporters
        if isinstance(given, str | bytes) or not isinstance(given, Iterable):
            raise TypeError(
                f"{owner}: exporters must be a list of AnalyticsExporter; got {type_of(given)}"
            )
        checked = list(exporters)
        for index, exporter in enumerate(checked):
            if not all(callable(getattr(exporter, name, None)) for name in _EXPORTER_METHODS):
                raise TypeError(
                    f"{owner}: exporters[{index}] must be an AnalyticsExporter (with async "
                    f"export(), export_batch(), flush() and close()); got {type_of(exporter)}"
                )
        self._exporters = checked

    async def _fan_out(
        self, call: Callable[[AnalyticsExporter], Awaitable[None]], *, cleanup: bool = False
    ) -> None:
        if not self._exporters:
            # An empty nursery is not a checkpoint.
            await trio.lowlevel.checkpoint()
            return
        # A nursery whose tasks never checkpoint is a schedule point but not a
        # cancel point: a cancelled call reached every exporter and returned
        # normally. A cancelled export / flush now calls none of them; a
        # cancelled close still reaches every exporter (so a close that shields
        # itself completes), then raises Cancelled.
        if not cleanup:
            await trio.lowlevel.checkpoint_if_cancelled()
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
            try:
                raise errors[0]
            finally:
                errors.clear()  # this frame is in its traceback: no cycle through the list
        if cleanup:
            await trio.lowlevel.checkpoint_if_cancelled()

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
        """Close every exporter. A checkpoint; raises the first exporter error.

        In a cancelled scope every exporter's ``close()`` is still called (each
        runs cancelled unless it shields itself), then ``Cancelled`` is raised.
        """
        await self._fan_out(lambda exporter: exporter.close(), cleanup=True)


class AnalyticsSink(SingleUseLifetime):
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
    Leaving ``async with`` with events still pending (a deadline cut the exports
    or the final flush, the exporter or the body raised) logs a warning with
    their number; they stay in ``pending_count``.

    Args:
        exporter: Where events go (anything with an async ``export()``).
        include_patterns: Substrings of event types to keep (default: all).
        exclude_patterns: Substrings of event types to drop.
        nursery: Where ``try_emit`` starts exports.

    Raises:
        TypeError: ``exporter`` has no callable ``export``; a pattern list is
            not a list of str (a bare str such as ``"debug"`` is refused: the
            reference splits it into one-letter patterns); ``nursery`` is not a
            ``trio.Nursery`` or None.
    """

    def __init__(
        self,
        exporter: AnalyticsExporter,
        *,
        include_patterns: list[str] | None = None,
        exclude_patterns: list[str] | None = None,
        nursery: trio.Nursery | None = None,
    ) -> None:
        owner = "AnalyticsSink"
        if not callable(getattr(exporter, "export", None)):
            raise TypeError(
                f"{owner}: exporter must be an AnalyticsExporter (with async export());"
                f" got {type_of(exporter)}"
            )
        include = _patterns(owner, "include_patterns", include_patterns)
        exclude = _patterns(owner, "exclude_patterns", exclude_patterns)
        if nursery is not None and not isinstance(nursery, trio.Nursery):
            raise TypeError(
                f"{owner}: nursery must be a trio.Nursery or None; got {type_of(nursery)}"
            )
        self._exporter = exporter
        self._include = include
        self._exclude = exclude or []
        self._nursery = nursery
        self._pending: deque[AnalyticsEvent] = deque()
        # One flush_pending at a time: two would both export the first event and
        # then each pop one, so the second event was never exported.
        self._flush_lock = trio.Lock()
        self._in_flight = 0
        self._init_lifetime()

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
            pending = self._pending
            pending.append(event)
            if len(pending) == PENDING_WARNING:
                logger.warning(
                    "AnalyticsSink holds %d events: it has no nursery to export them in, and "
                    "only flush_pending() exports held events; use `async with "
                    "AnalyticsSink(...)` or pass nursery=",
                    PENDING_WARNING,
                )
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
        Concurrent calls take turns: a call waits for the one in progress, then
        exports what is still pending.

        Returns:
            How many events this call exported.

        Raises:
            Exception: Whatever the exporter raises.
        """
        async with self._flush_lock:
            exported = 0
            while self._pending:
                await self._exporter.export(self._pending[0])
                self._pending.popleft()
                exported += 1
            return exported

    async def __aenter__(self) -> Self:
        """Enter the sink's lifetime: it owns ``try_emit``'s exports, flushes on exit.

        A checkpoint, before anything starts: if cancelled there, the sink is
        untouched (and can still be entered).

        Raises:
            RuntimeError: The sink was already entered (single use).
        """
        await trio.lowlevel.checkpoint()
        return await super().__aenter__()

    @asynccontextmanager
    async def _owned(self) -> AsyncIterator[AnalyticsSink]:
        try:
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
        finally:
            # Loud, as BufferedExporter.close() is: a deadline that cut the exports in
            # flight or the final flush (an exporter that hangs), an exporter error, or
            # the body's error left these unexported. They stay in pending_count.
            if self._pending:
                logger.warning(
                    "AnalyticsSink closed before exporting %d events (still in "
                    "pending_count; flush_pending() exports them)",
                    len(self._pending),
                )
