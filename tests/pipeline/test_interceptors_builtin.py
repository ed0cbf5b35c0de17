"""The built-in interceptors and the default chain."""

from __future__ import annotations

import asyncio
import logging
import sys
import types
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.observability import _otel as otel_cache
from stageflow_trio.pipeline import _tracing_interceptor as tracing_impl
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageExecutionError
from stageflow_trio.pipeline.idempotency import IdempotencyInterceptor
from stageflow_trio.pipeline.interceptors import (
    ChildTrackerMetricsInterceptor,
    CircuitBreakerInterceptor,
    LoggingInterceptor,
    MetricsInterceptor,
    TimeoutInterceptor,
    TracingInterceptor,
    get_default_interceptors,
    run_with_interceptors,
)
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from tests.doc_blocks import python_blocks, run_in_virtual_time
from tests.fakes import RecordingTracer as FakeTracer
from tests.fakes import pipeline_context

RUN_ID = uuid.UUID("88888888-8888-4888-8888-888888888888")


def make_ctx(**kwargs: Any) -> PipelineContext:
    return pipeline_context(
        pipeline_run_id=kwargs.pop("pipeline_run_id", RUN_ID),
        topology="topo",
        execution_mode="practice",
        **kwargs,
    )


def ok_stage(
    seen: list[dict[str, Any]] | None = None, ctx: PipelineContext | None = None
) -> Callable[[], Awaitable[StageResult]]:
    async def run() -> StageResult:
        if seen is not None and ctx is not None:
            seen.append(dict(ctx.data))
        now = utc_now()
        return StageResult(
            name="s", status="completed", started_at=now, ended_at=now, data={"x": 1}
        )

    return run


def failing_stage(error: Exception | None = None) -> Callable[[], Awaitable[StageResult]]:
    async def run() -> StageResult:
        raise error or ValueError("boom")

    return run


async def hanging_stage() -> StageResult:
    await trio.sleep_forever()
    raise AssertionError  # pragma: no cover


# --- the default chain --------------------------------------------------------------------


def test_default_chain_has_the_reference_priorities() -> None:
    chain = get_default_interceptors()
    assert [(i.name, i.priority) for i in chain] == [
        ("idempotency", 4),
        ("timeout", 5),
        ("circuit_breaker", 10),
        ("tracing", 20),
        ("metrics", 40),
        ("child_tracker_metrics", 45),
        ("logging", 50),
    ]
    assert isinstance(chain[0], IdempotencyInterceptor)
    assert [i.name for i in get_default_interceptors(include_idempotency=False)] == [
        "timeout",
        "circuit_breaker",
        "tracing",
        "metrics",
        "child_tracker_metrics",
        "logging",
    ]


def test_default_chain_equals_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.interceptors
    assert [(i.name, i.priority) for i in get_default_interceptors()] == [
        (i.name, i.priority) for i in ref.get_default_interceptors()
    ]


def test_include_auth_is_rejected() -> None:
    with pytest.raises(
        ValueError,
        match=r"^get_default_interceptors: include_auth=True is refused: stageflow 1\.2\.0's "
        r"chain authenticates with MockJwtValidator, which accepts any token \(0\.9\.1's does "
        r"not import\); add AuthInterceptor\(jwt_validator=<your validator>\) and "
        r"OrgEnforcementInterceptor\(\) from stageflow_trio\.auth to the list yourself$",
    ):
        get_default_interceptors(include_auth=True)


async def test_the_default_chain_leaves_no_keys_behind() -> None:
    ctx = make_ctx()
    seen: list[dict[str, Any]] = []
    result = await run_with_interceptors("s", ok_stage(seen, ctx), ctx, get_default_interceptors())
    assert result.status == "completed"
    assert sorted(seen[0]) == [
        "_metrics.stage_start_time",
        "_timeout.s",
        "_tracing.span_name",
        "_tracing.span_start",
    ]
    assert ctx.data == {}


async def test_a_cancelled_default_chain_leaves_no_keys_behind(
    autojump_clock: trio.abc.Clock,
) -> None:
    ctx = make_ctx()
    ctx.data["idempotency_key"] = "k"
    with trio.move_on_after(1):
        await run_with_interceptors("s", hanging_stage, ctx, get_default_interceptors())
    assert ctx.data == {"idempotency_key": "k"}


