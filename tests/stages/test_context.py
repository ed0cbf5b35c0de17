"""Tests for stageflow_trio.stages.context: PipelineContext and extract_service."""

from __future__ import annotations

import inspect
import uuid
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageArtifact, StageOutput
from stageflow_trio.events.sink import NoOpEventSink, set_event_sink
from stageflow_trio.stages import context as context_module
from stageflow_trio.stages.context import PipelineContext, extract_service
from stageflow_trio.stages.inputs import UndeclaredDependencyError
from stageflow_trio.stages.ports import CorePorts
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.utils.frozen import FrozenDict
from tests.fakes import FailingSink, RefRecorder, import_reference

RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQ = uuid.UUID("22222222-2222-4222-8222-222222222222")
SES = uuid.UUID("33333333-3333-4333-8333-333333333333")
USR = uuid.UUID("44444444-4444-4444-8444-444444444444")
ORG = uuid.UUID("55555555-5555-4555-8555-555555555555")
INT = uuid.UUID("66666666-6666-4666-8666-666666666666")
CHILD = uuid.UUID("77777777-7777-4777-8777-777777777777")
CORR = uuid.UUID("88888888-8888-4888-8888-888888888888")

IDS: dict[str, Any] = {
    "pipeline_run_id": RUN,
    "request_id": REQ,
    "session_id": SES,
    "user_id": USR,
    "org_id": ORG,
    "interaction_id": INT,
}
NO_IDS: dict[str, Any] = dict.fromkeys(IDS)
UUID_FIELDS = [*IDS, "parent_run_id", "correlation_id"]


def make(sink: Any = None, **overrides: Any) -> PipelineContext:
    kwargs: dict[str, Any] = {**IDS, "topology": "chat_fast", "execution_mode": "practice"}
    kwargs.update(overrides)
    if sink is not None:
        kwargs["event_sink"] = sink
    return PipelineContext(**kwargs)


def both(**kwargs: Any) -> tuple[PipelineContext, RecordingEventSink, Any, RefRecorder]:
    """The same context built in stageflow_trio and in the reference, each with a recorder."""
    ref = import_reference().stages.context
    ours_sink, ref_sink = RecordingEventSink(), RefRecorder()
    return (
        PipelineContext(**kwargs, event_sink=ours_sink),
        ours_sink,
        ref.PipelineContext(**kwargs, event_sink=ref_sink),
        ref_sink,
    )


def _without_timestamp(data: dict[str, Any] | None) -> dict[str, Any]:
    assert data is not None
    return {k: v for k, v in data.items() if k != "timestamp"}


# --- construction ------------------------------------------------------------------------------


def _params(func: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


# Keys stageflow 1.2 added to to_dict(), absent from the 0.9.1 reference's.
NEW_12_KEYS = frozenset(
    {"input_text", "input_audio_duration_ms", "metadata", "cancellation_reason"}
)
NEW_12_PARAMETERS = dict.fromkeys(
    [
        "input_text",
        "input_audio_duration_ms",
        "conversation",
        "enrichments",
        "extensions",
        "metadata",
        "created_at",
        "ports",
        "cancellation_reason",
        "_before_stage_start_hooks",
    ]
)


def _as_091(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in NEW_12_KEYS}


def test_all_and_public_methods_match_the_reference(reference: ModuleType) -> None:
    ref = reference.stages.context
    # stageflow 1.2 also lists StageContext here (core's, loaded on first use).
    assert sorted(context_module.__all__) == sorted([*ref.__all__, "StageContext"])
    assert context_module.StageContext is StageContext
    public = {n for n in dir(ref.PipelineContext) if not n.startswith("_")}
    assert public <= set(dir(PipelineContext))
    # stageflow 1.2 widened these (mark_canceled(reason=), fork(inherit_data=, data_overrides=),
    # derive_for_stage's optional snapshot); tests/stages/test_context_derivation.py covers them.
    widened = {"mark_canceled", "fork", "fork_for_subpipeline", "derive_for_stage"}
    checked = 0
    for name in public - widened:
        theirs = getattr(ref.PipelineContext, name)
        if inspect.isfunction(theirs) or inspect.ismethod(theirs):
            assert _params(getattr(PipelineContext, name)) == _params(theirs), name
            checked += 1
    assert checked == 7


def test_constructor_parameters_match_the_reference(reference: ModuleType) -> None:
    ref = reference.stages.context
    ours = inspect.signature(PipelineContext).parameters
    theirs = inspect.signature(ref.PipelineContext).parameters
    # 0.9.1's parameters, in order, with stageflow 1.2's additions among them.
    assert [n for n in ours if n not in NEW_12_PARAMETERS] == list(theirs)
    assert list(ours)[9:16] == list(NEW_12_PARAMETERS)[:7]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours.values())
    # 1.2 gave the six ids a None default.
    assert [n for n, p in ours.items() if p.default is inspect.Parameter.empty] == []


