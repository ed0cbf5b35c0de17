"""Events: the ``EventSink`` protocol, the built-in sinks and the global sink.

``emit_event`` sends one event through the current global sink;
``register_event_sink`` is the older name of ``set_event_sink``.
"""

from __future__ import annotations

from typing import Any

import trio

from stageflow_trio.events.sink import BackpressureAwareEventSink as BackpressureAwareEventSink
from stageflow_trio.events.sink import BackpressureMetrics as BackpressureMetrics
from stageflow_trio.events.sink import EventSink as EventSink
from stageflow_trio.events.sink import LoggingEventSink as LoggingEventSink
from stageflow_trio.events.sink import NoOpEventSink as NoOpEventSink
from stageflow_trio.events.sink import clear_event_sink as clear_event_sink
from stageflow_trio.events.sink import get_event_sink as get_event_sink
from stageflow_trio.events.sink import set_event_sink as set_event_sink
from stageflow_trio.events.sink import wait_for_event_sink_tasks as wait_for_event_sink_tasks

__all__ = [
    "BackpressureAwareEventSink",
    "BackpressureMetrics",
    "EventSink",
    "LoggingEventSink",
    "NoOpEventSink",
    "clear_event_sink",
    "emit_event",
    "get_event_sink",
    "register_event_sink",
    "set_event_sink",
    "wait_for_event_sink_tasks",
]


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
