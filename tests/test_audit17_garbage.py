"""Audit 17: the library's common paths leave no cyclic garbage behind.

An object that only CPython's cyclic collector can free (an exception whose traceback
holds a frame that holds the exception, a run that holds the error raised through its
own frames) keeps its whole graph (stage outputs, contexts, frames) alive until a
collection, and makes collections slower. Each test runs a path a few times to warm
up, then ``n`` more times with the collector off, and counts what ``gc.collect()``
finds; the same count for a bare nursery (the trio scaffolding every path uses) is
subtracted. Everything runs on a MockClock: no real sleeps.

The classes named after a patch (``/tmp/h1/NN-*.patch`` of the audit) pin paths that
the patch makes clean: they fail without it. ``TestAlreadyClean`` pins the paths that
were clean already.
"""

from __future__ import annotations

import contextlib
import gc
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.agent import Agent, AgentConfig, LLMOutputValidationError
from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.events import BackpressureAwareEventSink, set_event_sink
from stageflow_trio.helpers import ChunkQueue
from stageflow_trio.helpers.analytics import AnalyticsEvent, CompositeExporter
from stageflow_trio.pipeline import (
    CancellationToken,
    Pipeline,
    PipelineBuilder,
    SubpipelineSpawner,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.cancellation import StructuredTaskGroup
from stageflow_trio.pipeline.dag import StageExecutionError, StageGraph
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    get_default_interceptors,
)
from stageflow_trio.pipeline.pipeline import _default_chain
from stageflow_trio.pipeline.retry import JitterStrategy, RetryInterceptor
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
)
from stageflow_trio.tools import (
    AdvancedToolExecutor,
    ApprovalService,
    ToolDefinition,
    ToolInput,
    ToolOutput,
    ToolRegistry,
    UndoMetadata,
    UndoStore,
    adapt_context,
)
from stageflow_trio.tools.base import BaseTool
from stageflow_trio.tools.base import ToolInput as RegistryToolInput
from stageflow_trio.tools.base import ToolOutput as RegistryToolOutput

Call = Callable[[], Awaitable[None]]

N = 8  # measured calls per path


async def _collected(call: Call, n: int = N, warm: int = 3) -> int:
    """What the collector frees after ``n`` calls made with it off.

    Only the youngest generation is collected, before and after: with the collector
    off, everything the calls allocate stays in it, so a cycle they leave is found
    there, and a collection of it costs what the calls made, not what the whole test
    session holds (a full ``gc.collect()`` took about a second inside the suite).
    """
    for _ in range(warm):
        await call()
    gc.disable()
    try:
        gc.collect(0)
        for _ in range(n):
            await call()
        return gc.collect(0)
    finally:
        gc.enable()


async def _bare_nursery() -> None:
    async with trio.open_nursery():
        await trio.lowlevel.checkpoint()


def garbage(make_call: Callable[[], Call]) -> int:
    """Cyclic garbage objects of ``N`` calls of the path, beyond the bare scaffolding's."""

    async def main() -> int:
        call = make_call()
        baseline = await _collected(_bare_nursery)
        return await _collected(call) - baseline

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@pytest.fixture(autouse=True)
def _collector_on() -> Any:
    # A test that fails mid-measure must not leave the collector off for the rest.
    yield
    gc.enable()


# --- stages and sinks ---------------------------------------------------------


class _Sink:
    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        pass


async def _ok(ctx: Any) -> StageOutput:
    return StageOutput.ok(x=1)


async def _raises(ctx: Any) -> StageOutput:
    raise ValueError("boom")


async def _fails(ctx: Any) -> StageOutput:
    return StageOutput.fail(error="nope")


async def _cancels(ctx: Any) -> StageOutput:
    return StageOutput.cancel(reason="stop")


async def _slow(ctx: Any) -> StageOutput:
    await trio.sleep(10)
    return StageOutput.ok()


