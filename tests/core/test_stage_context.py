"""Tests for stageflow_trio.core.stage_context (StageContext) and core.stage_protocol (Stage)."""

from __future__ import annotations

import inspect
import logging
import uuid
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import attrs
import pytest

from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.core import stage_context as stage_context_module
from stageflow_trio.core.stage_context import StageContext, create_stage_context
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.core.stage_protocol import Stage
from stageflow_trio.core.timer import PipelineTimer
from stageflow_trio.events.sink import set_event_sink
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.inputs import StageInputs
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import FailingSink, RefRecorder, extra, import_reference

RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQ = uuid.UUID("22222222-2222-4222-8222-222222222222")
SES = uuid.UUID("33333333-3333-4333-8333-333333333333")
USR = uuid.UUID("44444444-4444-4444-8444-444444444444")
ORG = uuid.UUID("55555555-5555-4555-8555-555555555555")
INT = uuid.UUID("66666666-6666-4666-8666-666666666666")
IDS: dict[str, uuid.UUID | None] = {
    "pipeline_run_id": RUN,
    "request_id": REQ,
    "session_id": SES,
    "user_id": USR,
    "org_id": ORG,
    "interaction_id": INT,
}
NO_IDS: dict[str, uuid.UUID | None] = dict.fromkeys(IDS)
LOGGER = "stageflow_trio.core.stage_context"


def snapshot_of(ids: dict[str, Any], **kwargs: Any) -> ContextSnapshot[Any]:
    return ContextSnapshot(run_id=RunIdentity(**ids), **kwargs)


def make(sink: Any = None, ids: dict[str, uuid.UUID | None] = IDS, **kwargs: Any) -> StageContext:
    snapshot = snapshot_of(ids, **{"topology": "chat_fast", "execution_mode": "practice", **kwargs})
    return StageContext(
        snapshot=snapshot,
        inputs=StageInputs(snapshot),
        stage_name="llm",
        timer=PipelineTimer(),
        event_sink=sink,
    )


def both(
    ids: dict[str, uuid.UUID | None], execution_mode: str | None
) -> tuple[StageContext, RecordingEventSink, Any, RefRecorder]:
    """The same stage context in stageflow_trio and in the reference, each with a recorder."""
    reference = import_reference()
    ref_core, ref_context = reference.core, reference.context
    ref_inputs = reference.stages.inputs
    ours_sink, ref_sink = RecordingEventSink(), RefRecorder()
    ours = make(ours_sink, ids, execution_mode=execution_mode)
    ref_snapshot = ref_context.ContextSnapshot(
        run_id=ref_context.RunIdentity(**ids), topology="chat_fast", execution_mode=execution_mode
    )
    theirs = ref_core.StageContext(
        snapshot=ref_snapshot,
        inputs=ref_inputs.StageInputs(snapshot=ref_snapshot),
        stage_name="llm",
        timer=ref_core.PipelineTimer(),
        event_sink=ref_sink,
    )
    return ours, ours_sink, theirs, ref_sink


