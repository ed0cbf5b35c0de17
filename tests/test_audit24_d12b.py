"""Audit 24: what stageflow 1.2.0 changed in eight of its documentation pages, run on the port.

stageflow-core 1.2.0 rewrote its API pages for helpers, testing and contexts and extended its
guides on contexts, stages and pipelines. The ```python blocks it added or changed (``diff``
against the 0.9.1 pages) were translated to trio (imports, ``asyncio.run`` -> ``trio.run``,
``gather`` -> a nursery; undefined stages completed with stubs) and run on this port and,
untranslated, on 1.2.0, printing the same values on both sides. Classes: (a) our defect, fixed
here; (b) a divergence docs/parity.md already lists; (c) a divergence right for us that had no
row, added; (d) the page is wrong for 1.2.0 too.

- api/helpers.md: 2 blocks plus the four signatures it states, in 2 programs; all pass. The
  import list, ``BackpressureMonitor`` marks, ``RealtimeStageBus`` publish / subscribe /
  ``close_channel`` (a nursery instead of ``gather``), ``create_realtime_stage_context`` (the
  bus sits in ``ctx.inputs.ports``), ``BufferedExporter`` keywords and ``stats`` keys all agree.
  (b) ``BufferedExporter(nursery=)`` is an addition.
- api/testing.md: 5 blocks (an import block, three signatures, the example); all pass.
  (a) ``create_test_pipeline_context`` took ``ports`` only through ``**kwargs``: 1.2.0 names
  it (the page's signature leaves it out, 1.2.0's code has it); now a named keyword.
  (b) ``stageflow_trio.testing`` exports more (fault injection, ``RecordingEventSink``, ...).
- api/context-submodules.md: 6 blocks in 1 program; all pass.
  (c) ``ContextBag()`` warns ``DeprecationWarning`` on 1.2.0, not here; with it
  ``StageGraph(...)`` and ``PipelineBuilder(...)``, which the pipeline and context guides call
  deprecated: one parity row added (0.9.1 calls must not warn).
  (b) enrichment lists and mappings are FrozenList / FrozenDict.
- api/context.md: 9 blocks (signatures, the fork example) in 1 program; all pass.
  (b) ``StageContext``'s cancellation comes from a ``cancellation=`` field instead of
  1.2.0's private probe callables.
- api/core.md: 8 blocks in 1 program; all pass. (d) ``isinstance(x, Stage)`` is a TypeError
  on 1.2.0 (the protocol is not runtime-checkable); ours likewise.
- guides/context.md: 7 changed blocks in 1 program, plus a mid-run cancel through a hook;
  all pass. (b) ``StageOutput.ok(artifacts=[...])`` fills ``artifacts`` here; on 1.2.0 it
  becomes a key of ``data`` and the artifact list stays empty, so the page's "return UI
  artifacts in StageOutput" holds only here (d for 1.2.0); the unified graph also sends
  ``stage.{name}.started`` / ``completed`` and ``pipeline_completed`` to the context's sink.
- guides/stages.md: 5 changed blocks in 1 program; all pass; the artifacts block as above.
- guides/pipelines.md: 7 changed blocks in 1 program; 6 pass on ours, 5 on 1.2.0.
  (d) duplex (``DuplexLaneSpec``, ``with_duplex_system``, ``FluentPipelineBuilder.duplex``)
  is not in 1.2.0 (ours has it, docs/duplex.md); ``except StageExecutionError`` does not catch
  a failing stage: ``Pipeline.run`` raises UnifiedStageExecutionError (same ``stage`` and
  ``original``) on both. (b) an empty pipeline's ``build()`` raises EmptyPipelineError.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import pytest
import trio

import stageflow_trio.testing as testing
from stageflow_trio import PipelineContext
from stageflow_trio.api import Pipeline, StageContext, StageKind, StageOutput
from stageflow_trio.context import ContextBag, Conversation
from stageflow_trio.pipeline.builder import PipelineBuilder
from stageflow_trio.pipeline.dag import (
    StageGraph,
    StageSpec,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
)
from stageflow_trio.stages.ports import AudioPorts, CorePorts, LLMPorts, create_core_ports
from stageflow_trio.testing import RecordingEventSink

# --- api/testing.md -------------------------------------------------------------------


def test_create_test_pipeline_context_takes_ports_by_name() -> None:
    parameter = inspect.signature(testing.create_test_pipeline_context).parameters["ports"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is None
    ports = create_core_ports()
    assert testing.create_test_pipeline_context(ports=ports).ports is ports
    assert testing.create_test_pipeline_context().ports is None


_PAGE_KEYWORDS = {
    "create_test_snapshot": {
        "pipeline_run_id": None,
        "request_id": None,
        "session_id": None,
        "user_id": None,
        "org_id": None,
        "interaction_id": None,
        "topology": "test",
        "execution_mode": "test",
        "input_text": None,
        "messages": None,
        "extensions": None,
    },
    "create_test_stage_context": {
        "snapshot": None,
        "inputs": None,
        "prior_outputs": None,
        "ports": None,
        "stage_name": "test_stage",
        "event_sink": None,
        "declared_deps": None,
    },
    "create_test_pipeline_context": {
        "pipeline_run_id": None,
        "request_id": None,
        "session_id": None,
        "user_id": None,
        "org_id": None,
        "interaction_id": None,
        "topology": "test",
        "execution_mode": "test",
        "service": "test",
        "data": None,
        "event_sink": None,
    },
}


@pytest.mark.parametrize("name", sorted(_PAGE_KEYWORDS))
def test_testing_builders_take_the_keywords_and_defaults_of_the_page(name: str) -> None:
    parameters = inspect.signature(getattr(testing, name)).parameters
    for keyword, default in _PAGE_KEYWORDS[name].items():
        assert parameters[keyword].kind is inspect.Parameter.KEYWORD_ONLY, keyword
        assert parameters[keyword].default == default, keyword
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def test_the_testing_page_example_and_its_list_of_absent_helpers() -> None:
    snapshot = testing.create_test_snapshot(input_text="hello")
    ctx = testing.create_test_stage_context(
        snapshot=snapshot, prior_outputs={"input": StageOutput.ok(text="hello")}
    )
    assert ctx.inputs.get_from("input", "text") == "hello"
    assert (ctx.stage_name, snapshot.topology, snapshot.execution_mode) == (
        "test_stage",
        "test",
        "test",
    )
    for absent in ("MockStage", "TestPipelineBuilder", "TestFixtures", "run_stage_test"):
        assert not hasattr(testing, absent), absent
    assert not hasattr(testing, "run_pipeline_test")


# --- api/context-submodules.md, api/context.md ------------------------------------------


def test_conversation_holds_messages_and_routing_only() -> None:
    conversation = Conversation()
    for field in ("input_text", "input_audio_duration_ms", "metadata"):
        assert not hasattr(conversation, field), field
    assert (list(conversation.messages), conversation.routing_decision) == ([], None)


def test_the_classes_1_2_0_deprecates_construct_without_a_warning() -> None:
    async def runner(ctx: Any) -> None:
        return None

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ContextBag()
        StageGraph([StageSpec(name="a", runner=runner)])
        PipelineBuilder("legacy")


# --- guides/context.md, guides/pipelines.md ---------------------------------------------


class _Echo:
    name = "echo"
    kind = StageKind.TRANSFORM

    async def execute(self, ctx: StageContext) -> StageOutput:
        await ctx.cancellation_checkpoint()
        return StageOutput.ok(text=ctx.snapshot.input_text, seen=dict(ctx.snapshot.metadata))


async def test_a_sync_before_stage_start_hook_publishes_through_the_pipeline_context() -> None:
    sink = RecordingEventSink()
    calls: list[tuple[str, str | None, str]] = []

    def publish_stage_start(
        stage_name: str, stage_kind: Any, stage_ctx: Any, pipeline_ctx: PipelineContext
    ) -> None:
        calls.append((stage_name, stage_kind.value, type(stage_ctx).__name__))
        pipeline_ctx.try_emit_event(
            type="stage.starting",
            data={"stage": stage_name, "kind": stage_kind.value if stage_kind else None},
        )

    pipeline = (
        Pipeline()
        .with_stage("echo", _Echo, StageKind.TRANSFORM)
        .with_stage("after", _Echo, StageKind.WORK, dependencies=("echo",))
    )
    pipeline_ctx = PipelineContext(
        input_text="Hello", topology="chat_fast", execution_mode="practice", event_sink=sink
    )
    pipeline_ctx.add_before_stage_start_hook(publish_stage_start)
    results = await pipeline.run(pipeline_ctx)

    assert results["after"].data["text"] == "Hello"
    assert calls == [("echo", "transform", "StageContext"), ("after", "work", "StageContext")]
    types = [event_type for event_type, _ in sink.events]
    assert types.index("stage.starting") < types.index("stage.echo.started")
    starting = [data for event_type, data in sink.events if event_type == "stage.starting"]
    assert [(d["stage"], d["kind"], d["topology"]) for d in starting if d] == [
        ("echo", "transform", "chat_fast"),
        ("after", "work", "chat_fast"),
    ]


async def test_a_hook_that_cancels_the_context_stops_the_run_before_that_stage() -> None:
    ran: list[str] = []

    class Recorder(_Echo):
        async def execute(self, ctx: StageContext) -> StageOutput:
            ran.append(ctx.stage_name)
            return await super().execute(ctx)

    def hook(stage_name: str, stage_kind: Any, stage_ctx: Any, pipeline_ctx: Any) -> None:
        if stage_name == "second":
            pipeline_ctx.mark_canceled("user requested stop")

    pipeline = (
        Pipeline()
        .with_stage("first", Recorder(), StageKind.WORK)
        .with_stage("second", Recorder(), StageKind.WORK, dependencies=("first",))
    )
    ctx = PipelineContext(input_text="x")
    ctx.add_before_stage_start_hook(hook)
    with pytest.raises(UnifiedPipelineCancelled) as caught:
        await pipeline.run(ctx)
    assert ran == ["first"]
    assert (caught.value.stage, caught.value.reason) == ("second", "user requested stop")
    assert sorted(caught.value.results) == ["first", "second"]


async def test_pipeline_context_metadata_and_a_plain_function_runner() -> None:
    async def echo_stage(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(data={"echo": ctx.snapshot.input_text})

    pipeline = Pipeline().with_stage("echo", echo_stage, StageKind.TRANSFORM)
    results = await pipeline.run(PipelineContext(input_text="Hello"))
    assert dict(results["echo"].data) == {"echo": "Hello"}

    configured = PipelineContext(input_text="x", metadata={"timeout": 30000, "model": "gpt-4"})
    seen = await Pipeline().with_stage("meta", _Echo, StageKind.WORK).run(configured)
    assert seen["meta"].data["seen"] == {"timeout": 30000, "model": "gpt-4"}


async def test_a_failing_stage_raises_the_unified_error_with_stage_and_original() -> None:
    class Boom:
        name = "boom"
        kind = StageKind.WORK

        async def execute(self, ctx: StageContext) -> StageOutput:
            await trio.lowlevel.checkpoint()
            raise RuntimeError("bad")

    with pytest.raises(UnifiedStageExecutionError) as caught:
        await Pipeline().with_stage("boom", Boom).run(PipelineContext(input_text="x"))
    assert caught.value.stage == "boom"
    assert isinstance(caught.value.original, RuntimeError)


async def test_the_ports_pattern_of_the_stages_guide_sees_llm_ports() -> None:
    sent: list[str] = []

    async def send_token(token: str) -> None:
        sent.append(token)

    class Speaker:
        name = "speaker"
        kind = StageKind.WORK

        async def execute(self, ctx: StageContext) -> StageOutput:
            ports = ctx.inputs.ports or CorePorts()
            llm_ports = ports if isinstance(ports, LLMPorts) else None
            audio_ports = ports if isinstance(ports, AudioPorts) else None
            if llm_ports and llm_ports.send_token:
                await llm_ports.send_token("Hello")
            return StageOutput.ok(llm=llm_ports is not None, audio=audio_ports is not None)

    results = (
        await Pipeline()
        .with_stage("speaker", Speaker)
        .run(input_text="x", ports=LLMPorts(send_token=send_token))
    )
    assert dict(results["speaker"].data) == {"llm": True, "audio": False}
    assert sent == ["Hello"]
