"""Audit 18: a stageflow 1.2.0 service ported to stageflow_trio by following docs/migration.md.

The service (a support desk) uses what 1.2.0 documents as its preferred way:
``Pipeline.from_stages(stage(...))`` with ``after=`` / ``dependencies=``, a
``@stage_metadata`` class, ``ok_output`` / ``payload_from_inputs`` /
``payload_from_results``, ``Pipeline.run(**context keywords)`` returning
``PipelineResults``, a custom interceptor, its own event sink, a guardrail stage,
memory fetch and write stages, the agent runtime driven by ``MockLLMProvider``, a tool
with approval and undo through ``AdvancedToolExecutor``, and a subpipeline. It ran on
stageflow 1.2.0 (asyncio); the constants named ``REF12_*`` below are what it observed
there (ids, timestamps and durations left out). The port here is the same code with
the renames and asyncio-to-trio changes of the migration guide, on trio's virtual clock.

Where the port observes something else, the difference is a parity row (named in
the test) and the test pins stageflow_trio's side.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from uuid import UUID, uuid4

import pytest
import trio
import trio.lowlevel

from stageflow_trio import WideEventEmitter, clear_event_sink, set_event_sink
from stageflow_trio.advanced import (
    BaseInterceptor,
    GuardRetryPolicy,
    GuardRetryStrategy,
    InterceptorResult,
    TimeoutInterceptor,
    UnifiedStageExecutionError,
)
from stageflow_trio.agent import Agent, AgentConfig, AgentStage
from stageflow_trio.api import (
    Pipeline,
    PipelineContext,
    PipelineResults,
    StageContext,
    StageKind,
    StageOutput,
    StagePayloadResult,
    ok_output,
    payload_from_inputs,
    payload_from_results,
    run_stage,
    stage,
    stage_metadata,
    summary_from_output,
)
from stageflow_trio.events import BackpressureAwareEventSink, wait_for_event_sink_tasks
from stageflow_trio.helpers import (
    GuardrailConfig,
    GuardrailStage,
    InjectionDetector,
    InMemoryStore,
    MemoryFetchStage,
    MemoryWriteStage,
    MockLLMProvider,
    PIIDetector,
)
from stageflow_trio.pipeline.dag import UnifiedPipelineCancelled
from stageflow_trio.pipeline.subpipeline import SubpipelineSpawner
from stageflow_trio.tools import (
    AdvancedToolExecutor,
    ApprovalService,
    BaseTool,
    ToolDefinition,
    ToolInput,
    ToolOutput,
    ToolRegistry,
    UndoStore,
)
from stageflow_trio.tools.base import ToolInput as BaseToolInput
from stageflow_trio.tools.base import ToolOutput as BaseToolOutput
from stageflow_trio.tools.executor_v2 import ToolExecutorConfig

Events = list[tuple[str, dict[str, Any] | None]]

# --- what the service observed on stageflow 1.2.0 (recorded; CI has no 1.2.0) ---

REF12_AGENT_EVENTS = [
    ("agent.turn.started", ["execution_mode", "pipeline_run_id", "request_id", "turn"]),
    (
        "agent.tool.executed",
        ["call_id", "execution_mode", "pipeline_run_id", "request_id", "success", "tool"],
    ),
    ("agent.turn.started", ["execution_mode", "pipeline_run_id", "request_id", "turn"]),
    ("agent.completed", ["execution_mode", "pipeline_run_id", "request_id", "turns"]),
]
REF12_AGENT_KEYS = [
    "iterations",
    "llm",
    "prompt_name",
    "prompt_version",
    "response",
    "security",
    "tool_results",
]
REF12_BLOCKED = [
    "UnifiedStageExecutionError",
    "Stage 'guard' failed: Guardrail violations: 1 found",
]
REF12_REQUIRE_MISSING = (
    "\"Stage 'nope' not found in pipeline results. Available: agent, audit, guard, memory,"
    ' memory_write, normalize, refund"'
)
REF12_GUARD_RETRY_EVENTS = [
    "guardrail.violations_detected",
    "guard_retry.attempt",
    "guard_retry.scheduled",
    "guard_retry.recovered",
]
REF12_TOOL_EVENTS_DENIED = ["tool.invoked", "approval.requested", "approval.decided"]
REF12_TOOL_EVENTS_TIMEOUT = ["tool.invoked", "approval.requested", "tool.denied"]
REF12_WIDE_KEYS = {
    "pipeline.wide": [
        "duration_ms",
        "execution_mode",
        "org_id",
        "pipeline_name",
        "pipeline_run_id",
        "request_id",
        "service",
        "session_id",
        "stage_counts",
        "stage_details",
        "status",
        "topology",
        "user_id",
    ],
    "stage.wide": [
        "data_keys",
        "duration_ms",
        "ended_at",
        "error",
        "execution_mode",
        "org_id",
        "pipeline_run_id",
        "request_id",
        "service",
        "session_id",
        "stage",
        "started_at",
        "status",
        "topology",
        "user_id",
    ],
}
# The README's AuthInterceptor (a short-circuit with an error) on 1.2.0: every stage
# reported OK with empty data, without running; the run returned normally.
REF12_AUTH_DENIED: dict[str, list[Any]] = {"greet": ["ok", {}, None], "shout": ["ok", {}, None]}


# --- the ported service ---


class ListSink:
    """The service's own sink: a class with ``emit`` and ``try_emit``."""

    def __init__(self) -> None:
        self.events: Events = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))

    def types(self, *, lifecycle: bool = True) -> list[str]:
        return [t for t, _ in self.events if lifecycle or not _is_lifecycle(t)]


