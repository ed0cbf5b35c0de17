"""Producers of every event type stageflow_trio emits, for the golden payload files.

A producer is an ``async def (sink)`` run under trio on an autojumping MockClock; it makes
the package emit events into ``sink``. ``SOURCES`` says, for each golden event type, which
producer makes it: a differential scenario (run on our side, see tests/differential) or one
of the functions below, for events the scenarios do not reach.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from tests.differential import harness
from tests.differential.harness import REQUEST_ID, RUN_ID, SESSION_ID, USER_ID
from tests.fakes import RefRecorder

ORG = uuid.UUID("66666666-6666-4666-8666-666666666666")
OTHER_ORG = uuid.UUID("77777777-7777-4777-8777-777777777777")
ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")

Producer = Callable[[RefRecorder], Awaitable[None]]


def _pipeline_ctx(sink: RefRecorder, **data: Any) -> Any:
    from stageflow_trio.stages import PipelineContext

    return PipelineContext(
        pipeline_run_id=RUN_ID,
        request_id=REQUEST_ID,
        session_id=SESSION_ID,
        user_id=USER_ID,
        org_id=None,
        interaction_id=None,
        topology="golden",
        execution_mode="practice",
        event_sink=sink,
        data=data,
    )


async def retry_exhausted(sink: RefRecorder) -> None:
    from stageflow_trio.pipeline.interceptors import run_with_interceptors
    from stageflow_trio.pipeline.retry import JitterStrategy, RetryInterceptor

    async def run() -> Any:
        raise ConnectionError("connection reset")

    retry = RetryInterceptor(max_attempts=2, base_delay_ms=100, jitter_strategy=JitterStrategy.NONE)
    await run_with_interceptors("s", run, _pipeline_ctx(sink), [retry])


async def subpipeline_lifecycle(sink: RefRecorder) -> None:
    from stageflow_trio.events import clear_event_sink, set_event_sink
    from stageflow_trio.pipeline import ChildRunTracker, SubpipelineSpawner

    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    set_event_sink(sink)
    try:

        async def ok(child: Any) -> Any:
            await trio.sleep(0.25)
            return {"done": True}

        async def bad(child: Any) -> Any:
            raise RuntimeError("broken tool")

        ctx = _pipeline_ctx(sink)
        await spawner.spawn("good", ctx, USER_ID, "tool_stage", ok)
        await spawner.spawn("bad", ctx, USER_ID, "tool_stage", bad)

        async def waiting(child: Any) -> Any:
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(spawner.spawn, "slow", ctx, USER_ID, "tool_stage", waiting)
            await trio.sleep(1)
            await spawner.cancel_with_children(RUN_ID, reason="timeout")
    finally:
        clear_event_sink()


async def approval_flow(sink: RefRecorder) -> None:
    from stageflow_trio.events import clear_event_sink, set_event_sink
    from stageflow_trio.tools import (
        AdvancedToolExecutor,
        ApprovalService,
        ToolDefinition,
        ToolExecutorConfig,
        ToolOutput,
    )
    from stageflow_trio.tools.adapters import DictContextAdapter
    from tests.differential.scenarios_tools_helpers import Act

    async def edit(tool_input: Any) -> Any:
        return ToolOutput.ok(data={"ok": True})

    service = ApprovalService()
    executor = AdvancedToolExecutor(ToolExecutorConfig(), approval_service=service)
    executor.register(
        ToolDefinition(
            name="EDIT",
            action_type="EDIT",
            handler=edit,
            requires_approval=True,
            approval_message="May I?",
        )
    )
    ctx = DictContextAdapter(
        {"pipeline_run_id": str(RUN_ID), "request_id": str(REQUEST_ID), "execution_mode": "edit"}
    )
    set_event_sink(sink)
    try:

        async def decide() -> None:
            while not (pending := await service.get_pending_requests()):  # noqa: ASYNC110
                await trio.sleep(0.01)  # polls as an approver UI would
            await service.record_decision(pending[0].id, True, decided_by=USER_ID)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(decide)
            await executor.execute(Act(ACTION, "EDIT", {"text": "x"}), ctx)
    finally:
        clear_event_sink()


async def queue_events(sink: RefRecorder) -> None:
    from stageflow_trio.helpers.streaming import ChunkQueue

    def emit(event_type: str, data: dict[str, Any]) -> None:
        sink.try_emit(type=event_type, data=data)

    queue: ChunkQueue[int] = ChunkQueue(max_size=5, event_emitter=emit)
    for i in range(5):
        await queue.put(i)  # throttle_started at 4 of 5

    async def consumer() -> None:
        await trio.sleep(0.25)
        await queue.get()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await queue.put(5)  # producer_blocked
    for _ in range(5):
        await queue.get()
    await queue.put(6)  # throttle_ended
    dropping: ChunkQueue[int] = ChunkQueue(max_size=1, drop_on_overflow=True, event_emitter=emit)
    await dropping.put(1)
    await dropping.put(2)  # chunk_dropped
    await queue.close()  # queue_closed


async def guardrail_events(sink: RefRecorder) -> None:
    from stageflow_trio.helpers.guardrails import GuardrailConfig, GuardrailStage, PIIDetector
    from stageflow_trio.testing import create_test_stage_context

    ctx = create_test_stage_context(input_text="mail a@b.com", event_sink=sink)
    stage = GuardrailStage([PIIDetector()], GuardrailConfig(fail_on_violation=False))
    await stage.execute(ctx)


async def auth_events(sink: RefRecorder) -> None:
    from stageflow_trio.auth import AuthContext, AuthInterceptor, OrgEnforcementInterceptor

    token = f"valid_{USER_ID}_{ORG}_admin"
    await AuthInterceptor().before("stage", _pipeline_ctx(sink, _auth_token=token))
    await AuthInterceptor().before("stage", _pipeline_ctx(sink))
    auth = AuthContext(user_id=USER_ID, session_id=SESSION_ID, org_id=ORG)
    ctx = _pipeline_ctx(sink, _auth_context=auth, _resource_org_id=OTHER_ORG)
    await OrgEnforcementInterceptor().before("stage", ctx)


async def truncation_event(sink: RefRecorder) -> None:
    from stageflow_trio.context.enrich import TruncationTracker

    TruncationTracker(event_sink=sink).record_truncation(
        800, 200, "head", "conversation", "window", {"turns": 4}
    )
    await trio.lowlevel.checkpoint()


async def stage_context_status_event(sink: RefRecorder) -> None:
    from stageflow_trio.testing import create_test_stage_context

    ctx = create_test_stage_context(event_sink=sink)
    ctx.record_stage_event("s", "checkpoint", note="halfway")
    await trio.lowlevel.checkpoint()


async def interrupted_stage(sink: RefRecorder) -> None:
    """A stage fails while its sibling waits: the sibling is cancelled and says so."""
    from stageflow_trio.context import ContextSnapshot, RunIdentity
    from stageflow_trio.core import PipelineTimer, StageContext, StageKind, StageOutput
    from stageflow_trio.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec
    from stageflow_trio.stages import StageInputs

    async def waits(ctx: Any) -> StageOutput:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def fails(ctx: Any) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.fail(error="refused")

    graph = UnifiedStageGraph(
        [
            UnifiedStageSpec(name="waits", runner=waits, kind=StageKind.WORK),
            UnifiedStageSpec(name="fails", runner=fails, kind=StageKind.WORK),
        ]
    )
    snapshot = ContextSnapshot(
        run_id=RunIdentity(pipeline_run_id=RUN_ID, request_id=REQUEST_ID),
        topology="golden",
        execution_mode="practice",
    )
    ctx = StageContext(
        snapshot=snapshot,
        inputs=StageInputs(snapshot=snapshot),
        stage_name="root",
        timer=PipelineTimer(),
        event_sink=sink,
    )
    with contextlib.suppress(Exception):
        await graph.run(ctx)


async def agent_turns(sink: RefRecorder) -> None:
    """One tool call, then a final answer, with a stage context to emit through."""
    from stageflow_trio.agent import Agent
    from stageflow_trio.testing import create_test_stage_context
    from stageflow_trio.tools.registry import ToolRegistry
    from tests.agent.fakes import ScriptedChat, SlowTool, answer, calls

    registry = ToolRegistry()
    registry.register(SlowTool("t", 0))
    agent = Agent(llm_client=ScriptedChat(calls("t"), answer("done")), tool_registry=registry)
    await agent.run("now", stage_context=create_test_stage_context(event_sink=sink))


def from_scenario(name: str) -> Producer:
    """A producer that runs differential scenario ``name`` on our side."""

    async def produce(sink: RefRecorder) -> None:
        item = next(s for s in harness.SCENARIOS if s.name == name)
        side = harness.Side("ours", sink)
        # An exception is the scenario's outcome; only its events matter here.
        with contextlib.suppress(Exception):
            await item.body(side)

    produce.__name__ = name
    return produce


# golden event type (dynamic parts as {placeholders}) -> the producer that emits it
SOURCES: dict[str, Producer] = {
    "stage.{stage}.started": from_scenario("unified_chain"),
    "stage.{stage}.completed": from_scenario("unified_chain"),
    "stage.{stage}.failed": from_scenario("unified_stage_fails"),
    "stage.{stage}.skipped": from_scenario("unified_conditional_skip"),
    "stage.{stage}.cancelled": interrupted_stage,
    "stage.{status}": stage_context_status_event,
    "pipeline_completed": from_scenario("unified_chain"),
    "pipeline_failed": from_scenario("unified_stage_fails"),
    "pipeline_cancelled": from_scenario("unified_stage_cancels"),
    "guard_retry.attempt": from_scenario("unified_guard_retry_recovers"),
    "guard_retry.scheduled": from_scenario("unified_guard_retry_recovers"),
    "guard_retry.recovered": from_scenario("unified_guard_retry_recovers"),
    "guard_retry.exhausted": from_scenario("unified_guard_retry_exhausted"),
    "stage.retry_scheduled": from_scenario("retry_interceptor_recovers"),
    "stage.retry_exhausted": retry_exhausted,
    "stage.wide": from_scenario("stage_wide_event_payload"),
    "pipeline.wide": from_scenario("pipeline_wide_event_payload"),
    "pipeline.spawned_child": subpipeline_lifecycle,
    "pipeline.child_completed": subpipeline_lifecycle,
    "pipeline.child_failed": subpipeline_lifecycle,
    "pipeline.canceled": subpipeline_lifecycle,
    "tool.invoked": from_scenario("executor_success_and_undo"),
    "tool.started": from_scenario("executor_success_and_undo"),
    "tool.completed": from_scenario("executor_success_and_undo"),
    "tool.undone": from_scenario("executor_success_and_undo"),
    "tool.failed": from_scenario("executor_handler_fails"),
    "tool.denied": from_scenario("executor_behavior_gated"),
    "tool.undo_failed": from_scenario("executor_undo_fails"),
    "approval.requested": approval_flow,
    "approval.decided": approval_flow,
    "stream.buffer_overflow": from_scenario("streaming_buffer_events"),
    "stream.buffer_underrun": from_scenario("streaming_buffer_events"),
    "stream.buffer_recovered": from_scenario("streaming_buffer_events"),
    "stream.producer_blocked": queue_events,
    "stream.chunk_dropped": queue_events,
    "stream.throttle_started": queue_events,
    "stream.throttle_ended": queue_events,
    "stream.queue_closed": queue_events,
    "guardrail.violations_detected": guardrail_events,
    "guardrail.fail_open": guardrail_events,
    "auth.login": auth_events,
    "auth.failure": auth_events,
    "tenant.access_denied": auth_events,
    "context.truncation": truncation_event,
    "agent.turn.started": agent_turns,
    "agent.tool.executed": agent_turns,
    "agent.completed": agent_turns,
}
