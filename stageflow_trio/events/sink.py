"""Event sinks: the ``EventSink`` protocol, the built-in sinks and the global sink.

A sink receives ``(type, data)`` events from the engine and from user code:

- :class:`NoOpEventSink` discards everything (what :func:`get_event_sink`
  hands out when no sink is set).
- :class:`LoggingEventSink` writes each event to the ``stageflow_trio.events`` logger.
- :class:`BackpressureAwareEventSink` queues events on a bounded trio memory
  channel and delivers them to a downstream sink from a worker task that a
  nursery owns (``async with sink:`` or ``await sink.start(nursery)``).

The global sink lives in a :class:`~contextvars.ContextVar`, so a task started
with ``nursery.start_soon`` sees its parent's sink and a child's
:func:`set_event_sink` does not leak back into the parent.
"""

from __future__ import annotations

from contextvars import ContextVar

from stageflow_trio.events._backpressure import (
    BackpressureAwareEventSink as BackpressureAwareEventSink,
)
from stageflow_trio.events._metrics import BackpressureMetrics as BackpressureMetrics
from stageflow_trio.events._registry import _run_registry as _run_registry
from stageflow_trio.events._registry import (
    wait_for_event_sink_tasks as wait_for_event_sink_tasks,
)
from stageflow_trio.events._sinks import EventSink as EventSink
from stageflow_trio.events._sinks import LoggingEventSink as LoggingEventSink
from stageflow_trio.events._sinks import NoOpEventSink as NoOpEventSink
from stageflow_trio.testing import register_global_reset

__all__ = [
    "BackpressureAwareEventSink",
    "BackpressureMetrics",
    "EventSink",
    "LoggingEventSink",
    "NoOpEventSink",
    "clear_event_sink",
    "get_event_sink",
    "set_event_sink",
    "wait_for_event_sink_tasks",
]

# -- the global sink --------------------------------------------------------

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
