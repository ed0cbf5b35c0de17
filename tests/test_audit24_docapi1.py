"""Audit 24 (docs, API pages 1): the reference's API reference pages, run against this port.

stageflow-core 0.9.1 ships its documentation. The python blocks of the pages below were
translated outside this repository (``stageflow`` -> ``stageflow_trio``, ``asyncio.run`` ->
``trio.run``, ``gather`` / ``create_task`` -> a nursery, fragments completed with stub stages
and contexts from ``stageflow_trio.testing``) and run against this port, and, under asyncio,
against the reference. Each printed or stated result became an assert. Classes of the
differences: (a) a defect of ours, (b) a documented divergence, (c) an undocumented one, (d)
the page is wrong for the reference too, or relies on asyncio machinery.

- api/core.md: 22 blocks run, 18 pass. (d): ``StageContext(snapshot, config=)``,
  ``create_stage_context(..., config=)``, ``ctx.add_artifact`` (also in the closing usage
  example); the property table's ``config``, ``collect_outputs``, ``get_output_data``: the
  reference's StageContext has none of them.
- api/context.md: 19 blocks run, 18 pass. (b): ``ContextSnapshot(created_at=None)`` as the
  constructor listing shows it is a TypeError here (parity row "Constructor field types";
  the reference stores None and its ``to_dict`` then fails). (d): ``Conversation`` has no
  ``input_text`` / ``input_audio_duration_ms`` / ``metadata``; ``record_stage_event`` takes
  keyword arguments only.
- api/context-submodules.md: 62 blocks run, 43 pass. (b): ``Conversation.messages`` is a
  FrozenList (parity row "Containers" of the context models),
  ``ProfileEnrichment(user_id="user123")`` a ValueError (parity row "Constructor ids"). (d): ``ProfileEnrichment(history=, metadata=)``; the extension classes are not in
  ``stageflow.context`` (they live in ``stageflow.extensions``, with other signatures);
  ``RunIdentity(metadata=)``; ``OutputBag.add_output`` / ``get_all_outputs``; assigning
  ``conversation.routing_decision`` (a frozen class there too).
- api/inputs.md: 15 blocks run, 14 pass. (d): the ``with_stage(...))`` block has one closing
  parenthesis too many; the comment on ``get_from("router", None)`` quotes "must be a
  string", where both packages say "StageInputs key must be provided".
- api/events.md: 16 blocks run, 15 pass. (b): ``await sink.start()`` is
  ``await sink.start(nursery)`` (parity row "Worker start"); the run ends with
  ``pipeline_completed`` / ``pipeline_failed`` / ``pipeline_cancelled`` (parity row
  "Pipeline-level terminal events"), where the page lists ``pipeline.started`` and
  ``pipeline.completed``, which the reference never emits (d). (d): ``BackpressureMetrics`` is
  not a top-level name (not in 1.2.0 either); the custom sinks' ``asyncio.create_task``.
- api/wide-events.md: 18 blocks run, 4 pass. (d): ``WideEventEmitter(event_sink=)``,
  ``emit_stage_wide`` / ``emit_pipeline_wide`` (methods and functions), the payload schema
  (``stage_name``, ``correlation_ids``, ``stage_summaries``, ...) and subclasses overriding
  ``emit_stage_wide`` (never called): the reference has ``emit_stage_event`` /
  ``emit_pipeline_event`` and flat payloads. ``Pipeline.build(emit_stage_wide_events=...)``
  works here (parity row "`Pipeline.build` options"), not on the 0.9.1 reference.
- api/protocols.md: 12 blocks run, 12 pass. (b): ``BufferedExporter(sink=...)`` (parity row
  of 1.2.0's ``sink=``; 0.9.1 has only ``exporter``). (d): ``asyncio.create_task`` in the
  sinks' ``try_emit``.
- api/projector.md: 22 blocks run, 15 pass. (d): the examples pass ids that are not UUIDs
  ("run-789", "req-456", "org-123") and print them back; both packages replace them with
  fresh UUIDs and leave the org id out. ``_coerce_uuid_str`` is importable from
  ``projector.service`` only; ``project(message, ...)`` passes an Ellipsis; a status update
  without a payload is refused, not "handled gracefully".
- api/helpers.md: 77 blocks run, 69 pass. (b): ``BufferedExporter.export`` takes one
  ``AnalyticsEvent`` (parity row of the exporters' arguments; the page passes a list).
  (d): the PII redaction output, the ``ChunkQueue`` default size and ``size()``,
  ``StreamingBuffer(max_size=)`` / ``write`` / ``available``,
  ``BackpressureMonitor.check_pressure``, ``AudioChunk.timestamp``,
  ``StreamConfig.buffer_size``, ``MockLLMProvider(response_text=)``,
  ``PipelineRunner(event_sink=, logger=)``, ``ObservableEventSink.get_events``,
  ``ContextSnapshot(session_id=)``: none of them exist in the reference.

Every other difference found matches the reference. No (a) or (c) was found. The tests
below check claims of these pages that no other test of ours asserted.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import pytest
import stageflow.projector.service as reference_projector

from stageflow_trio import Pipeline, StageKind, StageOutput
from stageflow_trio.context import ContextBag
from stageflow_trio.helpers import (
    AnalyticsEvent,
    BufferedExporter,
    ChunkQueue,
    ContentFilter,
    ContentLengthCheck,
    GuardrailConfig,
    GuardrailStage,
    InMemoryStore,
    MemoryConfig,
    MemoryFetchStage,
    MemoryWriteStage,
    PIIDetector,
)
from stageflow_trio.observability import WideEventEmitter
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
from stageflow_trio.projector import WSMessageProjector
from stageflow_trio.protocols import ExecutionContext
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.inputs import UndeclaredDependencyError
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
)
from tests.fakes import RecordingExporter

# --- projector.md -----------------------------------------------------------------------


def test_projector_replaces_the_page_example_ids_that_are_not_uuids() -> None:
    message = {
        "type": "status.update",
        "payload": {"service": "chat", "status": "processing", "metadata": {"stage": "llm"}},
    }
    ids = {
        "connection_org_id": "org-123",
        "context_request_id": "req-456",
        "context_pipeline_run_id": "run-789",
    }
    ours = WSMessageProjector().project(message, **ids)
    theirs = reference_projector.WSMessageProjector().project(message, **ids)
    for projected in (ours, theirs):
        assert projected["type"] == "status.update"
        assert projected["payload"] == message["payload"]
        # No org id (it is not a UUID); both run ids are freshly drawn UUID4s.
        assert set(projected["metadata"]) == {"pipeline_run_id", "request_id"}
        for value in projected["metadata"].values():
            assert uuid.UUID(value).version == 4


def test_projector_refuses_a_status_update_without_a_payload_as_the_reference_does() -> None:
    message = {"type": "status.update"}
    ids: dict[str, Any] = {
        "connection_org_id": None,
        "context_request_id": None,
        "context_pipeline_run_id": None,
    }
    for projector in (WSMessageProjector(), reference_projector.WSMessageProjector()):
        with pytest.raises(ValueError, match=r"^status\.update payload must be an object$"):
            projector.project(message, **ids)


# --- protocols.md, events.md, context.md: helpers wired to a context ------------------------


def _log_context(ctx: ExecutionContext) -> None:
    """The page's function written against the protocol, not a concrete context."""
    ctx.try_emit_event("debug.context_logged", ctx.to_dict())