def test_defaults() -> None:
    ctx = PipelineContext(**NO_IDS)
    assert ctx.topology is None
    assert ctx.configuration == {}
    assert ctx.execution_mode is None
    assert ctx.service == "pipeline"
    assert isinstance(ctx.event_sink, NoOpEventSink)
    assert ctx.data == {}
    assert ctx.db is None
    assert ctx.canceled is False
    assert ctx.artifacts == []
    assert ctx.parent_run_id is None
    assert ctx.parent_stage_id is None
    assert ctx.correlation_id is None
    assert ctx.get_parent_data("k", "d") == "d"
    assert ctx.is_child_run is False
    # Mutable defaults are not shared between instances.
    other = PipelineContext(**NO_IDS)
    ctx.data["x"] = 1
    ctx.configuration["y"] = 2
    assert other.data == {}
    assert other.configuration == {}


def test_keyword_only_and_ids_default_to_none() -> None:
    with pytest.raises(TypeError):
        PipelineContext(RUN, REQ, SES, USR, ORG, INT)  # type: ignore[call-arg]
    ctx = PipelineContext(**{k: v for k, v in IDS.items() if k != "interaction_id"})
    assert ctx.interaction_id is None
    assert PipelineContext().pipeline_run_id is None


def test_event_sink_is_the_global_sink_captured_at_construction() -> None:
    first, second = RecordingEventSink(), RecordingEventSink()
    set_event_sink(first)
    ctx = PipelineContext(**NO_IDS)
    set_event_sink(second)
    assert ctx.event_sink is first
    ctx.try_emit_event("x", {})
    assert first.types() == ["x"]
    assert second.events == []


def test_uuid_strings_are_parsed_on_construction_and_assignment() -> None:
    as_strings: dict[str, Any] = {k: str(v) for k, v in IDS.items()}
    ctx = PipelineContext(**as_strings, parent_run_id=str(CHILD))
    assert ctx.pipeline_run_id == RUN
    assert ctx.interaction_id == INT
    assert ctx.parent_run_id == CHILD
    ctx.pipeline_run_id = str(CHILD)  # type: ignore[assignment]
    assert ctx.pipeline_run_id == CHILD
    ctx.pipeline_run_id = None
    assert ctx.pipeline_run_id is None


@pytest.mark.parametrize("field", UUID_FIELDS)
def test_bad_uuids_raise_naming_the_field(field: str) -> None:
    kwargs = {**NO_IDS, field: "not-a-uuid"}
    with pytest.raises(ValueError, match=rf"^{field} must be a UUID string, got 'not-a-uuid'$"):
        PipelineContext(**kwargs)
    kwargs[field] = 42
    with pytest.raises(
        TypeError, match=rf"^{field} must be a UUID, a UUID string or None, got int$"
    ):
        PipelineContext(**kwargs)
    ctx = PipelineContext(**NO_IDS)
    with pytest.raises(ValueError, match=rf"^{field} must be a UUID string, got 'x'$"):
        setattr(ctx, field, "x")
    assert getattr(ctx, field) is None


def test_context_is_mutable_and_slotted() -> None:
    ctx = make()
    ctx.topology = "voice_fast"
    ctx.data["k"] = "v"
    ctx.artifacts.append(StageArtifact(type="t", payload={}))
    assert ctx.topology == "voice_fast"
    assert ctx.to_dict()["artifacts_count"] == 1
    with pytest.raises(AttributeError):
        ctx.not_a_field = 1  # type: ignore[attr-defined]


# --- cancellation ------------------------------------------------------------------------------


def test_mark_canceled_only_sets_the_flag() -> None:
    sink = RecordingEventSink()
    ctx = make(sink, data={"k": 1})
    before = attrs.asdict(ctx, recurse=False)
    assert before["canceled"] is False
    ctx.mark_canceled()
    assert ctx.is_canceled is True
    assert ctx.to_dict()["canceled"] is True
    after = attrs.asdict(ctx, recurse=False)
    changed = {"canceled", "cancellation_reason"}
    assert after["cancellation_reason"] == "Cancellation requested"
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed
    }
    assert sink.events == []
    ctx.mark_canceled()
    assert ctx.canceled is True