def _graph(last: Any, *, interceptors: bool = False, fan: bool = False) -> UnifiedStageGraph:
    pipeline = Pipeline("audit17").with_stage("a", _ok, StageKind.TRANSFORM)
    deps: tuple[str, ...] = ("a",)
    if fan:
        pipeline = pipeline.with_stage("b", _ok, StageKind.TRANSFORM)
        deps = ("a", "b")
    pipeline = pipeline.with_stage("c", last, StageKind.TRANSFORM, dependencies=deps)
    return pipeline.build(interceptors=_default_chain() if interceptors else None)


def unified(last: Any, *, interceptors: bool = False, fan: bool = False, sink: bool = True) -> Call:
    graph = _graph(last, interceptors=interceptors, fan=fan)

    async def call() -> None:
        ctx = create_test_stage_context(event_sink=_Sink() if sink else None)
        with contextlib.suppress(UnifiedStageExecutionError, UnifiedPipelineCancelled):
            await graph.run(ctx)

    return call


def unified_token(*, interceptors: bool = False) -> Call:
    graph = _graph(_slow, interceptors=interceptors)

    async def call() -> None:
        token = CancellationToken()

        async def hang_up() -> None:
            await trio.sleep(1)
            token.cancel("hung up")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hang_up)
            with pytest.raises(UnifiedPipelineCancelled):
                await graph.run(create_test_stage_context(event_sink=_Sink()), cancel_token=token)

    return call


def unified_outer(*, interceptors: bool = False) -> Call:
    graph = _graph(_slow, interceptors=interceptors)

    async def call() -> None:
        with trio.move_on_after(1) as scope:
            await graph.run(create_test_stage_context(event_sink=_Sink()))
        assert scope.cancelled_caught

    return call


def pipeline_run(last: Any, **data: Any) -> Call:
    pipeline = (
        Pipeline("audit17")
        .with_stage("a", _ok, StageKind.TRANSFORM)
        .with_stage("c", last, StageKind.TRANSFORM, dependencies=("a",))
    )

    async def call() -> None:
        with contextlib.suppress(UnifiedStageExecutionError, UnifiedPipelineCancelled):
            await pipeline.run(input_text="hi", event_sink=_Sink(), data=dict(data))

    return call


def legacy(last: Any, *extra: BaseInterceptor, outer: bool = False) -> Call:
    specs = PipelineBuilder("legacy").with_stage("a", _ok).with_stage("c", last, ("a",))
    stage_specs = specs.build().stage_specs

    async def call() -> None:
        # A graph per call: the default chain's circuit breaker would open after five
        # failures, and a short-circuited stage never raises.
        graph = StageGraph(stage_specs, [*get_default_interceptors(), *extra])
        ctx = create_test_pipeline_context(event_sink=_Sink())
        with trio.move_on_after(1 if outer else 100):
            with contextlib.suppress(StageExecutionError):
                await graph.run(ctx)

    return call


def _retry() -> RetryInterceptor:
    return RetryInterceptor(max_attempts=3, base_delay_ms=100, jitter_strategy=JitterStrategy.NONE)


class _Flaky:
    """Raises ConnectionError on every attempt but each third one."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, ctx: Any) -> StageOutput:
        self.calls += 1
        if self.calls % 3:
            raise ConnectionError("reset")
        return StageOutput.ok()


class _Critical(BaseInterceptor):
    name = "critical"
    priority = 1

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        if stage_name == "c":
            raise CriticalInterceptorError("stop", "critical")

    async def after(self, stage_name: str, result: Any, ctx: PipelineContext) -> None:
        await trio.lowlevel.checkpoint()


# --- tests that need a patch --------------------------------------------------


class TestPatch01RunInContextSend:
    """Needs 01-run-in-context-send.patch: trio sends a Cancelled as an outcome.Error
    through ``run_in_context.send``, whose frame is in that Cancelled's traceback."""

    @pytest.mark.parametrize("interceptors", [False, True])
    def test_unified_cancelled_by_token(self, interceptors: bool) -> None:
        assert garbage(lambda: unified_token(interceptors=interceptors)) == 0

    @pytest.mark.parametrize("interceptors", [False, True])
    def test_unified_cancelled_from_outer_scope(self, interceptors: bool) -> None:
        assert garbage(lambda: unified_outer(interceptors=interceptors)) == 0

    def test_legacy_cancelled_from_outer_scope(self) -> None:
        assert garbage(lambda: legacy(_slow, outer=True)) == 0

    def test_legacy_mark_canceled(self) -> None:
        async def mark(ctx: PipelineContext) -> StageOutput:
            ctx.mark_canceled("enough")
            await trio.lowlevel.checkpoint()
            return StageOutput.ok()

        assert garbage(lambda: legacy(mark)) == 0


