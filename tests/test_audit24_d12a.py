"""Audit 24 (d12a): the pages stageflow 1.2.0 added or changed, run against this port.

stageflow-core 1.2.0 ships its documentation; a team migrating a service copies code from
it. Every ```python block of the pages below (for the pages 1.2.0 changed, the blocks the
change touched) was run twice: as printed on the 1.2.0 reference (``import stageflow``,
asyncio), and translated to this port (``stageflow_trio``, ``trio.run`` on a ``MockClock``,
a nursery for ``gather``). Fragments were completed with stub stages, a ``MockLLMProvider``
client and contexts from ``stageflow_trio.testing``; printed results and the prose around
them became asserts. Classes: (a) our defect, (b) a documented divergence (a docs/parity.md
row), (c) an undocumented divergence (now a row), (d) the page is wrong for the reference
too, or relies on asyncio.

Pages new in 1.2.0:

- guides/agents.md: 3 blocks run, 3 pass (the typed-output fragment completed with a
  ``MockLLMProvider``). The agent loop, its events, the tools' context, the security reports,
  the prompt library and ``TypedLLMOutput``'s retries give the reference's values (token
  counts included); (b) result containers are FrozenDicts ("Agent runtime (1.2.0)" rows).
  The provider contract (``complete(prompt, messages=, model=)``; a str, dict,
  ``LLMResponse`` or object reply) and the security defaults (user input blocked, tool output
  sanitised and kept, 12,000 / 4,000 character limits) match.
- api/advanced.md: 2 blocks run, 2 pass; ``stageflow_trio.advanced`` has the reference's
  names exactly. (b) ``graph.run`` returned a plain dict then (a ``PipelineResults`` since
  audit 25: "`UnifiedStageGraph.run` result"),
  no DeprecationWarning for a StageContext ("`UnifiedStageGraph.run(PipelineContext)`").
- guides/realtime-streaming.md: 2 blocks run, 2 pass (the two stages run in a nursery);
  (b) the ``max_queue_size`` statistic differs, as every publish is a checkpoint.
- examples/realtime-llm-tts.md: 1 block run, 1 pass, the same chunks. (d) the consumer
  declares ``dependencies=("llm_stream",)``, so it starts after the producer returned and
  nothing streams; with a channel smaller than the stream the run never ends on both
  (docs/streaming.md now says so).

Pages 1.2.0 changed (the changed blocks):

- getting-started/quickstart.md: 6 run, 6 pass. (b) ``results.data(name)`` prints
  ``FrozenDict({...})``; ``lint_pipeline``'s issue order is fixed here, set order there.
- getting-started/concepts.md: 8 run, 8 pass once the page's ``StageA``/``StageB`` get a
  ``kind`` ((d): ``stage(name, runner)`` without one fails on both). (c) the order of a run's
  results for stages finishing at once: parity row "Order of a run's results".
- getting-started/installation.md: 3 run, 3 pass. (d) the reference's ``__all__`` lists
  ``StageError`` and ``create_test_snapshot`` twice.
- index.md: 1 run, 1 pass. (d) its module tables name ``PipelineContext`` in
  ``stageflow.context``, ``StageInputs``/``CorePorts`` in ``stageflow.api`` and the
  subpipeline names in ``stageflow.advanced``, which lack them on both; the duplex names it
  announces are missing from 1.2.0 (ours has them).
- examples/ab-testing.md: 5 run, 5 pass with ``from __future__ import annotations`` ((d):
  ``callable | None``); (d) the collector reads ``experiment_id`` from stages it does not
  depend on, so it reports ``tracked=False`` on both.
- examples/agent-tools.md: 2 run, 2 pass. examples/chat.md: 2 run, 2 pass.
- examples/full.md: 1 run, 1 pass once fixed: (d) ``from stageflow import
  UnifiedPipelineCancelled`` fails on both, and ``graph`` is no longer defined.
- examples/parallel.md: 1 run, 1 pass. (d) the 1.2.0 version drops the user and session
  ids, so both enrich stages skip; with ids the 0.30 s timing holds on both.
- examples/simple.md: 4 run, 4 pass. (c) a stage that raises: 1.2.0 logs no
  ``stage_error`` record (no traceback anywhere), ours does: parity row "`stage_error`
  record of a stage that raises".
- examples/transform-chain.md: 1 run, 1 pass. examples/multi-hop-rag.md: 1 run, 1 pass.
- examples/multimodal-fusion.md: 3 run (no numpy: the fail path), 3 as the reference; (d)
  ``key in ctx.inputs``, ``StreamingBuffer.add``, ``BackpressureMonitor(high_watermark=)``
  fail on both.

No defect of ours turned up. The tests below pin what the pages promise that no test of
ours asserted.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.advanced import ImmutabilityInterceptor
from stageflow_trio.agent import Agent, AgentConfig, AgentStage, PromptLibrary, PromptTemplate
from stageflow_trio.api import Pipeline, PipelineContext, StageContext, StageKind, StageOutput
from stageflow_trio.helpers import MockLLMProvider, RealtimeStageBus
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
from stageflow_trio.stages.ports import CorePorts, create_core_ports
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.tools import ToolRegistry
from stageflow_trio.tools.base import BaseTool, ToolInput, ToolOutput

TOKENS = ("stream", "this", "text", "<eos>")


def _bus(ctx: StageContext) -> RealtimeStageBus:
    ports = ctx.inputs.ports
    assert isinstance(ports, CorePorts)
    bus: RealtimeStageBus = ports.realtime_bus
    return bus


class _Producer:
    """The example's LLM stage: one token every 20 ms, then the channel is closed."""

    name = "llm_stream"
    kind = StageKind.TRANSFORM

    async def execute(self, ctx: StageContext) -> StageOutput:
        bus = _bus(ctx)
        for token in TOKENS:
            await bus.publish("llm_to_tts", token)
            await trio.sleep(0.02)
        await bus.close_channel("llm_to_tts")
        return StageOutput.ok(streamed_tokens=True)