# --- try_emit_event ----------------------------------------------------------------------------


def test_try_emit_event_enriches_in_order_and_caller_keys_win() -> None:
    sink = RecordingEventSink()
    ctx = make(sink, service="chat")
    ctx.try_emit_event("tool.completed", {"tool": "t", "execution_mode": "override"})
    [(event_type, data)] = sink.events
    assert event_type == "tool.completed"
    assert data == {
        "pipeline_run_id": str(RUN),
        "request_id": str(REQ),
        "execution_mode": "override",
        "topology": "chat_fast",
        "service": "chat",
        "tool": "t",
    }
    assert list(data) == [
        "pipeline_run_id",
        "request_id",
        "execution_mode",
        "topology",
        "service",
        "tool",
    ]


def test_try_emit_event_without_ids_gives_none_and_does_not_alias_data() -> None:
    sink = RecordingEventSink()
    ctx = PipelineContext(**NO_IDS, event_sink=sink)
    payload = {"a": 1}
    ctx.try_emit_event("e", payload)
    [(_, data)] = sink.events
    assert data == {
        "pipeline_run_id": None,
        "request_id": None,
        "execution_mode": None,
        "topology": None,
        "service": "pipeline",
        "a": 1,
    }
    assert data is not payload
    assert payload == {"a": 1}


def test_try_emit_event_lets_sink_errors_propagate() -> None:
    ctx = make(FailingSink())
    with pytest.raises(RuntimeError, match=r"^sink down$"):
        ctx.try_emit_event("e", {})


@pytest.mark.parametrize(
    ("kwargs", "data"),
    [
        (IDS, {"tool": "t"}),
        (NO_IDS, {}),
        ({**IDS, "topology": "voice_kernel", "service": "voice"}, {"service": "mine", "x": [1]}),
        ({**NO_IDS, "execution_mode": "doc_edit"}, {"pipeline_run_id": "caller"}),
    ],
)
def test_try_emit_event_matches_the_reference(kwargs: dict[str, Any], data: dict[str, Any]) -> None:
    ours, ours_sink, theirs, ref_sink = both(**kwargs)
    ours.try_emit_event("tool.invoked", data)
    theirs.try_emit_event("tool.invoked", data)
    assert ours_sink.events == ref_sink.events
    assert [list(d or {}) for _, d in ours_sink.events] == [
        list(d or {}) for _, d in ref_sink.events
    ]


# --- record_stage_event ------------------------------------------------------------------------


def test_record_stage_event_legacy_payload() -> None:
    sink = RecordingEventSink()
    ctx = make(sink, service="chat")
    before = datetime.now(UTC)
    ctx.record_stage_event(stage="stt", status="completed", payload={"duration_ms": 12})
    after = datetime.now(UTC)
    [(event_type, data)] = sink.events
    assert event_type == "stage.stt.completed"
    assert data is not None
    timestamp = datetime.fromisoformat(data["timestamp"])
    assert timestamp.tzinfo is not None
    assert before <= timestamp <= after
    assert data == {
        "request_id": str(REQ),
        "session_id": str(SES),
        "user_id": str(USR),
        "org_id": str(ORG),
        "service": "chat",
        "stage": "stt",
        "status": "completed",
        "timestamp": data["timestamp"],
        "topology": "chat_fast",
        "execution_mode": "practice",
        "duration_ms": 12,
        "pipeline_run_id": str(RUN),
    }
    assert list(data) == [
        "request_id",
        "session_id",
        "user_id",
        "org_id",
        "service",
        "stage",
        "status",
        "timestamp",
        "topology",
        "execution_mode",
        "duration_ms",
        "pipeline_run_id",
    ]


def test_record_stage_event_omits_a_missing_run_id_and_payload_overrides() -> None:
    sink = RecordingEventSink()
    ctx = PipelineContext(**NO_IDS, event_sink=sink)
    ctx.record_stage_event(
        stage="llm",
        status="failed",
        payload={"error": "x", "service": "payload", "pipeline_run_id": "from-payload"},
    )
    [(event_type, data)] = sink.events
    assert event_type == "stage.llm.failed"
    assert data is not None
    assert data["service"] == "payload"
    assert data["pipeline_run_id"] == "from-payload"
    assert data["error"] == "x"
    assert data["request_id"] is None
    sink.clear()
    ctx.record_stage_event(stage="llm", status="started")
    [(_, data)] = sink.events
    assert data is not None
    assert "pipeline_run_id" not in data


