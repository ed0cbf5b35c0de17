"""Audit 21: three small defects.

1. ``TraceContext.capture()`` took ``trace_flags`` and ``trace_state`` from the
   activated context even when the trace and span ids came from a current
   OpenTelemetry span of another trace (a new root started inside the block): the
   flags and state described the wrong trace. They now come from the span when its
   ids do. The fake-API tests run everywhere; the SDK ones skip without
   ``opentelemetry-sdk`` (CI installs it for its newest-Python run).
2. ``PipelineRunner`` made its ``MemoryTracker`` with the tracker's default
   ``max_samples``: ``memory_tracker_max_samples`` now chooses it.
3. ``build_pipeline_payload`` without ``duration_ms`` measures from ``started_at`` on
   the wall clock (the graphs always pass one measured on trio's clock): documented,
   and pinned here.
"""

from __future__ import annotations

import inspect
import logging
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.helpers.run_utils import PipelineRunner
from stageflow_trio.observability import wide_events
from stageflow_trio.observability.tracing import StageflowTracer, TraceContext
from stageflow_trio.observability.wide_events import WideEventEmitter
from stageflow_trio.pipeline.pipeline import Pipeline
from tests.fakes import import_reference, pipeline_context
from tests.observability.test_audit19_otel import HAVE_SDK, INCOMING_SPAN, INCOMING_TRACE
from tests.observability.test_tracing import (
    OTEL_SPAN,
    OTEL_TRACE,
    FakeOtel,
    FakeSpan,
    FakeSpanContext,
    fake_otel,  # noqa: F401  # the fake-API fixture, used through fake()
)

STATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
needs_sdk = pytest.mark.skipif(
    not HAVE_SDK,
    reason="needs opentelemetry-api and opentelemetry-sdk (CI installs them for its newest-Python run)",
)


# --- 1. capture(): the flags and state go with the ids ----------------------------------------


class FakeTraceState:
    """The API's TraceState as capture() uses it: a sized mapping with ``to_header()``."""

    def __init__(self, header: str) -> None:
        self._header = header

    def __len__(self) -> int:
        return self._header.count(",") + 1

    def to_header(self) -> str:
        return self._header


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> FakeOtel:
    """test_tracing's fake opentelemetry-api, in sys.modules for the test."""
    otel: FakeOtel = request.getfixturevalue("fake_otel")
    return otel


def test_capture_takes_flags_and_state_from_the_span_whose_ids_it_takes(
    fake: FakeOtel, caplog: pytest.LogCaptureFixture
) -> None:
    # A trace id without a span id: nothing to continue, so a span is a new root.
    activated = TraceContext(trace_id=INCOMING_TRACE, trace_flags=0x00, trace_state=STATE)
    with activated.activate():
        own = FakeSpanContext(0xABC, 0xDEF, trace_flags=0x01, trace_state=FakeTraceState("v=2"))
        fake.current = FakeSpan("root", own)
        captured = TraceContext.capture()
        assert (captured.trace_id, captured.span_id) == (OTEL_TRACE, OTEL_SPAN)
        assert (captured.trace_flags, captured.trace_state) == (0x01, "v=2")
        assert captured.to_headers() == {
            "traceparent": f"00-{OTEL_TRACE}-{OTEL_SPAN}-01",
            "tracestate": "v=2",
        }
        # A span without state: none, not the activated trace's.
        fake.current = FakeSpan("root", FakeSpanContext(0xABC, 0xDEF, trace_flags=0x03))
        assert (TraceContext.capture().trace_flags, TraceContext.capture().trace_state) == (
            0x03,
            None,
        )
        # A span whose ids are not taken (not recording) gives no flags or state either.
        idle = FakeSpanContext(0xABC, 0xDEF, trace_flags=0x01, trace_state=FakeTraceState("v=2"))
        fake.current = FakeSpan("idle", idle, recording=False)
        captured = TraceContext.capture()
        assert (captured.trace_id, captured.trace_flags, captured.trace_state) == (
            INCOMING_TRACE,
            0x00,
            STATE,
        )
        # A state the API took but TraceContext cannot carry (over 8192 characters;
        # the propagator would drop it too) is left out, not an error.
        members = ",".join(f"k{i:02d}{'k' * 250}={'v' * 256}" for i in range(17))
        long_ctx = FakeSpanContext(0xABC, 0xDEF, trace_state=FakeTraceState(members))
        fake.current = FakeSpan("long", long_ctx)
        with caplog.at_level(logging.DEBUG, logger="stageflow_trio.observability.tracing"):
            captured = TraceContext.capture()
        assert (captured.trace_id, captured.trace_flags, captured.trace_state) == (
            OTEL_TRACE,
            0x01,
            None,
        )
        assert "trace state is not passed on" in caplog.text