def _is_lifecycle(event_type: str) -> bool:
    return event_type.startswith(("stage.", "pipeline_")) and event_type not in (
        "stage.wide",
        "pipeline.wide",
    )


class AuditInterceptor(BaseInterceptor):
    name = "audit"
    priority = 5

    def __init__(self) -> None:
        self.log: list[str] = []

    async def before(self, stage_name: str, ctx: Any) -> InterceptorResult | None:
        self.log.append(f"before:{stage_name}")
        return None

    async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
        self.log.append(f"after:{stage_name}:{result.status}")


class OrderLookup(BaseTool):
    name = "order_lookup"
    description = "Find an order by number"
    action_type = "order_lookup"

    async def execute(self, input: BaseToolInput, ctx: dict[str, Any]) -> BaseToolOutput:  # noqa: A002
        await trio.lowlevel.checkpoint()
        return BaseToolOutput(
            success=True, data={"number": input.action.payload["number"], "status": "late"}
        )


@stage_metadata(name="normalize", kind=StageKind.TRANSFORM)
class Normalize:
    async def execute(self, ctx: StageContext) -> StageOutput:
        text = (ctx.snapshot.input_text or "").strip()
        return ok_output(
            StagePayloadResult(payload={"text": text.lower()}, summary={"chars": len(text)})
        )


class Action:
    def __init__(self, type: str, payload: dict[str, Any]) -> None:  # noqa: A002
        self.id = uuid4()
        self.type = type
        self.payload = payload


async def _note(ctx: StageContext) -> dict[str, Any]:
    return {"noted": ctx.snapshot.topology}