def _params(func: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


# --- surface -----------------------------------------------------------------------------------


def test_all_and_signatures_match_the_reference(reference: ModuleType) -> None:
    ref = reference.core.stage_context
    assert sorted(stage_context_module.__all__) == [
        "StageCancellationRequested",
        "StageContext",
        "create_stage_context",
    ]
    # Two additions, keyword-only (docs/parity.md): the run's cleanup registry and
    # where cancellation is looked up (stageflow 1.2's private probe callables).
    assert _params(StageContext) == [
        *_params(ref.StageContext),
        ("cleanup_registry", inspect.Parameter.KEYWORD_ONLY, None),
        ("cancellation", inspect.Parameter.KEYWORD_ONLY, None),
    ]
    assert _params(create_stage_context) == _params(ref.create_stage_context)
    public = {n for n in dir(ref.StageContext) if not n.startswith("_")}
    assert public <= set(dir(StageContext))
    for name in public:
        theirs = getattr(ref.StageContext, name)
        if inspect.isfunction(theirs) or inspect.ismethod(theirs):
            assert _params(getattr(StageContext, name)) == _params(theirs), name
        else:
            assert isinstance(getattr(StageContext, name), type(theirs)), name


# --- construction ------------------------------------------------------------------------------


def test_construction_stores_references_without_copying() -> None:
    snapshot = snapshot_of(IDS)
    inputs = StageInputs(snapshot)
    timer = PipelineTimer()
    sink = RecordingEventSink()
    ctx = StageContext(snapshot=snapshot, inputs=inputs, stage_name="s", timer=timer)
    assert ctx.snapshot is snapshot
    assert ctx.inputs is inputs
    assert ctx.timer is timer
    assert ctx.event_sink is None
    positional = StageContext(snapshot, inputs, "s", timer, sink)
    assert positional.event_sink is sink
    assert create_stage_context(snapshot, inputs, "s", timer, sink) == positional
    assert create_stage_context(snapshot, inputs, "s", timer).event_sink is None


def test_stage_context_is_frozen() -> None:
    ctx = make()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ctx.stage_name = "other"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ctx.event_sink = RecordingEventSink()  # type: ignore[misc]


def test_properties_read_the_snapshot_and_timer() -> None:
    ctx = make()
    assert ctx.pipeline_run_id == RUN
    assert ctx.request_id == REQ
    assert ctx.execution_mode == "practice"
    assert ctx.started_at == ctx.timer.started_at
    assert ctx.started_at.tzinfo is UTC
    empty = make(ids=NO_IDS, execution_mode=None)
    assert (empty.pipeline_run_id, empty.request_id, empty.execution_mode) == (None, None, None)


def test_to_dict_is_the_snapshot_plus_stage_name_and_start() -> None:
    ctx = make()
    result = ctx.to_dict()
    expected = ctx.snapshot.to_dict()
    expected["stage_name"] = "llm"
    expected["started_at"] = ctx.timer.started_at.isoformat()
    assert result == expected
    assert list(result)[-2:] == ["stage_name", "started_at"]


def test_to_dict_keys_match_the_reference() -> None:
    ours, _, theirs, _ = both(IDS, "practice")
    assert list(ours.to_dict()) == list(theirs.to_dict())


def test_now_is_timezone_aware_utc() -> None:
    before = datetime.now(UTC)
    assert before <= StageContext.now() <= datetime.now(UTC)
    assert StageContext.now().tzinfo is UTC


# --- try_emit_event ----------------------------------------------------------------------------


def test_try_emit_event_enriches_and_caller_keys_win() -> None:
    sink = RecordingEventSink()
    ctx = make(sink)
    ctx.try_emit_event("tool.completed", {"tool": "t", "request_id": "mine"})
    [(event_type, data)] = sink.events
    assert event_type == "tool.completed"
    assert data == {
        "pipeline_run_id": str(RUN),
        "request_id": "mine",
        "execution_mode": "practice",
        "tool": "t",
    }
    assert list(data) == ["pipeline_run_id", "request_id", "execution_mode", "tool"]


def test_try_emit_event_without_ids_gives_none() -> None:
    sink = RecordingEventSink()
    make(sink, ids=NO_IDS, execution_mode=None).try_emit_event("e", {})
    assert sink.events == [
        ("e", {"pipeline_run_id": None, "request_id": None, "execution_mode": None})
    ]


def test_try_emit_event_suppresses_sink_errors_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    make(FailingSink()).try_emit_event("tool.failed", {"x": 1})
    [record] = caplog.records
    assert record.name == LOGGER
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "Failed to emit event tool.failed: sink down"


def test_try_emit_event_without_a_sink_only_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    global_sink = RecordingEventSink()
    set_event_sink(global_sink)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    make().try_emit_event("tool.invoked", {"tool": "t"})
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == "Event (no sink): tool.invoked"
    assert extra(record, "pipeline_run_id") == str(RUN)
    assert extra(record, "execution_mode") == "practice"
    assert extra(record, "tool") == "t"
    # The global sink is not a fallback for a StageContext.
    assert global_sink.events == []


def test_try_emit_event_without_a_sink_is_silent_above_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    make().try_emit_event("tool.invoked", {"tool": "t"})
    assert caplog.records == []


def test_try_emit_event_without_a_sink_tolerates_reserved_log_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The reference raises KeyError("Attempt to overwrite 'name' in LogRecord") here.
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    make().try_emit_event("e", {"name": "tool", "message": "m", "tool": "t"})
    [record] = caplog.records
    assert record.name == LOGGER
    assert record.getMessage() == "Event (no sink): e"
    assert extra(record, "tool") == "t"


@pytest.mark.parametrize(
    ("ids", "mode", "data"),
    [
        (IDS, "practice", {"tool": "t"}),
        (NO_IDS, None, {}),
        ({**NO_IDS, "request_id": REQ}, "doc_edit", {"pipeline_run_id": "caller", "n": [1]}),
    ],
)
def test_try_emit_event_matches_the_reference(
    ids: dict[str, uuid.UUID | None], mode: str | None, data: dict[str, Any]
) -> None:
    ours, ours_sink, theirs, ref_sink = both(ids, mode)
    ours.try_emit_event("tool.invoked", data)
    theirs.try_emit_event("tool.invoked", data)
    assert ours_sink.events == ref_sink.events
    assert [list(d or {}) for _, d in ours_sink.events] == [
        list(d or {}) for _, d in ref_sink.events
    ]


# --- record_stage_event ------------------------------------------------------------------------


def test_record_stage_event() -> None:
    sink = RecordingEventSink()
    make(sink).record_stage_event("stt", "completed", duration_ms=5, stage_name="override")
    assert sink.events == [
        (
            "stage.completed",
            {
                "pipeline_run_id": str(RUN),
                "request_id": str(REQ),
                "execution_mode": "practice",
                "stage": "stt",
                "status": "completed",
                "stage_name": "override",
                "duration_ms": 5,
            },
        )
    ]


def test_record_stage_event_suppresses_sink_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    make(FailingSink()).record_stage_event("stt", "failed")
    assert [r.getMessage() for r in caplog.records] == [
        "Failed to emit event stage.failed: sink down"
    ]


def test_record_stage_event_matches_the_reference() -> None:
    ours, ours_sink, theirs, ref_sink = both(IDS, "practice")
    ours.record_stage_event("stt", "started", attempt=1)
    theirs.record_stage_event("stt", "started", attempt=1)
    assert ours_sink.events == ref_sink.events
    assert [list(d or {}) for _, d in ours_sink.events] == [
        list(d or {}) for _, d in ref_sink.events
    ]


# --- as_pipeline_context -----------------------------------------------------------------------


def test_as_pipeline_context_carries_the_snapshot() -> None:
    sink = RecordingEventSink()
    ctx = make(sink)
    data = {"k": "v"}
    configuration = {"c": 1}
    db = object()
    pipeline_ctx = ctx.as_pipeline_context(
        data=data, configuration=configuration, service="chat", db=db
    )
    assert isinstance(pipeline_ctx, PipelineContext)
    assert pipeline_ctx.pipeline_run_id == RUN
    assert pipeline_ctx.request_id == REQ
    assert pipeline_ctx.session_id == SES
    assert pipeline_ctx.user_id == USR
    assert pipeline_ctx.org_id == ORG
    assert pipeline_ctx.interaction_id == INT
    assert pipeline_ctx.topology == "chat_fast"
    assert pipeline_ctx.execution_mode == "practice"
    assert pipeline_ctx.service == "chat"
    assert pipeline_ctx.db is db
    assert pipeline_ctx.event_sink is sink
    assert pipeline_ctx.data == data
    assert pipeline_ctx.data is not data
    assert pipeline_ctx.configuration == configuration
    assert pipeline_ctx.configuration is not configuration


def test_as_pipeline_context_defaults_and_global_sink_fallback() -> None:
    global_sink = RecordingEventSink()
    set_event_sink(global_sink)
    pipeline_ctx = make().as_pipeline_context()
    assert pipeline_ctx.service == "pipeline"
    assert pipeline_ctx.data == {}
    assert pipeline_ctx.configuration == {}
    assert pipeline_ctx.db is None
    assert pipeline_ctx.event_sink is global_sink
    assert make().as_pipeline_context(service="").service == "pipeline"


def test_as_pipeline_context_matches_the_reference() -> None:
    ours, _, theirs, _ = both(IDS, "practice")
    kwargs: dict[str, Any] = {"data": {"a": 1}, "configuration": {"b": 2}, "service": "svc"}
    # Less the keys stageflow 1.2 added to to_dict() (tests/stages/test_context_derivation.py).
    new = {"input_text", "input_audio_duration_ms", "metadata", "cancellation_reason"}

    def as_091(ctx: Any) -> dict[str, Any]:
        return {k: v for k, v in ctx.to_dict().items() if k not in new}

    assert (
        as_091(ours.as_pipeline_context(**kwargs)) == theirs.as_pipeline_context(**kwargs).to_dict()
    )
    assert as_091(ours.as_pipeline_context()) == theirs.as_pipeline_context().to_dict()


# --- Stage protocol ----------------------------------------------------------------------------


class EchoStage:
    name = "echo"
    kind = StageKind.TRANSFORM

    async def execute(self, ctx: StageContext) -> StageOutput:
        return StageOutput.ok({"stage": ctx.stage_name})


async def test_a_stage_implementation_satisfies_the_protocol() -> None:
    echo = EchoStage()
    stage: Stage = echo
    output = await echo.execute(make())
    assert output.data == {"stage": "llm"}
    assert stage.kind is StageKind.TRANSFORM


def test_stage_protocol_members_match_the_reference(reference: ModuleType) -> None:
    ref = reference.core.stage_protocol
    assert set(Stage.__annotations__) == set(ref.Stage.__annotations__) == {"name", "kind"}
    assert inspect.iscoroutinefunction(Stage.execute)
    assert _params(Stage.execute) == _params(ref.Stage.execute)
    # Neither is runtime-checkable.
    with pytest.raises(TypeError):
        isinstance(EchoStage(), Stage)  # type: ignore[misc]
    with pytest.raises(TypeError):
        isinstance(EchoStage(), ref.Stage)


def test_the_engines_builder_makes_what_the_constructor_makes() -> None:
    # UnifiedStageGraph builds one context per stage through _engine_stage_context,
    # which writes the slots itself: it must set every field, as the constructor does.
    snapshot = ContextSnapshot(run_id=RunIdentity(pipeline_run_id=RUN), topology="t")
    inputs = StageInputs(snapshot=snapshot)
    timer = PipelineTimer()
    sink = RecordingEventSink()
    registry, cancellation = object(), PipelineContext()
    args = (snapshot, inputs, "stage", timer, sink, registry, cancellation)
    built = stage_context_module._engine_stage_context(*args)  # type: ignore[arg-type]
    made = StageContext(
        snapshot=snapshot,
        inputs=inputs,
        stage_name="stage",
        timer=timer,
        event_sink=sink,
        cleanup_registry=registry,  # type: ignore[arg-type]
        cancellation=cancellation,
    )
    assert type(built) is StageContext
    names = [field.name for field in attrs.fields(StageContext)]
    assert names == [
        "snapshot",
        "inputs",
        "stage_name",
        "timer",
        "event_sink",
        "cleanup_registry",
        "cancellation",
    ], "a new StageContext field must be set by _engine_stage_context too"
    for name, value in zip(names, args, strict=True):
        assert getattr(built, name) is value
        assert getattr(made, name) is value
    assert built == made
    assert repr(built) == repr(made)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.stage_name = "other"  # type: ignore[misc]
