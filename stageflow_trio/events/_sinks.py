"""The EventSink protocol and the two simple sinks (no-op, logging)."""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

import trio

logger: logging.Logger = logging.getLogger("stageflow_trio.events")


@runtime_checkable
class EventSink(Protocol):
    """Where events go: a database, a queue, the log, or nowhere.

    Both methods take keyword-only ``type`` and ``data``. ``try_emit`` must not
    block and should not raise: a sink that cannot take the event logs or
    counts it instead.
    """

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Emit one event, waiting as long as the sink needs (a checkpoint)."""
        ...

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> object:  # noqa: A002
        """Hand one event to the sink without blocking.

        The result is not part of the contract (``None`` for most sinks; a
        ``bool`` "queued or dropped" for :class:`BackpressureAwareEventSink`).
        """
        ...


class EventEmitter(Protocol):
    """What :class:`BackpressureAwareEventSink` delivers to: an object with ``async emit``.

    Every :class:`EventSink` is one; a ``try_emit`` is not needed, since the sink's
    worker only awaits ``emit``.
    """

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Deliver one event (a checkpoint)."""
        ...


class NoOpEventSink:
    """A sink that ignores every event; any ``type`` and ``data``, ``None`` included."""

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002, ARG002
        """Discard the event. A checkpoint; returns None."""
        await trio.lowlevel.checkpoint()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Discard the event."""


class LoggingEventSink:
    """A sink that logs each event as ``"Event: <type>"`` on the ``stageflow_trio.events`` logger.

    The record carries the event in ``extra``: ``event_type`` and ``event_data``.

    Args:
        level: The logging level of the records (default ``logging.INFO``).

    Raises:
        TypeError: ``level`` is not an int (``Logger.log`` would refuse it at the
            first event, inside a run).
    """

    def __init__(self, *, level: int = logging.INFO) -> None:
        if isinstance(level, bool) or not isinstance(level, int):
            raise TypeError(
                f"LoggingEventSink: level must be an int (e.g. logging.INFO); got {type(level).__name__}"
            )
        self._level = level
        self._logger = logger

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Log the event. A checkpoint (taken first: a cancelled call logs nothing)."""
        await trio.lowlevel.checkpoint()
        self.try_emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Log the event."""
        self._logger.log(
            self._level, "Event: %s", type, extra={"event_type": type, "event_data": data}
        )