class Service:
    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.audit = AuditInterceptor()
        registry = ToolRegistry()
        registry.register(OrderLookup())
        self.llm = MockLLMProvider(
            responses=[
                json.dumps(
                    {
                        "tool_calls": [
                            {"name": "order_lookup", "arguments": {"number": 42}, "call_id": "c1"}
                        ]
                    }
                ),
                json.dumps({"final_answer": "Order 42 is late; refunding."}),
            ],
            latency_ms=100,
        )
        agent = Agent(llm_client=self.llm, tool_registry=registry, config=AgentConfig(max_turns=3))
        self.approvals = ApprovalService(default_timeout_seconds=5.0)
        self.executor = AdvancedToolExecutor(
            config=ToolExecutorConfig(approval_timeout_seconds=5.0),
            undo_store=UndoStore(),
            approval_service=self.approvals,
        )
        self.refunds: list[str] = []
        self.executor.register(
            ToolDefinition(
                name="refund",
                action_type="REFUND",
                handler=self._refund,
                requires_approval=True,
                undoable=True,
                undo_handler=self._undo_refund,
            )
        )
        self.spawner = SubpipelineSpawner()
        self.child = Pipeline(name="audit_child").with_stage("note", _note, StageKind.WORK)
        self.pipeline = Pipeline.from_stages(
            stage(
                "guard",
                GuardrailStage(
                    [PIIDetector(), InjectionDetector()], GuardrailConfig(fail_on_violation=True)
                ),
            ),
            stage("memory", MemoryFetchStage(self.store), after="guard"),
            stage("normalize", Normalize, after="guard"),
            stage("agent", AgentStage(agent), dependencies=["memory", "normalize"]),
            stage("refund", self._refund_stage, StageKind.WORK, after="agent"),
            stage("audit", self._audit_stage, StageKind.WORK, after="refund"),
            stage(
                "memory_write",
                MemoryWriteStage(self.store, response_stage="agent", response_key="response"),
                after="agent",
            ),
            name="support",
        )

    async def _refund(self, inp: ToolInput) -> ToolOutput:
        self.refunds.append(inp.payload["order"])
        return ToolOutput(
            success=True,
            data={"refunded": inp.payload["order"]},
            undo_metadata={"order": inp.payload["order"]},
        )

    async def _undo_refund(self, meta: Any) -> None:
        self.refunds.remove(meta.undo_data["order"])

    async def _reviewer(self) -> None:
        while True:
            pending = await self.approvals.get_pending_requests()
            if pending:
                await self.approvals.record_decision(
                    pending[0].id, granted=True, decided_by=uuid4()
                )
                return
            await trio.sleep(0.01)

    async def _refund_stage(self, ctx: StageContext) -> StageOutput:
        answer = ctx.inputs.get_from("agent", "response")
        action = Action("REFUND", {"order": "42"})
        async with trio.open_nursery() as nursery:  # was asyncio.create_task(reviewer())
            nursery.start_soon(self._reviewer)
            out = await self.executor.execute(action, ctx)
        undone = await self.executor.undo_action(action.id, ctx)
        return StageOutput.ok(
            answer=answer, refund=out.data, undone=undone, left=list(self.refunds)
        )

    async def _audit_stage(self, ctx: StageContext) -> StageOutput:
        async def runner(child_ctx: PipelineContext) -> dict[str, Any]:
            res = await self.child.run(child_ctx)
            return dict(res.data("note"))

        res = await self.spawner.spawn(
            "audit_child", ctx.as_pipeline_context(), uuid4(), "audit", runner
        )
        return StageOutput.ok(child_success=res.success, child_data=res.data)