class TestPatch02UnifiedRunErrors:
    """Needs 02-unified-run-errors.patch (and 01): the run keeps the error it raises
    through its own frames; ``raise error from exc`` keeps ``error`` in the frame."""

    @pytest.mark.parametrize("fan", [False, True])
    @pytest.mark.parametrize("sink", [False, True])
    @pytest.mark.parametrize("last", [_raises, _fails, _cancels], ids=["raise", "fail", "cancel"])
    def test_unified_stage_error(self, last: Any, sink: bool, fan: bool) -> None:
        assert garbage(lambda: unified(last, sink=sink, fan=fan)) == 0

    @pytest.mark.parametrize("last", [_fails, _cancels], ids=["fail", "cancel"])
    def test_unified_stage_error_with_interceptors(self, last: Any) -> None:
        assert garbage(lambda: unified(last, interceptors=True)) == 0

    @pytest.mark.parametrize("last", [_fails, _cancels], ids=["fail", "cancel"])
    def test_pipeline_run(self, last: Any) -> None:
        assert garbage(lambda: pipeline_run(last)) == 0

    def test_pipeline_run_stage_times_out(self) -> None:
        assert garbage(lambda: pipeline_run(_slow, _timeout_ms=1000)) == 0


class TestPatch03ChainStageError:
    """Needs 03-chain-stage-error.patch (and 01, 02): the chain's ``_run_stage`` keeps
    the stage's exception, whose traceback holds its frame."""

    @pytest.mark.parametrize("fan", [False, True])
    def test_unified_stage_raises_with_interceptors(self, fan: bool) -> None:
        assert garbage(lambda: unified(_raises, interceptors=True, fan=fan)) == 0

    def test_pipeline_run_stage_raises(self) -> None:
        assert garbage(lambda: pipeline_run(_raises)) == 0

    def test_legacy_stage_raises(self) -> None:
        assert garbage(lambda: legacy(_raises)) == 0

    def test_legacy_retry(self) -> None:
        assert garbage(lambda: legacy(_Flaky(), _retry())) == 0

    def test_unified_retry(self) -> None:
        def make() -> Call:
            graph = Pipeline("r").with_stage("s", _Flaky(), StageKind.TRANSFORM)
            built = graph.build(interceptors=[*_default_chain(), _retry()])

            async def call() -> None:
                await built.run(create_test_stage_context(event_sink=_Sink()))

            return call

        assert garbage(make) == 0


class TestPatch04LegacyRunError:
    """Needs 04-legacy-run-error.patch: the legacy run keeps the error it raises."""

    def test_legacy_critical_interceptor_error(self) -> None:
        assert garbage(lambda: legacy(_ok, _Critical())) == 0


@attrs.frozen
class _ScriptedClient:
    replies: list[str]

    async def chat(self, *, messages: list[dict[str, str]], model: str, **kwargs: Any) -> str:
        await trio.sleep(0.5)
        return self.replies[0]


def agent_run(reply: str, expected: type[Exception] | None = None) -> Call:
    agent = Agent(
        llm_client=_ScriptedClient([reply]),
        tool_registry=ToolRegistry(),
        config=AgentConfig(max_turns=2),
    )

    async def call() -> None:
        if expected is None:
            await agent.run("hello")
            return
        with pytest.raises(expected):
            await agent.run("hello")

    return call