def test_a_function_typed_on_execution_context_emits_through_either_context() -> None:
    run_id = uuid.uuid4()
    for make in (create_test_pipeline_context, create_test_stage_context):
        sink = RecordingEventSink()
        if make is create_test_pipeline_context:
            ctx: ExecutionContext = create_test_pipeline_context(
                pipeline_run_id=run_id, event_sink=sink
            )
        else:
            ctx = create_test_stage_context(pipeline_run_id=run_id, event_sink=sink)
        _log_context(ctx)
        [(event_type, data)] = sink.events
        assert event_type == "debug.context_logged"
        assert data is not None
        assert data["pipeline_run_id"] == str(run_id)


async def test_a_chunk_queue_wired_to_try_emit_event_sends_correlated_telemetry() -> None:
    run_id = uuid.uuid4()
    sink = RecordingEventSink()
    ctx = create_test_stage_context(pipeline_run_id=run_id, event_sink=sink)
    queue: ChunkQueue[bytes] = ChunkQueue(event_emitter=ctx.try_emit_event)
    await queue.put(b"chunk")
    await queue.close()
    closed = [data for event_type, data in sink.events if event_type == "stream.queue_closed"]
    assert len(closed) == 1
    assert closed[0] is not None
    assert closed[0]["pipeline_run_id"] == str(run_id)