async def test_the_ported_service_returns_what_it_returned_on_1_2_0(
    autojump_clock: trio.abc.Clock,
) -> None:
    svc = Service()
    sink = ListSink()
    session = uuid4()
    results: PipelineResults = await svc.pipeline.run(
        input_text="  Where is ORDER 42?  ",
        session_id=session,
        execution_mode="support",
        event_sink=sink,
        interceptors=[svc.audit, TimeoutInterceptor()],
    )
    assert type(results) is PipelineResults
    assert sorted(results) == [
        "agent",
        "audit",
        "guard",
        "memory",
        "memory_write",
        "normalize",
        "refund",
    ]
    assert results.failed() == []
    assert all(results.ok(name) for name in results)
    agent = results.require_ok("agent")
    assert agent.data["response"] == "Order 42 is late; refunding."
    assert sorted(results.data("agent")) == REF12_AGENT_KEYS
    assert agent.version == "agent/stage/v1"
    assert (agent.data["iterations"], agent.data["prompt_name"], agent.data["prompt_version"]) == (
        2,
        "stageflow.agent.system",
        "v1",
    )
    assert [dict(r) for r in agent.data["tool_results"]] == [
        {
            "call_id": "c1",
            "data": {"number": 42, "status": "late"},
            "error": None,
            "name": "order_lookup",
            "success": True,
        }
    ]
    assert [r["source"] for r in agent.data["security"]] == ["user", "tool"]
    assert payload_from_results(results, "normalize") == {"text": "where is order 42?"}
    assert summary_from_output(results["normalize"]) == {"chars": 18}
    assert dict(results.data("guard")) == {
        "checks_run": 2,
        "guardrail_passed": True,
        "violations": [],
    }
    assert dict(results.data("memory")) == {
        "memory_count": 0,
        "memory_entries": [],
        "memory_tokens": 0,
    }
    assert results.data("memory_write")["entries_written"] == 2
    assert dict(results.data("audit")) == {
        "child_success": True,
        "child_data": {"noted": "support"},
    }
    # 1.2.0: undone False, the refund kept ("No undo handler for tool refund"): its
    # undo looked the tool up by name in a map keyed by action type. Parity row
    # "AdvancedToolExecutor.undo_action tool lookup (d21)".
    refund = results.data("refund")
    assert (refund["answer"], dict(refund["refund"]), refund["undone"], list(refund["left"])) == (
        "Order 42 is late; refunding.",
        {"refunded": "42"},
        True,
        [],
    )
    with pytest.raises(KeyError) as missing:
        results.require("nope")
    assert str(missing.value) == REF12_REQUIRE_MISSING
    with pytest.raises(KeyError, match="nope"):
        results.data("nope")
    # The service's sink: 1.2.0's agent events, the same keys, in the same order ...
    agent_events = [(t, sorted(d or {})) for t, d in sink.events if t.startswith("agent.")]
    assert agent_events == REF12_AGENT_EVENTS
    # ... and the lifecycle events 1.2.0's unified graph never sent (migration.md,
    # "Your event sink"): two pipeline_completed, the child's run forks the same sink.
    assert sink.types().count("pipeline_completed") == 2
    assert "stage.note.completed" in sink.types()
    assert svc.audit.log[:2] == ["before:guard", "after:guard:completed"]
    assert len(svc.audit.log) == 14
    assert svc.llm.call_count == 2
    assert trio.current_time() == pytest.approx(0.2, abs=0.05)  # the mock LLM's latency, twice

    # A second run of the session reads the first exchange from memory.
    res2 = await svc.pipeline.run(input_text="again", session_id=session, interceptors=[svc.audit])
    assert res2.data("memory")["memory_count"] == 2

    # PII in the input: the guard fails the run, with 1.2.0's error and message.
    with pytest.raises(UnifiedStageExecutionError) as blocked:
        await svc.pipeline.run(input_text="my email is a@b.com")
    assert [type(blocked.value).__name__, str(blocked.value)] == REF12_BLOCKED
    assert blocked.value.stage == "guard"


async def test_the_curated_helpers_of_the_service_match_1_2_0() -> None:
    out = await run_stage("normalize", Normalize, input_text=" HI ")
    assert (str(out.status), dict(out.data)) == (
        "ok",
        {"payload": {"text": "hi"}, "summary": {"chars": 2}},
    )

    async def echo(ctx: StageContext) -> dict[str, Any]:
        return {"echo": ctx.snapshot.input_text}

    out = await run_stage("echo", echo, StageKind.TRANSFORM, input_text="x")
    assert (str(out.status), dict(out.data)) == ("ok", {"echo": "x"})
    inv = await Pipeline.from_stages(stage("normalize", Normalize)).invoke("Hey")
    assert payload_from_results(inv, "normalize") == {"text": "hey"}
    assert [Normalize.name, str(Normalize.kind)] == ["normalize", "transform"]  # type: ignore[attr-defined]

    async def bad(ctx: StageContext) -> StageOutput:
        return StageOutput.fail(error="boom")

    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'bad' failed: boom$"):
        await Pipeline.from_stages(stage("bad", bad, StageKind.WORK)).run()

    async def length(ctx: StageContext) -> StageOutput:
        payload = payload_from_inputs(ctx, "normalize", expected_type=dict)
        return StageOutput.ok(n=len(payload["text"]))

    chain = Pipeline.from_stages(
        stage("normalize", Normalize), stage("len", length, StageKind.TRANSFORM, after="normalize")
    )
    assert dict((await chain.run(input_text="abc")).data("len")) == {"n": 3}

    memory = Pipeline.from_stages(stage("memory", MemoryFetchStage(InMemoryStore())))
    skipped = await memory.run(PipelineContext.create(input_text="no session", topology="svc"))
    with pytest.raises(RuntimeError) as not_ok:
        skipped.require_ok("memory")
    assert str(not_ok.value) == (
        "Stage 'memory' did not complete with OK status (skip): No session_id in context"
    )


