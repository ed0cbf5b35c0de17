"""Our own checks for what the reference's engine tests expect and ours did not yet hold.

stageflow-core 0.9.1 ships tests for the graphs, the interceptor chain and its built-in
interceptors, the builders and the cancellation helpers. They were run against this port
under trio, changing only the imports, the asyncio calls (``asyncio.sleep`` ->
``trio.sleep``, ``gather`` / ``create_task`` -> a nursery, the loop's clock ->
``trio.current_time()``) and their real sleeps (a virtual clock). Outcome per reference
file (in the sdist's tests/):

- execution/test_unified_graph.py: 45 tests: 41 pass; 4 fail: ``_duration_ms`` (a private
  method), the two deadlock tests (parity row "Missing dependency or cycle in
  ``UnifiedStageGraph(...)``"), ``test_stage_with_events`` (rows "Lifecycle events from
  UnifiedStageGraph" and "Pipeline-level terminal events"). The guard-retry timeout test
  patches ``time.monotonic``; with the guard sleeping on the trio clock instead (row
  "Guard-retry timeout window") it passes.
- execution/test_dag.py: 27 tests: 23 pass; 4 fail: ``graph._interceptors`` twice (a
  private name), the two deadlock tests (the same row). Two more failed before this file:
  a duck-typed wide-event emitter was refused (fixed, below).
- framework/test_interceptors.py: 65 tests: 62 pass; 3 fail: the circuit breaker's
  ``after`` closing an open breaker and ``on_error`` counting (parity row
  "``CircuitBreakerInterceptor`` failure count"); the idempotency replay through
  ``run_with_interceptors``, whose fake store expects the key ``"req-1"`` (row
  "Idempotency store key", added by audit 24) and whose replayed StageResult becomes
  ``data`` (row "Idempotency replay through ``run_with_interceptors``"). Its store, with
  ``get`` and ``set`` only, was refused before (fixed, below).
- pipeline/test_retry_interceptor.py: 17 tests: 14 pass; 3 fail: they call the private
  ``_calculate_delay(stage, attempt)``, whose signature is the reference's own.
- pipeline/test_failure_tolerance.py: 18 pass. pipeline/test_builder_helpers.py: 14 pass.
- unit/pipeline/test_inmemory_idempotency_store.py: 3 tests: 3 pass (the expiry test patches
  ``time.time``; with a virtual ``trio.sleep`` instead, row "In-process times kept across
  ``trio.run`` calls", it passes). test_spec.py: 11 pass. test_builder.py: 16 pass.
  test_cancellation.py: 22 pass (the task-cancel test written with a cancel scope).
- unit/pipeline/test_hardening_interceptors.py: 5 tests: 3 pass; 2 fail: they mutate
  ``snapshot.metadata``, which is frozen here (row "Containers" of the context models).
- unit/pipeline/test_idempotency_interceptor.py: 7 tests: 4 pass; 3 fail: the store is an
  ``AsyncMock``, whose automatic ``claim`` attribute makes it look like a claiming store
  (a mock artefact), the key is ``["stage", key]`` (row "Idempotency store key") and only
  the call holding the claim caches (row "Idempotency: what is cached"); with a store
  without ``claim`` the same checks hold. ``test_before_blocks_until_inflight_result_is_cached``
  failed before: the replay's ``InterceptorResult.result`` was a dict (fixed, below).
- fault/test_fault_injection.py: 11 pass. integration/test_pipeline_integration.py: 12 pass.
- test_v090_integration.py: 16 tests: 14 pass; 2 fail, as they do on the reference itself
  (``StageGraph.run`` given a StageContext; ``run(interceptors=)``, no such keyword).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageGraph
from stageflow_trio.pipeline.idempotency import CachedStageResult, IdempotencyInterceptor
from stageflow_trio.pipeline.interceptors import run_with_interceptors
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context
from tests.fakes import CountingStage

from .graph_helpers import spec, stage_ctx

# --- a wide-event emitter need not subclass WideEventEmitter (fixed) -----------------


class RecordingEmitter:
    """Has only the two methods a graph calls, as the reference's test double has."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, str]] = []
        self.runs: list[tuple[str | None, int]] = []

    def emit_stage_event(self, *, ctx: PipelineContext, result: StageResult) -> None:
        self.stages.append((result.name, result.status))

    def emit_pipeline_event(
        self,
        *,
        ctx: PipelineContext,
        stage_results: dict[str, StageResult],
        pipeline_name: str | None,
        status: str | None,
        duration_ms: int | None,
        started_at: datetime | None,
    ) -> None:
        self.runs.append((pipeline_name, len(stage_results)))


