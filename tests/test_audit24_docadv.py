"""Checks from the reference's advanced guides (audit 24), run against this port.

stageflow-core 0.9.1 ships its documentation; a team porting a service copies code from
it. Every ```python block of the pages below was run, translated to trio (imports
renamed, ``asyncio.sleep`` -> ``trio.sleep``, ``gather`` -> a nursery, a virtual clock),
first on the reference under asyncio, then on this port; fragments were completed with
stub stages and ``stageflow_trio.testing`` contexts. Per page: blocks, blocks whose
stageflow calls run as the page says on this port, and each difference with its class
((a) our defect, fixed; (b) documented divergence; (c) right for us, now documented;
(d) the page is wrong for the reference too, or relies on asyncio):

- subpipelines.md: 36 blocks (13 prose, payload or pseudo-code), 30 pass. (d)
  ``ctx.pipeline_ctx.fork_child`` (no such method in either); (d)
  ``StageContext.as_pipeline_context(topology_override=)`` (no such keyword); (d) a
  child's ``stage.*`` events carrying ``parent_run_id``: the reference's unified graph
  sends no stage events, ours sends the legacy payload (row "Lifecycle events from
  UnifiedStageGraph"); (b) a spawn under a cancelled parent starts nothing.
- testing.md: 36 blocks, 31 pass. (d) ``ToolRegistry.get("greet")`` and
  ``parse_and_resolve`` by tool name (the registry is keyed by action type);
  ``ChunkQueue(maxsize=)``, ``put(block=)``, ``StreamingBuffer.write(duration_ms=)``,
  ``BufferedExporter(sink=None)`` / ``submit`` (none exist as written; the overflow
  callback itself gives the same calls on both); (b) the test contexts' default sink
  records.
- errors.md: 26 blocks, 24 pass. (d) ``ctx.emit_event`` on a 0.9.1 StageContext (ours
  has it, as 1.2.0); (d) ``except StageExecutionError`` around ``graph.run``: the unified
  graph raises ``UnifiedStageExecutionError``, which ``summarize_pipeline_error`` reports
  as ``UNKNOWN``, not the page's ``TIMEOUT`` (the same on both).
- error-messages.md: no python block; its three example errors checked: the missing
  dependency and the cycle carry the page's codes and doc URLs (at build: row
  "``Pipeline.build``"); (d) the empty pipeline's message is the graph's on both.
- custom-interceptors.md: 18 blocks, 15 pass. (c, fixed message)
  ``StageGraph(specs=pipeline.build().stage_specs, interceptors=...)``: every stage fails
  in the reference, a TypeError at construction here, which now says to use
  ``Pipeline.build(interceptors=...)`` (new parity row); (a, fixed with the guides'
  audit) ``InterceptorContext(ctx, _interceptor_name=...)`` was a TypeError (row
  "``InterceptorContext(...)`` keywords"). The page's rate-limit, caching, retry and observation interceptors run
  as described through ``build(interceptors=...)``.
- retry-backoff.md: 17 blocks, 14 pass. (d) ``StageOutput.retry(reason=,
  retry_after_ms=)``; (d) ``ctx.event_sink.try_emit(type, data)`` positionally (no sink
  of either library takes it; the page guards it with ``hasattr`` only); the page's
  interceptor and the built-in ``RetryInterceptor`` retry exactly as described (500 ms,
  then 1000 ms, on the virtual clock); the built-in's private ``_calculate_delay`` has
  another signature (noted by the engine audit).
- idempotency.md: 3 blocks, 3 pass; the prose's promises (a concurrent duplicate waits
  and replays, a parameter mismatch is a critical ``IdempotencyParamMismatch``, the two
  log messages) hold: tested below.
- hardening.md: 11 blocks, 10 pass. (d) ``CompressionMetrics.compression_ratio``; the
  runner's hardening switches run here (row "``enable_immutability_check``").
- checkpointing.md: 14 blocks, 10 pass. (d) ``ContextSnapshot(data=)``,
  ``Pipeline.run_from_stage``, an undefined ``run_pipeline``; the page's checkpoint
  interceptor saves and emits through ``build(interceptors=...)``.
- composition.md: 17 blocks, 15 pass. (d) ``ChunkQueue.put_nowait`` / ``maxsize``;
  (b) the builder raising ``CycleDetectedError`` holds here only (row
  "``Pipeline.build``").
- extensions.md: 22 blocks, 17 pass. (d) ``ContextSnapshot(pipeline_run_id=...)``,
  ``ExtensionRegistry.is_registered`` / ``get_type``, ``ExtensionHelper.get``'s keyword
  names, "returns None if invalid" (both return the raw value).
- context-management.md: 3 blocks, 0 pass: (d) each emits with a positional
  ``try_emit``.
- tool-sandboxing.md: 11 blocks (Docker ones not run), 7 pass; (d) positional
  ``try_emit``.
- saga-pattern.md: 8 blocks, 6 pass. (d) the saga compares ``result.status == "failed"``
  while a StageOutput's status is ``StageStatus.FAIL``, so its own test's compensation
  never runs (the same on both).
- guard-security.md: 8 blocks, 5 pass. (d) ``GuardrailStage()`` without ``checks``,
  ``StageOutput.fail(error_metadata=)``.
- routing-confidence.md: 6 blocks, 6 pass (their tests pass on both).
- routing-loops.md: 8 blocks, 6 pass. (d) ``Pipeline.with_interceptor`` and
  ``with_stage(instance)``; the page's loop-prevention test fails on both.
- chunking.md: 7 blocks, 7 pass (its tests pass on both).
- knowledge-verification.md: 2 blocks, 1 pass (d: positional ``try_emit``).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from stageflow_trio import Pipeline, Stage, StageKind, StageOutput
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.pipeline.dag import StageGraph, UnifiedStageExecutionError
from stageflow_trio.pipeline.idempotency import IdempotencyParamMismatch, InMemoryIdempotencyStore
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    ErrorAction,
    InterceptorResult,
    get_default_interceptors,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context


class Counting(Stage):
    name = "count"
    kind = StageKind.TRANSFORM

    def __init__(self) -> None:
        self.calls = 0

    async def execute(self, ctx: StageContext) -> StageOutput:
        self.calls += 1
        await trio.sleep(1)
        return StageOutput.ok(calls=self.calls)


class Hooks(BaseInterceptor):
    name = "hooks"
    priority = 30

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        self.seen.append((stage_name, result.status))


# --- custom-interceptors.md: the chain on a built pipeline ----------------------------


def test_stage_graph_given_a_built_pipelines_specs_names_build_interceptors() -> None:
    pipeline = Pipeline().with_stage("count", Counting, StageKind.TRANSFORM)
    with pytest.raises(TypeError) as caught:
        StageGraph(specs=pipeline.build().stage_specs, interceptors=[Hooks()])  # type: ignore[arg-type]
    assert str(caught.value) == (
        "StageGraph: specs[0] must be a StageSpec; got UnifiedStageSpec (a UnifiedStageGraph"
        " stage, as in Pipeline.build().stage_specs: pass the interceptors to"
        " Pipeline.build(interceptors=...) instead)"
    )


async def test_the_call_the_message_names_runs_the_chain_around_each_stage(
    autojump_clock: trio.abc.Clock,
) -> None:
    hooks = Hooks()
    stage = Counting()
    graph = (
        Pipeline()
        .with_stage("count", stage, StageKind.TRANSFORM)
        .build(interceptors=[hooks, *get_default_interceptors()])
    )
    results = await graph.run(create_test_pipeline_context())
    assert results["count"].data == {"calls": 1}
    assert hooks.seen == [("count", "completed")]


class Caching(BaseInterceptor):
    """The guide's caching interceptor, cut down: replays a stage's data by short-circuit."""

    name = "caching"
    priority = 25

    def __init__(self) -> None:
        self.cache: dict[str, Any] = {}

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        if stage_name in self.cache:
            return InterceptorResult(stage_ran=False, result=self.cache[stage_name])
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        if result.status == "completed":
            self.cache[stage_name] = result.data


class Backoff(BaseInterceptor):
    """The guide's retry interceptor without jitter: sleeps 1 s, 2 s, ... then RETRY."""

    name = "retry"
    priority = 12

    def __init__(self) -> None:
        self.retries = 0

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        if not isinstance(error, ConnectionError) or self.retries >= 3:
            return ErrorAction.FAIL
        self.retries += 1
        await trio.sleep(2 ** (self.retries - 1))
        return ErrorAction.RETRY