async def test_guard_retry_wide_events_cancel_and_timeout_as_on_1_2_0(
    autojump_clock: trio.abc.Clock,
) -> None:
    attempts = [0]

    async def draft(ctx: StageContext) -> StageOutput:
        attempts[0] += 1
        return StageOutput.ok(text="email a@b.com" if attempts[0] == 1 else "clean")

    guard = GuardrailStage(
        [PIIDetector()], GuardrailConfig(fail_on_violation=True), content_key="text"
    )
    sink = ListSink()
    pipeline = Pipeline.from_stages(
        stage("draft", draft, StageKind.TRANSFORM), stage("policy", guard, after="draft")
    )
    strategy = GuardRetryStrategy(
        policies={"policy": GuardRetryPolicy(retry_stage="draft", max_attempts=3)}
    )
    results = await pipeline.run(input_text="x", event_sink=sink, guard_retry_strategy=strategy)
    assert (attempts[0], results.ok("policy"), dict(results.data("draft"))) == (
        2,
        True,
        {"text": "clean"},
    )
    assert sink.types(lifecycle=False) == REF12_GUARD_RETRY_EVENTS

    @stage_metadata(name="greeter", kind=StageKind.TRANSFORM)
    class Greeter:
        def __init__(self, greeting: str = "hello") -> None:
            self.greeting = greeting

        async def execute(self, ctx: StageContext) -> StageOutput:
            return StageOutput.ok(text=f"{self.greeting} {ctx.snapshot.input_text}")

    out = await run_stage("g", Greeter, config={"greeting": "hi"}, input_text="bob")
    assert dict(out.data) == {"text": "hi bob"}

    wide = ListSink()
    await Pipeline.from_stages(stage("g", Greeter)).run(
        input_text="y",
        event_sink=wide,
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
        wide_event_emitter=WideEventEmitter(),
    )
    assert wide.types(lifecycle=False) == ["stage.wide", "pipeline.wide"]
    assert {t: sorted(d or {}) for t, d in wide.events if t.endswith(".wide")} == REF12_WIDE_KEYS

    async def stopper(ctx: StageContext) -> StageOutput:
        return StageOutput.cancel(reason="user left")

    with pytest.raises(UnifiedPipelineCancelled) as cancelled:
        await Pipeline.from_stages(
            stage("g", Greeter), stage("stop", stopper, StageKind.WORK, after="g")
        ).run(input_text="z")
    exc = cancelled.value
    assert [str(exc), exc.stage, exc.reason, type(exc.results).__name__, sorted(exc.results)] == [
        "Pipeline cancelled by stage 'stop': user left",
        "stop",
        "user left",
        "PipelineResults",
        ["g", "stop"],
    ]

    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.3)
        return StageOutput.ok()

    with pytest.raises(UnifiedStageExecutionError) as timed_out:
        await Pipeline.from_stages(stage("slow", slow, StageKind.WORK)).run(
            data={"_timeout_ms": 50}, interceptors=[TimeoutInterceptor()]
        )
    assert str(timed_out.value) == "Stage 'slow' failed: Stage timed out after 50ms"
    assert type(timed_out.value.original) is RuntimeError

    llm = MockLLMProvider(
        responses=[json.dumps({"tool_calls": [{"name": "nope", "arguments": {}}]})], latency_ms=100
    )
    agent = Agent(llm_client=llm, tool_registry=ToolRegistry(), config=AgentConfig(max_turns=2))
    started = trio.current_time()
    with pytest.raises(UnifiedStageExecutionError) as limit:
        await Pipeline.from_stages(stage("agent", AgentStage(agent))).run(input_text="q")
    assert str(limit.value) == (
        "Stage 'agent' failed: Agent execution failed: Agent did not reach a final answer within 2 turns"
    )
    assert trio.current_time() - started == pytest.approx(0.2)