async def test_run_with_interceptors_is_a_checkpoint() -> None:
    async def instant() -> StageResult:
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    with trio.testing.assert_checkpoints():
        await run_with_interceptors("s", instant, make_ctx(), [])
    with trio.testing.assert_checkpoints():
        await run_with_interceptors("s", instant, make_ctx(), get_default_interceptors())


# --- timeout ------------------------------------------------------------------------------


async def test_timeout_reads_the_pipeline_wide_setting(autojump_clock: trio.abc.Clock) -> None:
    ctx = make_ctx()
    ctx.data["_timeout_ms"] = 250
    start = trio.current_time()
    result = await run_with_interceptors("s", hanging_stage, ctx, [TimeoutInterceptor()])
    assert trio.current_time() - start == 0.25
    assert result.status == "failed"
    assert result.error == "Stage timed out after 250ms"
    assert "_timeout.s" not in ctx.data


@pytest.mark.parametrize("pipeline_wide", [None, 5000])
async def test_timeout_keeps_a_per_stage_timeout_the_caller_set(
    autojump_clock: trio.abc.Clock, pipeline_wide: int | None
) -> None:
    # It overwrote the caller's 100 ms with _timeout_ms (or the 30 s default), then
    # deleted the key: the stage ran under the wrong limit and ctx.data lost the key.
    ctx = make_ctx()
    ctx.data["_timeout.s"] = 100
    if pipeline_wide is not None:
        ctx.data["_timeout_ms"] = pipeline_wide
    before = dict(ctx.data)
    start = trio.current_time()
    result = await run_with_interceptors("s", hanging_stage, ctx, [TimeoutInterceptor()])
    assert trio.current_time() - start == 0.1
    assert result.error == "Stage timed out after 100ms"
    assert ctx.data == before


async def test_timeout_keeps_a_per_stage_timeout_when_the_call_is_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    ctx = make_ctx()
    ctx.data["_timeout.s"] = 5000
    with trio.move_on_after(1):
        await run_with_interceptors("s", hanging_stage, ctx, [TimeoutInterceptor()])
    assert ctx.data == {"_timeout.s": 5000}


@pytest.mark.parametrize("no_limit", [0, -1, 0.0])
async def test_timeout_replaces_a_no_limit_per_stage_value_and_puts_it_back(
    autojump_clock: trio.abc.Clock, no_limit: float
) -> None:
    # <= 0 is also the UnifiedStageGraph's placeholder for "nobody set a limit".
    ctx = make_ctx()
    ctx.data["_timeout.s"] = no_limit
    ctx.data["_timeout_ms"] = 250
    start = trio.current_time()
    result = await run_with_interceptors("s", hanging_stage, ctx, [TimeoutInterceptor()])
    assert trio.current_time() - start == 0.25
    assert result.error == "Stage timed out after 250ms"
    assert ctx.data == {"_timeout.s": no_limit, "_timeout_ms": 250}