class TestPatch05AgentValidationErrors:
    """Needs 05-agent-validation-errors.patch: TypedLLMOutput's validation keeps the
    last candidate's exception in the frame its traceback holds."""

    def test_reply_that_does_not_validate(self) -> None:
        reply = json.dumps({"bogus": 1})
        assert garbage(lambda: agent_run(reply, LLMOutputValidationError)) == 0

    def test_reply_that_is_not_json(self) -> None:
        assert garbage(lambda: agent_run("{not json} [1, 2", LLMOutputValidationError)) == 0


class _Exporter:
    def __init__(self, fails: bool) -> None:
        self.fails = fails

    async def export(self, event: AnalyticsEvent) -> None:
        await trio.lowlevel.checkpoint()
        if self.fails:
            raise RuntimeError("exporter down")

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        await trio.lowlevel.checkpoint()

    async def flush(self) -> None:
        await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()


def composite(fails: bool) -> Call:
    exporter = CompositeExporter([_Exporter(False), _Exporter(fails)])

    async def call() -> None:
        try:
            await exporter.export(AnalyticsEvent(event_type="x"))
        except RuntimeError:
            assert fails

    return call


class TestPatch06CompositeExporterError:
    """Needs 06-composite-exporter-error.patch: the errors list, in a closure cell that
    the failing exporter's frames hold, keeps the error raised."""

    def test_failing_exporter(self) -> None:
        assert garbage(lambda: composite(True)) == 0


def task_group(fails: bool) -> Call:
    async def ok() -> int:
        await trio.lowlevel.checkpoint()
        return 1

    async def broken() -> None:
        await trio.lowlevel.checkpoint()
        raise ValueError("task failed")

    async def call() -> None:
        try:
            async with StructuredTaskGroup() as group:
                group.create_task(ok)
                if fails:
                    group.create_task(broken)
        except ValueError:
            assert fails

    return call


class TestPatch07TaskGroupHandleError:
    """Needs 07-task-group-handle-error.patch: a failed task's handle keeps its error,
    whose traceback holds the frame that holds the handle."""

    def test_failing_task(self) -> None:
        assert garbage(lambda: task_group(True)) == 0


# --- paths that were clean already ------------------------------------------


@attrs.frozen
class _Action:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


_document = {"text": "draft"}


async def _edit(tool_input: ToolInput) -> ToolOutput:
    before = _document["text"]
    _document["text"] = tool_input.payload["text"]
    return ToolOutput.ok(data={"text": _document["text"]}, undo_metadata={"before": before})


async def _undo_edit(metadata: UndoMetadata) -> None:
    _document["text"] = metadata.undo_data["before"]


async def _tool_raises(tool_input: ToolInput) -> ToolOutput:
    await trio.lowlevel.checkpoint()
    raise ValueError("tool broke")


def tool_call(action_type: str, *, approve: bool | None = None, undo: bool = False) -> Call:
    set_event_sink(RecordingEventSink())
    approvals = ApprovalService()
    executor = AdvancedToolExecutor(undo_store=UndoStore(), approval_service=approvals)
    executor.register(
        ToolDefinition(
            name="edit",
            action_type="EDIT",
            handler=_edit,
            undoable=True,
            undo_handler=_undo_edit,
            requires_approval=approve is not None,
            approval_message="ok?",
        )
    )
    executor.register(ToolDefinition(name="broken", action_type="BROKEN", handler=_tool_raises))
    ctx = adapt_context({"pipeline_run_id": str(uuid.uuid4()), "execution_mode": "agent"})

    async def reviewer() -> None:
        await trio.sleep(1)
        [request] = await approvals.get_pending_requests()
        await approvals.record_decision(request.id, granted=bool(approve))

    async def call() -> None:
        action = _Action(uuid.uuid4(), action_type, {"text": "final"})
        async with trio.open_nursery() as nursery:
            if approve is not None:
                nursery.start_soon(reviewer)
            with contextlib.suppress(Exception):
                await executor.execute(action, ctx)
        if undo:
            assert await executor.undo_action(action.id, ctx)

    return call