async def test_guide_interceptors_cache_by_short_circuit_and_retry_after_their_sleep(
    autojump_clock: trio.abc.Clock,
) -> None:
    calls: list[float] = []

    class Flaky(Stage):
        name = "flaky"
        kind = StageKind.WORK

        async def execute(self, ctx: StageContext) -> StageOutput:
            calls.append(trio.current_time())
            if len(calls) < 3:
                raise ConnectionError("down")
            return StageOutput.ok(attempt=len(calls))

    caching = Caching()
    graph = (
        Pipeline()
        .with_stage("flaky", Flaky, StageKind.WORK)
        .build(interceptors=[Backoff(), caching, *get_default_interceptors()])
    )
    start = trio.current_time()
    first = await graph.run(create_test_pipeline_context())
    # Two failures, each followed by the interceptor's own sleep (1 s, then 2 s).
    assert [t - start for t in calls] == [0, 1, 3]
    assert first["flaky"].data == {"attempt": 3}
    second = await graph.run(create_test_pipeline_context())
    assert len(calls) == 3  # replayed from the cache: the stage did not run again
    assert second["flaky"].data == {"attempt": 3}


# --- idempotency.md: the default chain with a shared store ----------------------------


def _keyed(**params: Any) -> PipelineContext:
    ctx = create_test_pipeline_context()
    ctx.data["idempotency_key"] = "client-1:charge-9"
    ctx.data["idempotency_params"] = {"client_id": "client-1", "charge_id": "charge-9", **params}
    return ctx