async def test_a_unified_run_honours_a_per_stage_timeout_in_its_data(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The default chain's TimeoutInterceptor (no default limit) overwrote it with 0.
    async def slow(ctx: StageContext) -> dict[str, int]:
        await trio.sleep(10)
        return {"x": 1}  # pragma: no cover

    pipeline = Pipeline("p").with_stage("slow", slow, "work")
    start = trio.current_time()
    with pytest.raises(
        UnifiedStageExecutionError, match=r"^Stage 'slow' failed: Stage timed out after 100ms$"
    ):
        await pipeline.run(data={"_timeout.slow": 100})
    assert trio.current_time() - start == 0.1


async def test_timeout_defaults_to_thirty_seconds(autojump_clock: trio.abc.Clock) -> None:
    start = trio.current_time()
    result = await run_with_interceptors("s", hanging_stage, make_ctx(), [TimeoutInterceptor()])
    assert trio.current_time() - start == 30.0
    assert result.error == "Stage timed out after 30000ms"


async def test_the_timeout_reaches_on_error_as_the_builtin_timeout_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    errors: list[BaseException] = []

    class Spy(TimeoutInterceptor):
        name = "spy"
        priority = 60

        async def on_error(self, stage_name: str, error: Exception, ctx: PipelineContext) -> Any:
            errors.append(error)
            return await super().on_error(stage_name, error, ctx)

    ctx = make_ctx()
    ctx.data["_timeout_ms"] = 10
    await run_with_interceptors("s", hanging_stage, ctx, [TimeoutInterceptor(), Spy()])
    assert [type(e) for e in errors] == [TimeoutError]
    assert str(errors[0]) == "Stage timed out after 10ms"
    assert not isinstance(errors[0], trio.TooSlowError)


# --- circuit breaker ----------------------------------------------------------------------


async def test_breaker_opens_after_five_failed_calls_and_stays_open(
    autojump_clock: trio.abc.Clock,
) -> None:
    breaker = CircuitBreakerInterceptor()
    ctx = make_ctx()
    for _ in range(4):
        await run_with_interceptors("s", failing_stage(), ctx, [breaker])
        assert breaker.state("s") == "closed"
    await run_with_interceptors("s", failing_stage(), ctx, [breaker])
    assert breaker.state("s") == "open"
    calls: list[int] = []

    async def counted() -> StageResult:
        calls.append(1)
        return await ok_stage()()

    for _ in range(3):
        result = await run_with_interceptors("s", counted, ctx, [breaker])
        assert result.status == "completed"
        assert result.error == "Circuit breaker open for s"
        assert result.data == {}
    assert calls == []
    assert breaker.state("s") == "open"
    await trio.sleep(30.001)
    result = await run_with_interceptors("s", counted, ctx, [breaker])
    assert calls == [1]
    assert result.error is None
    assert breaker.state("s") == "closed"


async def test_breaker_is_per_stage_and_a_half_open_failure_reopens_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    breaker = CircuitBreakerInterceptor()
    ctx = make_ctx()
    for _ in range(5):
        await run_with_interceptors("a", failing_stage(), ctx, [breaker])
    assert breaker.state("a") == "open"
    assert breaker.state("b") == "closed"
    ok = await run_with_interceptors("b", ok_stage(), ctx, [breaker])
    assert ok.error is None
    await trio.sleep(31)
    failed = await run_with_interceptors("a", failing_stage(), ctx, [breaker])
    assert failed.status == "failed"
    assert breaker.state("a") == "open"


async def test_failed_results_and_timeouts_count_once(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreakerInterceptor()
    ctx = make_ctx()
    ctx.data["_timeout.s"] = 10

    async def returns_failed() -> StageResult:
        now = utc_now()
        return StageResult(name="s", status="failed", started_at=now, ended_at=now, error="x")

    for runner in (returns_failed, hanging_stage, returns_failed, hanging_stage):
        await run_with_interceptors("s", runner, ctx, [breaker])
    assert breaker.state("s") == "closed"
    await run_with_interceptors("s", returns_failed, ctx, [breaker])
    assert breaker.state("s") == "open"


def test_reference_breaker_counts_a_raised_error_twice_and_closes_itself(
    reference: ModuleType,
) -> None:
    # The two reference bugs behind our parity rows: opens after 3 raises; one short-circuit closes it.
    ref = reference.pipeline.interceptors
    ref_context = reference.stages.context
    ctx = ref_context.PipelineContext(
        pipeline_run_id=None,
        request_id=None,
        session_id=None,
        user_id=None,
        org_id=None,
        interaction_id=None,
    )
    breaker = ref.CircuitBreakerInterceptor()

    async def boom() -> Any:
        raise ValueError("boom")

    async def main() -> list[str | None]:
        errors = []
        for _ in range(5):
            result = await ref.run_with_interceptors("s", boom, ctx, [breaker])
            errors.append(result.error)
        return errors

    assert asyncio.run(main()) == ["boom", "boom", "boom", "Circuit breaker open for s", "boom"]


# --- tracing ------------------------------------------------------------------------------


def otel_installed() -> bool:
    try:
        import opentelemetry  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(otel_installed(), reason="checks the path without opentelemetry-api")
async def test_tracing_without_opentelemetry_only_keeps_the_reference_keys() -> None:
    tracing = TracingInterceptor()
    assert tracing.tracer is None
    ctx = make_ctx()
    seen: list[dict[str, Any]] = []
    await run_with_interceptors("s", ok_stage(seen, ctx), ctx, [tracing])
    assert seen[0]["_tracing.span_name"] == "s"
    assert isinstance(seen[0]["_tracing.span_start"], datetime)
    assert seen[0]["_tracing.span_start"].tzinfo is UTC
    assert ctx.data == {}
    assert tracing_impl._default_tracer() is None


async def test_tracing_records_a_span_per_stage_call() -> None:
    tracer = FakeTracer()
    tracing = TracingInterceptor(tracer=tracer)
    ctx = make_ctx()
    await run_with_interceptors("s", ok_stage(), ctx, [tracing])
    await run_with_interceptors("s", failing_stage(), ctx, [tracing])
    ok_span, failed_span = tracer.spans
    assert ok_span.name == failed_span.name == "stage.s"
    assert ok_span.attributes == {
        "stageflow.stage": "s",
        "stageflow.pipeline_run_id": str(RUN_ID),
        "stageflow.topology": "topo",
        "stageflow.execution_mode": "practice",
        "stageflow.stage.status": "completed",
        "stageflow.stage.duration_ms": ok_span.attributes["stageflow.stage.duration_ms"],
    }
    assert isinstance(ok_span.attributes["stageflow.stage.duration_ms"], int)
    assert failed_span.attributes["stageflow.stage.status"] == "failed"
    assert failed_span.attributes["stageflow.stage.error"] == "boom"
    assert ok_span.ended == failed_span.ended == 1
    assert ctx.data == {}


async def test_tracing_ends_the_span_of_a_cancelled_call(autojump_clock: trio.abc.Clock) -> None:
    tracer = FakeTracer()
    with trio.move_on_after(1):
        await run_with_interceptors("s", hanging_stage, make_ctx(), [TracingInterceptor(tracer)])
    [span] = tracer.spans
    assert span.attributes["stageflow.stage.status"] == "aborted"
    assert span.ended == 1


async def test_tracing_in_a_legacy_graph() -> None:
    tracer = FakeTracer()

    async def stage(ctx: PipelineContext) -> None:
        return None

    chain = [
        TracingInterceptor(tracer) if isinstance(i, TracingInterceptor) else i
        for i in get_default_interceptors()
    ]
    graph = StageGraph(
        [StageSpec(name="a", runner=stage), StageSpec(name="b", runner=stage, dependencies=("a",))],
        chain,
    )
    await graph.run(make_ctx())
    assert [s.name for s in tracer.spans] == ["stage.a", "stage.b"]
    assert all(s.ended == 1 for s in tracer.spans)


# --- metrics, logging, child tracker ------------------------------------------------------


async def test_metrics_keeps_the_start_time_while_the_stage_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="stageflow_trio.stage_metrics")
    ctx = make_ctx()
    seen: list[dict[str, Any]] = []
    await run_with_interceptors("s", ok_stage(seen, ctx), ctx, [MetricsInterceptor()])
    assert isinstance(seen[0]["_metrics.stage_start_time"], datetime)
    assert ctx.data == {}
    [record] = [r for r in caplog.records if r.name == "stageflow_trio.stage_metrics"]
    assert record.getMessage() == "Stage metrics: s"
    assert record.__dict__["status"] == "completed"
    assert record.__dict__["pipeline_run_id"] == str(RUN_ID)
    assert isinstance(record.__dict__["duration_ms"], int)


async def test_logging_logs_start_and_completion(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stageflow_trio.stage_interceptor")
    await run_with_interceptors("s", failing_stage(), make_ctx(), [LoggingInterceptor()])
    assert [
        r.getMessage() for r in caplog.records if r.name == "stageflow_trio.stage_interceptor"
    ] == [
        "Stage starting: s",
        "Stage completed: s - failed",
    ]


async def test_logging_is_silent_above_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="stageflow_trio.stage_interceptor")
    await run_with_interceptors("s", ok_stage(), make_ctx(), [LoggingInterceptor()])
    assert [r for r in caplog.records if r.name == "stageflow_trio.stage_interceptor"] == []


async def test_child_tracker_metrics_logs_after_stages_of_child_runs_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The reference skips the log when its subpipeline module cannot be imported; ours
    # always ships it, so a child run's stage always logs the tracker's metrics and a
    # top-level run's never does. (Before: the only assertion sat in that unreachable
    # ``except ImportError`` branch, so the test checked nothing.)
    caplog.set_level(logging.DEBUG, logger="stageflow_trio.child_tracker_metrics")
    child = make_ctx(parent_run_id=uuid.uuid4())
    assert child.is_child_run
    assert not make_ctx().is_child_run

    def records() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "stageflow_trio.child_tracker_metrics"]

    result = await run_with_interceptors(
        "s", ok_stage(), make_ctx(), [ChildTrackerMetricsInterceptor()]
    )
    assert result.status == "completed"
    assert records() == []
    result = await run_with_interceptors("s", ok_stage(), child, [ChildTrackerMetricsInterceptor()])
    assert result.status == "completed"
    [record] = records()
    assert (record.levelname, record.getMessage()) == ("INFO", "ChildRunTracker metrics")
    assert record.__dict__["component"] == "ChildRunTracker"
    assert record.__dict__["is_child_run"] is True
    assert record.__dict__["pipeline_run_id"] == str(child.pipeline_run_id)