def test_record_stage_event_run_id_overrides_the_payload() -> None:
    sink = RecordingEventSink()
    make(sink).record_stage_event(stage="a", status="started", payload={"pipeline_run_id": "p"})
    [(_, data)] = sink.events
    assert data is not None
    assert data["pipeline_run_id"] == str(RUN)


def test_record_stage_event_lets_sink_errors_propagate() -> None:
    with pytest.raises(RuntimeError, match=r"^sink down$"):
        make(FailingSink()).record_stage_event(stage="a", status="started")


@pytest.mark.parametrize(
    ("kwargs", "payload"),
    [
        (IDS, None),
        (IDS, {"duration_ms": 5, "stage": "renamed"}),
        (NO_IDS, {}),
        ({**NO_IDS, "org_id": ORG}, {"pipeline_run_id": "p", "error": "e"}),
    ],
)
def test_record_stage_event_matches_the_reference(
    kwargs: dict[str, Any], payload: dict[str, Any] | None
) -> None:
    ours, ours_sink, theirs, ref_sink = both(**kwargs, topology="t", execution_mode="m")
    ours.record_stage_event(stage="stt", status="completed", payload=payload)
    theirs.record_stage_event(stage="stt", status="completed", payload=payload)
    [(our_type, our_data)] = ours_sink.events
    [(ref_type, ref_data)] = ref_sink.events
    assert our_type == ref_type
    assert list(our_data or {}) == list(ref_data or {})
    assert _without_timestamp(our_data) == _without_timestamp(ref_data)
    assert {k: type(v) for k, v in (our_data or {}).items()} == {
        k: type(v) for k, v in (ref_data or {}).items()
    }


# --- to_dict, metadata, now --------------------------------------------------------------------


def test_to_dict() -> None:
    ctx = make(service="chat", data={"k": "v"})
    assert ctx.to_dict() == {
        "pipeline_run_id": str(RUN),
        "request_id": str(REQ),
        "session_id": str(SES),
        "user_id": str(USR),
        "org_id": str(ORG),
        "interaction_id": str(INT),
        "topology": "chat_fast",
        "execution_mode": "practice",
        "input_text": None,
        "input_audio_duration_ms": None,
        "metadata": {},
        "service": "chat",
        "data": {"k": "v"},
        "canceled": False,
        "cancellation_reason": None,
        "artifacts_count": 0,
    }
    # As in the reference, "data" is the live dict.
    assert ctx.to_dict()["data"] is ctx.data


def test_to_dict_of_a_child_has_the_parent_link() -> None:
    child = make().fork(CHILD, "spawner", CORR)
    result = child.to_dict()
    assert result["parent_run_id"] == str(RUN)
    assert result["parent_stage_id"] == "spawner"
    assert result["correlation_id"] == str(CORR)
    assert list(result)[-3:] == ["parent_run_id", "parent_stage_id", "correlation_id"]


@pytest.mark.parametrize(
    "kwargs",
    [
        IDS,
        NO_IDS,
        {**NO_IDS, "parent_run_id": RUN, "parent_stage_id": "s", "correlation_id": CORR},
        {**IDS, "parent_stage_id": "", "canceled": True},
    ],
)
def test_to_dict_matches_the_reference(kwargs: dict[str, Any]) -> None:
    ours, _, theirs, _ = both(**kwargs, data={"x": 1}, topology="a_b")
    assert _as_091(ours.to_dict()) == theirs.to_dict()
    assert list(_as_091(ours.to_dict())) == list(theirs.to_dict())


def test_stage_metadata() -> None:
    ctx = make()
    assert ctx.get_stage_metadata("stt") is None
    ctx.set_stage_metadata("stt", {"model": "m"})
    ctx.set_stage_metadata("stt", {"model": "n"})
    assert ctx.get_stage_metadata("stt") == {"model": "n"}
    assert ctx.get_stage_metadata("llm") is None


def test_now_is_timezone_aware_utc() -> None:
    before = datetime.now(UTC)
    now = PipelineContext.now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)
    assert make().now().tzinfo is UTC


# --- fork --------------------------------------------------------------------------------------