class _Consumer:
    """The example's TTS stage; it notes when each token arrived."""

    name = "tts_stream"
    kind = StageKind.TRANSFORM

    def __init__(self) -> None:
        self.heard: list[tuple[float, str]] = []

    async def execute(self, ctx: StageContext) -> StageOutput:
        chunks = []
        async for token in _bus(ctx).subscribe("llm_to_tts"):
            self.heard.append((round(trio.current_time(), 2), token))
            if token == "<eos>":
                break
            chunks.append(f"AUDIO({token})")
        return StageOutput.ok(audio_chunks=chunks)


def _streaming_pipeline(consumer: _Consumer, *, edge: bool) -> Pipeline:
    return (
        Pipeline(name="realtime_llm_tts")
        .with_stage("llm_stream", _Producer, StageKind.TRANSFORM)
        .with_stage(
            "tts_stream",
            consumer,
            StageKind.TRANSFORM,
            dependencies=("llm_stream",) if edge else (),
        )
    )


def _ctx_with(bus: RealtimeStageBus) -> PipelineContext:
    ctx = PipelineContext(topology="realtime_llm_tts", execution_mode="demo")
    ctx.ports = create_core_ports(realtime_bus=bus)  # assigned after construction, as the page
    return ctx


async def test_two_stages_without_an_edge_stream_through_a_one_slot_channel(
    autojump_clock: trio.abc.Clock,
) -> None:
    consumer = _Consumer()
    bus = RealtimeStageBus(default_max_size=1)
    results = await _streaming_pipeline(consumer, edge=False).run(_ctx_with(bus))
    # Each token is heard when it is published: the stages really run side by side.
    assert consumer.heard == [(0.0, "stream"), (0.02, "this"), (0.04, "text"), (0.06, "<eos>")]
    assert results.data("tts_stream") == {
        "audio_chunks": ["AUDIO(stream)", "AUDIO(this)", "AUDIO(text)"]
    }
    assert results["llm_stream"].status == "ok"


async def test_the_examples_dependency_edge_means_nothing_streams(
    autojump_clock: trio.abc.Clock,
) -> None:
    consumer = _Consumer()
    results = await _streaming_pipeline(consumer, edge=True).run(
        _ctx_with(RealtimeStageBus(default_max_size=128))
    )
    # The consumer starts once the producer has returned: every token at 0.08 s.
    assert consumer.heard == [(0.08, token) for token in TOKENS]
    assert len(results.data("tts_stream")["audio_chunks"]) == 3

    # A stream longer than the channel: the producer waits for a reader that never starts.
    blocked = _Consumer()
    with trio.move_on_after(60) as scope:
        await _streaming_pipeline(blocked, edge=True).run(
            _ctx_with(RealtimeStageBus(default_max_size=2))
        )
    assert scope.cancelled_caught
    assert blocked.heard == []


class _AddTool(BaseTool):
    name = "adder"
    description = "Add two integers"
    action_type = "ADD"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        payload = input.action.payload
        return ToolOutput(success=True, data={"sum": payload["a"] + payload["b"]})


