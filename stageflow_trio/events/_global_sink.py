"""The global event sink and its reset hook, behind :mod:`stageflow_trio.events.sink`."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import trio

from stageflow_trio._globals import register_global_reset
from stageflow_trio.events._sinks import EventSink, NoOpEventSink

_event_sink_var: ContextVar[EventSink | None] = ContextVar("event_sink", default=None)


def set_event_sink(sink: EventSink) -> None:
    """Make ``sink`` the current context's global event sink."""
    _event_sink_var.set(sink)


def clear_event_sink() -> None:
    """Unset the current context's global event sink."""
    _event_sink_var.set(None)


def swap_event_sink(sink: EventSink | None) -> EventSink | None:
    """Set the current context's global sink to ``sink`` (None unsets it); return the one it replaces.

    The previous value comes back as it was, None when no sink was set, so a
    caller that installs a sink for a while can put back exactly what it found.
    """
    previous = _event_sink_var.get()
    _event_sink_var.set(sink)
    return previous


def get_event_sink() -> EventSink:
    """The current global sink, or a new :class:`NoOpEventSink` if none is set."""
    sink = _event_sink_var.get()
    return NoOpEventSink() if sink is None else sink


async def emit_event(*, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
    """Emit one event through the current global sink (see :func:`get_event_sink`).

    A checkpoint (the sink's ``emit`` is one; an object without ``emit`` set as
    the sink is skipped, as in the reference, after a plain checkpoint).
    Exceptions from the sink's ``emit`` propagate.
    """
    sink = get_event_sink()
    if hasattr(sink, "emit"):
        await sink.emit(type=type, data=data)
    else:
        await trio.lowlevel.checkpoint()


register_event_sink = set_event_sink
"""Older name of :func:`set_event_sink`, kept for compatibility."""


def _reset() -> None:
    clear_event_sink()


register_global_reset(_reset)
