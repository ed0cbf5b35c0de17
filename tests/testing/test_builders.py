"""The public test helpers in stageflow_trio.testing."""

from __future__ import annotations

import uuid

import pytest

from stageflow_trio.context.types import Message
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_snapshot,
    create_test_stage_context,
)


def test_snapshot_defaults() -> None:
    snap = create_test_snapshot(input_text="hi")
    assert snap.topology == "test"
    assert snap.execution_mode == "test"
    assert snap.input_text == "hi"
    for value in (snap.pipeline_run_id, snap.request_id, snap.user_id, snap.interaction_id):
        assert isinstance(value, uuid.UUID)
    assert snap.session_id is None
    assert snap.org_id is None
    assert create_test_snapshot().pipeline_run_id != snap.pipeline_run_id


def test_snapshot_takes_given_ids_and_messages() -> None:
    run = uuid.UUID(int=7)
    snap = create_test_snapshot(
        pipeline_run_id=run, messages=[Message(role="user", content="hello")]
    )
    assert snap.pipeline_run_id == run
    assert snap.conversation is not None
    assert [m.content for m in snap.conversation.messages] == ["hello"]


def test_stage_context_reads_prior_outputs_without_strictness() -> None:
    ctx = create_test_stage_context(
        prior_outputs={"a": StageOutput.ok(value=42)}, input_text="x", stage_name="b"
    )
    assert ctx.inputs.get("value") == 42
    assert ctx.inputs.get_from("a", "value") == 42
    assert ctx.stage_name == "b"
    assert ctx.snapshot.input_text == "x"
    assert isinstance(ctx.event_sink, RecordingEventSink)


def test_stage_context_records_what_a_stage_emits() -> None:
    ctx = create_test_stage_context()
    ctx.try_emit_event(type="custom.thing", data={"k": 1})
    sink = ctx.event_sink
    assert isinstance(sink, RecordingEventSink)
    [payload] = sink.of_type("custom.thing")
    assert payload is not None
    assert payload["k"] == 1
    assert payload["pipeline_run_id"] == str(ctx.snapshot.pipeline_run_id)


def test_stage_context_rejects_snapshot_fields_next_to_a_snapshot() -> None:
    with pytest.raises(
        TypeError, match=r"^create_test_stage_context: snapshot fields \(input_text\)"
    ):
        create_test_stage_context(snapshot=create_test_snapshot(), input_text="x")


def test_pipeline_context_defaults() -> None:
    ctx = create_test_pipeline_context(data={"k": "v"})
    assert isinstance(ctx, PipelineContext)
    assert ctx.service == "test"
    assert ctx.data == {"k": "v"}
    assert isinstance(ctx.pipeline_run_id, uuid.UUID)
    assert ctx.org_id is None
    assert isinstance(ctx.event_sink, RecordingEventSink)


def test_the_builders_are_top_level_names_too() -> None:
    import stageflow_trio
    import stageflow_trio.testing as testing

    for name in (
        "create_test_pipeline_context",
        "create_test_snapshot",
        "create_test_stage_context",
    ):
        assert name in stageflow_trio.__all__
        assert getattr(stageflow_trio, name) is getattr(testing, name)