async def test_default_chain_runs_a_concurrent_duplicate_once_and_logs_both_outcomes(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.abc.Clock
) -> None:
    caplog.set_level(logging.INFO, logger="stageflow_trio.idempotency")
    stage = Counting()
    graph = (
        Pipeline()
        .with_stage("count", stage, StageKind.WORK)
        .build(interceptors=get_default_interceptors(idempotency_store=InMemoryIdempotencyStore()))
    )
    outputs: list[dict[str, Any]] = []

    async def one() -> None:
        results = await graph.run(_keyed())
        outputs.append(dict(results["count"].data))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(one)
        nursery.start_soon(one)
    assert stage.calls == 1
    assert outputs == [{"calls": 1}, {"calls": 1}]
    assert trio.current_time() - start == 1  # the duplicate waited for the first, no longer
    records = [r for r in caplog.records if r.name == "stageflow_trio.idempotency"]
    assert [r.getMessage() for r in records] == ["Stored idempotent result", "Idempotency hit"]
    assert all(
        (r.__dict__["stage"], r.__dict__["idempotency_key"]) == ("count", "client-1:charge-9")
        for r in records
    )

    with pytest.raises(UnifiedStageExecutionError) as caught:
        await graph.run(_keyed(amount=500))
    assert isinstance(caught.value.original, IdempotencyParamMismatch)
    assert isinstance(caught.value.original, CriticalInterceptorError)
    assert stage.calls == 1


# --- testing.md: parallel stages ------------------------------------------------------


async def test_two_independent_slow_stages_overlap(autojump_clock: trio.abc.Clock) -> None:
    class Slow(Stage):
        name = "slow"
        kind = StageKind.ENRICH

        async def execute(self, ctx: StageContext) -> StageOutput:
            await trio.sleep(1)
            return StageOutput.ok()

    graph = (
        Pipeline()
        .with_stage("parallel_a", Slow, StageKind.ENRICH)
        .with_stage("parallel_b", Slow, StageKind.ENRICH)
        .with_stage(
            "aggregate", Counting, StageKind.TRANSFORM, dependencies=("parallel_a", "parallel_b")
        )
    )
    start = trio.current_time()
    results = await graph.build().run(create_test_pipeline_context())
    assert set(results) == {"parallel_a", "parallel_b", "aggregate"}
    assert trio.current_time() - start == 2  # 1 s for the two together, then 1 s