async def test_tool_events_reach_the_global_sink_as_on_1_2_0(
    autojump_clock: trio.abc.Clock,
) -> None:
    events = ListSink()
    set_event_sink(events)
    try:
        approvals = ApprovalService()
        executor = AdvancedToolExecutor(
            config=ToolExecutorConfig(approval_timeout_seconds=1.0),
            undo_store=UndoStore(),
            approval_service=approvals,
        )

        async def handler(inp: ToolInput) -> ToolOutput:
            return ToolOutput(success=True, data={"ok": 1})

        executor.register(
            ToolDefinition(name="wipe", action_type="WIPE", handler=handler, requires_approval=True)
        )

        async def deny() -> None:
            while not (pending := await approvals.get_pending_requests()):  # noqa: ASYNC110 - a reviewer polls, as in migration.md
                await trio.sleep(0.01)
            await approvals.record_decision(
                pending[0].id, granted=False, decided_by=uuid4(), reason="no"
            )

        async def tool_stage(ctx: StageContext) -> StageOutput:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(deny)
                try:
                    await executor.execute(Action("WIPE", {"what": "all"}), ctx)
                    return StageOutput.ok(done=True)
                except Exception as exc:
                    return StageOutput.fail(error=f"{type(exc).__name__}: {exc}")

        with pytest.raises(UnifiedStageExecutionError) as denied:
            await Pipeline.from_stages(stage("tool", tool_stage, StageKind.WORK)).run(
                input_text="t"
            )
        assert str(denied.value) == (
            "Stage 'tool' failed: ToolApprovalDeniedError: Tool 'wipe' approval denied: user_denied"
        )
        # Without event_sink=, Pipeline.run's context takes the global sink: it also
        # gets the lifecycle events there (1.2.0 sent it only the tool events).
        assert events.types(lifecycle=False) == REF12_TOOL_EVENTS_DENIED
        assert events.types()[0] == "stage.tool.started"
        assert events.types()[-1] == "pipeline_failed"

        events.events.clear()

        async def waits(ctx: StageContext) -> StageOutput:
            try:
                await executor.execute(Action("WIPE", {"what": "all"}), ctx)
                return StageOutput.ok(done=True)
            except Exception as exc:
                return StageOutput.ok(error=type(exc).__name__)

        started = trio.current_time()
        timed_out = await Pipeline.from_stages(stage("tool", waits, StageKind.WORK)).run(
            input_text="t"
        )
        assert timed_out.data("tool")["error"] == "ToolApprovalTimeoutError"
        assert trio.current_time() - started == pytest.approx(1.0)
        assert events.types(lifecycle=False) == REF12_TOOL_EVENTS_TIMEOUT
    finally:
        clear_event_sink()


# --- findings ---


class ReadmeSink:
    """stageflow 1.2.0's README sink: ``try_emit`` schedules ``emit`` (there, with
    ``asyncio.create_task``). The port keeps ``emit`` and drops ``try_emit``."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.sleep(0.01)  # the database insert
        self.stored.append(type)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        # 1.2.0: asyncio.create_task(self.emit(type=type, data=data)). Under trio there
        # is no task to create here; the backpressure sink in front never calls it.
        raise AssertionError("not called behind BackpressureAwareEventSink")


async def test_a_sink_whose_try_emit_scheduled_emit_ports_behind_the_backpressure_sink(
    autojump_clock: trio.abc.Clock,
) -> None:
    """migration.md, "Porting a stageflow 1.2.0 service": the README's sink."""
    db = ReadmeSink()
    pipeline = Pipeline.from_stages(stage("normalize", Normalize))
    async with BackpressureAwareEventSink(db) as sink:
        await pipeline.run(input_text="x", event_sink=sink)
        await wait_for_event_sink_tasks()
        assert db.stored == [
            "stage.normalize.started",
            "stage.normalize.completed",
            "pipeline_completed",
        ]


async def test_a_try_emit_that_raises_loses_the_events_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keeping 1.2.0's ``asyncio.create_task`` in ``try_emit`` under trio: each event is
    lost with a logged warning, and the run still completes."""

    class StillAsyncio:
        async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            raise AssertionError("never awaited")

        def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            raise RuntimeError("no running event loop")  # what asyncio.create_task raises

    with caplog.at_level(logging.WARNING):
        results = await Pipeline.from_stages(stage("normalize", Normalize)).run(
            input_text="x", event_sink=StillAsyncio()
        )
    assert results.ok("normalize")
    lost = [r.getMessage() for r in caplog.records if "no running event loop" in r.getMessage()]
    assert len(lost) == 3


class AuthInterceptor(BaseInterceptor):
    """stageflow 1.2.0's README interceptor, as written there."""

    name = "auth"
    priority = 5

    async def before(self, stage_name: str, ctx: Any) -> InterceptorResult | None:
        if not ctx.data.get("authenticated"):
            return InterceptorResult(stage_ran=False, error="Not authenticated")
        return None

    async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
        pass


