"""The global event sink and its reset hook, behind :mod:`stageflow_trio.events.sink`."""

from __future__ import annotations

from contextvars import ContextVar

from stageflow_trio.events._sinks import EventSink, NoOpEventSink
from stageflow_trio.testing import register_global_reset

__all__ = ["clear_event_sink", "get_event_sink", "set_event_sink"]

_event_sink_var: ContextVar[EventSink | None] = ContextVar("event_sink", default=None)


def set_event_sink(sink: EventSink) -> None:
    """Make ``sink`` the current context's global event sink."""
    _event_sink_var.set(sink)


def clear_event_sink() -> None:
    """Unset the current context's global event sink."""
    _event_sink_var.set(None)


def get_event_sink() -> EventSink:
    """The current global sink, or a new :class:`NoOpEventSink` if none is set."""
    sink = _event_sink_var.get()
    return NoOpEventSink() if sink is None else sink


def _reset() -> None:
    clear_event_sink()


register_global_reset(_reset)