@needs_sdk
@pytest.mark.parametrize("flags", ["00", "01"])
def test_with_the_sdk_a_new_root_inside_an_activated_header_context(
    flags: str,
) -> None:  # pragma: no cover - only with opentelemetry-sdk installed
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    tracer = TracerProvider().get_tracer("audit21")
    headers = {
        "traceparent": f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-{flags}",
        "tracestate": STATE,
    }
    with StageflowTracer("svc").extract_context(headers).activate():
        # The continued trace: the span's flags and state are the caller's.
        with tracer.start_as_current_span("child") as child:
            if flags == "01":  # an unsampled child does not record: the header's apply
                assert child.is_recording()
            captured = TraceContext.capture()
            assert (captured.trace_id, captured.trace_flags, captured.trace_state) == (
                INCOMING_TRACE,
                int(flags, 16),
                STATE,
            )
        # A new root (an empty parent context): another trace, sampled, without state.
        with tracer.start_as_current_span("root", context=otel_context.Context()) as root:
            root_ctx = root.get_span_context()
            assert format(root_ctx.trace_id, "032x") != INCOMING_TRACE
            captured = TraceContext.capture()
            assert captured.trace_id == format(root_ctx.trace_id, "032x")
            assert (captured.trace_flags, captured.trace_state) == (int(root_ctx.trace_flags), None)
            assert captured.trace_flags & 0x01  # sampled, whatever the header said
            # What capture() writes is what OpenTelemetry's propagator writes for the span.
            written: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(written)
            assert captured.to_headers() == written
            assert trace.get_current_span() is root


@needs_sdk
def test_with_the_sdk_an_unsampled_span_with_its_own_state() -> None:  # pragma: no cover - SDK
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Decision, SamplingResult

    class RecordOnly:
        """Records without sampling and gives the span a trace state of its own.

        Duck-typed: the SDK's ``Sampler`` base is Any where the SDK is missing.
        """

        def __init__(self, state: Any) -> None:
            self.state = state

        def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
            return SamplingResult(Decision.RECORD_ONLY, None, self.state)

        def get_description(self) -> str:
            return "RecordOnly"

    own = trace.TraceState([("mine", "1")])
    tracer = TracerProvider(sampler=RecordOnly(own)).get_tracer("audit21")
    activated = TraceContext(trace_id=INCOMING_TRACE, trace_flags=0x01, trace_state=STATE)
    with activated.activate(), tracer.start_as_current_span("root") as root:
        assert root.is_recording()
        root_ctx = root.get_span_context()
        captured = TraceContext.capture()
        assert captured.trace_id == format(root_ctx.trace_id, "032x")
        # Not sampled (the SDK may set W3C's random-trace-id bit, 0x02).
        assert (captured.trace_flags, captured.trace_state) == (int(root_ctx.trace_flags), "mine=1")
        assert not captured.trace_flags & 0x01
    # A state longer than the 8192 characters TraceContext (and the propagator) allow.
    huge = trace.TraceState([(f"k{i:02d}{'k' * 250}", "v" * 256) for i in range(17)])
    assert len(huge.to_header()) > 8192
    tracer = TracerProvider(sampler=RecordOnly(huge)).get_tracer("audit21")
    with activated.activate(), tracer.start_as_current_span("root") as root:
        root_ctx = root.get_span_context()
        captured = TraceContext.capture()
        assert captured.trace_id == format(root_ctx.trace_id, "032x")
        assert (captured.trace_flags, captured.trace_state) == (int(root_ctx.trace_flags), None)


