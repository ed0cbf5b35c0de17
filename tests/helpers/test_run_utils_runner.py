"""PipelineRunner, RunResult and run_simple_pipeline: outcomes, the global sink, instrumentation."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

import stageflow_trio.helpers as helpers_package
from stageflow_trio.context import ContextSnapshot
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import NoOpEventSink, get_event_sink, set_event_sink
from stageflow_trio.helpers import run_utils
from stageflow_trio.helpers.run_utils import (
    ObservableEventSink,
    PipelineRunner,
    RunResult,
    run_simple_pipeline,
)
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec
from stageflow_trio.pipeline.interceptors_hardening import ContextSizeInterceptor
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

RUN_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture(autouse=True)
def _stop_tracing() -> Iterator[None]:
    was_tracing = tracemalloc.is_tracing()
    yield
    if not was_tracing:
        tracemalloc.stop()


def quiet(**kwargs: Any) -> PipelineRunner:
    return PipelineRunner(verbose=False, **kwargs)


async def greet(ctx: StageContext) -> StageOutput:
    await trio.sleep(0.25)
    return StageOutput.ok(text=f"hi {ctx.snapshot.input_text}")


async def shout(ctx: StageContext) -> StageOutput:
    await trio.sleep(0.5)
    return StageOutput.ok(text=ctx.inputs.get_from("greet", "text").upper())


async def stop(ctx: StageContext) -> StageOutput:
    await trio.sleep(0.1)
    return StageOutput.cancel(reason="enough", data={"seen": True})


async def boom(ctx: StageContext) -> StageOutput:
    raise RuntimeError("bad input")


def two_stages() -> Pipeline:
    return (
        Pipeline("demo")
        .with_stage("greet", greet, StageKind.TRANSFORM)
        .with_stage("shout", shout, StageKind.TRANSFORM, dependencies=("greet",))
    )


def test_all_is_the_references() -> None:
    assert sorted(run_utils.__all__) == [
        "JsonLogFormatter",
        "ObservableEventSink",
        "PipelineRunner",
        "RunResult",
        "run_simple_pipeline",
        "setup_logging",
    ]
    for name in ("PipelineRunner", "RunResult", "run_simple_pipeline", "setup_logging"):
        assert getattr(helpers_package, name) is getattr(run_utils, name)


# --- create_snapshot -----------------------------------------------------------------


def test_create_snapshot_defaults() -> None:
    snapshot = quiet().create_snapshot(input_text="hello")
    ids = snapshot.run_id
    for value in (ids.pipeline_run_id, ids.request_id, ids.session_id, ids.user_id):
        assert isinstance(value, uuid.UUID)
        assert value.version == 4
    assert ids.interaction_id is not None
    assert ids.org_id is None
    assert (snapshot.topology, snapshot.execution_mode, snapshot.input_text) == (
        "pipeline",
        "practice",
        "hello",
    )
    assert snapshot.metadata == {"channel": "cli"}


def test_create_snapshot_keeps_given_ids_and_merges_metadata() -> None:
    org = uuid.uuid4()
    snapshot = quiet().create_snapshot(
        pipeline_run_id=RUN_ID,
        org_id=org,
        channel="web",
        metadata={"tenant": "acme"},
        topology="chat",
        execution_mode="doctor",
        input_audio_duration_ms=1200,
    )
    assert (snapshot.pipeline_run_id, snapshot.org_id) == (RUN_ID, org)
    assert snapshot.metadata == {"channel": "web", "tenant": "acme"}
    assert (snapshot.topology, snapshot.execution_mode) == ("chat", "doctor")
    assert snapshot.input_audio_duration_ms == 1200
    assert quiet().create_snapshot(metadata={"channel": "x"}).metadata == {"channel": "x"}


# --- run outcomes --------------------------------------------------------------------


async def test_completed_run(autojump_clock: Any) -> None:
    result = await quiet().run(two_stages(), input_text="bob", pipeline_run_id=RUN_ID)
    assert result.success
    assert result.stages == {"greet": {"text": "hi bob"}, "shout": {"text": "HI BOB"}}
    assert isinstance(result.stages, FrozenDict)
    assert result.duration_ms == 750.0
    assert (result.error, result.error_type, result.cancelled, result.cancel_reason) == (
        None,
        None,
        False,
        None,
    )
    assert result.pipeline_run_id == RUN_ID
    assert [e["type"] for e in result.events] == [
        "stage.greet.started",
        "stage.greet.completed",
        "stage.shout.started",
        "stage.shout.completed",
        "pipeline_completed",
    ]
    assert isinstance(result.events, FrozenList)
    assert result.to_dict() == {
        "success": True,
        "stages": {"greet": {"text": "hi bob"}, "shout": {"text": "HI BOB"}},
        "duration_ms": 750.0,
        "pipeline_run_id": str(RUN_ID),
    }


async def test_cancelled_by_a_stage_is_a_success_with_the_reason(autojump_clock: Any) -> None:
    pipeline = (
        Pipeline()
        .with_stage("greet", greet, StageKind.TRANSFORM)
        .with_stage("stop", stop, StageKind.GUARD)
        .with_stage("shout", shout, StageKind.TRANSFORM, dependencies=("greet", "stop"))
    )
    result = await quiet().run(pipeline, input_text="x", pipeline_run_id=RUN_ID)
    assert (result.success, result.cancelled, result.cancel_reason) == (True, True, "enough")
    assert result.stages == {"stop": {"cancel_reason": "enough", "seen": True}}
    assert result.duration_ms == 100.0
    assert result.to_dict() == {
        "success": True,
        "stages": {"stop": {"cancel_reason": "enough", "seen": True}},
        "duration_ms": 100.0,
        "cancelled": True,
        "cancel_reason": "enough",
        "pipeline_run_id": str(RUN_ID),
    }


async def test_cancelled_by_a_token(autojump_clock: Any) -> None:
    token = CancellationToken()

    async def later() -> None:
        await trio.sleep(0.3)
        token.cancel("user left")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(later)
        result = await quiet().run(two_stages(), cancel_token=token)
    assert (result.success, result.cancelled, result.cancel_reason) == (True, True, "user left")
    assert result.stages == {"greet": {"text": "hi None"}}
    assert result.duration_ms == 300.0


async def test_failed_run(autojump_clock: Any) -> None:
    pipeline = Pipeline().with_stage("boom", boom, StageKind.TRANSFORM)
    result = await quiet().run(pipeline, pipeline_run_id=RUN_ID)
    assert (result.success, result.stages, result.cancelled) == (False, {}, False)
    assert (result.error, result.error_type) == (
        "Stage 'boom' failed: bad input",
        "UnifiedStageExecutionError",
    )
    assert result.to_dict() == {
        "success": False,
        "stages": {},
        "duration_ms": 0.0,
        "error": "Stage 'boom' failed: bad input",
        "error_type": "UnifiedStageExecutionError",
        "pipeline_run_id": str(RUN_ID),
    }
    assert [e["type"] for e in result.events][-1] == "pipeline_failed"


async def test_graphs_and_spec_lists_run_too(autojump_clock: Any) -> None:
    specs = [UnifiedStageSpec(name="greet", runner=greet, kind=StageKind.TRANSFORM)]
    for pipeline in (specs, UnifiedStageGraph(specs)):
        result = await quiet().run(pipeline, input_text="g")
        assert result.stages == {"greet": {"text": "hi g"}}


async def test_given_snapshot_is_used(autojump_clock: Any) -> None:
    snapshot = ContextSnapshot(input_text="given", topology="t")
    result = await quiet().run(two_stages(), input_text="ignored", snapshot=snapshot)
    assert result.get_stage_data("greet", "text") == "hi given"
    assert result.pipeline_run_id is None
    assert "pipeline_run_id" not in result.to_dict()


async def test_a_pipeline_context_is_the_run_s_context(autojump_clock: Any) -> None:
    # stageflow 1.2's entry: the stages see the context's data; its hooks run.
    own_sink = RecordingEventSink()
    ctx = PipelineContext.create(pipeline_run_id=RUN_ID, topology="ctx", event_sink=own_sink)
    hooked: list[str] = []
    ctx.add_before_stage_start_hook(lambda name, *_: hooked.append(name))
    result = await quiet().run(two_stages(), input_text="ann", pipeline_ctx=ctx)
    assert result.success
    assert result.stages == {"greet": {"text": "hi ann"}, "shout": {"text": "HI ANN"}}
    assert result.pipeline_run_id == RUN_ID
    assert hooked == ["greet", "shout"]
    assert [e["type"] for e in result.events][-1] == "pipeline_completed"
    # Filled in where the context had nothing; its own sink is back and saw nothing.
    assert (ctx.input_text, ctx.execution_mode) == ("ann", "practice")
    assert ctx.event_sink is own_sink
    assert own_sink.events == []


async def test_a_pipeline_context_keeps_its_own_text_and_mode(autojump_clock: Any) -> None:
    ctx = PipelineContext.create(input_text="own", execution_mode="live")
    result = await quiet().run(two_stages(), input_text="other", pipeline_ctx=ctx)
    assert result.get_stage_data("greet", "text") == "hi own"
    assert ctx.execution_mode == "live"


async def test_a_pipeline_context_gets_its_sink_back_after_a_failure(autojump_clock: Any) -> None:
    ctx = PipelineContext.create()
    own = ctx.event_sink
    failing = Pipeline().with_stage("boom", boom, StageKind.WORK)
    result = await quiet().run(failing, pipeline_ctx=ctx)
    assert (result.success, result.error) == (False, "Stage 'boom' failed: bad input")
    assert ctx.event_sink is own


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"pipeline_ctx": "ctx"},
            TypeError,
            r"^PipelineRunner\.run: pipeline_ctx must be a PipelineContext or None; got str$",
        ),
        (
            {"pipeline_ctx": PipelineContext.create(), "snapshot": ContextSnapshot()},
            ValueError,
            r"^PipelineRunner\.run: pass either pipeline_ctx or snapshot, not both$",
        ),
        (
            {"pipeline_ctx": PipelineContext.create(), "metadata": {"a": 1}, "user_id": RUN_ID},
            ValueError,
            r"^PipelineRunner\.run: metadata, user_id would make a snapshot;",
        ),
    ],
)
async def test_a_pipeline_context_run_refuses_bad_arguments_before_it_starts(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    before = RecordingEventSink()
    set_event_sink(before)
    with pytest.raises(error, match=message):
        await quiet().run(two_stages(), **kwargs)
    assert get_event_sink() is before
    assert before.events == []


async def test_no_capture_keeps_no_events(autojump_clock: Any) -> None:
    result = await quiet(capture_events=False).run(two_stages())
    assert result.events == []


async def test_run_is_a_checkpoint() -> None:
    async def instant(ctx: StageContext) -> StageOutput:
        return StageOutput.ok()

    with trio.testing.assert_checkpoints():
        await quiet().run(Pipeline().with_stage("a", instant, StageKind.TRANSFORM))


# --- the global event sink -----------------------------------------------------------


async def test_the_runs_sink_is_global_during_the_run_and_the_previous_one_comes_back(
    autojump_clock: Any,
) -> None:
    seen: list[Any] = []

    async def look(ctx: StageContext) -> StageOutput:
        seen.append(get_event_sink())
        seen.append(ctx.event_sink)
        return StageOutput.ok()

    previous = RecordingEventSink()
    set_event_sink(previous)
    result = await quiet().run(Pipeline().with_stage("look", look, StageKind.TRANSFORM))
    assert isinstance(seen[0], ObservableEventSink)
    assert seen[0] is seen[1]
    assert get_event_sink() is previous
    assert previous.events == []
    assert result.success


async def test_without_a_previous_sink_none_is_left_set(autojump_clock: Any) -> None:
    await quiet().run(two_stages())
    first, second = get_event_sink(), get_event_sink()
    assert isinstance(first, NoOpEventSink)
    assert first is not second  # unset again: each call makes a new NoOpEventSink


@pytest.mark.parametrize("outcome", ["fail", "cancel"])
async def test_sink_restored_after_failure_and_stage_cancel(
    outcome: str, autojump_clock: Any
) -> None:
    previous = RecordingEventSink()
    set_event_sink(previous)
    runner = boom if outcome == "fail" else stop
    await quiet().run(Pipeline().with_stage("a", runner, StageKind.TRANSFORM))
    assert get_event_sink() is previous


async def test_outer_cancellation_propagates_and_restores_the_sink(autojump_clock: Any) -> None:
    previous = RecordingEventSink()
    set_event_sink(previous)
    tracker_runner = quiet(enable_memory_tracker=True)
    with trio.move_on_after(0.1) as scope:
        await tracker_runner.run(two_stages())
    assert scope.cancelled_caught
    assert get_event_sink() is previous
    assert tracker_runner.memory_tracker is not None
    assert [s.label for s in tracker_runner.memory_tracker.samples] == ["pipeline:start"]
    with trio.CancelScope() as outer:
        outer.cancel()
        with pytest.raises(trio.Cancelled):
            await quiet().run(two_stages())


async def test_setup_errors_raise_and_restore_the_sink() -> None:
    previous = RecordingEventSink()
    set_event_sink(previous)
    with pytest.raises(TypeError):
        await quiet().run(two_stages(), no_such_field=1)
    assert get_event_sink() is previous
    runner = quiet(enable_memory_tracker=True, memory_tracker_auto_start=False)
    with pytest.raises(RuntimeError, match=r"^MemoryTracker is not active"):
        await runner.run(two_stages())
    assert get_event_sink() is previous


async def test_no_task_outlives_the_run(autojump_clock: Any) -> None:
    def count() -> int:
        tasks, todo = 0, [trio.lowlevel.current_root_task()]
        while todo:
            task = todo.pop()
            assert task is not None
            tasks += 1
            for nursery in task.child_nurseries:
                todo.extend(nursery.child_tasks)
        return tasks

    before = count()
    pipeline = (
        Pipeline()
        .with_stage("greet", greet, StageKind.TRANSFORM)
        .with_stage("stop", stop, StageKind.GUARD)
    )
    await quiet().run(pipeline)
    assert count() == before


# --- instrumentation -----------------------------------------------------------------


async def test_memory_labels_for_each_outcome(autojump_clock: Any) -> None:
    runner = quiet(enable_memory_tracker=True)
    await runner.run(two_stages())
    await runner.run(Pipeline().with_stage("s", stop, StageKind.GUARD))
    await runner.run(Pipeline().with_stage("b", boom, StageKind.TRANSFORM))
    assert runner.memory_tracker is not None
    assert [s.label for s in runner.memory_tracker.samples] == [
        "pipeline:start",
        "pipeline:end",
        "pipeline:start",
        "pipeline:cancelled",
        "pipeline:start",
        "pipeline:error",
    ]


async def test_uuid_monitor_sees_each_run_id(autojump_clock: Any) -> None:
    runner = quiet(enable_uuid_monitor=True, uuid_monitor_ttl_seconds=60)
    assert runner.uuid_monitor is not None
    assert runner.uuid_monitor.category == "pipeline"
    events: list[bool] = []
    runner.uuid_monitor.add_listener(lambda event: events.append(event.collision))
    await runner.run(two_stages(), pipeline_run_id=RUN_ID)
    await runner.run(two_stages())
    await runner.run(two_stages(), pipeline_run_id=RUN_ID)
    await runner.run(two_stages(), snapshot=ContextSnapshot())  # no run id: not observed
    assert events == [False, False, True]
    assert quiet().uuid_monitor is None
    assert quiet().memory_tracker is None


async def test_hardening_interceptors_wrap_a_pipeline_or_spec_list(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured: list[str] = []

    class Recording(ContextSizeInterceptor):
        async def before(self, stage_name: str, ctx: Any) -> None:
            measured.append(stage_name)
            return await super().before(stage_name, ctx)

    monkeypatch.setattr(run_utils, "ContextSizeInterceptor", Recording)
    runner = quiet(enable_context_size_monitor=True, enable_immutability_check=True)
    assert (await runner.run(two_stages(), input_text="a")).success
    specs = [UnifiedStageSpec(name="greet", runner=greet, kind=StageKind.TRANSFORM)]
    assert (await runner.run(specs)).success
    assert measured == ["greet", "shout", "greet"]
    with pytest.raises(ValueError, match=r"^PipelineRunner.run: enable_immutability_check and"):
        await runner.run(UnifiedStageGraph(specs))


async def test_build_must_return_a_unified_graph() -> None:
    class Odd:
        def build(self) -> str:
            return "graph"

    with pytest.raises(
        TypeError,
        match=r"^PipelineRunner.run: pipeline.build\(\) must return a UnifiedStageGraph; got str$",
    ):
        await quiet().run(Odd())


# --- printing ------------------------------------------------------------------------


async def test_verbose_prints_a_header_and_the_events(
    autojump_clock: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    await PipelineRunner(colorize=False).run(two_stages(), input_text="y" * 70)
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == [
        "",
        "=" * 60,
        "RUNNING PIPELINE: pipeline",
        "=" * 60,
        f"Input: {'y' * 60}...",
        "Mode: practice",
    ]
    assert out[6] == "-" * 60
    assert any(line.endswith("] stage.greet.started") for line in out)
    await PipelineRunner(colorize=False).run(two_stages())
    assert "Input:" not in capsys.readouterr().out


def test_print_result_plain_and_colored(capsys: pytest.CaptureFixture[str]) -> None:
    plain = PipelineRunner(colorize=False)
    plain.print_result(
        RunResult(
            success=True,
            stages={"a": {"short": 1, "long": "x" * 120}, "b": "not a dict"},
            duration_ms=12.34,
            cancelled=True,
            cancel_reason="why",
        )
    )
    assert capsys.readouterr().out.splitlines() == [
        "",
        "=" * 60,
        "RESULTS",
        "=" * 60,
        "Pipeline completed successfully!",
        "  (Cancelled: why)",
        "  Duration: 12.3ms",
        "  Stages: 2",
        "",
        "  Stage: a",
        "    short: 1",
        f"    long: {'x' * 100}...",
        "",
        "  Stage: b",
    ]
    plain.print_result(RunResult(success=True, stages={"a": {"k": 1}}), show_data=False)
    assert "Stage: a" not in capsys.readouterr().out
    PipelineRunner().print_result(RunResult(success=False, error="bad", error_type="E"))
    assert capsys.readouterr().out.splitlines()[4:] == [
        "\033[91mPipeline failed: bad\033[0m",
        "  Error type: E",
        "  Duration: 0.0ms",
    ]
    PipelineRunner().print_result(RunResult(success=True))
    assert "\033[92mPipeline completed successfully!\033[0m" in capsys.readouterr().out


# --- RunResult and run_simple_pipeline -----------------------------------------------


def test_run_result_is_frozen_with_read_only_containers() -> None:
    result = RunResult(success=True, stages={"a": {"k": 1}}, events=[{"type": "x"}])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.success = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.stages["b"] = {}
    assert result.get_stage_data("a", "k") == 1
    assert result.get_stage_data("a", "missing", "d") == "d"
    assert result.get_stage_data("nope", "k") is None
    assert type(result.to_dict()["stages"]) is dict
    assert RunResult(success=False, error="").to_dict() == {
        "success": False,
        "stages": {},
        "duration_ms": 0.0,
    }


async def test_run_simple_pipeline_passes_metadata(autojump_clock: Any) -> None:
    seen: list[Any] = []

    async def look(ctx: StageContext) -> StageOutput:
        seen.append(dict(ctx.snapshot.metadata))
        seen.append(ctx.snapshot.execution_mode)
        return StageOutput.ok(text=ctx.snapshot.input_text)

    pipeline = Pipeline().with_stage("look", look, StageKind.TRANSFORM)
    result = await run_simple_pipeline(
        pipeline, "hello", metadata={"tenant": "acme"}, execution_mode="doctor"
    )
    assert result.stages == {"look": {"text": "hello"}}
    assert seen == [{"channel": "cli", "tenant": "acme"}, "doctor"]
    assert [e["type"] for e in result.events][-1] == "pipeline_completed"
    await run_simple_pipeline(pipeline, "again")
    assert seen[2] == {"channel": "cli"}


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: PipelineRunner(verbose="yes"), TypeError, r"^PipelineRunner: verbose must be a bool; got str$"),  # type: ignore[arg-type]
        (lambda: PipelineRunner(enable_context_size_monitor=1), TypeError, r"^PipelineRunner: enable_context_size_monitor must be a bool; got int$"),  # type: ignore[arg-type]
        (lambda: PipelineRunner(uuid_monitor_ttl_seconds=None), TypeError, r"^PipelineRunner: uuid_monitor_ttl_seconds must be a number; got NoneType$"),  # type: ignore[arg-type]
        (lambda: PipelineRunner().create_snapshot(metadata=[1]), TypeError, r"^PipelineRunner.create_snapshot: metadata must be a mapping or None; got list$"),  # type: ignore[arg-type]
        (lambda: PipelineRunner().create_snapshot(user_id="nope"), ValueError, r"^user_id must be a UUID string, got 'nope'$"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_bad_arguments(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"snapshot": "x"}, r"^PipelineRunner\.run: snapshot must be a ContextSnapshot or None; got str$"),
        ({"cancel_token": "tok"}, r"^PipelineRunner\.run: cancel_token must be a CancellationToken or None; got str$"),
        ({"execution_mode": ["x"]}, r"^PipelineRunner\.run: execution_mode must be a str; got list$"),
        ({"execution_mode": None}, r"^PipelineRunner\.run: execution_mode must be a str; got NoneType$"),
        ({"input_text": 5}, r"^PipelineRunner\.run: input_text must be a str or None; got int$"),
        ({"channel": 5}, r"^PipelineRunner\.create_snapshot: channel must be a str; got int$"),
        ({"topology": b"chat"}, r"^PipelineRunner\.create_snapshot: topology must be a str; got bytes$"),
    ],
)  # fmt: skip
async def test_run_refuses_bad_arguments_at_the_call(kwargs: dict[str, Any], message: str) -> None:
    ran: list[str] = []

    async def record(ctx: StageContext) -> StageOutput:
        ran.append("stage")
        return StageOutput.ok()

    before = RecordingEventSink()
    set_event_sink(before)
    pipeline = Pipeline("p").with_stage("record", record, StageKind.TRANSFORM)
    with pytest.raises(TypeError, match=message):
        await quiet(enable_uuid_monitor=True).run(pipeline, **kwargs)
    assert get_event_sink() is before
    assert (before.events, ran) == ([], [])


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((5,), {"execution_mode": "m"}, r"^run_simple_pipeline: input_text must be a str or None; got int$"),
        (("hi",), {"execution_mode": ["x"]}, r"^run_simple_pipeline: execution_mode must be a str; got list$"),
    ],
)  # fmt: skip
async def test_run_simple_pipeline_refuses_non_str_texts(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        await run_simple_pipeline(two_stages(), *args, **kwargs)


def test_create_snapshot_refuses_non_str_texts() -> None:
    runner = quiet()
    with pytest.raises(
        TypeError, match=r"^PipelineRunner\.create_snapshot: execution_mode must be a str; got int$"
    ):
        runner.create_snapshot(execution_mode=5)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^PipelineRunner\.create_snapshot: input_text must be a str or None; got int$",
    ):
        runner.create_snapshot(input_text=5)  # type: ignore[arg-type]