# --- docs/interceptors.md -----------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "interceptors.md"


def _doc_examples() -> list[str]:
    return python_blocks(DOCS)


def test_the_docs_have_examples() -> None:
    assert len(_doc_examples()) == 3


@pytest.mark.parametrize("example", _doc_examples())
def test_docs_example_runs(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example ends with ``trio.run(main)``; it runs here on a virtual clock."""
    assert run_in_virtual_time(example, str(DOCS), monkeypatch) == 1


def _fake_module(name: str, **members: object) -> types.ModuleType:
    module = types.ModuleType(name)
    vars(module).update(members)
    return module


class FakeOtel:
    """Just enough of opentelemetry-api (trace + context) to watch the span's context."""

    def __init__(self) -> None:
        self.tracer = FakeTracer()
        self.attached: list[Any] = []
        self.detached: list[Any] = []
        self.trace = _fake_module(
            "opentelemetry.trace",
            get_tracer=lambda name: self.tracer,
            set_span_in_context=lambda span: ("context-of", span),
            StatusCode=types.SimpleNamespace(ERROR="ERROR"),
            Status=lambda code, description: (code, description),
        )
        self.context = _fake_module(
            "opentelemetry.context", attach=self._attach, detach=self.detached.append
        )
        self.package = _fake_module("opentelemetry", trace=self.trace, context=self.context)

    def _attach(self, context: Any) -> str:
        self.attached.append(context)
        return f"token-{len(self.attached)}"


@pytest.fixture
def fake_otel(monkeypatch: pytest.MonkeyPatch) -> FakeOtel:
    otel = FakeOtel()
    monkeypatch.setitem(sys.modules, "opentelemetry", otel.package)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", otel.trace)
    monkeypatch.setitem(sys.modules, "opentelemetry.context", otel.context)
    monkeypatch.setattr(tracing_impl, "_otel_tracer", tracing_impl._NO_TRACER)
    monkeypatch.setattr(otel_cache, "_api", otel_cache._UNSET)
    return otel


async def test_with_opentelemetry_the_span_is_current_while_the_stage_runs(
    fake_otel: FakeOtel,
) -> None:
    tracing = TracingInterceptor()
    assert tracing.tracer is fake_otel.tracer  # the default tracer comes from opentelemetry
    ctx = make_ctx()
    during: list[int] = []

    async def stage() -> StageResult:
        during.append(len(fake_otel.attached) - len(fake_otel.detached))
        raise RuntimeError("boom")

    await run_with_interceptors("s", stage, ctx, [tracing])
    [span] = fake_otel.tracer.spans
    assert during == [1]  # attached around the stage call
    assert fake_otel.attached == [("context-of", span)]
    assert fake_otel.detached == ["token-1"]
    assert span.statuses == [("ERROR", "boom")]
    assert span.ended == 1


async def test_with_opentelemetry_an_aborted_call_detaches_its_context(
    fake_otel: FakeOtel, autojump_clock: trio.abc.Clock
) -> None:
    with trio.move_on_after(1):
        await run_with_interceptors("s", hanging_stage, make_ctx(), [TracingInterceptor()])
    assert fake_otel.detached == ["token-1"]
    assert fake_otel.tracer.spans[0].ended == 1