# --- 2. PipelineRunner(memory_tracker_max_samples=...) ----------------------------------------


@pytest.fixture
def _stop_tracing() -> Iterator[None]:
    was_tracing = tracemalloc.is_tracing()
    yield
    if not was_tracing:
        tracemalloc.stop()


async def _quick(ctx: StageContext) -> StageOutput:
    await trio.sleep(1)
    return StageOutput.ok()


@pytest.mark.usefixtures("_stop_tracing")
async def test_runner_memory_tracker_max_samples(autojump_clock: trio.abc.Clock) -> None:
    runner = PipelineRunner(verbose=False, enable_memory_tracker=True, memory_tracker_max_samples=3)
    assert runner.memory_tracker is not None
    assert runner.memory_tracker.max_samples == 3
    pipeline = Pipeline().with_stage("s", _quick, StageKind.TRANSFORM)
    for _ in range(3):
        assert (await runner.run(pipeline)).success
    # Two samples a run; the newest three are kept.
    assert [s.label for s in runner.memory_tracker.samples] == [
        "pipeline:end",
        "pipeline:start",
        "pipeline:end",
    ]
    everything = PipelineRunner(
        verbose=False, enable_memory_tracker=True, memory_tracker_max_samples=None
    )
    assert everything.memory_tracker is not None
    assert everything.memory_tracker.max_samples is None
    default = PipelineRunner(verbose=False, enable_memory_tracker=True)
    assert default.memory_tracker is not None
    assert default.memory_tracker.max_samples == 10_000


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "must be at least 1; got 0"),
        (-5, ValueError, "must be at least 1; got -5"),
        ("5", TypeError, "must be an int; got str"),
        (True, TypeError, "must be an int; got bool"),
        (2.0, TypeError, "must be an int; got float"),
    ],
)
@pytest.mark.parametrize("enabled", [True, False])
def test_runner_memory_tracker_max_samples_is_checked_at_the_call(
    value: object, error: type[Exception], message: str, enabled: bool
) -> None:
    with pytest.raises(error, match=rf"^PipelineRunner: memory_tracker_max_samples {message}$"):
        PipelineRunner(enable_memory_tracker=enabled, memory_tracker_max_samples=value)  # type: ignore[arg-type]


def test_runner_keywords_are_the_references_then_the_new_one() -> None:
    ours = inspect.signature(PipelineRunner).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours.values())
    assert ours["memory_tracker_max_samples"].default == 10_000
    reference = import_reference()  # 0.9.1; 1.2.0 has the same keywords
    theirs = inspect.signature(reference.helpers.run_utils.PipelineRunner).parameters
    assert list(ours) == [*theirs, "memory_tracker_max_samples"]


# --- 3. build_pipeline_payload(started_at=...) without duration_ms ----------------------------


def test_a_duration_measured_from_started_at_is_wall_clock_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    now = started + timedelta(seconds=1.9999)
    monkeypatch.setattr(wide_events, "utc_now", lambda: now)
    build = WideEventEmitter.build_pipeline_payload
    assert (
        build(ctx=pipeline_context(), stage_results={}, started_at=started)["duration_ms"] == 1999
    )
    # The wall clock stepped back past the start: negative, as documented.
    now = started - timedelta(seconds=0.5)
    assert (
        build(ctx=pipeline_context(), stage_results={}, started_at=started)["duration_ms"] == -500
    )
    # A given duration (the graphs give trio's) is written as given.
    given = build(ctx=pipeline_context(), stage_results={}, started_at=started, duration_ms=5000)
    assert given["duration_ms"] == 5000