def spawn(runner: Callable[[PipelineContext], Awaitable[Any]], *, cancel: bool = False) -> Call:
    set_event_sink(RecordingEventSink())
    spawner = SubpipelineSpawner()

    async def call() -> None:
        ctx = create_test_pipeline_context()

        async def cancel_children() -> None:
            await trio.sleep(1)
            assert ctx.pipeline_run_id is not None
            await spawner.cancel_with_children(ctx.pipeline_run_id)

        async with trio.open_nursery() as nursery:
            if cancel:
                nursery.start_soon(cancel_children)
            await spawner.spawn("child", ctx, uuid.uuid4(), "stage", runner)

    return call


async def _child_ok(ctx: PipelineContext) -> dict[str, Any]:
    await trio.lowlevel.checkpoint()
    return {"a": 1}


async def _child_raises(ctx: PipelineContext) -> dict[str, Any]:
    await trio.lowlevel.checkpoint()
    raise ValueError("child failed")


async def _child_slow(ctx: PipelineContext) -> dict[str, Any]:
    await trio.sleep(10)
    return {}


class _BrokenDownstream:
    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()
        raise RuntimeError("downstream down")

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        raise RuntimeError("downstream down")


def sink_events(downstream: Any, *, awaited: bool) -> Call:
    async def call() -> None:
        async with BackpressureAwareEventSink(downstream, max_queue_size=4) as sink:
            for n in range(6):
                if awaited:
                    await sink.emit(type="tick", data={"n": n})
                else:
                    sink.try_emit(type="tick", data={"n": n})

    return call


def chunk_queue(*, cancelled_get: bool = False) -> Call:
    queue: ChunkQueue[int] = ChunkQueue(2)

    async def call() -> None:
        if cancelled_get:
            with trio.move_on_after(1):
                await queue.get()
            return
        async with trio.open_nursery() as nursery:

            async def produce() -> None:
                for n in range(5):
                    await queue.put(n)

            nursery.start_soon(produce)
            for _ in range(5):
                await queue.get()

    return call


class _Lookup(BaseTool):
    name = "lookup"
    description = "Find an order"
    action_type = "lookup"

    async def execute(
        self, tool_input: RegistryToolInput, ctx: dict[str, Any]
    ) -> RegistryToolOutput:
        await trio.sleep(1)
        return RegistryToolOutput(success=True, data={"n": 1})


def agent_with_tool() -> Call:
    registry = ToolRegistry()
    registry.register(_Lookup())
    turns = [
        json.dumps({"tool_calls": [{"name": "lookup", "arguments": {}, "call_id": "c1"}]}),
        json.dumps({"final_answer": "done"}),
    ]

    class Client:
        def __init__(self) -> None:
            self.turn = 0

        async def chat(self, *, messages: Any, model: str, **kwargs: Any) -> str:
            await trio.sleep(0.5)
            self.turn += 1
            return turns[(self.turn - 1) % 2]

    agent = Agent(llm_client=Client(), tool_registry=registry)

    async def call() -> None:
        assert (await agent.run("where?")).response == "done"

    return call


