"""Audit 20: a service continues its caller's trace with extract_context + activate + start_span.

A W3C ``traceparent`` read with ``StageflowTracer.extract_context`` and made
current with ``TraceContext.activate()`` used to set only this library's context
variables. OpenTelemetry keeps its own current context, so the next span began a
new root trace (and its ids then replaced the header's); without OpenTelemetry the
ids followed the header but its "not sampled" flag became "sampled" on the way out.

The OpenTelemetry tests reuse the SDK recorder of test_audit19_otel (an in-memory
exporter and a processor that counts open spans); they skip without the SDK (CI
installs it for its newest-Python run). The others run with and without it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from stageflow_trio.observability import _otel
from stageflow_trio.observability.tracing import (
    NoOpSpan,
    StageflowTracer,
    TraceContext,
    get_span_id,
    get_trace_context_dict,
    get_trace_id,
)
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageGraph
from stageflow_trio.pipeline.interceptors import TracingInterceptor
from stageflow_trio.testing import create_test_stage_context
from tests.fakes import pipeline_context
from tests.observability.test_audit19_otel import (
    INCOMING_SPAN,
    INCOMING_TRACE,
    Recorder,
    legacy_stage,
    otel,  # noqa: F401  # the SDK recorder fixture, used through spans()
    spec,
    stage_parents,
    traced_stage,
)

CID = uuid.UUID("55555555-5555-4555-8555-555555555555")


def incoming(flags: str = "01", span: str = INCOMING_SPAN) -> dict[str, str]:
    return {
        "traceparent": f"00-{INCOMING_TRACE}-{span}-{flags}",
        "x-correlation-id": str(CID),
    }


@pytest.fixture
def spans(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """test_audit19_otel's recorder; the test skips without opentelemetry-sdk."""
    pytest.importorskip("opentelemetry.sdk")
    recorder: Recorder = request.getfixturevalue("otel")
    yield recorder
    recorder.check_clean()


def hex_ids(span: Any) -> tuple[str, str]:
    span_ctx = span.get_span_context()
    return format(span_ctx.trace_id, "032x"), format(span_ctx.span_id, "016x")


# --- TraceContext.trace_flags ----------------------------------------------------------------


def test_trace_flags_travel_through_the_headers() -> None:
    for flags in ("00", "01", "03"):
        ctx = TraceContext.from_headers(incoming(flags))
        assert ctx.trace_flags == int(flags, 16)
        assert ctx.to_headers() == incoming(flags)
        assert "trace_flags" not in ctx.to_dict()  # the reference's keys
    # Flags that are not two hex digits read as "sampled", what was always written.
    for traceparent in (f"00-{INCOMING_TRACE}-{INCOMING_SPAN}", f"00-{INCOMING_TRACE}-x-zz"):
        assert TraceContext.from_headers({"traceparent": traceparent}).trace_flags == 0x01
    assert TraceContext(trace_id=INCOMING_TRACE).to_headers()["traceparent"].endswith("-01")
    with pytest.raises(TypeError, match=r"^TraceContext: trace_flags must be an int; got bool$"):
        TraceContext(trace_flags=True)
    with pytest.raises(TypeError, match=r"^TraceContext: trace_flags must be an int; got str$"):
        TraceContext(trace_flags="01")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"^TraceContext: trace_flags must be from 0 to 255; got 256$"
    ):
        TraceContext(trace_flags=256)


# --- without OpenTelemetry: the fallback's ids follow the header --------------------------------


def test_without_opentelemetry_the_ids_and_flags_follow_the_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_otel, "_api", None)  # as without opentelemetry-api (in either venv)
    tracer = StageflowTracer("svc")
    assert not tracer.is_enabled
    for flags in ("00", "01", "03"):
        with tracer.extract_context(incoming(flags)).activate():
            with tracer.start_span("handle") as span:
                assert isinstance(span, NoOpSpan)
                # No span exists to take ids from: the caller's are the current ones.
                assert (get_trace_id(), get_span_id()) == (INCOMING_TRACE, INCOMING_SPAN)
                assert TraceContext.capture().trace_flags == int(flags, 16)
                out: dict[str, str] = {}
                tracer.inject_context(out)
        # Passed on as received: an unsampled trace stays unsampled downstream.
        assert out == incoming(flags)
        assert get_trace_context_dict() == {
            "trace_id": None,
            "span_id": None,
            "parent_span_id": None,
            "correlation_id": None,
        }
        assert TraceContext.capture().to_headers() == {}


# --- with OpenTelemetry: the span is a child of the caller's ---------------------------------