def test_fork_builds_a_linked_child() -> None:
    sink = RecordingEventSink()
    db = object()
    parent = make(sink, service="chat", configuration={"c": 1}, data={"k": "v"}, db=db)
    parent.set_stage_metadata("s", {"m": 1})
    parent.artifacts.append(StageArtifact(type="t", payload={}))
    parent.mark_canceled()

    child = parent.fork(CHILD, "spawner", CORR)

    assert child.pipeline_run_id == CHILD
    assert (child.request_id, child.session_id, child.user_id, child.org_id) == (
        REQ,
        SES,
        USR,
        ORG,
    )
    assert child.interaction_id == INT
    assert child.topology == "chat_fast"
    assert child.execution_mode == "practice"
    assert child.service == "chat"
    assert child.event_sink is sink
    assert child.db is db
    assert child.configuration == {"c": 1}
    assert child.configuration is not parent.configuration
    assert child.data == {}
    assert child.artifacts == []
    assert child.canceled is False
    assert child.get_stage_metadata("s") is None
    assert child.parent_run_id == RUN
    assert child.parent_stage_id == "spawner"
    assert child.correlation_id == CORR
    assert child.is_child_run is True
    assert child.get_parent_data("k") == "v"
    assert child.get_parent_data("missing", 0) == 0


def test_fork_writes_every_field_as_the_constructor_would() -> None:
    # fork writes the child's slots itself (no generated __init__): every field
    # must be set, to what the constructor would have made of the same values.
    sink = RecordingEventSink()

    async def hook(stage_name: str, stage_kind: Any, stage_ctx: Any, ctx: Any) -> None:
        return None

    parent = make(
        sink,
        service="chat",
        configuration={"c": 1},
        metadata={"m": 2},
        data={"k": "v"},
        db=object(),
        input_text="hi",
        input_audio_duration_ms=5,
        extensions={"e": 1},
        ports=CorePorts(),
    )
    parent.add_before_stage_start_hook(hook)
    parent.mark_canceled("stop")
    child = parent.fork(CHILD, "spawner", str(CORR), topology="t2")  # type: ignore[arg-type]
    expected = PipelineContext(
        pipeline_run_id=CHILD,
        **{name: getattr(parent, name) for name in IDS if name != "pipeline_run_id"},
        topology="t2",
        configuration={"c": 1},
        execution_mode=parent.execution_mode,
        input_text="hi",
        input_audio_duration_ms=5,
        conversation=parent.conversation,
        enrichments=parent.enrichments,
        extensions=parent.extensions,
        metadata={"m": 2},
        created_at=parent.created_at,
        service="chat",
        event_sink=sink,
        data={},
        ports=parent.ports,
        db=parent.db,
        parent_run_id=RUN,
        parent_stage_id="spawner",
        correlation_id=CORR,
        _parent_data=FrozenDict({"k": "v"}),
        _before_stage_start_hooks=[hook],
    )
    for field in attrs.fields(PipelineContext):
        assert getattr(child, field.name) == getattr(expected, field.name), field.name
    assert child == expected
    assert child.correlation_id == CORR  # the str was parsed, as the constructor does
    assert not child._cancel_callbacks
    assert child._cancel_callbacks is not parent._cancel_callbacks
    assert child.configuration is not parent.configuration
    assert child.metadata is not parent.metadata
    assert child._before_stage_start_hooks is not parent._before_stage_start_hooks
    child.request_id = str(REQ)  # type: ignore[assignment]  # assignment still converts
    assert child.request_id == REQ
    with pytest.raises(ValueError, match="correlation_id"):
        parent.fork(CHILD, "spawner", "not-a-uuid")  # type: ignore[arg-type]


def test_fork_freezes_a_copy_of_the_parent_data() -> None:
    parent = make(data={"k": "v"})
    child = parent.fork(CHILD, "s", CORR)
    parent.data["k"] = "changed"
    parent.data["new"] = 1
    assert child.get_parent_data("k") == "v"
    assert child.get_parent_data("new") is None
    frozen = child._parent_data
    assert isinstance(frozen, FrozenDict)
    with pytest.raises(TypeError):
        frozen["k"] = "x"
    child.data["k"] = "child"
    assert parent.data["k"] == "changed"


def test_fork_overrides_topology_and_mode_unless_empty() -> None:
    parent = make()
    child = parent.fork(CHILD, "s", CORR, topology="voice_fast", execution_mode="roleplay")
    assert (child.topology, child.execution_mode) == ("voice_fast", "roleplay")
    fallback = parent.fork(CHILD, "s", CORR, topology="", execution_mode="")
    assert (fallback.topology, fallback.execution_mode) == ("chat_fast", "practice")