async def test_the_agents_guide_tool_loop_inside_a_pipeline() -> None:
    library = PromptLibrary()
    library.register(
        PromptTemplate(
            name="math-agent",
            version="v1",
            template="You are a careful math agent. Available tools:\n{tool_descriptions}\n"
            "Return JSON only.",
        ),
        make_default=True,
    )
    registry = ToolRegistry()
    registry.register(_AddTool())
    llm = MockLLMProvider(
        responses=[
            '{"tool_calls": [{"name": "ADD", "arguments": {"a": 2, "b": 3}}]}',
            '{"final_answer": "The sum is 5"}',
        ]
    )
    agent = Agent(
        llm_client=llm,
        config=AgentConfig(model="mock"),
        prompt_library=library,
        prompt_name="math-agent",
        tool_registry=registry,
    )
    sink = RecordingEventSink()
    results = (
        await Pipeline()
        .with_stage("agent", AgentStage(agent))
        .run(input_text="What is 2 + 3?", event_sink=sink)
    )

    data = results["agent"].data
    assert data["response"] == "The sum is 5"
    assert (data["iterations"], data["prompt_name"], data["prompt_version"]) == (
        2,
        "math-agent",
        "v1",
    )
    [tool_result] = data["tool_results"]
    assert (tool_result["name"], tool_result["success"], tool_result["data"]) == (
        "ADD",
        True,
        {"sum": 5},
    )
    assert [report["source"] for report in data["security"]] == ["user", "tool"]
    # The library's template, with the tools listed by action type.
    system = llm.call_history[0]["messages"][0]
    assert system == {
        "role": "system",
        "content": "You are a careful math agent. Available tools:\n- ADD: Add two integers\n"
        "Return JSON only.",
    }
    agent_events = [event for event in sink.types() if event.startswith("agent.")]
    assert agent_events == [
        "agent.turn.started",
        "agent.tool.executed",
        "agent.turn.started",
        "agent.completed",
    ]


async def test_a_stage_may_return_a_stage_output_a_dict_or_none() -> None:
    async def as_dict(ctx: StageContext) -> dict[str, str]:
        return {"key": "value", "another": "data"}

    async def as_none(ctx: StageContext) -> None:
        return None

    async def as_skip(ctx: StageContext) -> StageOutput:
        return StageOutput.skip(reason="condition not met")

    pipeline = (
        Pipeline()
        .with_stage("d", as_dict, StageKind.TRANSFORM)
        .with_stage("n", as_none, StageKind.TRANSFORM)
        .with_stage("s", as_skip, StageKind.TRANSFORM)
    )
    results = await pipeline.run(input_text="x")
    assert {name: (out.status, dict(out.data)) for name, out in results.items()} == {
        "d": ("ok", {"key": "value", "another": "data"}),
        "n": ("ok", {}),
        "s": ("skip", {"reason": "condition not met"}),
    }


async def test_results_are_in_completion_order(autojump_clock: trio.abc.Clock) -> None:
    async def slow(ctx: StageContext) -> dict[str, int]:
        await trio.sleep(2)
        return {"t": 2}

    async def fast(ctx: StageContext) -> dict[str, int]:
        await trio.sleep(1)
        return {"t": 1}

    pipeline = (
        Pipeline()
        .with_stage("slow", slow, StageKind.TRANSFORM)
        .with_stage("fast", fast, StageKind.TRANSFORM)
    )
    assert list(await pipeline.run()) == ["fast", "slow"]


async def test_build_with_interceptors_uses_only_those(caplog: pytest.LogCaptureFixture) -> None:
    # The advanced page's build(interceptors=[...]): the list replaces the defaults, so the
    # default LoggingInterceptor's "Stage starting" record is not written.
    async def demo(ctx: StageContext) -> dict[str, str | None]:
        return {"seen": ctx.snapshot.input_text}

    pipeline = Pipeline().with_stage("demo", demo, StageKind.TRANSFORM)
    with caplog.at_level(logging.INFO):
        graph = pipeline.build(interceptors=[ImmutabilityInterceptor()])
        results = await graph.run(PipelineContext(input_text="hello"))
        assert results["demo"].data == {"seen": "hello"}
        assert not [r for r in caplog.records if r.getMessage().startswith("Stage starting")]
        await pipeline.run(input_text="hello")
    assert [r for r in caplog.records if r.getMessage() == "Stage starting: demo"]


async def test_a_raising_stage_under_pipeline_run_logs_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 1.2.0 loses this record under its interceptor chain (parity row "`stage_error` record
    # of a stage that raises"); the port keeps it for every run.
    async def boom(ctx: StageContext) -> None:
        raise RuntimeError("kaput")

    pipeline = Pipeline().with_stage("boom", boom, StageKind.TRANSFORM)
    with (
        caplog.at_level(logging.ERROR, logger="stageflow_trio.dag"),
        pytest.raises(UnifiedStageExecutionError),
    ):
        await pipeline.run()
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "stage_error"]
    assert record.getMessage() == "Stage boom failed with error: kaput"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