async def test_the_legacy_graph_sends_wide_events_to_an_emitter_of_its_own_kind() -> None:
    async def work(ctx: PipelineContext) -> dict[str, int]:
        return {"n": 1}

    emitter = RecordingEmitter()
    graph = StageGraph(
        [StageSpec(name="a", runner=work), StageSpec(name="b", runner=work, dependencies=("a",))],
        wide_event_emitter=emitter,  # type: ignore[arg-type]
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    ctx = create_test_pipeline_context(topology="wide_topology")
    await graph.run(ctx)
    assert emitter.stages == [("a", "completed"), ("b", "completed")]
    assert emitter.runs == [("wide_topology", 2)]


async def test_the_unified_graph_sends_wide_events_to_an_emitter_of_its_own_kind() -> None:
    emitter = RecordingEmitter()
    graph = UnifiedStageGraph(
        [spec("a"), spec("b", deps=["a"])],
        pipeline_name="orders",
        wide_event_emitter=emitter,  # type: ignore[arg-type]
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    await graph.run(stage_ctx())
    assert emitter.stages == [("a", "completed"), ("b", "completed")]
    assert emitter.runs == [("orders", 2)]


class HalfAnEmitter:
    def emit_stage_event(self, *, ctx: PipelineContext, result: StageResult) -> None:
        pass


@pytest.mark.parametrize("graph_class", ["StageGraph", "UnifiedStageGraph"])
def test_an_emitter_needs_both_methods_and_must_be_an_instance(graph_class: str) -> None:
    async def work(ctx: PipelineContext) -> None:
        return None

    def build(emitter: object) -> object:
        if graph_class == "StageGraph":
            return StageGraph(
                [StageSpec(name="a", runner=work)],
                wide_event_emitter=emitter,  # type: ignore[arg-type]
            )
        return UnifiedStageGraph([spec("a")], wide_event_emitter=emitter)  # type: ignore[arg-type]

    with pytest.raises(
        TypeError,
        match=rf"^{graph_class}: wide_event_emitter must be a WideEventEmitter \(or have"
        r" emit_stage_event\(\) and emit_pipeline_event\(\)\) or None; got HalfAnEmitter$",
    ):
        build(HalfAnEmitter())
    # The class has both methods, unbound: every event would then fail (logged).
    with pytest.raises(
        TypeError,
        match=rf"^{graph_class}: wide_event_emitter must be an instance; got the class"
        r" RecordingEmitter \(pass RecordingEmitter\(\)\)$",
    ):
        build(RecordingEmitter)


# --- an idempotency store needs only get and set (fixed) ------------------------------


class GetSetStore:
    """A store written for the reference: the interceptor never calls ``delete``."""

    def __init__(self) -> None:
        self.entries: dict[str, CachedStageResult] = {}

    async def get(self, key: str) -> CachedStageResult | None:
        return self.entries.get(key)

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: int | None = None
    ) -> None:
        self.entries[key] = entry


def keyed_ctx() -> PipelineContext:
    ctx = create_test_pipeline_context()
    ctx.data["idempotency_key"] = "req-1"
    return ctx


async def test_a_store_with_only_get_and_set_replays_duplicates() -> None:
    interceptor = IdempotencyInterceptor(store=GetSetStore())
    stage = CountingStage()
    first = await run_with_interceptors("charge", stage, keyed_ctx(), [interceptor])
    second = await run_with_interceptors("charge", stage, keyed_ctx(), [interceptor])
    assert stage.calls == 1
    assert first.data == second.data == {"call": 1, "nested": {"items": [1]}}


# --- a replay hands the cached StageResult to the caller of before() (fixed) ----------


async def test_before_returns_the_cached_stage_result_on_a_replay() -> None:
    store = GetSetStore()
    interceptor = IdempotencyInterceptor(store=store)
    first = await run_with_interceptors("charge", CountingStage(), keyed_ctx(), [interceptor])
    replay = await interceptor.before("charge", keyed_ctx())
    assert replay is not None
    assert replay.stage_ran is False
    cached = replay.result
    assert isinstance(cached, StageResult)
    assert (cached.name, cached.status, cached.error) == ("charge", "completed", None)
    assert cached.data == first.data == {"call": 1, "nested": {"items": [1]}}
    await interceptor.after("charge", cached, keyed_ctx())  # the replaying call ends


# --- every stage of one run reads the run's one timer (not asserted before) -----------


async def test_the_stages_of_one_unified_run_share_its_timer() -> None:
    seen: list[Any] = []

    async def record(ctx: StageContext) -> StageOutput:
        seen.append(ctx.timer)
        return StageOutput.ok()

    graph = UnifiedStageGraph(
        [spec("a", record), spec("b", record), spec("c", record, deps=["a", "b"])]
    )
    await graph.run(stage_ctx())
    assert len(seen) == 3
    assert all(timer is seen[0] for timer in seen)
    assert len({timer.pipeline_start_ms for timer in seen}) == 1