async def test_the_readme_auth_interceptor_fails_the_run_where_1_2_0_reported_ok() -> None:
    """Parity row "A short-circuit with an error (audit 18)": 1.2.0 reported every stage
    OK with empty data (``REF12_AUTH_DENIED``) and returned; here the first stage's
    short-circuit error fails the run and the next stage never runs."""
    ran: list[str] = []

    @stage_metadata(name="greet", kind=StageKind.TRANSFORM)
    class Greet:
        async def execute(self, ctx: StageContext) -> dict[str, str]:
            ran.append("greet")
            return {"greeting": f"Hello, {ctx.snapshot.input_text}!"}

    async def shout(ctx: StageContext) -> dict[str, str]:
        ran.append("shout")
        return {"shouted": str(ctx.inputs.get_from("greet", "greeting", default="Hello!")).upper()}

    pipeline = Pipeline.from_stages(
        stage("greet", Greet), stage("shout", shout, StageKind.TRANSFORM, after="greet")
    )
    sink = ListSink()
    with pytest.raises(UnifiedStageExecutionError) as denied:
        await pipeline.run(input_text="W", interceptors=[AuthInterceptor()], event_sink=sink)
    assert str(denied.value) == "Stage 'greet' failed: Not authenticated"
    assert denied.value.stage == "greet"
    assert repr(denied.value.original) == "RuntimeError('Not authenticated')"
    assert ran == []
    assert sink.types() == ["stage.greet.started", "stage.greet.failed", "pipeline_failed"]
    assert REF12_AUTH_DENIED["shout"] == ["ok", {}, None]  # what 1.2.0 gave instead

    allowed = await pipeline.run(
        input_text="W", interceptors=[AuthInterceptor()], data={"authenticated": True}
    )
    assert allowed.data("shout") == {"shouted": "HELLO, W!"}


async def test_a_stage_error_through_pipeline_run_keeps_its_cause() -> None:
    """Parity row "UnifiedStageExecutionError.__cause__ through Pipeline.run (audit 18)":
    1.2.0's default chain raises it without a cause (``__cause__`` None); here it is
    the stage's exception, as ``original`` is on both."""

    async def boom(ctx: StageContext) -> StageOutput:
        raise ValueError("kaput")

    with pytest.raises(UnifiedStageExecutionError) as failed:
        await Pipeline.from_stages(stage("boom", boom, StageKind.WORK)).run()
    assert str(failed.value) == "Stage 'boom' failed: kaput"
    assert failed.value.original is failed.value.__cause__
    assert repr(failed.value.original) == "ValueError('kaput')"


async def test_lifecycle_events_carry_the_run_id_only_when_the_run_has_one() -> None:
    """migration.md, "Porting a stageflow 1.2.0 service": ``Pipeline.run(**keywords)``
    without ``pipeline_run_id`` (1.2.0's default) runs without one, so its stage events
    have no ``pipeline_run_id`` key (0.9.1's ``record_stage_event``) and the pipeline
    event has it as None; give one to tell concurrent runs apart."""
    pipeline = Pipeline.from_stages(stage("normalize", Normalize))
    anonymous = ListSink()
    await pipeline.run(input_text="x", event_sink=anonymous)
    by_type = {t: d or {} for t, d in anonymous.events}
    assert "pipeline_run_id" not in by_type["stage.normalize.started"]
    assert by_type["pipeline_completed"]["pipeline_run_id"] is None

    run_id = uuid4()
    named = ListSink()
    await pipeline.run(input_text="x", event_sink=named, pipeline_run_id=run_id)
    assert {(d or {}).get("pipeline_run_id") for _, d in named.events} == {str(run_id)}
    assert isinstance(UUID(str(run_id)), UUID)


class _EmitOnlySink:
    """A downstream with ``emit`` alone: all BackpressureAwareEventSink's worker calls."""

    def __init__(self) -> None:
        self.got: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()
        self.got.append(type)


async def test_an_emit_only_downstream_type_checks_and_receives_the_events() -> None:
    # mypy --strict (run on this file by CI) refused this call while the parameter was
    # typed EventSink, which also asks for try_emit; the runtime never needed it.
    downstream = _EmitOnlySink()
    async with BackpressureAwareEventSink(downstream) as sink:
        sink.try_emit(type="a", data=None)
        await sink.emit(type="b", data={})
    assert downstream.got == ["a", "b"]