async def test_buffered_exporter_overflow_reaches_the_sink_through_try_emit_event() -> None:
    sink = RecordingEventSink()
    ctx = create_test_stage_context(event_sink=sink)
    exporter = BufferedExporter(
        sink=RecordingExporter(),
        batch_size=100,
        max_buffer_size=2,
        on_overflow=lambda dropped, size: ctx.try_emit_event(
            "analytics.overflow", {"dropped": dropped, "buffer_size": size}
        ),
        high_water_mark=0.8,
    )
    for n in range(3):
        await exporter.export(AnalyticsEvent(event_type=f"e{n}"))
    overflow = [data for event_type, data in sink.events if event_type == "analytics.overflow"]
    # The high-water warning (-1) when the buffer fills, then the drop of the oldest event,
    # reported with the size left after the drop (as the reference reports it).
    assert [(d["dropped"], d["buffer_size"]) for d in overflow if d is not None] == [
        (-1, 2),
        (1, 1),
    ]
    await exporter.close()


# --- context-submodules.md ----------------------------------------------------------------


async def test_context_bag_keys_keep_write_order_and_to_dict_is_a_copy() -> None:
    bag = ContextBag()
    await bag.write("user_input", "Hello", "stt_stage")
    await bag.write("llm_response", "Hi there!", "llm_stage")
    assert bag.keys() == ["user_input", "llm_response"]
    data = bag.to_dict()
    data["user_input"] = "changed"
    data["extra"] = 1
    assert bag.read("user_input") == "Hello"
    assert not bag.has("extra")
    assert bag.read("extra", "default_value") == "default_value"


# --- inputs.md ----------------------------------------------------------------------------


class _Auth:
    name = "auth"
    kind = StageKind.WORK

    async def execute(self, ctx: object) -> StageOutput:
        return StageOutput.ok(token="t")


class _Router(_Auth):
    name = "router"


class _ReadsUndeclared:
    name = "my_stage"
    kind = StageKind.WORK

    async def execute(self, ctx: Any) -> StageOutput:
        assert ctx.inputs.get_from("auth", "token") == "t"
        ctx.inputs.get_from("cache", "data")  # not declared
        return StageOutput.ok()


async def test_reading_an_undeclared_stage_fails_the_run_with_the_dependency_error() -> None:
    graph = (
        Pipeline()
        .with_stage("auth", _Auth, StageKind.WORK)
        .with_stage("router", _Router, StageKind.WORK)
        .with_stage("my_stage", _ReadsUndeclared, StageKind.WORK, dependencies=["auth", "router"])
        .build()
    )
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await graph.run(create_test_pipeline_context())
    cause = caught.value.__cause__
    assert isinstance(cause, UndeclaredDependencyError)
    assert (cause.stage_name, cause.accessing_stage) == ("cache", "my_stage")
    assert cause.declared_deps == frozenset({"auth", "router"})


# --- helpers.md ---------------------------------------------------------------------------


class _Llm:
    name = "llm"
    kind = StageKind.TRANSFORM

    def __init__(self) -> None:
        self.calls = 0

    async def execute(self, ctx: Any) -> StageOutput:
        self.calls += 1
        return StageOutput.ok(response=f"echo: {ctx.snapshot.input_text}")


