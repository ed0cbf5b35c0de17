"""Audit 16: the annotations a user's first program meets, and NoOpSpan's event record.

A user's program written from docs/events.md and docs/tracing.md must type-check
under ``mypy --strict`` without a cast or a ``# type: ignore``:

- ``on_drop`` is called for its effect, its result ignored; it was annotated as
  returning None, so a callback returning a value (a counter's method, a
  function returning a bool) was refused by the type checker.
- ``set_correlation_id`` documents (and parses) a UUID string, and None to unset;
  it was annotated as taking only a UUID.
- ``get_trace_context_dict`` returns str-or-None values; it was ``dict[str, Any]``,
  so ``Any`` leaked into the caller.
- ``StageflowTracer.start_span`` checks ``attributes`` for any mapping; it was
  annotated as a dict.

The first part of each test is the typed use itself (mypy checks this file); the
assertions check the annotations at run time, so pytest fails on the old code too.
"""

from __future__ import annotations

import collections.abc
import typing
import uuid
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Any

import trio
import trio.testing

from stageflow_trio.events import BackpressureAwareEventSink, EventSink
from stageflow_trio.observability import (
    NoOpSpan,
    StageflowTracer,
    get_correlation_id,
    set_correlation_id,
)
from stageflow_trio.testing import RecordingEventSink

CID = uuid.UUID("11111111-1111-4111-8111-111111111111")


async def test_on_drop_may_return_a_value(autojump_clock: trio.testing.MockClock) -> None:
    refused: list[str] = []

    def count_drop(event_type: str, data: dict[str, Any] | None) -> bool:
        refused.append(event_type)
        return True  # ignored by the sink

    sink = BackpressureAwareEventSink(RecordingEventSink(), max_queue_size=1, on_drop=count_drop)
    assert sink.try_emit(type="kept", data=None)
    assert not sink.try_emit(type="refused", data=None)
    assert refused == ["refused"]
    await sink.stop()

    hints = typing.get_type_hints(
        BackpressureAwareEventSink.__init__,
        localns={
            "Callable": collections.abc.Callable,
            "EventSink": EventSink,
            "TracebackType": TracebackType,
        },
    )
    assert hints["on_drop"] == (
        collections.abc.Callable[[str, dict[str, Any] | None], object] | None
    )


async def test_set_correlation_id_is_typed_as_it_is_documented() -> None:
    set_correlation_id(str(CID))  # documented: a UUID string is parsed
    assert get_correlation_id() == CID
    set_correlation_id(None)  # and None unsets it
    assert get_correlation_id() is None
    hints = typing.get_type_hints(set_correlation_id)
    assert hints["correlation_id"] == uuid.UUID | str | None


async def test_start_span_takes_any_mapping_of_attributes() -> None:
    attributes: Mapping[str, Any] = MappingProxyType({"candidates": 20})
    tracer = StageflowTracer("svc")
    with tracer.start_span("rerank", attributes=attributes) as span:
        span.set_attribute("kept", 5)
    if not tracer.is_enabled:
        assert isinstance(span, NoOpSpan)
        assert span.attributes == {"candidates": 20, "kept": 5}
    hints = typing.get_type_hints(StageflowTracer.start_span)
    assert hints["attributes"] == Mapping[str, Any] | None


async def test_noop_span_event_keeps_its_attributes_as_they_were_added() -> None:
    span = NoOpSpan("s")
    attributes: dict[str, Any] = {"key": "q1"}
    span.add_event("cache_miss", attributes)
    attributes["key"] = "changed later"
    attributes["extra"] = 1
    # The span keeps what was added, as it does for its own attributes and as an
    # OpenTelemetry SDK span does (it copies event attributes).
    assert span.events == (("cache_miss", {"key": "q1"}),)
    span.add_event("proxy", MappingProxyType({"n": 1}))
    last: tuple[str, dict[str, Any]] = span.events[-1]
    name, recorded = last
    assert name == "proxy"
    assert recorded == {"n": 1}
    assert type(recorded) is dict
