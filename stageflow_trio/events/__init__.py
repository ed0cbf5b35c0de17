"""Events: the ``EventSink`` protocol, the built-in sinks and the global sink.

``emit_event`` sends one event through the current global sink;
``register_event_sink`` is the older name of ``set_event_sink``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio._lazy import lazy_exports

if TYPE_CHECKING:
    from stageflow_trio.events._global_sink import emit_event as emit_event
    from stageflow_trio.events._global_sink import register_event_sink as register_event_sink
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

# Hidden from type checkers, which read the imports above: a visible module
# __getattr__ would make every misspelt name `Any` instead of an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "stageflow_trio.events._global_sink": "emit_event register_event_sink",
            "stageflow_trio.events.sink": (
                "BackpressureAwareEventSink BackpressureMetrics EventSink LoggingEventSink "
                "NoOpEventSink clear_event_sink get_event_sink set_event_sink "
                "wait_for_event_sink_tasks"
            ),
        },
    )