async def test_memory_pipeline_of_the_page_remembers_the_exchange_of_the_session() -> None:
    store = InMemoryStore()
    graph = (
        Pipeline()
        .with_stage("fetch_memory", MemoryFetchStage(store), StageKind.ENRICH)
        .with_stage("llm", _Llm(), StageKind.TRANSFORM, dependencies=("fetch_memory",))
        .with_stage("write_memory", MemoryWriteStage(store), StageKind.WORK, dependencies=("llm",))
        .build()
    )
    session = uuid.uuid4()
    first = await graph.run(create_test_pipeline_context(session_id=session, input_text="hi"))
    assert first["fetch_memory"].data["memory_count"] == 0
    assert first["write_memory"].data == {"entries_written": 2, "session_id": str(session)}
    second = await graph.run(create_test_pipeline_context(session_id=session, input_text="again"))
    remembered = second["fetch_memory"].data["memory_entries"]
    assert [(e["role"], e["content"]) for e in remembered] == [
        ("user", "hi"),
        ("assistant", "echo: hi"),
    ]
    assert store.get_all_sessions() == [session]
    assert len(await store.fetch(session, MemoryConfig(max_entries=0, max_tokens=0))) == 4


async def test_guardrail_stage_of_the_page_keeps_flagged_input_from_the_llm() -> None:
    llm = _Llm()
    graph = (
        Pipeline()
        .with_stage(
            "guard_input",
            GuardrailStage(
                checks=[
                    PIIDetector(redact=True),
                    ContentFilter(block_profanity=True),
                    ContentLengthCheck(max_chars=5000),
                ],
                config=GuardrailConfig(fail_on_violation=True),
            ),
            StageKind.GUARD,
        )
        .with_stage("llm", llm, StageKind.TRANSFORM, dependencies=("guard_input",))
        .build()
    )
    clean = await graph.run(create_test_pipeline_context(input_text="What is trio?"))
    assert clean["guard_input"].data["guardrail_passed"] is True
    assert clean["guard_input"].data["checks_run"] == 3
    assert llm.calls == 1
    with pytest.raises(UnifiedStageExecutionError, match="Guardrail violations: 1 found"):
        await graph.run(create_test_pipeline_context(input_text="mail me at user@example.com"))
    assert llm.calls == 1


# --- wide-events.md -----------------------------------------------------------------------


class _ErrorTrackingEmitter(WideEventEmitter):
    """The page's error tracker, on the hook the graphs really call (``emit_stage_event``)."""

    def __init__(self) -> None:
        super().__init__()
        self.error_counts: defaultdict[str, int] = defaultdict(int)

    def emit_stage_event(
        self, *, ctx: PipelineContext, result: StageResult, extra: Any = None
    ) -> None:
        if result.status == "failed":
            self.error_counts[result.name] += 1
        super().emit_stage_event(ctx=ctx, result=result, extra=extra)


class _Fails:
    name = "bad"
    kind = StageKind.WORK

    async def execute(self, ctx: object) -> StageOutput:
        return StageOutput.fail(error="boom")


async def test_a_wide_event_emitter_subclass_built_in_sees_each_failed_stage() -> None:
    tracker = _ErrorTrackingEmitter()
    graph = (
        Pipeline()
        .with_stage("auth", _Auth, StageKind.WORK)
        .with_stage("bad", _Fails, StageKind.WORK, dependencies=("auth",))
        .build(emit_stage_wide_events=True, wide_event_emitter=tracker)
    )
    sink = RecordingEventSink()
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(create_test_pipeline_context(event_sink=sink))
    assert dict(tracker.error_counts) == {"bad": 1}
    wide = [(t, d["stage"], d["status"]) for t, d in sink.events if t.endswith(".wide") and d]
    # Only stage events were asked for: no pipeline.wide.
    assert wide == [("stage.wide", "auth", "completed"), ("stage.wide", "bad", "failed")]
