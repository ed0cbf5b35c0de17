"""Audit 19: tracing with the real OpenTelemetry API and SDK, as a production service runs it.

The rest of the suite checks the tracing code against a fake ``opentelemetry``
(tests/observability/test_tracing.py). These tests use ``opentelemetry-sdk``'s
TracerProvider with an in-memory exporter and a processor that counts open spans:
every stage span must end, be parented to the span current where the run (or the
subpipeline's stage) started, never to a sibling stage running in another trio
task, and leave the caller's current span as it was. OpenTelemetry keeps the
current span in a context variable and logs "Failed to detach context" (an ERROR on
``opentelemetry.context``) when a token is detached in another Context than the one
it was attached in, as would happen if a hook ran in a different copy of the
context than its counterpart: every scenario checks that no such record appears.

They skip without the SDK; CI installs it for the run on the newest Python
(.ci/run), the main run keeps the path without OpenTelemetry.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
import trio

from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.observability import _otel
from stageflow_trio.observability.tracing import (
    StageflowTracer,
    TraceContext,
    get_correlation_id,
    set_correlation_id,
)
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageGraph, UnifiedStageSpec
from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    ErrorAction,
    TracingInterceptor,
)
from stageflow_trio.pipeline.subpipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.testing import create_test_stage_context
from tests.fakes import pipeline_context

if TYPE_CHECKING:
    from types import ModuleType

    from stageflow_trio.core import StageContext

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the main CI run: no OpenTelemetry
    HAVE_SDK = False
else:  # pragma: no cover - only where opentelemetry-sdk is installed
    HAVE_SDK = True

needs_sdk = pytest.mark.skipif(
    not HAVE_SDK,
    reason="needs opentelemetry-api and opentelemetry-sdk (CI installs them for its newest-Python run)",
)

INCOMING_TRACE = "0af7651916cd43dd8448eb211c80319c"
INCOMING_SPAN = "b7ad6b7169203331"
CID = uuid.UUID("11111111-1111-4111-8111-111111111111")


# --- the SDK: a provider, finished spans, open spans, OpenTelemetry's own error records ------


class Recorder:
    """The spans of one test: the finished ones (exporter) and those still open."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self.open: dict[int, str] = {}
        self.context_errors: list[logging.LogRecord] = []

    def finished(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def by_name(self) -> dict[str, list[Any]]:
        spans: dict[str, list[Any]] = {}
        for span in self.finished():
            spans.setdefault(span.name, []).append(span)
        return spans

    def one(self, name: str) -> Any:
        (span,) = self.by_name()[name]
        return span

    def check_clean(self) -> None:
        """No span left open, no "Failed to detach context" (or any other) OTel error."""
        assert self.open == {}, f"spans never ended: {sorted(self.open.values())}"
        assert [r.getMessage() for r in self.context_errors] == []


class _OpenSpans:
    """A span processor (duck-typed: the SDK's base class is Any where it is missing)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder: Recorder | None = recorder

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.recorder is not None:
            self.recorder.open[span.context.span_id] = span.name

    def _on_ending(self, span: Any) -> None:  # newer SDKs call it before on_end
        pass

    def on_end(self, span: Any) -> None:
        if self.recorder is not None:
            self.recorder.open.pop(span.context.span_id, None)

    def shutdown(self) -> None:
        self.recorder = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _ErrorRecords(logging.Handler):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.WARNING)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        self.recorder.context_errors.append(record)


def _provider() -> Any:
    """The global SDK provider (set here, or by another test of this process)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        current = trace.get_tracer_provider()
    assert isinstance(current, TracerProvider)
    return current


@pytest.fixture
def otel() -> Iterator[Recorder]:  # pragma: no cover - only where opentelemetry-sdk is installed
    provider = _provider()
    exporter = InMemorySpanExporter()
    recorder = Recorder(exporter)
    open_spans = _OpenSpans(recorder)
    # The SDK cannot remove a processor: they stay, idle once this test is over.
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(cast("Any", open_spans))
    handler = _ErrorRecords(recorder)
    otel_logger = logging.getLogger("opentelemetry")
    otel_logger.addHandler(handler)
    try:
        yield recorder
    finally:
        otel_logger.removeHandler(handler)
        open_spans.shutdown()
        exporter.shutdown()


def caller_tracer() -> Any:
    return trace.get_tracer("audit19.caller")


def parent_name(recorder: Recorder, span: Any) -> str | None:
    if span.parent is None:
        return None
    names: dict[int, str] = {s.context.span_id: s.name for s in recorder.finished()}
    return names.get(span.parent.span_id, "<not exported>")


def stage_parents(recorder: Recorder) -> dict[str, set[str | None]]:
    parents: dict[str, set[str | None]] = {}
    for span in recorder.finished():
        parents.setdefault(span.name, set()).add(parent_name(recorder, span))
    return parents


def statuses(recorder: Recorder) -> list[tuple[str, Any, str]]:
    return sorted(
        (s.name, s.attributes.get("stageflow.stage.status"), s.status.status_code.name)
        for s in recorder.finished()
        if s.name.startswith("stage.")
    )


# --- stages ----------------------------------------------------------------------------------


def traced_stage(name: str, seconds: float, seen: dict[str, Any] | None = None) -> Any:
    """A unified stage that sleeps inside a span of its own, started with StageflowTracer."""

    async def run(ctx: StageContext) -> StageOutput:
        current = trace.get_current_span()
        if seen is not None:
            seen[name] = (current, TraceContext.capture(), get_correlation_id())
        with StageflowTracer("audit19.stage").start_span(f"inner.{name}"):
            await trio.sleep(seconds)
        # The stage's span is current again, though siblings ran meanwhile.
        assert trace.get_current_span() is current
        return StageOutput.ok(stage=name)

    return run


def spec(name: str, runner: Any, deps: tuple[str, ...] = (), **kw: Any) -> UnifiedStageSpec:
    return UnifiedStageSpec(
        name=name, runner=runner, kind=kw.pop("kind", StageKind.TRANSFORM), dependencies=deps, **kw
    )


def fan_out_graph(seen: dict[str, Any] | None = None) -> list[UnifiedStageSpec]:
    return [
        spec("a", traced_stage("a", 1, seen)),
        spec("b", traced_stage("b", 3, seen), ("a",)),
        spec("c", traced_stage("c", 1, seen), ("a",)),
        spec("r2", traced_stage("r2", 2, seen)),
        spec("d", traced_stage("d", 1, seen), ("b", "c")),
    ]


async def run_under_request(recorder: Recorder, body: Any) -> Any:
    """Run ``body()`` under a current "request" span; check that span is current again after."""
    with caller_tracer().start_as_current_span("request") as request:
        try:
            return await body()
        finally:
            assert trace.get_current_span() is request


# --- the unified graph ------------------------------------------------------------------------


@needs_sdk
async def test_unified_fan_out_stage_spans_are_children_of_the_callers_span(
    otel: Recorder, autojump_clock: trio.abc.Clock
) -> None:
    seen: dict[str, Any] = {}
    graph = UnifiedStageGraph(fan_out_graph(seen), interceptors=[TracingInterceptor()])
    set_correlation_id(CID)
    results = await run_under_request(otel, lambda: graph.run(create_test_stage_context()))
    assert sorted(results) == ["a", "b", "c", "d", "r2"]
    otel.check_clean()
    parents = stage_parents(otel)
    # Every stage span hangs off the caller's span, never off a sibling running in
    # another task; each stage's own span is the parent of what the stage starts.
    for name in ("a", "b", "c", "d", "r2"):
        assert parents[f"stage.{name}"] == {"request"}
        assert parents[f"inner.{name}"] == {f"stage.{name}"}
        span, captured, correlation = seen[name]
        stage_span = otel.one(f"stage.{name}")
        assert span.get_span_context().span_id == stage_span.context.span_id
        # TraceContext.capture() in a stage reports the stage's span; the caller's
        # correlation id reaches every stage task.
        assert captured.span_id == format(stage_span.context.span_id, "016x")
        assert correlation == CID
    trace_ids = {span.context.trace_id for span in otel.finished()}
    assert len(trace_ids) == 1
    assert statuses(otel) == [(f"stage.{n}", "completed", "UNSET") for n in "abcdr"[:4]] + [
        ("stage.r2", "completed", "UNSET")
    ]


@needs_sdk
async def test_unified_failing_stage_ends_every_span(
    otel: Recorder, autojump_clock: trio.abc.Clock
) -> None:
    async def boom(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        raise ValueError("boom")

    graph = UnifiedStageGraph(
        [spec("slow", traced_stage("slow", 5)), spec("boom", boom)],
        interceptors=[TracingInterceptor()],
    )
    with pytest.raises(Exception, match="boom"):
        await run_under_request(otel, lambda: graph.run(create_test_stage_context()))
    otel.check_clean()
    assert statuses(otel) == [("stage.boom", "failed", "ERROR"), ("stage.slow", "aborted", "UNSET")]
    assert otel.one("stage.boom").attributes["stageflow.stage.error"] == "boom"
    assert stage_parents(otel)["inner.slow"] == {"stage.slow"}


@needs_sdk
@pytest.mark.parametrize("how", ["scope", "token", "stage"])
async def test_unified_cancelled_run_ends_every_span(
    otel: Recorder, autojump_clock: trio.abc.Clock, how: str
) -> None:
    token = CancellationToken()

    async def stopper(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        if how == "token":
            token.cancel("bye")
            await trio.sleep(1)
        return StageOutput.cancel(reason="stop")

    stages = [spec("a", traced_stage("a", 5)), spec("b", traced_stage("b", 5), ("a",))]
    if how != "scope":
        stages.append(spec("stopper", stopper))
    graph = UnifiedStageGraph(stages, interceptors=[TracingInterceptor()])

    async def body() -> None:
        with trio.move_on_after(2 if how == "scope" else 100) as scope:
            await graph.run(create_test_stage_context(), cancel_token=token)
        assert scope.cancelled_caught is (how == "scope")

    if how == "scope":
        await run_under_request(otel, body)
    else:
        with pytest.raises(Exception, match="bye" if how == "token" else "stop"):
            await run_under_request(otel, body)
    otel.check_clean()
    expected = [("stage.a", "aborted", "UNSET")]
    if how == "stage":
        expected.append(("stage.stopper", "completed", "UNSET"))
    elif how == "token":
        expected.append(("stage.stopper", "aborted", "UNSET"))
    assert statuses(otel) == expected
    assert stage_parents(otel)["stage.a"] == {"request"}


class Retry(BaseInterceptor):
    """Asks for a retry of stage ``f`` twice, then lets it fail; other stages just fail."""

    name = "retry"
    priority = 30

    def __init__(self) -> None:
        self.asked = 0

    async def before(self, stage_name: str, ctx: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def on_error(self, stage_name: str, error: Exception, ctx: Any) -> ErrorAction:
        await trio.lowlevel.checkpoint()
        if stage_name != "f":
            return ErrorAction.FAIL
        self.asked += 1
        return ErrorAction.RETRY if self.asked < 3 else ErrorAction.FAIL


def flaky(failures: int) -> Any:
    calls = {"n": 0}

    async def run(ctx: Any) -> Any:
        await trio.sleep(1)
        calls["n"] += 1
        if calls["n"] <= failures:
            raise ValueError("flaky")
        return StageOutput.ok() if isinstance(ctx, type(create_test_stage_context())) else {}

    return run


@needs_sdk
async def test_unified_chain_retries_and_guard_retries(
    otel: Recorder, autojump_clock: trio.abc.Clock
) -> None:
    graph = UnifiedStageGraph(
        [spec("f", flaky(2)), spec("side", traced_stage("side", 2))],
        interceptors=[TracingInterceptor(), Retry()],
    )
    await run_under_request(otel, lambda: graph.run(create_test_stage_context()))
    otel.check_clean()
    # One span per call: the chain's retries run inside it.
    assert statuses(otel) == [
        ("stage.f", "completed", "UNSET"),
        ("stage.side", "completed", "UNSET"),
    ]
    otel.exporter.clear()

    generated = {"n": 0}

    async def gen(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        generated["n"] += 1
        return StageOutput.ok(v=generated["n"])

    async def guard(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.fail(error="bad") if generated["n"] < 2 else StageOutput.ok()

    strategy = GuardRetryStrategy(
        policies={"guard": GuardRetryPolicy(retry_stage="gen", max_attempts=3)}
    )
    graph = UnifiedStageGraph(
        [
            spec("gen", gen),
            spec("guard", guard, ("gen",), kind=StageKind.GUARD),
            spec("side", traced_stage("side", 3)),
        ],
        interceptors=[TracingInterceptor()],
        guard_retry_strategy=strategy,
    )
    await run_under_request(otel, lambda: graph.run(create_test_stage_context()))
    otel.check_clean()
    assert statuses(otel) == [
        ("stage.gen", "completed", "UNSET"),
        ("stage.gen", "completed", "UNSET"),
        ("stage.guard", "completed", "UNSET"),
        ("stage.guard", "failed", "ERROR"),
        ("stage.side", "completed", "UNSET"),
    ]
    assert stage_parents(otel)["stage.gen"] == {"request"}
    assert stage_parents(otel)["stage.guard"] == {"request"}


@needs_sdk
async def test_subpipeline_children_spans_hang_off_the_spawning_stage(
    otel: Recorder, autojump_clock: trio.abc.Clock
) -> None:
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    tracing = TracingInterceptor()
    child_graph = UnifiedStageGraph(
        [spec("c1", traced_stage("c1", 1)), spec("c2", traced_stage("c2", 2), ("c1",))],
        interceptors=[tracing],
    )

    async def child(pctx: Any) -> dict[str, Any]:
        return dict(await child_graph.run(create_test_stage_context()))

    async def parent(ctx: StageContext) -> StageOutput:
        pipeline_ctx = ctx.as_pipeline_context()
        async with trio.open_nursery() as nursery:
            for kid in ("kid1", "kid2"):
                nursery.start_soon(spawner.spawn, kid, pipeline_ctx, uuid.uuid4(), "p", child)
        return StageOutput.ok()

    graph = UnifiedStageGraph(
        [spec("p", parent), spec("q", traced_stage("q", 2))], interceptors=[tracing]
    )
    await run_under_request(
        otel, lambda: graph.run(create_test_stage_context(pipeline_run_id=uuid.uuid4()))
    )
    otel.check_clean()
    parents = stage_parents(otel)
    assert parents["stage.p"] == parents["stage.q"] == {"request"}
    # Both children's stages hang off the spawning stage, not off q (a sibling task).
    assert parents["stage.c1"] == parents["stage.c2"] == {"stage.p"}
    assert len(otel.by_name()["stage.c1"]) == 2
    assert parents["inner.c2"] == {"stage.c2"}


# --- the legacy graph -------------------------------------------------------------------------


def legacy_stage(name: str, seconds: float) -> Any:
    async def run(ctx: Any) -> dict[str, Any]:
        current = trace.get_current_span()
        with StageflowTracer("audit19.stage").start_span(f"inner.{name}"):
            await trio.sleep(seconds)
        assert trace.get_current_span() is current
        return {"stage": name}

    return run


@needs_sdk
async def test_legacy_graph_spans(otel: Recorder, autojump_clock: trio.abc.Clock) -> None:
    async def boom(ctx: Any) -> None:
        await trio.sleep(1)
        raise ValueError("lboom")

    graph = StageGraph(
        [
            StageSpec(name="a", runner=legacy_stage("a", 2)),
            StageSpec(name="b", runner=legacy_stage("b", 1)),
            StageSpec(name="c", runner=legacy_stage("c", 1), dependencies=("a", "b")),
            StageSpec(name="boom", runner=boom),
            StageSpec(name="f", runner=flaky(2)),
        ],
        [TracingInterceptor(), Retry()],
    )
    await run_under_request(otel, lambda: graph.run(pipeline_context()))
    otel.check_clean()
    assert statuses(otel) == [
        ("stage.a", "completed", "UNSET"),
        ("stage.b", "completed", "UNSET"),
        ("stage.boom", "failed", "ERROR"),
        ("stage.c", "completed", "UNSET"),
        ("stage.f", "completed", "UNSET"),
    ]
    parents = stage_parents(otel)
    for name in ("a", "b", "c"):
        assert parents[f"stage.{name}"] == {"request"}
        assert parents[f"inner.{name}"] == {f"stage.{name}"}
    otel.exporter.clear()

    # Cancelled from outside, and a stage timeout.
    graph = StageGraph(
        [
            StageSpec(name="a", runner=legacy_stage("a", 5)),
            StageSpec(name="b", runner=legacy_stage("b", 5)),
        ],
        [TracingInterceptor()],
    )

    async def cancelled() -> None:
        with trio.move_on_after(1):
            await graph.run(pipeline_context())

    await run_under_request(otel, cancelled)
    otel.check_clean()
    assert statuses(otel) == [("stage.a", "aborted", "UNSET"), ("stage.b", "aborted", "UNSET")]
    otel.exporter.clear()
    await run_under_request(otel, lambda: graph.run(pipeline_context(data={"_timeout.a": 1000})))
    otel.check_clean()
    assert statuses(otel) == [("stage.a", "failed", "ERROR"), ("stage.b", "completed", "UNSET")]


# --- StageflowTracer with the real W3C propagator ---------------------------------------------


def _remote_parent(flags: str) -> Any:
    carrier = {"traceparent": f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-{flags}"}
    return TraceContextTextMapPropagator().extract(carrier)


@needs_sdk
def test_inject_keeps_the_sampling_decision_of_an_unsampled_span(
    otel: Recorder, reference: ModuleType
) -> None:
    # A service that head-samples: the incoming request was not sampled, so the
    # span started for it is not either (ParentBased), and what the service sends
    # on must say so, or every downstream service records the trace.
    token = otel_context.attach(_remote_parent("00"))
    try:
        ours = StageflowTracer("svc")
        with ours.start_span("handle") as span:
            assert not span.get_span_context().trace_flags.sampled
            carrier: dict[str, str] = {}
            ours.inject_context(carrier)
        theirs = reference.observability.tracing.StageflowTracer("svc")
        with theirs.start_span("handle") as ref_span:
            ref_carrier: dict[str, str] = {}
            theirs.inject_context(ref_carrier)
    finally:
        otel_context.detach(token)
    span_id = format(span.get_span_context().span_id, "016x")
    assert carrier == {"traceparent": f"00-{INCOMING_TRACE}-{span_id}-00"}
    # The reference overwrites the flags with "sampled" (docs/parity.md).
    ref_span_id = format(ref_span.get_span_context().span_id, "016x")
    assert ref_carrier == {"traceparent": f"00-{INCOMING_TRACE}-{ref_span_id}-01"}
    otel.check_clean()


@needs_sdk
def test_inject_extract_round_trip_matches_the_reference(
    otel: Recorder, reference: ModuleType
) -> None:
    ref = reference.observability.tracing
    token = otel_context.attach(_remote_parent("01"))
    try:
        ours, theirs = StageflowTracer("svc"), ref.StageflowTracer("svc")
        set_correlation_id(CID)
        ref.set_correlation_id(CID)
        with ours.start_span("handle") as span:
            carrier: dict[str, str] = {}
            ours.inject_context(carrier)
        with theirs.start_span("handle") as ref_span:
            ref_carrier: dict[str, str] = {}
            theirs.inject_context(ref_carrier)
    finally:
        otel_context.detach(token)
        ref.clear_correlation_id()  # this thread's context: no test after this one sees it
    assert span.parent.span_id == int(INCOMING_SPAN, 16)  # the remote parent continued
    span_id = format(span.get_span_context().span_id, "016x")
    ref_span_id = format(ref_span.get_span_context().span_id, "016x")
    assert carrier == {
        "traceparent": f"00-{INCOMING_TRACE}-{span_id}-01",
        "x-correlation-id": str(CID),
    }
    assert ref_carrier == {**carrier, "traceparent": f"00-{INCOMING_TRACE}-{ref_span_id}-01"}
    back = ours.extract_context(carrier)
    ref_back = theirs.extract_context(carrier)
    assert (back.trace_id, back.span_id, back.correlation_id) == (INCOMING_TRACE, span_id, CID)
    assert (ref_back.trace_id, ref_back.span_id, ref_back.correlation_id) == (
        back.trace_id,
        back.span_id,
        back.correlation_id,
    )
    # What OpenTelemetry reads back from our headers is the same span context.
    extracted = trace.get_current_span(TraceContextTextMapPropagator().extract(carrier))
    assert extracted.get_span_context().span_id == span.get_span_context().span_id
    otel.check_clean()


@needs_sdk
async def test_stageflow_tracer_spans_in_trio_tasks(
    otel: Recorder, autojump_clock: trio.abc.Clock
) -> None:
    # Each task's span is its own, its children hang off it, and the spawner's span
    # is current again in every task after its children's spans ended.
    tracer = StageflowTracer("svc")
    ids: dict[str, tuple[str | None, str | None]] = {}

    async def worker(name: str, seconds: float) -> None:
        with tracer.start_span(name):
            await trio.sleep(seconds)
            captured = TraceContext.capture()
            ids[name] = (captured.trace_id, captured.span_id)
            with tracer.start_span(f"{name}.child"):
                await trio.sleep(seconds)

    with tracer.start_span("parent") as parent:
        async with trio.open_nursery() as nursery:
            for index in range(3):
                nursery.start_soon(worker, f"w{index}", 3 - index)
        assert trace.get_current_span() is parent
    assert trace.get_current_span() is trace.INVALID_SPAN
    otel.check_clean()
    parents = stage_parents(otel)
    for index in range(3):
        assert parents[f"w{index}"] == {"parent"}
        assert parents[f"w{index}.child"] == {f"w{index}"}
        span = otel.one(f"w{index}")
        assert ids[f"w{index}"][1] == format(span.context.span_id, "016x")


# --- TracingInterceptor(tracer=StageflowTracer(...)) ------------------------------------------


@needs_sdk
async def test_tracing_interceptor_takes_a_stageflow_tracer(
    otel: Recorder, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    tracing = TracingInterceptor(tracer=StageflowTracer("svc"))
    graph = UnifiedStageGraph(
        [spec("a", traced_stage("a", 1)), spec("b", traced_stage("b", 1))],
        interceptors=[tracing],
    )
    with caplog.at_level(logging.ERROR):
        await run_under_request(otel, lambda: graph.run(create_test_stage_context()))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    otel.check_clean()
    assert statuses(otel) == [("stage.a", "completed", "UNSET"), ("stage.b", "completed", "UNSET")]
    assert {s.instrumentation_scope.name for s in otel.by_name()["stage.a"]} == {"svc"}
    assert stage_parents(otel)["inner.a"] == {"stage.a"}


async def test_tracing_interceptor_with_a_disabled_stageflow_tracer_starts_no_span(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_otel, "_api", None)  # as without opentelemetry-api
    tracer = StageflowTracer("svc")
    assert not tracer.is_enabled
    tracing = TracingInterceptor(tracer=tracer)
    assert tracing.tracer is None  # only the two ctx.data keys, as with no tracer
    ctx = pipeline_context()
    graph = StageGraph([StageSpec(name="a", runner=legacy_stage_plain)], [tracing])
    with caplog.at_level(logging.ERROR):
        results = await graph.run(ctx)
    assert results["a"].status == "completed"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "_tracing.span_name" not in ctx.data


async def legacy_stage_plain(ctx: Any) -> dict[str, Any]:
    await trio.lowlevel.checkpoint()
    return {"ok": True}
