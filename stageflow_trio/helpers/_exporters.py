"""The analytics record, the exporter protocol and the ready-made exporters."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol
from uuid import UUID

import attrs
import trio

from stageflow_trio._args import check_flag, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import parse_uuid, utc_now
from stageflow_trio.utils.frozen import FrozenDict

if TYPE_CHECKING:
    import io
    from collections.abc import Mapping

    from trio._file_io import AsyncIOWrapper

logger: logging.Logger = logging.getLogger("stageflow_trio.helpers.analytics")

OverflowCallback = Callable[[int, int], None]
"""``on_overflow(dropped_count, buffer_size)``; ``dropped_count == -1`` signals high water."""


def _freeze(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    return value if type(value) is FrozenDict else FrozenDict(value)


def _check_field_type(name: str, value: object, kind: type) -> None:
    """AnalyticsEvent's check of ``event_type`` and ``timestamp`` (to_dict needs both)."""
    if not isinstance(value, kind):
        raise TypeError(f"AnalyticsEvent: {name} must be a {kind.__name__}; got {type_of(value)}")


@frozen_compat
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

    event_type: str = attrs.field(validator=lambda _, a, v: _check_field_type(a.name, v, str))
    timestamp: datetime = attrs.field(
        factory=utc_now, validator=lambda _, a, v: _check_field_type(a.name, v, datetime)
    )
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


def _check_event(owner: str, param: str, value: object) -> None:
    """Raise TypeError unless ``value`` is an :class:`AnalyticsEvent`."""
    if not isinstance(value, AnalyticsEvent):
        raise TypeError(f"{owner}: {param} must be an AnalyticsEvent; got {type_of(value)}")


def _check_events(owner: str, events: object) -> list[AnalyticsEvent]:
    """``events`` as a list, if it is an iterable (not a str) of AnalyticsEvent."""
    if isinstance(events, str | bytes) or not isinstance(events, Iterable):
        raise TypeError(f"{owner}: events must be a list of AnalyticsEvent; got {type_of(events)}")
    checked = list(events)
    for index, event in enumerate(checked):
        _check_event(owner, f"events[{index}]", event)
    return checked


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


def _json_line(owner: str, event: AnalyticsEvent) -> str:
    """``event`` as one JSON line; an error names the owner and the event type."""
    try:
        return json.dumps(event.to_dict(), default=str) + "\n"
    except (TypeError, ValueError) as exc:  # a non-str dict key, a circular reference
        # The builtin type, not type(exc): a subclass (from an object's __str__) may
        # take other arguments.
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(
            f"{owner}: event {event.event_type!r} cannot be written as JSON ({exc}); "
            "keep its data and metadata to JSON types with str keys"
        ) from exc


class JSONFileExporter:
    """Writes one JSON object per line (JSON Lines) to a file.

    The file is opened on the first export (parent directories are created),
    in append mode, or truncated with ``append=False``. File I/O runs in a
    worker thread, so the trio loop never blocks on the disk.

    ``close()`` closes the file even when the caller is cancelled (then raises
    ``Cancelled``). An export after ``close()`` opens the file again, always in
    append mode: ``append=False`` overwrites the file that was there before the
    first export, never the lines this exporter wrote (the reference truncated
    them on every reopen, so the file lost what ``event_count`` counted).

    Args:
        file_path: Where to write.
        append: Append to an existing file (True) or overwrite it on the first
            open (False).

    Raises:
        TypeError: ``file_path`` is not a str or path, or ``append`` is not a bool.
        ValueError: ``file_path`` is empty.
    """

    def __init__(self, file_path: str | os.PathLike[str], *, append: bool = True) -> None:
        path: object = file_path
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"JSONFileExporter: file_path must be a str or os.PathLike; got {type_of(path)}"
            )
        if path == "":
            raise ValueError("JSONFileExporter: file_path must not be empty")
        check_flag("JSONFileExporter", "append", append)
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
        file = self._file
        if file is None:
            await self._path.parent.mkdir(parents=True, exist_ok=True)
            mode: Literal["a", "w"] = "a" if self._append else "w"
            file = self._file = await trio.open_file(self._path, mode, encoding="utf-8")
            # Overwrite once: a reopen after close() keeps what this exporter wrote.
            self._append = True
        return file

    async def export(self, event: AnalyticsEvent) -> None:
        """Write one line. A checkpoint.

        Raises:
            TypeError: ``event`` is not an :class:`AnalyticsEvent`.
            TypeError, ValueError: its data or metadata cannot be written as JSON (a
                key that is not a str, a circular reference); the message names the
                event type, the JSON error is the cause, nothing is written.
            OSError: The file cannot be written.
        """
        _check_event("JSONFileExporter.export", "event", event)
        line = _json_line("JSONFileExporter.export", event)
        async with self._lock:
            file = await self._ensure_open()
            await file.write(line)
            self._event_count += 1

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        """Write one line per event in a single write. A checkpoint.

        Raises:
            TypeError: ``events`` is not a list of :class:`AnalyticsEvent`.
            TypeError, ValueError: an event cannot be written as JSON (as for
                :meth:`export`); no event of the batch is written.
            OSError: The file cannot be written.
        """
        events = _check_events("JSONFileExporter.export_batch", events)
        owner = "JSONFileExporter.export_batch"
        text = "".join([_json_line(owner, event) for event in events])
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

    Raises:
        TypeError: ``colorize`` or ``verbose`` is not a bool.
    """

    def __init__(self, *, colorize: bool = True, verbose: bool = False) -> None:
        check_flag("ConsoleExporter", "colorize", colorize)
        check_flag("ConsoleExporter", "verbose", verbose)
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
        """Print one event. A checkpoint (before printing).

        Raises:
            TypeError: ``event`` is not an :class:`AnalyticsEvent`.
        """
        _check_event("ConsoleExporter.export", "event", event)
        await trio.lowlevel.checkpoint()
        print(self._format_event(event))
        self._event_count += 1

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        """Print several events. A checkpoint (before printing).

        Raises:
            TypeError: ``events`` is not a list of :class:`AnalyticsEvent`.
        """
        events = _check_events("ConsoleExporter.export_batch", events)
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
