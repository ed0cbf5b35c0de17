"""Audit 15: every public ``async def`` is a checkpoint, on its no-op paths too.

The rule (docs/cancellation.md, "The checkpoint budget"): each public ``async def`` is a
full trio checkpoint on every call (a cancellation point and a schedule point), early
returns and error paths included. The budgeted data-path calls (``OutputBag.write``,
``ContextBag.write``, ``ChunkQueue.put``/``get``, ``SubpipelineSpawner.spawn``, the engine
between stages) are always a cancellation point and a schedule point when one is due; they
run here under ``checkpoint_budget(calls=1)``, which makes each of them a full checkpoint.
The built-in interceptor hooks, which the chain awaits as callbacks, are exempt (see
docs/interceptors.md) and are listed in ``NOT_COVERED``.

``test_every_public_async_callable_is_accounted_for`` enumerates the public async callables
(``__all__`` of the public modules, skipping ``stores``, ``cli`` and ``examples``) and fails
when one is neither a case below nor listed with a reason in ``NOT_COVERED``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import stageflow_trio
from stageflow_trio.agent import Agent, AgentStage
from stageflow_trio.agent.validation import TypedLLMOutput
from stageflow_trio.auth.interceptors import MockJwtValidator
from stageflow_trio.context import ContextBag, OutputBag
from stageflow_trio.contracts.typed_output import TypedStageOutput
from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.events import (
    BackpressureAwareEventSink,
    LoggingEventSink,
    NoOpEventSink,
    emit_event,
    wait_for_event_sink_tasks,
)
from stageflow_trio.helpers.analytics import (
    AnalyticsEvent,
    AnalyticsSink,
    BufferedExporter,
    CompositeExporter,
    ConsoleExporter,
    JSONFileExporter,
)
from stageflow_trio.helpers.guardrails import GuardrailStage
from stageflow_trio.helpers.memory import (
    InMemoryStore,
    MemoryConfig,
    MemoryEntry,
    MemoryFetchStage,
    MemoryWriteStage,
)
from stageflow_trio.helpers.mocks import (
    MockAuthProvider,
    MockLLMProvider,
    MockSTTProvider,
    MockToolExecutor,
    MockTTSProvider,
)
from stageflow_trio.helpers.run_utils import ObservableEventSink, PipelineRunner
from stageflow_trio.helpers.streaming import ChunkQueue, RealtimeStageBus
from stageflow_trio.lowlevel import checkpoint_budget, cooperative_checkpoint
from stageflow_trio.observability import NoOpPipelineRunLogger, NoOpProviderCallLogger
from stageflow_trio.pipeline import (
    Pipeline,
    StageGraph,
    StageSpec,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.cancellation import (
    CancellationToken,
    CleanupRegistry,
    StructuredTaskGroup,
    run_with_cleanup,
)
from stageflow_trio.pipeline.dag import StageExecutionError
from stageflow_trio.pipeline.dag import UnifiedStageSpec as DagUnifiedStageSpec
from stageflow_trio.pipeline.failure_tolerance import BackpressureMonitor
from stageflow_trio.pipeline.idempotency import CachedStageResult, InMemoryIdempotencyStore
from stageflow_trio.pipeline.interceptors import BaseInterceptor, run_with_interceptors
from stageflow_trio.pipeline.pipeline import run_stage
from stageflow_trio.pipeline.subpipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.stages.errors import StageRunner
from stageflow_trio.stages.result import StageError, StageResult
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
)
from stageflow_trio.testing.orphans import NoOrphans
from stageflow_trio.tools import AdvancedToolExecutor, ToolNotFoundError, ToolRegistry
from stageflow_trio.tools.approval import ApprovalRequest, ApprovalService
from stageflow_trio.tools.base import BaseTool, ToolInput, ToolOutput
from stageflow_trio.tools.executor import ToolExecutor
from stageflow_trio.tools.undo import UndoStore
from stageflow_trio.websearch.client import WebSearchClient, create_mock_client
from stageflow_trio.websearch.fetcher import FetchConfig, Fetcher, HttpFetcher, MockFetcher
from stageflow_trio.websearch.run_utils import (
    extract_all_links,
    fetch_page,
    fetch_pages,
    fetch_with_retry,
    map_site,
    search_and_extract,
)

from .agent.fakes import ScriptedChat, answer

Call = Callable[[], Awaitable[object]]
Setup = Callable[[], Awaitable[Call]]


@attrs.frozen
class Case:
    """``setup`` builds fresh state and returns the call to measure."""

    id: str
    target: str  # "module.Class.method" or "module.function", under stageflow_trio
    setup: Setup
    # False where the docs say the call completes inside a cancelled scope (shielded).
    cancel_point: bool = True


CASES: list[Case] = []


def case(target: str, label: str = "", *, cancel_point: bool = True) -> Callable[[Setup], Setup]:
    def register(setup: Setup) -> Setup:
        case_id = f"{target}[{label}]" if label else target
        CASES.append(Case(case_id, target, setup, cancel_point))
        return setup

    return register


def _now() -> datetime:
    return datetime.now(UTC)


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


# --- helpers.memory --------------------------------------------------------------------


@case("helpers.memory.InMemoryStore.fetch", "empty session")
async def _() -> Call:
    store = InMemoryStore()
    return lambda: store.fetch(_uuid(), MemoryConfig())


@case("helpers.memory.InMemoryStore.write")
async def _() -> Call:
    store = InMemoryStore()
    return lambda: store.write(MemoryEntry(id="m1", session_id=_uuid(), role="user", content="hi"))


@case("helpers.memory.InMemoryStore.clear", "unknown session")
async def _() -> Call:
    store = InMemoryStore()
    return lambda: store.clear(_uuid())


@case("helpers.memory.MemoryFetchStage.execute")
async def _() -> Call:
    stage = MemoryFetchStage(InMemoryStore())
    ctx = create_test_stage_context(session_id=_uuid())
    return lambda: stage.execute(ctx)


@case("helpers.memory.MemoryWriteStage.execute", "nothing to write")
async def _() -> Call:
    stage = MemoryWriteStage(InMemoryStore())
    ctx = create_test_stage_context(session_id=_uuid())
    return lambda: stage.execute(ctx)


@case("helpers.guardrails.GuardrailStage.execute", "no checks")
async def _() -> Call:
    stage = GuardrailStage([])
    ctx = create_test_stage_context(input_text="hello")
    return lambda: stage.execute(ctx)


# --- helpers.mocks ---------------------------------------------------------------------


@case("helpers.mocks.MockAuthProvider.validate")
async def _() -> Call:
    provider = MockAuthProvider(accept_any=True)
    return lambda: provider.validate("token")


@case("helpers.mocks.MockLLMProvider.complete", "no latency")
async def _() -> Call:
    provider = MockLLMProvider(responses=["ok"])
    return lambda: provider.complete("hi")


@case("helpers.mocks.MockSTTProvider.transcribe", "no latency")
async def _() -> Call:
    provider = MockSTTProvider(latency_ms=0, latency_jitter_ms=0)
    return lambda: provider.transcribe(b"\x00\x00")


@case("helpers.mocks.MockTTSProvider.synthesize", "no latency")
async def _() -> Call:
    provider = MockTTSProvider(latency_ms=0)
    return lambda: provider.synthesize("hi")


@case("helpers.mocks.MockToolExecutor.execute", "no latency")
async def _() -> Call:
    executor = MockToolExecutor(latency_ms=0)
    return lambda: executor.execute("echo", {})


# --- helpers.analytics -----------------------------------------------------------------


def _event() -> AnalyticsEvent:
    return AnalyticsEvent(event_type="stage.completed")


@case("helpers.analytics.ConsoleExporter.export")
async def _() -> Call:
    exporter = ConsoleExporter(colorize=False)
    return lambda: exporter.export(_event())


@case("helpers.analytics.ConsoleExporter.export_batch", "empty batch")
async def _() -> Call:
    exporter = ConsoleExporter(colorize=False)
    return lambda: exporter.export_batch([])


@case("helpers.analytics.ConsoleExporter.flush")
async def _() -> Call:
    exporter = ConsoleExporter()
    return exporter.flush


@case("helpers.analytics.ConsoleExporter.close")
async def _() -> Call:
    exporter = ConsoleExporter()
    return exporter.close


_TMP: list[Path] = []
_CLOSERS: list[Call] = []


@pytest.fixture(autouse=True)
def _tmp_dir(tmp_path: Path) -> Iterator[None]:
    _TMP.append(tmp_path)
    yield
    _TMP.pop()
    assert _CLOSERS == [], "a test left closers behind"


@case("helpers.analytics.JSONFileExporter.export")
async def _() -> Call:
    exporter = JSONFileExporter(_TMP[-1] / "events.jsonl")
    _CLOSERS.append(exporter.close)
    return lambda: exporter.export(_event())


@case("helpers.analytics.JSONFileExporter.export_batch", "empty batch")
async def _() -> Call:
    exporter = JSONFileExporter(_TMP[-1] / "events.jsonl")
    _CLOSERS.append(exporter.close)
    return lambda: exporter.export_batch([])


@case("helpers.analytics.JSONFileExporter.flush", "never opened")
async def _() -> Call:
    exporter = JSONFileExporter(_TMP[-1] / "events.jsonl")
    return exporter.flush


@case("helpers.analytics.JSONFileExporter.close", "never opened")
async def _() -> Call:
    exporter = JSONFileExporter(_TMP[-1] / "events.jsonl")
    return exporter.close


@case("helpers.analytics.CompositeExporter.export", "no exporters")
async def _() -> Call:
    exporter = CompositeExporter([])
    return lambda: exporter.export(_event())


@case("helpers.analytics.CompositeExporter.export_batch", "no exporters")
async def _() -> Call:
    exporter = CompositeExporter([])
    return lambda: exporter.export_batch([_event()])


@case("helpers.analytics.CompositeExporter.flush", "no exporters")
async def _() -> Call:
    exporter = CompositeExporter([])
    return exporter.flush


@case("helpers.analytics.CompositeExporter.close", "no exporters")
async def _() -> Call:
    exporter = CompositeExporter([])
    return exporter.close


@case("helpers.analytics.BufferedExporter.export")
async def _() -> Call:
    exporter = BufferedExporter(ConsoleExporter(colorize=False))
    return lambda: exporter.export(_event())


@case("helpers.analytics.BufferedExporter.export_batch", "empty batch")
async def _() -> Call:
    exporter = BufferedExporter(ConsoleExporter(colorize=False))
    return lambda: exporter.export_batch([])


@case("helpers.analytics.BufferedExporter.flush", "empty buffer")
async def _() -> Call:
    exporter = BufferedExporter(ConsoleExporter(colorize=False))
    return exporter.flush


@case("helpers.analytics.AnalyticsSink.emit")
async def _() -> Call:
    sink = AnalyticsSink(CompositeExporter([]))
    return lambda: sink.emit(type="stage.completed", data={})


@case("helpers.analytics.AnalyticsSink.flush_pending", "nothing pending")
async def _() -> Call:
    sink = AnalyticsSink(CompositeExporter([]))
    return sink.flush_pending


# --- events ----------------------------------------------------------------------------


@case("events.emit_event", "no sink set")
async def _() -> Call:
    return lambda: emit_event(type="x", data=None)


@case("events.sink.wait_for_event_sink_tasks", "nothing pending")
async def _() -> Call:
    return wait_for_event_sink_tasks


@case("events.sink.NoOpEventSink.emit")
async def _() -> Call:
    sink = NoOpEventSink()
    return lambda: sink.emit(type="x", data=None)


@case("events.sink.LoggingEventSink.emit")
async def _() -> Call:
    sink = LoggingEventSink()
    return lambda: sink.emit(type="x", data=None)


@case("testing.RecordingEventSink.emit")
async def _() -> Call:
    sink = RecordingEventSink()
    return lambda: sink.emit(type="x", data=None)


@case("helpers.run_utils.ObservableEventSink.emit")
async def _() -> Call:
    sink = ObservableEventSink(verbose=False)
    return lambda: sink.emit(type="x", data=None)


@case("events.sink.BackpressureAwareEventSink.emit", "not started")
async def _() -> Call:
    sink = BackpressureAwareEventSink(NoOpEventSink())
    return lambda: sink.emit(type="x", data=None)


@case("events.sink.BackpressureAwareEventSink.stop", "never started")
async def _() -> Call:
    sink = BackpressureAwareEventSink(NoOpEventSink())
    return sink.stop


# --- lowlevel, contexts ----------------------------------------------------------------


@case("lowlevel.cooperative_checkpoint")
async def _() -> Call:
    return cooperative_checkpoint


@case("context.output_bag.OutputBag.write")
async def _() -> Call:
    bag = OutputBag()
    return lambda: bag.write("a", StageOutput.ok())


@case("context.bag.ContextBag.write")
async def _() -> Call:
    bag = ContextBag()
    return lambda: bag.write("k", 1, "a")


@case("core.stage_context.StageContext.cancellation_checkpoint")
async def _() -> Call:
    ctx = create_test_stage_context()
    return ctx.cancellation_checkpoint


@case("stages.context.PipelineContext.cancellation_checkpoint")
async def _() -> Call:
    ctx = create_test_pipeline_context()
    return ctx.cancellation_checkpoint


@case("stages.errors.StageRunner.run")
async def _() -> Call:
    runner = StageRunner("a", create_test_pipeline_context())
    return lambda: runner.run(lambda: 1)


# --- contracts, agent, auth -------------------------------------------------------------


@attrs.define
class _Payload:
    x: int


def _typed() -> TypedStageOutput[Any]:
    pydantic = pytest.importorskip("pydantic")
    model = pydantic.create_model("Payload", x=(int, ...))
    return TypedStageOutput(model)


async def _payload() -> dict[str, int]:
    return {"x": 1}


@case("contracts.typed_output.TypedStageOutput.ok_async")
async def _() -> Call:
    typed = _typed()
    return lambda: typed.ok_async(_payload)


@case("contracts.typed_output.TypedStageOutput.serialize_async")
async def _() -> Call:
    typed = _typed()
    return lambda: typed.serialize_async(_payload)


@case("contracts.typed_output.TypedStageOutput.validate_async")
async def _() -> Call:
    typed = _typed()
    return lambda: typed.validate_async(_payload)


@case("agent.runtime.Agent.run")
async def _() -> Call:
    agent = Agent(llm_client=ScriptedChat(answer("done")), tool_registry=ToolRegistry())
    return lambda: agent.run("hi")


@case("agent.stage.AgentStage.execute")
async def _() -> Call:
    stage = AgentStage(Agent(llm_client=ScriptedChat(answer("x")), tool_registry=ToolRegistry()))
    ctx = create_test_stage_context(input_text="hi")
    return lambda: stage.execute(ctx)


@case("agent.validation.TypedLLMOutput.generate")
async def _() -> Call:
    pydantic = pytest.importorskip("pydantic")
    model = pydantic.create_model("Answer", x=(int, ...))
    typed = TypedLLMOutput(model)
    client = ScriptedChat(json.dumps({"x": 1}))
    return lambda: typed.generate(client, [{"role": "user", "content": "hi"}], model="m")


@case("auth.interceptors.MockJwtValidator.validate")
async def _() -> Call:
    validator = MockJwtValidator()
    return lambda: validator.validate("token")


# --- streaming -------------------------------------------------------------------------


@case("helpers.streaming.ChunkQueue.put")
async def _() -> Call:
    queue: ChunkQueue[int] = ChunkQueue()
    return lambda: queue.put(1)


@case("helpers.streaming.ChunkQueue.get", "closed and empty")
async def _() -> Call:
    queue: ChunkQueue[int] = ChunkQueue()
    await queue.close()
    return queue.get


@case("helpers.streaming.ChunkQueue.close", "already closed")
async def _() -> Call:
    queue: ChunkQueue[int] = ChunkQueue()
    await queue.close()
    return queue.close


@case("helpers.streaming.ChunkQueue.__anext__")
async def _() -> Call:
    queue: ChunkQueue[int] = ChunkQueue()
    await queue.put(1)
    return queue.__anext__


@case("helpers.streaming.RealtimeStageBus.channel")
async def _() -> Call:
    bus = RealtimeStageBus()
    return lambda: bus.channel("a")


@case("helpers.streaming.RealtimeStageBus.publish")
async def _() -> Call:
    bus = RealtimeStageBus()
    return lambda: bus.publish("a", 1)


@case("helpers.streaming.RealtimeStageBus.stats", "no channels")
async def _() -> Call:
    bus = RealtimeStageBus()
    return bus.stats


@case("helpers.streaming.RealtimeStageBus.close_channel", "unknown channel")
async def _() -> Call:
    bus = RealtimeStageBus()
    return lambda: bus.close_channel("nope")


@case("helpers.streaming.RealtimeStageBus.close_all", "no channels")
async def _() -> Call:
    bus = RealtimeStageBus()
    return bus.close_all


# --- pipeline.cancellation --------------------------------------------------------------


@case("pipeline.cancellation.CancellationToken.wait", "already cancelled")
async def _() -> Call:
    token = CancellationToken()
    token.cancel("done")
    return token.wait


@case("pipeline.cancellation.CleanupRegistry.run_all", "nothing registered")
async def _() -> Call:
    registry = CleanupRegistry()
    return registry.run_all


async def _noop() -> None:
    pass


async def _one() -> int:
    return 1


@case("pipeline.cancellation.run_with_cleanup")
async def _() -> Call:
    return lambda: run_with_cleanup(_one(), _noop)


@case("pipeline.failure_tolerance.BackpressureMonitor.acquire")
async def _() -> Call:
    monitor = BackpressureMonitor()
    return monitor.acquire


# --- pipeline.idempotency ---------------------------------------------------------------


@case("pipeline.idempotency.InMemoryIdempotencyStore.get", "missing key")
async def _() -> Call:
    store = InMemoryIdempotencyStore()
    return lambda: store.get("missing")


@case("pipeline.idempotency.InMemoryIdempotencyStore.set")
async def _() -> Call:
    store = InMemoryIdempotencyStore()
    result = CachedStageResult(
        result=StageResult(name="a", status="completed", started_at=_now(), ended_at=_now())
    )
    return lambda: store.set("k", result)


@case("pipeline.idempotency.InMemoryIdempotencyStore.claim")
async def _() -> Call:
    store = InMemoryIdempotencyStore()
    return lambda: store.claim(str(_uuid()))


@case("pipeline.idempotency.InMemoryIdempotencyStore.delete", "missing key")
async def _() -> Call:
    store = InMemoryIdempotencyStore()
    return lambda: store.delete("missing")


# --- pipeline.subpipeline ---------------------------------------------------------------


@case("pipeline.subpipeline.ChildRunTracker.register_child")
async def _() -> Call:
    tracker = ChildRunTracker()
    return lambda: tracker.register_child(_uuid(), _uuid())


@case("pipeline.subpipeline.ChildRunTracker.unregister_child", "unknown ids")
async def _() -> Call:
    tracker = ChildRunTracker()
    return lambda: tracker.unregister_child(_uuid(), _uuid())


@case("pipeline.subpipeline.ChildRunTracker.get_children", "unknown id")
async def _() -> Call:
    tracker = ChildRunTracker()
    return lambda: tracker.get_children(_uuid())


@case("pipeline.subpipeline.ChildRunTracker.get_parent", "unknown id")
async def _() -> Call:
    tracker = ChildRunTracker()
    return lambda: tracker.get_parent(_uuid())


@case("pipeline.subpipeline.ChildRunTracker.get_root_run", "unknown id")
async def _() -> Call:
    tracker = ChildRunTracker()
    return lambda: tracker.get_root_run(_uuid())


@case("pipeline.subpipeline.ChildRunTracker.get_all_descendants", "unknown id")
async def _() -> Call:
    tracker = ChildRunTracker()
    return lambda: tracker.get_all_descendants(_uuid())


@case("pipeline.subpipeline.ChildRunTracker.cleanup_run", "unknown id")
async def _() -> Call:
    tracker = ChildRunTracker()
    return lambda: tracker.cleanup_run(_uuid())


@case("pipeline.subpipeline.ChildRunTracker.get_metrics")
async def _() -> Call:
    tracker = ChildRunTracker()
    return tracker.get_metrics


@case("pipeline.subpipeline.ChildRunTracker.reset_metrics")
async def _() -> Call:
    tracker = ChildRunTracker()
    return tracker.reset_metrics


@case("pipeline.subpipeline.SubpipelineSpawner.is_canceled", "unknown id")
async def _() -> Call:
    spawner = SubpipelineSpawner(ChildRunTracker())
    return lambda: spawner.is_canceled(_uuid())


@case("pipeline.subpipeline.SubpipelineSpawner.cancel_with_children", "unknown id")
async def _() -> Call:
    spawner = SubpipelineSpawner(ChildRunTracker(), emit_events=False)
    return lambda: spawner.cancel_with_children(_uuid())


async def _child_runner(ctx: Any) -> StageOutput:
    return StageOutput.ok()


@case("pipeline.subpipeline.SubpipelineSpawner.spawn")
async def _() -> Call:
    spawner = SubpipelineSpawner(ChildRunTracker(), emit_events=False)
    ctx = create_test_pipeline_context()
    return lambda: spawner.spawn("child", ctx, _uuid(), "parent", _child_runner)


# --- pipeline runs ---------------------------------------------------------------------


async def _stage(ctx: Any) -> StageOutput:
    return StageOutput.ok(v=1)


def _pipeline() -> Pipeline:
    return Pipeline().with_stage("a", _stage, StageKind.TRANSFORM)


@case("pipeline.pipeline.Pipeline.run")
async def _() -> Call:
    pipeline = _pipeline()
    return lambda: pipeline.run(input_text="hi")


@case("pipeline.pipeline.Pipeline.invoke")
async def _() -> Call:
    pipeline = _pipeline()
    return lambda: pipeline.invoke("hi")


@case("pipeline.pipeline.run_stage")
async def _() -> Call:
    return lambda: run_stage("a", _stage, StageKind.TRANSFORM)


@case("pipeline.dag.UnifiedStageGraph.run")
async def _() -> Call:
    graph = UnifiedStageGraph(
        [DagUnifiedStageSpec(name="a", runner=_stage, kind=StageKind.TRANSFORM)]
    )
    ctx = create_test_stage_context()
    return lambda: graph.run(ctx)


@case("pipeline.dag.StageGraph.run")
async def _() -> Call:
    async def runner(ctx: Any) -> Any:
        return None

    graph = StageGraph([StageSpec(name="a", runner=runner)], interceptors=[])
    ctx = create_test_pipeline_context()
    return lambda: graph.run(ctx)


async def _legacy_run() -> StageResult:
    return StageResult(name="a", status="completed", started_at=_now(), ended_at=_now())


@case("pipeline.interceptors.run_with_interceptors", "no interceptors")
async def _() -> Call:
    ctx = create_test_pipeline_context()
    return lambda: run_with_interceptors(
        stage_name="a", stage_run=_legacy_run, ctx=ctx, interceptors=[]
    )


@case("helpers.run_utils.PipelineRunner.run")
async def _() -> Call:
    runner = PipelineRunner(verbose=False, colorize=False)
    pipeline = _pipeline()
    return lambda: runner.run(pipeline, input_text="hi")


@case("helpers.run_utils.run_simple_pipeline")
async def _() -> Call:
    from stageflow_trio.helpers.run_utils import run_simple_pipeline

    pipeline = _pipeline()
    return lambda: run_simple_pipeline(pipeline, "hi")


# --- tools -----------------------------------------------------------------------------


@case("tools.approval.ApprovalService.request_approval")
async def _() -> Call:
    service = ApprovalService()
    return lambda: service.request_approval(_uuid(), "tool")


@case("tools.approval.ApprovalService.request")
async def _() -> Call:
    service = ApprovalService()
    return lambda: service.request(ApprovalRequest(id=_uuid(), action_id=_uuid(), tool_name="t"))


@case("tools.approval.ApprovalService.get_request", "unknown id")
async def _() -> Call:
    service = ApprovalService()
    return lambda: service.get_request(_uuid())


@case("tools.approval.ApprovalService.get_status", "unknown id")
async def _() -> Call:
    service = ApprovalService()
    return lambda: service.get_status(_uuid())


@case("tools.approval.ApprovalService.get_pending_requests", "none pending")
async def _() -> Call:
    service = ApprovalService()
    return service.get_pending_requests


@case("tools.approval.ApprovalService.cancel_request", "unknown id")
async def _() -> Call:
    service = ApprovalService()
    return lambda: service.cancel_request(_uuid())


@case("tools.approval.ApprovalService.cleanup", "unknown id")
async def _() -> Call:
    service = ApprovalService()
    return lambda: service.cleanup(_uuid())


@case("tools.approval.ApprovalService.record_decision")
async def _() -> Call:
    service = ApprovalService()
    request = await service.request_approval(_uuid(), "tool")
    return lambda: service.record_decision(request.id, True)


@case("tools.approval.ApprovalService.await_decision", "already decided")
async def _() -> Call:
    service = ApprovalService()
    request = await service.request_approval(_uuid(), "tool")
    await service.record_decision(request.id, True)
    return lambda: service.await_decision(request.id)


@case("tools.undo.UndoStore.store")
async def _() -> Call:
    store = UndoStore()
    return lambda: store.store(_uuid(), "tool", {})


@case("tools.undo.UndoStore.get", "missing id")
async def _() -> Call:
    store = UndoStore()
    return lambda: store.get(_uuid())


@case("tools.undo.UndoStore.get_all", "empty store")
async def _() -> Call:
    store = UndoStore()
    return store.get_all


@case("tools.undo.UndoStore.delete", "missing id")
async def _() -> Call:
    store = UndoStore()
    return lambda: store.delete(_uuid())


@case("tools.undo.UndoStore.remove", "missing id")
async def _() -> Call:
    store = UndoStore()
    return lambda: store.remove(_uuid())


@case("tools.undo.UndoStore.cleanup_expired", "nothing expired")
async def _() -> Call:
    store = UndoStore()
    return store.cleanup_expired


class _EchoTool(BaseTool):
    name = "echo"
    description = "echoes"
    action_type = "ECHO"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        return ToolOutput(success=True, data=dict(input.action.payload))


@attrs.frozen
class _Action:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


@case("tools.registry.ToolRegistry.execute")
async def _() -> Call:
    registry = ToolRegistry()
    registry.register(_EchoTool())
    return lambda: registry.execute(_Action(_uuid(), "ECHO", {}), {})


@case("tools.registry.ToolRegistry.execute", "unknown tool")
async def _() -> Call:
    registry = ToolRegistry()
    return lambda: registry.execute(_Action(_uuid(), "NOPE", {}), {})


async def _close() -> None:
    while _CLOSERS:
        await _CLOSERS.pop()()


async def _raises(call: Call, error: type[Exception]) -> None:
    """An error path: ``call`` must raise ``error`` (and checkpoint on the way)."""
    with pytest.raises(error):
        await call()


@case("tools.executor.ToolExecutor.execute", "no plan")
async def _() -> Call:
    executor = ToolExecutor()
    ctx = create_test_pipeline_context()
    return lambda: executor.execute(ctx)


@case("tools.executor_v2.AdvancedToolExecutor.undo_action", "no undo data")
async def _() -> Call:
    executor = AdvancedToolExecutor()
    ctx = create_test_pipeline_context()
    return lambda: executor.undo_action(_uuid(), ctx)


@case("tools.executor_v2.AdvancedToolExecutor.execute", "unknown tool")
async def _() -> Call:
    executor = AdvancedToolExecutor()
    ctx = create_test_pipeline_context()
    action = _Action(_uuid(), "NOPE", {})
    return lambda: _raises(lambda: executor.execute(action, ctx), ToolNotFoundError)


# --- observability no-op loggers --------------------------------------------------------


@case("observability.NoOpPipelineRunLogger.log_run_started")
async def _() -> Call:
    return lambda: NoOpPipelineRunLogger().log_run_started()


@case("observability.NoOpPipelineRunLogger.log_run_completed")
async def _() -> Call:
    return lambda: NoOpPipelineRunLogger().log_run_completed()


@case("observability.NoOpPipelineRunLogger.log_run_failed")
async def _() -> Call:
    return lambda: NoOpPipelineRunLogger().log_run_failed()


@case("observability.NoOpProviderCallLogger.log_call_start")
async def _() -> Call:
    return lambda: NoOpProviderCallLogger().log_call_start()


@case("observability.NoOpProviderCallLogger.log_call_end")
async def _() -> Call:
    return lambda: NoOpProviderCallLogger().log_call_end(_uuid())


# --- async context managers: entering, and leaving one that did nothing -----------------


def _enter(cm: Any) -> Call:
    async def enter() -> None:
        await cm.__aenter__()
        _CLOSERS.append(lambda: _shielded_exit(cm))

    return enter


async def _shielded_exit(cm: Any) -> None:
    with trio.CancelScope(shield=True):
        await cm.__aexit__(None, None, None)


def _exit(cm: Any) -> Setup:
    async def setup() -> Call:
        await cm.__aenter__()
        return lambda: cm.__aexit__(None, None, None)

    return setup


def _enter_and_leave(cm: Any) -> Call:
    async def both() -> None:
        async with cm:
            pass

    return both


# Managers that open a nursery cannot be entered in one cancel scope and left in another:
# for these, entering is measured together with leaving (nothing inside).
_NURSERY_MANAGERS = {
    "pipeline.cancellation.StructuredTaskGroup",
    "helpers.analytics.AnalyticsSink",
    "helpers.analytics.BufferedExporter",
    "events.sink.BackpressureAwareEventSink",
}

_MANAGERS: dict[str, Callable[[], Any]] = {
    "helpers.streaming.RealtimeStageBus": RealtimeStageBus,
    "pipeline.cancellation.StructuredTaskGroup": StructuredTaskGroup,
    "testing.orphans.NoOrphans": NoOrphans,
    "helpers.analytics.AnalyticsSink": lambda: AnalyticsSink(CompositeExporter([])),
    "helpers.analytics.BufferedExporter": lambda: BufferedExporter(CompositeExporter([])),
    "events.sink.BackpressureAwareEventSink": lambda: BackpressureAwareEventSink(NoOpEventSink()),
    # Entering makes the owned httpx client (no request); leaving closes it.
    "websearch.fetcher.HttpFetcher": HttpFetcher,
    "websearch.client.WebSearchClient": WebSearchClient,
}


def _register_managers() -> None:
    for target, make in _MANAGERS.items():

        async def enter_setup(make: Callable[[], Any] = make, target: str = target) -> Call:
            if target in _NURSERY_MANAGERS:
                return _enter_and_leave(make())
            return _enter(make())

        async def exit_setup(make: Callable[[], Any] = make) -> Call:
            return await _exit(make())()

        case(f"{target}.__aenter__")(enter_setup)
        # Leaving is a cleanup: the docs let it finish shielded (docs/cancellation.md).
        case(f"{target}.__aexit__", "nothing to do", cancel_point=False)(exit_setup)


_register_managers()


@case("helpers.analytics.BufferedExporter.close", "never entered")
async def _() -> Call:
    exporter = BufferedExporter(CompositeExporter([]))
    return exporter.close


@case("events.sink.BackpressureAwareEventSink.start")
async def _() -> Call:
    sink = BackpressureAwareEventSink(NoOpEventSink())

    async def start() -> None:
        nursery = _NURSERY[-1]
        await sink.start(nursery)
        _CLOSERS.append(lambda: _shielded_stop(sink))

    return start


async def _shielded_stop(sink: BackpressureAwareEventSink) -> None:
    with trio.CancelScope(shield=True):
        await sink.stop()


_NURSERY: list[trio.Nursery] = []


# --- more early-return and error paths --------------------------------------------------


@case("helpers.analytics.AnalyticsSink.emit", "excluded type")
async def _() -> Call:
    sink = AnalyticsSink(CompositeExporter([]), exclude_patterns=["stage"])
    return lambda: sink.emit(type="stage.completed", data={})


@case("tools.approval.ApprovalService.record_decision", "unknown id")
async def _() -> Call:
    service = ApprovalService()
    return lambda: _raises(lambda: service.record_decision(_uuid(), True), KeyError)


@case("tools.approval.ApprovalService.await_decision", "unknown id")
async def _() -> Call:
    service = ApprovalService()
    return lambda: _raises(lambda: service.await_decision(_uuid()), KeyError)


@case("tools.approval.ApprovalService.cancel_request", "already decided")
async def _() -> Call:
    service = ApprovalService()
    request = await service.request_approval(_uuid(), "tool")
    await service.record_decision(request.id, False)
    return lambda: service.cancel_request(request.id)


@case("events.sink.BackpressureAwareEventSink.stop", "stopped twice")
async def _() -> Call:
    sink = BackpressureAwareEventSink(NoOpEventSink())
    await sink.start(_NURSERY[-1])
    await sink.stop()
    return sink.stop


@case("events.sink.BackpressureAwareEventSink.emit", "after stop")
async def _() -> Call:
    sink = BackpressureAwareEventSink(NoOpEventSink())
    await sink.start(_NURSERY[-1])
    await sink.stop()
    return lambda: sink.emit(type="x", data=None)


@case("helpers.streaming.RealtimeStageBus.publish", "closed channel")
async def _() -> Call:
    bus = RealtimeStageBus()
    await bus.channel("a")
    await bus.close_channel("a")
    return lambda: bus.publish("a", 1)


@case("helpers.streaming.RealtimeStageBus.close_all", "already closed")
async def _() -> Call:
    bus = RealtimeStageBus()
    await bus.channel("a")
    await bus.close_all()
    return bus.close_all


@case("helpers.streaming.ChunkQueue.put", "closed queue")
async def _() -> Call:
    queue: ChunkQueue[int] = ChunkQueue()
    await queue.close()
    return lambda: queue.put(1)


@case("helpers.streaming.ChunkQueue.__anext__", "closed and empty")
async def _() -> Call:
    queue: ChunkQueue[int] = ChunkQueue()
    await queue.close()
    return lambda: _raises(queue.__anext__, StopAsyncIteration)


@case("helpers.analytics.BufferedExporter.close", "closed twice")
async def _() -> Call:
    exporter = BufferedExporter(CompositeExporter([]))
    await exporter.close()
    return exporter.close


@case("helpers.analytics.JSONFileExporter.close", "closed twice")
async def _() -> Call:
    exporter = JSONFileExporter(_TMP[-1] / "events.jsonl")
    await exporter.export(_event())
    await exporter.close()
    return exporter.close


@case("helpers.analytics.JSONFileExporter.flush", "after close")
async def _() -> Call:
    exporter = JSONFileExporter(_TMP[-1] / "events.jsonl")
    await exporter.export(_event())
    await exporter.close()
    return exporter.flush


@case("pipeline.cancellation.CleanupRegistry.run_all", "run twice")
async def _() -> Call:
    registry = CleanupRegistry()
    registry.register(_noop, name="noop")
    await registry.run_all()
    return registry.run_all


@case("pipeline.subpipeline.SubpipelineSpawner.cancel_with_children", "already cancelled")
async def _() -> Call:
    spawner = SubpipelineSpawner(ChildRunTracker(), emit_events=False)
    run_id = _uuid()
    await spawner.cancel_with_children(run_id)
    return lambda: spawner.cancel_with_children(run_id)


@case("tools.undo.UndoStore.cleanup_expired", "empty store")
async def _() -> Call:
    store = UndoStore(default_ttl_seconds=1.0)
    await store.store(_uuid(), "tool", {})
    await trio.sleep(2)
    await store.cleanup_expired()
    return store.cleanup_expired


@case("tools.undo.UndoStore.get", "expired")
async def _() -> Call:
    store = UndoStore(default_ttl_seconds=1.0)
    action_id = _uuid()
    await store.store(action_id, "tool", {})
    await trio.sleep(2)
    return lambda: store.get(action_id)


@case("stages.errors.StageRunner.run", "the function raises")
async def _() -> Call:
    runner = StageRunner("a", create_test_pipeline_context())

    def boom() -> None:
        raise RuntimeError("boom")

    return lambda: _raises(lambda: runner.run(boom), StageExecutionError)


@case("helpers.mocks.MockAuthProvider.validate", "unknown token")
async def _() -> Call:
    provider = MockAuthProvider()
    return lambda: _raises(lambda: provider.validate("nope"), Exception)


@case("helpers.mocks.MockToolExecutor.execute", "fails")
async def _() -> Call:
    executor = MockToolExecutor(latency_ms=0, fail_rate=1.0)
    return lambda: executor.execute("echo", {})


# --- websearch (no network: MockFetcher, create_mock_client, httpx.MockTransport) --------

_HTML = {"content-type": "text/html; charset=utf-8"}
_SITE: dict[str, tuple[int, str, dict[str, str]]] = {
    "https://a.test/": (
        200,
        "<html><head><title>A</title></head><body><main><h1>A</h1>"
        "<p>Trio pages, page one.</p><a href='/b'>B</a></main></body></html>",
        _HTML,
    ),
    "https://a.test/b": (
        200,
        "<html><head><title>B</title></head><body><main><h1>B</h1>"
        "<p>More trio, page two.</p><a href='/'>A</a></main></body></html>",
        _HTML,
    ),
    "https://a.test/notes.txt": (200, "plain words", {"content-type": "text/plain"}),
}
_MISSING = "https://a.test/missing"  # not in _SITE: MockFetcher's default 404


def _site_client() -> WebSearchClient:
    return create_mock_client(_SITE)


async def _checked(call: Call, check: Callable[[Any], bool]) -> None:
    """``call`` takes the path its case names: ``check`` holds for what it returns."""
    result = await call()
    assert check(result), result


def _http_client(handler: Callable[[Any], Any]) -> Any:
    """An ``httpx.AsyncClient`` over ``handler`` (no network), closed when the test ends."""
    httpx = pytest.importorskip("httpx")
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    _CLOSERS.append(client.aclose)
    return client


def _ok(request: Any) -> Any:
    httpx = pytest.importorskip("httpx")
    return httpx.Response(200, text="<p>hi</p>", headers=_HTML)


def _refused(request: Any) -> Any:
    httpx = pytest.importorskip("httpx")
    raise httpx.ConnectError("connection refused", request=request)


def _failed(result: Any) -> bool:
    return result.error is not None


@case("websearch.fetcher.Fetcher.fetch", "no _do_fetch: error result")
async def _() -> Call:
    fetcher = Fetcher()
    return lambda: _checked(lambda: fetcher.fetch("https://a.test/"), _failed)


@case("websearch.fetcher.Fetcher.fetch_many", "no urls")
async def _() -> Call:
    fetcher = Fetcher()
    return lambda: _checked(lambda: fetcher.fetch_many([]), lambda r: r == [])


@case("websearch.fetcher.MockFetcher.fetch")
async def _() -> Call:
    fetcher = MockFetcher(_SITE)
    return lambda: _checked(lambda: fetcher.fetch("https://a.test/"), lambda r: r.success)


@case("websearch.fetcher.MockFetcher.fetch", "unknown url: 404")
async def _() -> Call:
    fetcher = MockFetcher(_SITE)
    return lambda: _checked(lambda: fetcher.fetch(_MISSING), lambda r: r.status_code == 404)


@case("websearch.fetcher.MockFetcher.fetch_many", "no urls")
async def _() -> Call:
    fetcher = MockFetcher(_SITE)
    return lambda: _checked(lambda: fetcher.fetch_many([]), lambda r: r == [])


@case("websearch.fetcher.MockFetcher.fetch_many")
async def _() -> Call:
    fetcher = MockFetcher(_SITE)
    return lambda: fetcher.fetch_many(["https://a.test/", _MISSING])


@case("websearch.fetcher.HttpFetcher.fetch", "MockTransport")
async def _() -> Call:
    fetcher = HttpFetcher(client=_http_client(_ok))
    return lambda: _checked(lambda: fetcher.fetch("https://a.test/"), lambda r: r.success)


@case("websearch.fetcher.HttpFetcher.fetch", "transport error, no retry")
async def _() -> Call:
    fetcher = HttpFetcher(FetchConfig(max_retries=0), client=_http_client(_refused))
    return lambda: _checked(lambda: fetcher.fetch("https://a.test/"), _failed)


@case("websearch.fetcher.HttpFetcher.fetch", "transport error, retried")
async def _() -> Call:
    fetcher = HttpFetcher(FetchConfig(max_retries=2), client=_http_client(_refused))
    return lambda: _checked(lambda: fetcher.fetch("https://a.test/"), lambda r: r.retry_count == 3)


@case("websearch.fetcher.HttpFetcher.fetch_many", "no urls")
async def _() -> Call:
    fetcher = HttpFetcher(client=_http_client(_ok))
    return lambda: _checked(lambda: fetcher.fetch_many([]), lambda r: r == [])


@case("websearch.fetcher.HttpFetcher.fetch_many")
async def _() -> Call:
    fetcher = HttpFetcher(FetchConfig(max_retries=0), client=_http_client(_refused))
    return lambda: _checked(
        lambda: fetcher.fetch_many(["https://a.test/", "https://b.test/"]),
        lambda r: all(map(_failed, r)),
    )


@case("websearch.fetcher.HttpFetcher.close", "never used")
async def _() -> Call:
    fetcher = HttpFetcher()
    return fetcher.close


@case("websearch.fetcher.HttpFetcher.close", "owned client open")
async def _() -> Call:
    fetcher = HttpFetcher()
    await fetcher.__aenter__()  # makes the client (no request); close() closes it
    return fetcher.close


@case("websearch.fetcher.HttpFetcher.close", "closed twice")
async def _() -> Call:
    fetcher = HttpFetcher()
    await fetcher.__aenter__()
    await fetcher.close()
    return fetcher.close


@case("websearch.fetcher.HttpFetcher.close", "given client")
async def _() -> Call:
    fetcher = HttpFetcher(client=_http_client(_ok))
    return fetcher.close


@case("websearch.fetcher.HttpFetcher.__aenter__", "given client")
async def _() -> Call:
    return _enter(HttpFetcher(client=_http_client(_ok)))


@case("websearch.fetcher.HttpFetcher.__aexit__", "given client", cancel_point=False)
async def _() -> Call:
    return await _exit(HttpFetcher(client=_http_client(_ok)))()


@case("websearch.client.WebSearchClient.__aenter__", "mock fetcher")
async def _() -> Call:
    return _enter(_site_client())


@case("websearch.client.WebSearchClient.__aexit__", "mock fetcher", cancel_point=False)
async def _() -> Call:
    return await _exit(_site_client())()


@case("websearch.client.WebSearchClient.close", "never entered")
async def _() -> Call:
    client = WebSearchClient()
    return client.close


@case("websearch.client.WebSearchClient.close", "owned fetcher open")
async def _() -> Call:
    client = WebSearchClient()
    await client.__aenter__()
    return client.close


@case("websearch.client.WebSearchClient.close", "closed twice")
async def _() -> Call:
    client = WebSearchClient()
    await client.__aenter__()
    await client.close()
    return client.close


@case("websearch.client.WebSearchClient.close", "mock fetcher")
async def _() -> Call:
    client = _site_client()
    return client.close


@case("websearch.client.WebSearchClient.fetch")
async def _() -> Call:
    client = _site_client()
    return lambda: _checked(lambda: client.fetch("https://a.test/"), lambda p: p.title == "A")


@case("websearch.client.WebSearchClient.fetch", "404: error page")
async def _() -> Call:
    client = _site_client()
    return lambda: _checked(lambda: client.fetch(_MISSING), lambda p: p.error == "HTTP 404")


@case("websearch.client.WebSearchClient.fetch", "not html")
async def _() -> Call:
    client = _site_client()
    return lambda: _checked(
        lambda: client.fetch("https://a.test/notes.txt"), lambda p: p.markdown == "plain words"
    )


@case("websearch.client.WebSearchClient.fetch", "transport error: error page")
async def _() -> Call:
    fetcher = HttpFetcher(FetchConfig(max_retries=0), client=_http_client(_refused))
    client = WebSearchClient(fetcher=fetcher)
    return lambda: _checked(lambda: client.fetch("https://a.test/"), _failed)


@case("websearch.client.WebSearchClient.fetch_many", "no urls")
async def _() -> Call:
    client = _site_client()
    return lambda: _checked(lambda: client.fetch_many([]), lambda r: r == [])


@case("websearch.client.WebSearchClient.fetch_many")
async def _() -> Call:
    client = _site_client()
    return lambda: client.fetch_many(["https://a.test/", _MISSING])


@case("websearch.client.WebSearchClient.fetch_with_navigation", "max_pages 0")
async def _() -> Call:
    client = _site_client()
    return lambda: _checked(
        lambda: client.fetch_with_navigation("https://a.test/", max_pages=0), lambda r: r == []
    )


@case("websearch.client.WebSearchClient.fetch_with_navigation", "404: one error page")
async def _() -> Call:
    client = _site_client()
    return lambda: _checked(
        lambda: client.fetch_with_navigation(_MISSING),
        lambda r: [p.error for p in r] == ["HTTP 404"],
    )


@case("websearch.client.WebSearchClient.crawl", "max_pages 0")
async def _() -> Call:
    client = _site_client()
    return lambda: _checked(lambda: client.crawl("https://a.test/", max_pages=0), lambda r: r == [])


@case("websearch.client.WebSearchClient.crawl")
async def _() -> Call:
    client = _site_client()
    return lambda: _checked(lambda: client.crawl("https://a.test/"), lambda r: len(r) == 2)


@case("websearch.run_utils.fetch_page")
async def _() -> Call:
    return lambda: _checked(
        lambda: fetch_page("https://a.test/", client_factory=_site_client), lambda p: p.success
    )


@case("websearch.run_utils.fetch_page", "404: error page")
async def _() -> Call:
    return lambda: _checked(lambda: fetch_page(_MISSING, client_factory=_site_client), _failed)


@case("websearch.run_utils.fetch_pages", "no urls")
async def _() -> Call:
    return lambda: _checked(lambda: fetch_pages([], client_factory=_site_client), lambda r: r == [])


@case("websearch.run_utils.fetch_pages", "extraction in threads")
async def _() -> Call:
    return lambda: fetch_pages(["https://a.test/", _MISSING], client_factory=_site_client)


@case("websearch.run_utils.fetch_pages", "no parallel extraction")
async def _() -> Call:
    return lambda: fetch_pages(
        ["https://a.test/"], parallel_extraction=False, client_factory=_site_client
    )


@case("websearch.run_utils.search_and_extract", "max_pages 0")
async def _() -> Call:
    return lambda: _checked(
        lambda: search_and_extract(
            "https://a.test/", "trio", max_pages=0, client_factory=_site_client
        ),
        lambda r: r.pages == [],
    )


@case("websearch.run_utils.search_and_extract")
async def _() -> Call:
    return lambda: _checked(
        lambda: search_and_extract("https://a.test/", "trio", client_factory=_site_client),
        lambda r: len(r.relevant_pages) == 2,
    )


@case("websearch.run_utils.map_site", "max_pages reached at once")
async def _() -> Call:
    return lambda: _checked(
        lambda: map_site("https://a.test/", max_pages=0, client_factory=_site_client),
        lambda r: r.pages == [],
    )


@case("websearch.run_utils.map_site", "max_pages 1")
async def _() -> Call:
    return lambda: _checked(
        lambda: map_site("https://a.test/", max_pages=1, client_factory=_site_client),
        lambda r: len(r.pages) == 1,
    )


@case("websearch.run_utils.fetch_with_retry", "success on the first try")
async def _() -> Call:
    return lambda: _checked(
        lambda: fetch_with_retry("https://a.test/", client_factory=_site_client),
        lambda p: p.success,
    )


@case("websearch.run_utils.fetch_with_retry", "fails, no retry")
async def _() -> Call:
    return lambda: _checked(
        lambda: fetch_with_retry(_MISSING, max_retries=0, client_factory=_site_client),
        lambda p: p.error == "Failed after 1 attempts: HTTP 404",
    )


@case("websearch.run_utils.fetch_with_retry", "fails, retried")
async def _() -> Call:
    return lambda: _checked(
        lambda: fetch_with_retry(_MISSING, max_retries=1, client_factory=_site_client),
        lambda p: p.error == "Failed after 2 attempts: HTTP 404",
    )


@case("websearch.run_utils.extract_all_links", "no urls")
async def _() -> Call:
    return lambda: _checked(
        lambda: extract_all_links([], client_factory=_site_client), lambda r: r == []
    )


@case("websearch.run_utils.extract_all_links")
async def _() -> Call:
    return lambda: _checked(
        lambda: extract_all_links(["https://a.test/", _MISSING], client_factory=_site_client),
        lambda r: [link.url for link in r] == ["https://a.test/b"],
    )


# --- the tests -------------------------------------------------------------------------


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
async def test_a_call_is_a_checkpoint(c: Case, autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _NURSERY.append(nursery)
        call = await c.setup()
        try:
            with checkpoint_budget(calls=1), trio.testing.assert_checkpoints():
                await call()
        finally:
            await _close()
            _NURSERY.pop()


@pytest.mark.parametrize("c", [c for c in CASES if c.cancel_point], ids=lambda c: c.id)
async def test_a_call_in_a_cancelled_scope_raises_cancelled(
    c: Case, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio.open_nursery() as nursery:
        _NURSERY.append(nursery)
        call = await c.setup()
        try:
            with trio.CancelScope() as scope:
                scope.cancel()
                await call()
        finally:
            await _close()
            _NURSERY.pop()
    assert scope.cancelled_caught, f"{c.id} completed inside a cancelled scope"


# --- enumeration -----------------------------------------------------------------------

SKIPPED_PACKAGES = {"stores", "cli", "examples"}

NOT_COVERED: dict[str, str] = {
    "stages.context.PipelineContext.run_before_stage_start_hooks": (
        "engine path (awaited before every stage); documented as a checkpoint only when a "
        "hook is async"
    ),
    "tools.base.BaseTool.execute": "the base class's abstract hook (raises NotImplementedError)",
    "auth.jwt.SignedJwtValidator.validate": "needs keys or a JWKS fetcher (network)",
    "tools.executor.ToolExecutor.spawn_subpipeline": "needs a registered child pipeline",
    "pipeline.subpipeline.SubpipelineSpawner.spawn_detached": "starts a child in a nursery",
    "testing.explore.explore_cancellation": "runs a pipeline many times under trio.run of its own",
}


def _public_async_callables() -> set[str]:
    modules = [stageflow_trio]
    for info in pkgutil.walk_packages(stageflow_trio.__path__, "stageflow_trio."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts) or parts[0] in SKIPPED_PACKAGES:
            continue
        modules.append(importlib.import_module(info.name))
    found: set[str] = set()
    for module in modules:
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            home = getattr(value, "__module__", "") or ""
            if not home.startswith("stageflow_trio"):
                continue
            prefix = home.removeprefix("stageflow_trio.")
            if inspect.isclass(value):
                if getattr(value, "_is_protocol", False):
                    continue  # a Protocol's methods are shapes, not code
                if issubclass(value, BaseInterceptor):
                    continue  # hooks the chain awaits as callbacks: exempt (docs/interceptors.md)
                for attr in dir(value):
                    if attr.startswith("_") and attr not in {
                        "__aenter__",
                        "__aexit__",
                        "__anext__",
                    }:
                        continue
                    raw = inspect.getattr_static(value, attr)
                    fn = getattr(raw, "__func__", raw)
                    if getattr(fn, "__isabstractmethod__", False):
                        continue
                    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
                        found.add(f"{prefix}.{value.__qualname__}.{attr}")
            elif inspect.iscoroutinefunction(value):
                found.add(f"{prefix}.{value.__qualname__}")
    return found


def test_every_public_async_callable_is_accounted_for() -> None:
    found = _public_async_callables()
    covered = {c.target for c in CASES}
    assert covered <= found | set(NOT_COVERED), sorted(covered - found)
    assert sorted(found - covered - set(NOT_COVERED)) == []


@pytest.mark.parametrize("error", [ValueError("boom"), StageError("s", ValueError("boom"))])
async def test_with_error_handling_checkpoints_when_the_stage_raises_at_once(
    error: Exception,
) -> None:
    # The decorator's wrapper is a checkpoint on its error paths too (it was one only
    # when the function returned), and a cancellation point there.
    from stageflow_trio.stages.errors import with_error_handling

    @with_error_handling(stage_name="s")
    async def stage() -> None:
        raise error

    with trio.testing.assert_checkpoints(), pytest.raises(StageError) as info:
        await stage()
    if isinstance(error, StageError):
        assert info.value is error  # re-raised as it is
    else:
        assert type(info.value) is StageExecutionError  # wrapped, chained to the error
        assert info.value.__cause__ is error
    with trio.CancelScope() as scope:
        scope.cancel()
        await stage()
    assert scope.cancelled_caught


async def test_http_fetcher_close_in_a_cancelled_scope_closes_the_client_first() -> None:
    # close() became a checkpoint after httpx's (shielded) close, which never yields with
    # nothing pooled: a cancelled close still releases the client, then raises Cancelled.
    fetcher = HttpFetcher()
    await fetcher.__aenter__()
    client = fetcher._client
    assert client is not None
    with trio.CancelScope() as scope:
        scope.cancel()
        await fetcher.close()
    assert scope.cancelled_caught
    assert client.is_closed
    assert fetcher._client is None
