"""PipelineContext as a run's entry (stageflow 1.2): create, snapshots, fork, cancellation, hooks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.context.output_bag import OutputBag
from stageflow_trio.core import StageCancellationRequested, StageReturn
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.events.sink import NoOpEventSink, set_event_sink
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.ports import CorePorts
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context

RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
CHILD = uuid.UUID("77777777-7777-4777-8777-777777777777")
CORR = uuid.UUID("88888888-8888-4888-8888-888888888888")
WHEN = datetime(2025, 1, 2, tzinfo=UTC)


def test_create_copies_its_containers_and_defaults() -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    config, meta, data = {"c": 1}, {"m": 2}, {"d": 3}
    artifacts: list[Any] = []
    ctx = PipelineContext.create(
        pipeline_run_id=str(RUN),
        configuration=config,
        metadata=meta,
        data=data,
        artifacts=artifacts,
    )
    assert ctx.pipeline_run_id == RUN
    assert (ctx.configuration, ctx.metadata, ctx.data) == (config, meta, data)
    assert ctx.configuration is not config
    assert ctx.metadata is not meta
    assert ctx.data is not data
    assert ctx.artifacts is not artifacts
    assert ctx.event_sink is sink
    assert ctx.created_at.tzinfo is UTC
    assert ctx.service == "pipeline"


def test_to_snapshot_and_from_snapshot_round_trip() -> None:
    ctx = PipelineContext.create(
        pipeline_run_id=RUN,
        topology="chat_fast",
        execution_mode="practice",
        input_text="hi",
        input_audio_duration_ms=10,
        metadata={"k": "v"},
        extensions={"x": 1},
        created_at=WHEN,
    )
    snapshot = ctx.to_snapshot()
    assert snapshot.pipeline_run_id == RUN
    assert snapshot.created_at == WHEN
    assert snapshot.run_id.created_at == WHEN
    assert (snapshot.input_text, snapshot.input_audio_duration_ms) == ("hi", 10)
    assert dict(snapshot.metadata) == {"k": "v"}
    assert ctx.snapshot == snapshot
    assert ctx.snapshot is not ctx.snapshot  # derived on every read
    back = PipelineContext.from_snapshot(snapshot, data={"d": 1}, service="svc")
    assert back.to_snapshot() == snapshot
    assert (back.data, back.service, back.created_at) == ({"d": 1}, "svc", WHEN)


@pytest.mark.parametrize(
    ("inherit", "overrides", "expected"),
    [
        (False, None, {}),
        (True, None, {"a": 1, "b": 2}),
        (["b", "zz"], None, {"b": 2}),
        ({"a"}, {"a": 5, "n": 0}, {"a": 5, "n": 0}),
        (False, {"n": 0}, {"n": 0}),
        # Any mapping overrides; a generator of keys is read once.
        ((key for key in ("a", "b")), MappingProxyType({"b": 3}), {"a": 1, "b": 3}),
    ],
)
def test_fork_inherits_data_as_asked(
    inherit: Any, overrides: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    parent = PipelineContext.create(pipeline_run_id=RUN, data={"a": 1, "b": 2}, input_text="t")
    parent.add_before_stage_start_hook(lambda *args: None)
    child = parent.fork(CHILD, "spawner", CORR, inherit_data=inherit, data_overrides=overrides)
    assert child.data == expected
    assert child.data is not parent.data
    assert child.get_parent_data("a") == 1
    assert child.input_text == "t"
    assert child.created_at == parent.created_at
    assert child.cancellation_reason is None
    assert len(child._before_stage_start_hooks) == 1
    child.add_before_stage_start_hook(lambda *args: None)
    assert len(parent._before_stage_start_hooks) == 1  # a copy of the list


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"inherit_data": "a"},
            r"^PipelineContext\.fork: inherit_data must be a bool or an iterable of keys; got str$",
        ),
        (
            {"inherit_data": 3},
            r"^PipelineContext\.fork: inherit_data must be a bool or an iterable of keys; got int$",
        ),
        (
            {"data_overrides": [("a", 1)]},
            r"^PipelineContext\.fork: data_overrides must be a mapping or None; got list$",
        ),
    ],
)
def test_fork_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        PipelineContext.create().fork(CHILD, "s", CORR, **kwargs)


def test_mark_canceled_keeps_the_first_reason_and_calls_back_once() -> None:
    ctx = PipelineContext.create()
    calls: list[str] = []
    ctx.on_cancel(calls.append)
    removed = ctx.on_cancel(lambda reason: calls.append("removed"))
    removed()
    removed()  # harmless twice
    ctx.mark_canceled("first")
    ctx.mark_canceled("second")
    assert (ctx.canceled, ctx.is_canceled, ctx.cancellation_reason) == (True, True, "first")
    assert calls == ["first"]
    late: list[str] = []
    assert ctx.on_cancel(late.append) is not None
    assert late == ["first"]  # at once on a canceled context


def test_on_cancel_of_a_flag_only_context_gives_the_default_reason() -> None:
    ctx = PipelineContext.create(canceled=True)
    got: list[str] = []
    ctx.on_cancel(got.append)
    assert got == ["Cancellation requested"]


def test_mark_canceled_rejects_a_non_str_reason() -> None:
    with pytest.raises(
        TypeError, match=r"^PipelineContext\.mark_canceled: reason must be a str; got int$"
    ):
        PipelineContext.create().mark_canceled(3)  # type: ignore[arg-type]


async def test_pipeline_cancellation_checkpoint() -> None:
    ctx = PipelineContext.create()
    with trio.testing.assert_checkpoints():
        await ctx.cancellation_checkpoint()
    ctx.mark_canceled("why")
    with trio.testing.assert_checkpoints(), pytest.raises(StageCancellationRequested) as info:
        await ctx.cancellation_checkpoint()
    assert info.value.reason == "why"


async def test_stage_cancellation_checkpoint_outside_a_run() -> None:
    ctx = PipelineContext.create()
    stage = ctx.derive_root_stage_context(stage_name="s")
    with trio.testing.assert_checkpoints():
        await stage.cancellation_checkpoint()
    ctx.mark_canceled("gone")
    assert (stage.is_cancelled, stage.cancellation_reason) == (True, "gone")
    with trio.testing.assert_checkpoints(), pytest.raises(StageCancellationRequested) as info:
        await stage.cancellation_checkpoint()
    assert str(info.value) == "gone"


def test_stage_context_without_a_source_is_never_cancelled() -> None:
    stage = create_test_stage_context()
    assert (stage.is_cancelled, stage.cancellation_reason) == (False, None)
    stage.raise_if_cancelled()
    assert StageCancellationRequested().reason == "Stage execution cancelled"


def test_add_before_stage_start_hook_rejects_a_non_callable() -> None:
    with pytest.raises(
        TypeError,
        match=r"^PipelineContext\.add_before_stage_start_hook: hook must be callable; got int$",
    ):
        PipelineContext.create().add_before_stage_start_hook(3)  # type: ignore[arg-type]


async def test_run_before_stage_start_hooks_awaits_async_ones_in_order() -> None:
    ctx = PipelineContext.create()
    stage = ctx.derive_root_stage_context()
    order: list[str] = []

    async def second(*args: Any) -> None:
        order.append("async")

    ctx.add_before_stage_start_hook(lambda *args: order.append("sync"))
    ctx.add_before_stage_start_hook(second)
    await ctx.run_before_stage_start_hooks(stage_name="x", stage_kind=None, stage_ctx=stage)
    assert order == ["sync", "async"]


def test_derive_root_stage_context() -> None:
    sink = NoOpEventSink()
    ctx = PipelineContext.create(pipeline_run_id=RUN, db="session", event_sink=sink)
    root = ctx.derive_root_stage_context()
    assert root.stage_name == "__pipeline_root__"
    assert root.snapshot == ctx.to_snapshot()
    assert root.event_sink is sink
    assert root.cancellation is ctx
    assert isinstance(root.inputs.ports, CorePorts)
    assert root.inputs.ports.db == "session"
    assert root.inputs.prior_outputs == {}
    own = CorePorts(db="other")
    assert PipelineContext.create(ports=own).derive_root_stage_context().inputs.ports is own
    assert PipelineContext.create().derive_root_stage_context().inputs.ports is None


def test_derive_for_stage_takes_both_argument_orders() -> None:
    ctx = PipelineContext.create(pipeline_run_id=RUN)
    bag = OutputBag()
    snapshot: ContextSnapshot[Any] = ContextSnapshot(run_id=RunIdentity(pipeline_run_id=CHILD))
    new_order = ctx.derive_for_stage("s", bag, snapshot)
    old_order = ctx.derive_for_stage("s", snapshot, bag)
    derived = ctx.derive_for_stage("s", bag)
    assert new_order.snapshot is snapshot
    assert old_order.snapshot is snapshot
    assert derived.snapshot.pipeline_run_id == RUN
    assert derived.cancellation is ctx


def test_stage_context_emit_event_is_try_emit_event() -> None:
    sink = RecordingEventSink()
    stage = create_test_stage_context(event_sink=sink)
    stage.emit_event("custom.thing", {"k": 1})
    [(event_type, data)] = sink.events
    assert event_type == "custom.thing"
    assert data is not None
    assert data["k"] == 1


def test_as_pipeline_context_carries_the_ports_and_their_db() -> None:
    ports = CorePorts(db="session")
    stage = PipelineContext.create(ports=ports, input_text="x").derive_root_stage_context()
    view = stage.as_pipeline_context()
    assert (view.ports, view.db, view.input_text) == (ports, "session", "x")
    assert stage.as_pipeline_context(db="mine").db == "mine"


def test_stage_return_is_the_union_a_stage_may_return() -> None:
    outputs: list[StageReturn] = [StageOutput.ok(), {"a": 1}, None]
    assert StageReturn == StageOutput | dict[str, Any] | None
    assert len(outputs) == 3


def test_stage_context_type_is_unchanged_for_equality() -> None:
    ctx = PipelineContext.create()
    a = ctx.derive_root_stage_context()
    b = StageContext(
        snapshot=a.snapshot,
        inputs=a.inputs,
        stage_name=a.stage_name,
        timer=a.timer,
        event_sink=a.event_sink,
    )
    assert a == b  # the cancellation source is left out of equality, like cleanup_registry


def test_create_test_pipeline_context_takes_ports_as_in_1_2() -> None:
    from stageflow_trio.testing import create_test_pipeline_context

    ports = CorePorts(db="session")
    ctx = create_test_pipeline_context(ports=ports, input_text="hi")
    assert (ctx.ports, ctx.input_text) == (ports, "hi")
    assert ctx.derive_root_stage_context().inputs.ports is ports