def test_fork_for_subpipeline_is_fork() -> None:
    assert PipelineContext.fork_for_subpipeline is PipelineContext.fork
    child = make().fork_for_subpipeline(CHILD, "s", CORR, topology="x")
    assert child.parent_run_id == RUN
    assert child.topology == "x"


def test_grandchild_links_to_its_parent() -> None:
    child = make(data={"a": 1}).fork(CHILD, "s1", CORR)
    child.data["b"] = 2
    grandchild = child.fork(RUN, "s2", CORR)
    assert grandchild.parent_run_id == CHILD
    assert grandchild.get_parent_data("b") == 2
    assert grandchild.get_parent_data("a") is None


@pytest.mark.parametrize(
    ("kwargs", "topology", "mode"),
    [(IDS, None, None), (NO_IDS, "t2", None), ({**IDS, "topology": "t"}, "", "m2")],
)
def test_fork_matches_the_reference(
    kwargs: dict[str, Any], topology: str | None, mode: str | None
) -> None:
    ours, ours_sink, theirs, ref_sink = both(
        **kwargs, data={"k": "v"}, configuration={"c": [1]}, service="svc"
    )
    our_child = ours.fork(CHILD, "spawner", CORR, topology=topology, execution_mode=mode)
    ref_child = theirs.fork(CHILD, "spawner", CORR, topology=topology, execution_mode=mode)
    assert _as_091(our_child.to_dict()) == ref_child.to_dict()
    assert our_child.configuration == ref_child.configuration
    assert our_child.get_parent_data("k") == ref_child.get_parent_data("k")
    assert our_child.is_child_run == ref_child.is_child_run
    assert our_child.event_sink is ours_sink
    our_child.try_emit_event("e", {})
    ref_child.try_emit_event("e", {})
    assert ours_sink.events == ref_sink.events


# --- derive_for_stage --------------------------------------------------------------------------


class FakeOutputBag:
    """Only what derive_for_stage reads from an OutputBag (passed where an OutputBag is typed)."""

    def __init__(self, outputs: dict[str, StageOutput]) -> None:
        self._outputs = outputs

    def outputs(self) -> dict[str, StageOutput]:
        return dict(self._outputs)


def test_derive_for_stage_builds_a_stage_context() -> None:
    sink = RecordingEventSink()
    ctx = make(sink)
    snapshot: ContextSnapshot[Any] = ContextSnapshot(
        run_id=RunIdentity(pipeline_run_id=RUN), execution_mode="practice"
    )
    bag = FakeOutputBag({"stt": StageOutput.ok({"t": "hi"}), "other": StageOutput.ok()})
    ports = CorePorts(db="session")

    stage_ctx = ctx.derive_for_stage(
        "llm",
        snapshot,
        bag,  # type: ignore[arg-type]
        declared_deps=["stt"],
        ports=ports,
    )

    assert isinstance(stage_ctx, StageContext)
    assert stage_ctx.stage_name == "llm"
    assert stage_ctx.snapshot is snapshot
    assert stage_ctx.event_sink is sink
    assert stage_ctx.inputs.ports is ports
    assert stage_ctx.inputs.declared_deps == frozenset({"stt"})
    assert stage_ctx.inputs.get_from("stt", "t") == "hi"
    with pytest.raises(UndeclaredDependencyError):
        stage_ctx.inputs.get_from("other", "t")
    lenient = ctx.derive_for_stage("llm", snapshot, bag, declared_deps={"stt"}, strict=False)  # type: ignore[arg-type]
    assert lenient.inputs.has_output("other")


# --- extract_service ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topology", "expected"),
    [
        (None, None),
        ("fast_kernel", None),
        ("chat_fast", "chat"),
        ("voice_accurate_v2", "voice_accurate"),
        ("chat", "chat"),
        ("_x", "_x"),
        ("", ""),
    ],
)
def test_extract_service(topology: str | None, expected: str | None) -> None:
    assert extract_service(topology) == expected


@given(st.none() | st.text(alphabet="ab_kernl", max_size=12))
def test_extract_service_matches_the_reference(reference: ModuleType, topology: str | None) -> None:
    ref = reference.stages.context
    assert extract_service(topology) == ref.extract_service(topology)
