"""Audit 24: the reference's getting-started pages, examples and guides, run against this port.

stageflow-core 0.9.1 ships its documentation; a team migrating a service copies code from
it. Every ```python block of the pages below was run twice: as printed (``import stageflow``,
asyncio) on the reference, and translated to this port (``stageflow_trio``, ``trio.run`` on a
``MockClock``, ``BackpressureAwareEventSink.start(nursery)``). Fragments were completed with
stub stages and contexts from ``stageflow_trio.testing``; printed results and ``# -> ...``
comments became asserts. Classes: (a) our defect, (b) a documented divergence (a
docs/parity.md row), (c) an undocumented divergence, (d) the page is wrong for the
reference too, or relies on asyncio.

Where the two runs differed, or the page and the reference disagree:

- getting-started/quickstart.md: 6 blocks run, 6 pass. (b) ``StageResult.data`` is a
  FrozenDict, so ``print(result.data)`` shows ``FrozenDict({...})`` where the page shows a
  dict; (d) the reference's ``build()`` does not raise ``CycleDetectedError`` for a cycle
  (it deadlocks at run time), ours does, as the page says ("Missing dependency or cycle"
  row).
- getting-started/concepts.md: 10 run, 9 pass. (b) ``print(StageOutput.skip().status)``
  gives ``skip`` (the 1.2.0 StrEnum row); (d) ``get_from("router", ...)`` on an undeclared
  stage raises ``UndeclaredDependencyError`` on both; the custom sink's
  ``asyncio.create_task`` is asyncio machinery.
- examples/simple.md: 6 run, 4 pass. (d) ``StageContext(snapshot=, config=)`` is a
  TypeError on both; a failing stage raises ``UnifiedStageExecutionError``, not the
  ``StageExecutionError`` the page catches, on both.
- examples/transform-chain.md: 8 run, 8 pass (the conditional variant skips ``reverse``).
- examples/parallel.md: 7 run, 5 pass. (d) ``ContextSnapshot(pipeline_run_id=...)`` and
  ``StageContext(snapshot=)`` alone are TypeErrors on both; the long stages read
  ``memory.long_term_goals``, which the page's mock lacks. Fixed up, the timing claim
  (0.30 s parallel, not 0.55 s) holds on both.
- examples/chat.md: 8 run, 5 pass. (d) ``ContextSnapshot(messages=...)`` (history goes in
  ``conversation=Conversation(...)``); ``ctx.emit_event`` is missing from the reference
  (ours has it); the Groq block needs the network (not run).
- examples/full.md: 8 run, 8 pass; the blocked input ends with only ``input_guard`` in
  ``UnifiedPipelineCancelled.results`` on both.
- examples/agent-tools.md: 9 run, 7 pass. (d) the page's printed output for "Disable
  everything" is garbled (both print "Panel turned OFF"); ``ToolInput(action=...)`` and
  ``registry.list()`` (ours has the 1.2.0 alias) are missing from the reference.
- examples/ab-testing.md: 7 run, 4 pass. (d) ``callable | None`` annotations fail at
  import without ``from __future__ import annotations``; ``ctx.event_sink.try_emit(type,
  data)`` positionally is a TypeError on both sinks (the protocol is keyword-only);
  ``Pipeline.with_stage(stage, name=, depends_on=, when=)`` is not the builder's API.
- examples/multi-hop-rag.md: 1 run, 1 pass with a hashable entity (d: a dict entity is
  unhashable in ``visited_ids``; positional ``try_emit`` as above).
- examples/multimodal-fusion.md: 8 blocks, none runnable (numpy and torch are not
  installed); the API they touch behaves the same on both: (d) ``ctx.inputs[key]`` /
  ``key in ctx.inputs``, ``StageOutput.fail(error_metadata=)``, ``StreamingBuffer(
  max_chunks=)``, ``BackpressureMonitor(high_watermark=)`` are errors on both.
- guides/pipelines.md: 24 run, 21 pass. (d) ``StageExecutionError`` is not what a run
  raises; ``with_stage`` without a kind fails on both (ours with ``StageDefinitionError``);
  ``StageContext(config=)``; ``ChunkQueue(event_emitter=ctx.emit_event)`` needs ours.
- guides/stages.md: 29 run, 25 pass. (d) ``ctx.add_artifact`` exists in neither;
  ``create_stage_inputs`` lives in ``stages.inputs``, not ``stages.ports``;
  ``registry.diff`` of versions never registered. The input-error messages of the page
  (``StageInputs key must be provided`` / ``cannot be empty``) are the same on both.
- guides/context.md: 25 run, 21 pass. (d) ``PipelineContext(streaming_emitters=)`` and the
  flat ``ContextSnapshot`` keywords; (b) dict ``extensions`` round-trip through
  ``to_dict``/``from_dict`` here (the reference raises AttributeError: "Dict extensions"
  row).
- guides/dependencies.md: 13 run, 13 pass; the lint issues and the KeyError text match.
- guides/interceptors.md: 24 run, 21 pass. (a, fixed) ``InterceptorContext(ctx,
  _interceptor_name=...)``, as both blocks of the page write it, was a TypeError here
  (the audit-19 row gave only ``interceptor_name=``): the reference's keywords are taken
  too now ("InterceptorContext(...) keywords" row); (b) the circuit breaker opens after the 5th failure, as the page
  says (the reference counts each failure twice and opens after 3); (d)
  ``get_default_interceptors(include_auth=True)`` fails on both (ours with a ValueError
  naming the parameter), ``AuthInterceptor(validator=)``, ``pipeline.stage_specs``.
- guides/observability.md: 35 run, 31 pass. (b) the stage lifecycle events the page's
  payload example shows reach the context's sink from a unified run here, and not on the
  reference ("Lifecycle events from UnifiedStageGraph" row); (d) ``Pipeline.build(
  emit_stage_wide_events=...)`` is 1.2.0 only; ``traceparent`` appears only with
  OpenTelemetry installed.
- guides/tools.md: 27 run, 19 pass. (d) ``registry.get("calculator")`` "by name": 0.9.1 has
  no ``get``, 1.2.0's (ours) takes an action type; ``ToolExecutor(registry=ToolRegistry)``
  (ours rejects it at the call: "Argument checks" row), ``ToolExecutorConfig(
  store_undo_data=)``, ``AdvancedToolExecutor(registry=)``, ``ApprovalRequest(message=)``,
  ``ToolOutput.fail(data=)``; ``diff_json`` prints ``[]`` and ``diff_text``'s similarity is
  0.909, not 0.941, on both; ``undo_store.store(metadata)`` works only here (1.2.0).
- guides/tools-approval.md: 20 run, 1 pass (``MockToolExecutor``). (d) the page describes
  an API neither version has (``@registry.register`` on a function, ``ToolInput(name=,
  arguments=)``, ``validate_input``, ``ApprovalService(store=)``, ``ApprovalRequest(
  action=)``, the adapters' classes).
- guides/governance.md: 20 run, 12 pass. (d) ``AuthContext(permissions=)``,
  ``AuthInterceptor(required_roles=)``, ``OrgContext(environment=)``,
  ``OrgEnforcementInterceptor(require_org_id=)``; the redacted email in the page's comment
  has 20 stars for a 16-character address (both give 16).
- guides/authentication.md: 26 run, 23 pass. (d) ``AuthInterceptor(validator=)`` (the
  keyword is ``jwt_validator``), ``MockJwtValidator(user_id=...)``,
  ``get_default_interceptors(include_auth=True)``.
- guides/enrich.md: 1 run, 1 pass (``StageOutput.ok(version=)`` sets the field).
- guides/timestamps.md: 13 run, 12 pass. (d) ``ctx.inputs["document"]``.
- guides/voice-audio.md: 19 run, 14 pass. (d) ``create_audio_ports(stt_client=...)`` fails
  on the reference (ours takes the 1.2.0 aliases and checks the callback's type).

No class (a) or (c) difference was found. The tests below pin the page claims the suite
did not assert yet, as the pages' programs run here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from stageflow_trio import (
    CircuitBreakerInterceptor,
    Pipeline,
    PipelineTimer,
    StageContext,
    StageKind,
    StageOutput,
)
from stageflow_trio.context import ContextSnapshot, Conversation, Message, RunIdentity
from stageflow_trio.helpers import MockToolExecutor
from stageflow_trio.pipeline.dag import UnifiedPipelineCancelled
from stageflow_trio.pipeline.interceptors import InterceptorContext, run_with_interceptors
from stageflow_trio.stages import StageInputs
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context


def _context(input_text: str = "hi", **snapshot: Any) -> StageContext:
    snap = ContextSnapshot(
        run_id=RunIdentity(
            pipeline_run_id=uuid.uuid4(),
            request_id=uuid.uuid4(),
            session_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            org_id=None,
            interaction_id=uuid.uuid4(),
        ),
        topology="docs",
        execution_mode="default",
        input_text=input_text,
        **snapshot,
    )
    return StageContext(
        snapshot=snap, inputs=StageInputs(snapshot=snap), stage_name="entry", timer=PipelineTimer()
    )


def _sleeper(seconds: float, **data: Any) -> type:
    class Sleeper:
        async def execute(self, ctx: StageContext) -> StageOutput:
            await trio.sleep(seconds)
            return StageOutput.ok(**data)

    return Sleeper


# --- guides/pipelines.md: the four DAG shapes and their run times -----------------------


async def test_pipelines_guide_dag_shapes_take_the_time_of_their_longest_path(
    autojump_clock: trio.abc.Clock,
) -> None:
    step = _sleeper(0.1)
    sequential = (
        Pipeline()
        .with_stage("a", step, StageKind.TRANSFORM)
        .with_stage("b", step, StageKind.TRANSFORM, dependencies=("a",))
        .with_stage("c", step, StageKind.TRANSFORM, dependencies=("b",))
    )
    fan_out = (
        Pipeline()
        .with_stage("a", step, StageKind.TRANSFORM)
        .with_stage("b", step, StageKind.ENRICH, dependencies=("a",))
        .with_stage("c", step, StageKind.ENRICH, dependencies=("a",))
        .with_stage("d", step, StageKind.ENRICH, dependencies=("a",))
    )
    fan_in = (
        Pipeline()
        .with_stage("a", step, StageKind.ENRICH)
        .with_stage("b", step, StageKind.ENRICH)
        .with_stage("c", step, StageKind.ENRICH)
        .with_stage("d", step, StageKind.TRANSFORM, dependencies=("a", "b", "c"))
    )
    diamond = (
        Pipeline()
        .with_stage("a", step, StageKind.TRANSFORM)
        .with_stage("b", step, StageKind.ENRICH, dependencies=("a",))
        .with_stage("c", step, StageKind.ENRICH, dependencies=("a",))
        .with_stage("d", step, StageKind.TRANSFORM, dependencies=("b", "c"))
    )
    took = []
    for pipeline in (sequential, fan_out, fan_in, diamond):
        start = trio.current_time()
        results = await pipeline.build().run(_context())
        took.append(round(trio.current_time() - start, 6))
        assert all(r.status == "ok" for r in results.values())
    assert took == [0.3, 0.2, 0.2, 0.3]


async def test_pipelines_guide_compose_keeps_the_later_pipelines_stage_of_a_shared_name() -> None:
    first = Pipeline().with_stage("shared", _sleeper(0, who="A"), StageKind.TRANSFORM)
    second = Pipeline().with_stage("shared", _sleeper(0, who="B"), StageKind.TRANSFORM)

    results = await first.compose(second).build().run(_context())

    assert results["shared"].data == {"who": "B"}


# --- examples/full.md: an input guard's cancel stops the run ------------------------------


async def test_full_example_blocked_input_cancels_with_only_the_guards_result(
    autojump_clock: trio.abc.Clock,
) -> None:
    class InputGuard:
        async def execute(self, ctx: StageContext) -> StageOutput:
            await trio.sleep(0.05)
            if "hack" in (ctx.snapshot.input_text or ""):
                return StageOutput.cancel(reason="Blocked: Contains blocked word: hack")
            return StageOutput.ok(validated=True)

    enricher_finished: list[str] = []

    class Enricher:
        async def execute(self, ctx: StageContext) -> StageOutput:
            await trio.sleep(0.1)
            enricher_finished.append("yes")
            return StageOutput.ok(profile={})

    graph = (
        Pipeline()
        .with_stage("input_guard", InputGuard, StageKind.GUARD)
        .with_stage("router", _sleeper(0), StageKind.ROUTE, dependencies=("input_guard",))
        .with_stage("profile_enrich", Enricher, StageKind.ENRICH)
        .with_stage(
            "llm", _sleeper(0.2), StageKind.TRANSFORM, dependencies=("router", "profile_enrich")
        )
        .build()
    )

    with pytest.raises(UnifiedPipelineCancelled) as info:
        await graph.run(_context("How do I hack into systems?"))

    assert info.value.stage == "input_guard"
    assert info.value.reason == "Blocked: Contains blocked word: hack"
    assert list(info.value.results) == ["input_guard"]
    # The enricher, running beside the guard, was stopped with the run.
    await trio.sleep(1)
    assert enricher_finished == []


# --- examples/chat.md: the history the LLM stage reads ------------------------------------


async def test_chat_example_history_from_the_conversation_reaches_the_llm_stage() -> None:
    seen: list[list[dict[str, str]]] = []

    class LLMStage:
        async def execute(self, ctx: StageContext) -> StageOutput:
            history = list(ctx.snapshot.messages) if ctx.snapshot.messages else []
            messages = [{"role": "system", "content": "be helpful"}]
            messages += [{"role": m.role, "content": m.content} for m in history[-10:]]
            messages.append({"role": "user", "content": ctx.snapshot.input_text or ""})
            seen.append(messages)
            return StageOutput.ok(response=f"{len(messages)} messages")

    history = Conversation(
        messages=[
            Message(role="user", content="What is Python?"),
            Message(role="assistant", content="A programming language."),
        ]
    )
    ctx = _context("Can you explain more?", conversation=history)

    results = await Pipeline().with_stage("llm", LLMStage, StageKind.TRANSFORM).build().run(ctx)

    assert results["llm"].data == {"response": "4 messages"}
    assert [m["content"] for m in seen[0][1:]] == [
        "What is Python?",
        "A programming language.",
        "Can you explain more?",
    ]


# --- guides/interceptors.md: the circuit breaker's numbers --------------------------------


async def test_interceptors_guide_circuit_breaker_opens_after_five_failures_for_thirty_seconds(
    autojump_clock: trio.abc.Clock,
) -> None:
    calls: list[str] = []

    async def failing() -> StageResult:
        calls.append("fail")
        raise RuntimeError("down")

    breaker = CircuitBreakerInterceptor()
    ctx = create_test_pipeline_context()
    statuses = []
    for _ in range(7):
        result = await run_with_interceptors("s", failing, ctx, [breaker])
        statuses.append((result.status, result.error))

    assert calls == ["fail"] * 5
    assert statuses[:5] == [("failed", "down")] * 5
    assert [error for _, error in statuses[5:]] == ["Circuit breaker open for s"] * 2

    await trio.sleep(29)
    await run_with_interceptors("s", failing, ctx, [breaker])
    assert calls == ["fail"] * 5  # still open
    await trio.sleep(2)
    await run_with_interceptors("s", failing, ctx, [breaker])
    assert calls == ["fail"] * 6  # half-open: one call let through


async def test_interceptors_guide_observations_are_shared_by_before_and_after() -> None:
    ctx = create_test_pipeline_context()
    # The page writes the reference's _interceptor_name=, which is taken here too.
    InterceptorContext(ctx, _interceptor_name="timer").add_observation("start_time", 12.5)

    later = InterceptorContext(ctx, "timer")
    assert later.get_observation("start_time") == 12.5
    assert InterceptorContext(ctx, "other").get_observation("start_time") is None
    view = later.data
    view["x"] = 1
    assert "x" not in ctx.data
    assert InterceptorContext(ctx, interceptor_name="timer") == later


async def test_interceptor_context_takes_the_reference_keywords_or_ours_not_both() -> None:
    ctx = create_test_pipeline_context()
    observations = {"seen": 1}
    theirs = InterceptorContext(_ctx=ctx, _interceptor_name="t", _observations=observations)
    ours = InterceptorContext(ctx=ctx, interceptor_name="t", observations=observations)
    assert theirs == ours
    assert theirs.name == "t"
    with pytest.raises(
        TypeError,
        match=r"^InterceptorContext: give interceptor_name or _interceptor_name "
        r"\(the reference's keyword\), not both$",
    ):
        InterceptorContext(ctx, "t", _interceptor_name="u")
    with pytest.raises(TypeError, match=r"^InterceptorContext: give ctx or _ctx"):
        InterceptorContext(ctx, "t", _ctx=ctx)
    with pytest.raises(TypeError, match=r"^InterceptorContext: give observations or _obs"):
        InterceptorContext(ctx, "t", {}, _observations={})
    with pytest.raises(
        TypeError, match=r"^InterceptorContext: missing required argument 'interceptor_name'$"
    ):
        InterceptorContext(ctx)


# --- guides/observability.md: the stage event payload ------------------------------------


async def test_observability_guide_stage_completed_event_carries_the_pages_payload_keys() -> None:
    sink = RecordingEventSink()
    ctx = _context()
    ctx = StageContext(
        snapshot=ctx.snapshot,
        inputs=ctx.inputs,
        stage_name="entry",
        timer=PipelineTimer(),
        event_sink=sink,
    )

    await Pipeline().with_stage("llm", _sleeper(0), StageKind.TRANSFORM).build().run(ctx)

    completed = sink.of_type("stage.llm.completed")
    assert len(completed) == 1
    assert completed[0] is not None
    page_keys = {
        "stage",
        "status",
        "timestamp",
        "topology",
        "execution_mode",
        "duration_ms",
        "pipeline_run_id",
        "request_id",
        "user_id",
    }
    assert page_keys <= set(completed[0])
    assert completed[0]["stage"] == "llm"
    assert completed[0]["status"] == "completed"
    assert completed[0]["topology"] == "docs"


# --- guides/tools-approval.md: the one block that works -----------------------------------


async def test_tools_approval_guide_mock_tool_executor_records_its_calls(
    autojump_clock: trio.abc.Clock,
) -> None:
    executor = MockToolExecutor(
        tools={
            "calculator": lambda args: {"result": eval(args["expression"])},
            "weather": lambda args: {"temp": 72, "condition": "sunny"},
        },
        latency_ms=10,
    )
    start = trio.current_time()

    result = await executor.execute("calculator", {"expression": "2+2"})

    assert result.success
    assert result.output == {"result": 4}
    assert trio.current_time() - start == pytest.approx(0.01)
    assert executor.execution_count == 1
    assert executor.execution_history[0]["tool"] == "calculator"
    assert executor.execution_history[0]["arguments"] == {"expression": "2+2"}