class TestAlreadyClean:
    """Paths that made no cyclic garbage before the audit: they must stay clean."""

    @pytest.mark.parametrize("interceptors", [False, True])
    @pytest.mark.parametrize("fan", [False, True])
    @pytest.mark.parametrize("sink", [False, True])
    def test_unified_ok(self, interceptors: bool, fan: bool, sink: bool) -> None:
        assert garbage(lambda: unified(_ok, interceptors=interceptors, fan=fan, sink=sink)) == 0

    def test_unified_cancelled_by_token_in_a_spawned_stage(self) -> None:
        # The blocked stage runs in a task of its own (not the run's first root).
        def make() -> Call:
            graph = _graph(_slow, fan=True)

            async def call() -> None:
                token = CancellationToken()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_cancel_later, token)
                    with pytest.raises(UnifiedPipelineCancelled):
                        await graph.run(create_test_stage_context(), cancel_token=token)

            return call

        assert garbage(make) == 0

    def test_pipeline_run_ok(self) -> None:
        assert garbage(lambda: pipeline_run(_ok)) == 0

    @pytest.mark.parametrize("last", [_ok, _fails], ids=["ok", "fail"])
    def test_legacy(self, last: Any) -> None:
        assert garbage(lambda: legacy(last)) == 0

    @pytest.mark.parametrize(
        ("runner", "cancel"),
        [(_child_ok, False), (_child_raises, False), (_child_slow, True)],
        ids=["ok", "raises", "cancel_with_children"],
    )
    def test_subpipeline_spawn(self, runner: Any, cancel: bool) -> None:
        assert garbage(lambda: spawn(runner, cancel=cancel)) == 0

    @pytest.mark.parametrize(
        ("action_type", "approve", "undo"),
        [
            ("EDIT", None, True),
            ("BROKEN", None, False),
            ("NOPE", None, False),
            ("EDIT", True, False),
            ("EDIT", False, False),
        ],
        ids=["undo", "raises", "unknown", "approved", "denied"],
    )
    def test_advanced_tool_executor(
        self, action_type: str, approve: bool | None, undo: bool
    ) -> None:
        assert garbage(lambda: tool_call(action_type, approve=approve, undo=undo)) == 0

    @pytest.mark.parametrize("awaited", [False, True], ids=["try_emit", "emit"])
    @pytest.mark.parametrize("broken", [False, True], ids=["ok", "broken_downstream"])
    def test_backpressure_sink(self, awaited: bool, broken: bool) -> None:
        downstream = _BrokenDownstream() if broken else RecordingEventSink()
        assert garbage(lambda: sink_events(downstream, awaited=awaited)) == 0

    @pytest.mark.parametrize("cancelled_get", [False, True])
    def test_chunk_queue(self, cancelled_get: bool) -> None:
        assert garbage(lambda: chunk_queue(cancelled_get=cancelled_get)) == 0

    def test_agent_final_answer(self) -> None:
        assert garbage(lambda: agent_run(json.dumps({"final_answer": "hi"}))) == 0

    def test_agent_tool_turn(self) -> None:
        assert garbage(agent_with_tool) == 0

    def test_composite_exporter_ok(self) -> None:
        assert garbage(lambda: composite(False)) == 0

    def test_task_group_ok(self) -> None:
        assert garbage(lambda: task_group(False)) == 0


async def _cancel_later(token: CancellationToken) -> None:
    await trio.sleep(1)
    token.cancel("hung up")


def test_the_measure_sees_a_cycle() -> None:
    """The helper counts what it should: a path that makes one cycle per call."""

    class Node:
        def __init__(self) -> None:
            self.me = self

    async def one_cycle() -> None:
        Node()
        await trio.lowlevel.checkpoint()

    # Per call: the Node (its attributes live inline, without a __dict__ object).
    assert garbage(lambda: one_cycle) == N


class _CriticalAfterError(BaseInterceptor):
    """Stops the run from ``after`` once the stage has raised (the chain itself raises)."""

    name = "critical_after_error"
    priority = 1

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        return None

    async def after(self, stage_name: str, result: Any, ctx: PipelineContext) -> None:
        if result.status == "failed":
            raise CriticalInterceptorError("stop after the error", "critical_after_error")


def test_a_chain_that_raises_after_the_stage_raised_leaves_no_cycle() -> None:
    """The unified graph's chain call keeps the stage's last error in a cell of its frame;
    when the chain itself raised after it (an ``after`` hook's CriticalInterceptorError),
    that cell stayed set, and the error's traceback holds the frame."""
    graph = Pipeline("audit17").with_stage("c", _raises, StageKind.TRANSFORM)
    built = graph.build(interceptors=[_CriticalAfterError()])

    async def call() -> None:
        with contextlib.suppress(Exception):
            await built.run(create_test_stage_context(event_sink=_Sink()))

    assert garbage(lambda: call) == 0
