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

from typing import TYPE_CHECKING

from stageflow_trio._exports import publish
from stageflow_trio._lazy import lazy_exports
from stageflow_trio.events._global_sink import clear_event_sink as clear_event_sink
from stageflow_trio.events._global_sink import get_event_sink as get_event_sink
from stageflow_trio.events._global_sink import set_event_sink as set_event_sink
from stageflow_trio.events._registry import (
    wait_for_event_sink_tasks as wait_for_event_sink_tasks,
)
from stageflow_trio.events._sinks import EventSink as EventSink
from stageflow_trio.events._sinks import LoggingEventSink as LoggingEventSink
from stageflow_trio.events._sinks import NoOpEventSink as NoOpEventSink

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

if TYPE_CHECKING:
    from stageflow_trio.events._backpressure import (
        BackpressureAwareEventSink as BackpressureAwareEventSink,
    )
    from stageflow_trio.events._metrics import BackpressureMetrics as BackpressureMetrics

publish(__name__)

if not TYPE_CHECKING:
    # The queueing sink loads on first use: every context imports this module for
    # EventSink, and most programs never make a BackpressureAwareEventSink.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "stageflow_trio.events._backpressure": "BackpressureAwareEventSink",
            "stageflow_trio.events._metrics": "BackpressureMetrics",
        },
    )