@pytest.mark.parametrize("flags", ["01", "03", "00"])
def test_extract_activate_start_span_continues_the_incoming_trace(
    spans: Recorder, flags: str
) -> None:
    from opentelemetry import trace

    tracer = StageflowTracer("svc")
    ctx = tracer.extract_context(incoming(flags))
    with ctx.activate():
        # Before any span: what is sent on is the caller's context, flags and all.
        out: dict[str, str] = {}
        tracer.inject_context(out)
        assert out == incoming(flags)
        with tracer.start_span("handle") as span:
            trace_id, span_id = hex_ids(span)
            assert (get_trace_id(), get_span_id()) == (trace_id, span_id)
            assert TraceContext.capture().trace_flags == int(flags, 16)
            out = {}
            tracer.inject_context(out)
    assert trace_id == INCOMING_TRACE
    assert span_id != INCOMING_SPAN
    # The caller's sampling decision holds (ParentBased, the SDK's default), and the
    # SDK keeps W3C's random-trace-id bit of the caller's flags.
    assert span.get_span_context().trace_flags == int(flags, 16)
    assert out == {**incoming(flags), "traceparent": f"00-{INCOMING_TRACE}-{span_id}-{flags}"}
    back = tracer.extract_context(out)
    assert (back.trace_id, back.span_id, back.trace_flags) == (trace_id, span_id, int(flags, 16))
    if flags == "00":
        assert spans.finished() == []  # dropped by the caller's sampler, so by ours
    else:
        (finished,) = spans.finished()
        assert finished.parent.span_id == int(INCOMING_SPAN, 16)
        assert finished.parent.is_remote
    # Outside the block nothing of the caller's is left: a span is a new root again.
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert (get_trace_id(), get_span_id()) == (None, None)
    spans.exporter.clear()
    with tracer.start_span("later") as later:
        assert hex_ids(later)[0] != INCOMING_TRACE
    assert spans.one("later").parent is None


async def test_the_remote_parent_is_current_only_where_no_span_of_its_trace_is(
    spans: Recorder, autojump_clock: trio.abc.Clock
) -> None:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    tracer = StageflowTracer("svc")
    ctx = tracer.extract_context(incoming())

    def blocking() -> None:  # a thread: activate() is how the ids get there
        with ctx.activate(), tracer.start_span("in_thread"):
            pass

    await trio.to_thread.run_sync(blocking)
    in_thread = spans.one("in_thread")
    assert format(in_thread.context.trace_id, "032x") == INCOMING_TRACE
    assert in_thread.parent.span_id == int(INCOMING_SPAN, 16)
    spans.exporter.clear()

    # An instrumented server already continued the trace: its span stays the parent.
    token = otel_context.attach(TraceContextTextMapPropagator().extract(incoming()))
    try:
        with trace.get_tracer("server").start_as_current_span("server") as server:
            with ctx.activate():
                assert trace.get_current_span() is server
                with tracer.start_span("handle"):
                    pass
            # A context captured from a span and activated under it leaves it current.
            with tracer.start_span("outer"), TraceContext.capture().activate():
                with tracer.start_span("inner"):
                    pass
    finally:
        otel_context.detach(token)
    parents = stage_parents(spans)
    assert parents["handle"] == {"server"}
    assert parents["inner"] == {"outer"}
    spans.exporter.clear()

    # A trace id without a usable span id cannot be a parent: the span is a new root.
    for no_parent in (
        TraceContext(trace_id=INCOMING_TRACE),
        tracer.extract_context(incoming(span="0" * 16)),
    ):
        with no_parent.activate(), tracer.start_span("root"):
            assert get_trace_id() != INCOMING_TRACE
    assert [span.parent for span in spans.finished()] == [None, None]


# --- the pipeline's TracingInterceptor inside an activated remote context -----------------------


@pytest.mark.parametrize("tracer", [None, "stageflow"])
async def test_stage_spans_are_children_of_the_remote_parent(
    spans: Recorder, autojump_clock: trio.abc.Clock, tracer: str | None
) -> None:
    tracing = TracingInterceptor(tracer=None if tracer is None else StageflowTracer("svc"))
    graph = UnifiedStageGraph(
        [
            spec("a", traced_stage("a", 1)),
            spec("b", traced_stage("b", 2), ("a",)),
            spec("c", traced_stage("c", 1)),
        ],
        interceptors=[tracing],
    )
    legacy = StageGraph([StageSpec(name="l", runner=legacy_stage("l", 1))], [TracingInterceptor()])
    with StageflowTracer("svc").extract_context(incoming()).activate():
        await graph.run(create_test_stage_context())
        await legacy.run(pipeline_context())
    remote = int(INCOMING_SPAN, 16)
    for name in ("a", "b", "c", "l"):
        stage = spans.one(f"stage.{name}")
        assert format(stage.context.trace_id, "032x") == INCOMING_TRACE
        assert (stage.parent.span_id, stage.parent.is_remote) == (remote, True)
        assert stage_parents(spans)[f"inner.{name}"] == {f"stage.{name}"}
