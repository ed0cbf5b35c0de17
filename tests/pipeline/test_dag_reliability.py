"""Reliability at the edges (issue 13): tokens, cleanup, abort hooks, terminal events."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.cancellation import (
    CancellationToken,
    StructuredTaskGroup,
    run_with_cleanup,
)
from stageflow_trio.pipeline.dag import (
    StageExecutionError,
    StageGraph,
    StageSpec,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.interceptors import BaseInterceptor, CriticalInterceptorError
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from tests.fakes import FailingSink, payload

from .graph_helpers import REQUEST_ID, RUN_ID, Runner, snapshot, spec, stage_ctx


async def test_a_cancel_output_stops_its_run_and_leaves_the_callers_token_alone(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def cancel(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.cancel(reason="enough")

    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(5)
        return StageOutput.ok(done=True)

    canceller = UnifiedStageGraph([spec("c", cancel)])
    other = UnifiedStageGraph([spec("s", slow)])
    token = CancellationToken()
    outcomes: dict[str, object] = {}

    async def run_other() -> None:
        outcomes["other"] = await other.run(stage_ctx(), cancel_token=token)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_other)
        with pytest.raises(UnifiedPipelineCancelled) as info:
            await canceller.run(stage_ctx(), cancel_token=token)
    assert (info.value.stage, info.value.reason) == ("c", "enough")
    assert not token.is_cancelled
    assert outcomes == {"other": {"s": StageOutput.ok(done=True).with_duration(5000)}}
    # A later run with the same token starts normally.
    assert (await other.run(stage_ctx(), cancel_token=token))["s"].data == {"done": True}
    assert trio.current_time() == 10


async def test_a_token_cancelled_during_cleanup_keeps_the_complete_results(
    autojump_clock: trio.abc.Clock,
) -> None:
    token = CancellationToken()
    graph = UnifiedStageGraph([spec("a")])

    async def cancel_late() -> None:
        await trio.sleep(1)
        token.cancel("too late")

    async def stage(ctx: StageContext) -> StageOutput:
        graph.register_cleanup(cancel_late)
        return StageOutput.ok(a=1)

    graph = UnifiedStageGraph([spec("a", stage)])
    results = await graph.run(stage_ctx(), cancel_token=token)
    assert token.is_cancelled
    assert results["a"].data == {"a": 1}
    assert trio.current_time() == 1


BAD_TIMEOUTS = [
    ("10", TypeError, "cleanup_timeout must be a number of seconds (int or float), got str"),
    (None, TypeError, "cleanup_timeout must be a number of seconds (int or float), got NoneType"),
    (float("nan"), ValueError, "cleanup_timeout must be a non-negative number of seconds, got nan"),
    (-0.5, ValueError, "cleanup_timeout must be a non-negative number of seconds, got -0.5"),
]


@pytest.mark.parametrize(("timeout", "error", "message"), BAD_TIMEOUTS)
def test_a_graph_refuses_a_bad_cleanup_timeout(
    timeout: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        UnifiedStageGraph([spec("a")], cleanup_timeout=timeout)
    assert str(info.value) == message


@pytest.mark.parametrize(("timeout", "error", "message"), BAD_TIMEOUTS)
def test_a_task_group_refuses_a_bad_cleanup_timeout(
    timeout: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        StructuredTaskGroup(cleanup_timeout=timeout)
    assert str(info.value) == message


@pytest.mark.parametrize(("timeout", "error", "message"), BAD_TIMEOUTS)
async def test_run_with_cleanup_refuses_a_bad_cleanup_timeout(
    timeout: Any, error: type[Exception], message: str
) -> None:
    log: list[str] = []

    async def work() -> int:
        log.append("work")
        return 1

    async def cleanup() -> None:
        log.append("cleanup")

    with pytest.raises(error) as info:
        await run_with_cleanup(work(), cleanup, cleanup_timeout=timeout)
    assert str(info.value) == message
    assert log == []


async def test_an_infinite_or_zero_cleanup_timeout_is_accepted(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    ended: list[float] = []

    async def slow_cleanup() -> None:
        await trio.sleep(1000)
        ended.append(trio.current_time())

    async def stage(ctx: StageContext) -> StageOutput:
        ctx.register_cleanup(slow_cleanup)
        return StageOutput.ok()

    # math.inf: no limit, a 1000 s cleanup runs to its end.
    start = trio.current_time()
    await UnifiedStageGraph([spec("a", stage)], cleanup_timeout=math.inf).run(stage_ctx())
    assert ended == [start + 1000]
    # 0: each callback still gets the 10 ms floor, then is cut off (logged, not raised).
    ended.clear()
    start = trio.current_time()
    async with StructuredTaskGroup(cleanup_timeout=0) as tg:
        tg.cleanup_registry.register(slow_cleanup, name="slow")
    assert trio.current_time() == pytest.approx(start + 0.01)
    assert ended == []
    assert "Cleanup timed out: slow" in caplog.messages


async def test_register_cleanup_attaches_to_the_run_of_the_calling_stage(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[tuple[str, float]] = []
    graph: UnifiedStageGraph

    def cleanup_for(label: str) -> Callable[[], Awaitable[None]]:
        async def cleanup() -> None:
            log.append((label, trio.current_time()))

        return cleanup

    async def stage(ctx: StageContext) -> StageOutput:
        label = ctx.snapshot.metadata["label"]
        delay = ctx.snapshot.metadata["delay"]
        graph.register_cleanup(cleanup_for(f"graph:{label}"))
        ctx.register_cleanup(cleanup_for(f"ctx:{label}"))
        await trio.sleep(delay)
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("a", stage)])

    async def run(label: str, delay: float) -> None:
        await graph.run(stage_ctx(snap=snapshot(metadata={"label": label, "delay": delay})))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "short", 1)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(run, "long", 5)
    # Each run's cleanups run when that run ends (LIFO), whatever started last.
    assert log == [("ctx:short", 1), ("graph:short", 1), ("ctx:long", 5), ("graph:long", 5)]


async def test_register_cleanup_outside_a_run_of_the_graph_is_an_error() -> None:
    graph = UnifiedStageGraph([spec("a")])
    other = UnifiedStageGraph([spec("b")])

    async def cleanup() -> None:
        raise AssertionError  # pragma: no cover

    message = (
        "UnifiedStageGraph.register_cleanup() was called outside any run of this graph;"
        " call it from one of its stages, or use ctx.register_cleanup()"
    )
    with pytest.raises(RuntimeError) as info:
        graph.register_cleanup(cleanup)
    assert str(info.value) == message

    async def registers_with_the_wrong_graph(ctx: StageContext) -> StageOutput:
        graph.register_cleanup(cleanup)
        return StageOutput.ok()

    other = UnifiedStageGraph([spec("b", registers_with_the_wrong_graph)])
    with pytest.raises(UnifiedStageExecutionError) as failed:
        await other.run(stage_ctx())
    assert str(failed.value.original) == message


def test_a_context_outside_a_run_has_no_cleanup_registry() -> None:
    ctx = stage_ctx()

    async def cleanup() -> None:
        raise AssertionError  # pragma: no cover

    with pytest.raises(RuntimeError) as info:
        ctx.register_cleanup(cleanup)
    assert str(info.value) == (
        "StageContext for stage 'pipeline' has no cleanup_registry:"
        " register_cleanup() needs a context made by a UnifiedStageGraph run"
    )


# --- terminal events for interrupted stages and runs -------------------------------------


async def sleeper(ctx: StageContext) -> StageOutput:
    await trio.sleep(10)
    return StageOutput.ok()


async def test_an_outer_deadline_gives_each_interrupted_stage_and_the_run_a_terminal_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("a"), spec("s1", sleeper, ["a"]), spec("s2", sleeper, ["a"])])
    with trio.move_on_after(2):
        await graph.run(stage_ctx(sink))
    types = sink.types()
    # s1 and s2 run in either order (trio schedules ready tasks in no fixed order).
    assert types[:2] == ["stage.a.started", "stage.a.completed"]
    assert sorted(types[2:4]) == ["stage.s1.started", "stage.s2.started"]
    assert sorted(types[4:6]) == ["stage.s1.cancelled", "stage.s2.cancelled"]
    assert types[6:] == ["pipeline_cancelled"]
    for stage in ("s1", "s2"):
        data = payload(sink.of_type(f"stage.{stage}.cancelled")[0])
        assert (data["duration_ms"], data["reason"]) == (2000, "deadline exceeded")
    data = payload(sink.of_type("pipeline_cancelled")[0])
    assert (data["stage"], data["reason"], data["stages_completed"]) == (
        "<external>",
        "deadline exceeded",
        ["a"],
    )


async def test_stages_interrupted_by_a_token_or_a_sibling_say_why(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()
    token = CancellationToken()

    async def cancel_soon() -> None:
        await trio.sleep(1)
        token.cancel("user left")

    graph = UnifiedStageGraph([spec("s", sleeper)])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_soon)
        with pytest.raises(UnifiedPipelineCancelled):
            await graph.run(stage_ctx(sink), cancel_token=token)
    assert payload(sink.of_type("stage.s.cancelled")[0])["reason"] == "user left"

    async def fails(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        raise KeyError("boom")

    sink.clear()
    graph = UnifiedStageGraph([spec("s", sleeper), spec("bad", fails)])
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx(sink))
    assert payload(sink.of_type("stage.s.cancelled")[0])["reason"] == "another stage failed"


async def test_an_interrupted_stage_gives_the_runs_reason_not_its_inner_scopes() -> None:
    # The Cancelled a stage sees comes from its innermost cancelled scope; when the
    # run stopped its stages, the run's reason is what the event reports.
    token = CancellationToken()

    def cancelled_inside(cancel_run: Callable[[], None]) -> Runner:
        async def stage(ctx: StageContext) -> StageOutput:
            with trio.CancelScope() as inner:
                inner.cancel(reason="inner timeout")
                cancel_run()
                await trio.lowlevel.checkpoint()
            raise AssertionError("not reached: the run's scope is cancelled too")

        return stage

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("s", cancelled_inside(lambda: token.cancel("user left")))])
    with pytest.raises(UnifiedPipelineCancelled):
        await graph.run(stage_ctx(sink), cancel_token=token)
    assert payload(sink.of_type("stage.s.cancelled")[0])["reason"] == "user left"

    legacy_sink = RecordingEventSink()
    legacy_ctx = create_test_pipeline_context(event_sink=legacy_sink)

    async def legacy_stage(ctx: PipelineContext) -> dict[str, Any]:
        await cancelled_inside(lambda: ctx.mark_canceled("operator stop"))(stage_ctx())
        return {}

    legacy = StageGraph([StageSpec(name="s", runner=legacy_stage)], interceptors=[])
    await legacy.run(legacy_ctx)
    assert payload(legacy_sink.of_type("stage.s.cancelled")[0])["reason"] == "operator stop"


async def test_an_outer_deadline_still_emits_pipeline_wide_as_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("s", sleeper)], emit_pipeline_wide_event=True)
    with trio.move_on_after(1):
        await graph.run(stage_ctx(sink))
    [pipeline] = sink.of_type("pipeline.wide")
    assert (payload(pipeline)["status"], payload(pipeline)["duration_ms"]) == ("cancelled", 1000)


async def test_a_legacy_stage_interrupted_from_outside_emits_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()

    async def slow(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(10)
        return {}

    graph = StageGraph([StageSpec(name="s", runner=slow)], interceptors=[])
    with trio.move_on_after(3):
        await graph.run(create_test_pipeline_context(event_sink=sink))
    assert sink.types() == ["stage.s.started", "stage.s.cancelled", "pipeline_cancelled"]
    data = payload(sink.of_type("stage.s.cancelled")[0])
    assert (data["duration_ms"], data["reason"]) == (3000, "deadline exceeded")


async def test_a_broken_sink_never_fails_a_legacy_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def ok(ctx: PipelineContext) -> dict[str, Any]:
        return {"x": 1}

    graph = StageGraph([StageSpec(name="s", runner=ok)], interceptors=[])
    results = await graph.run(create_test_pipeline_context(event_sink=FailingSink()))
    assert (results["s"].status, results["s"].data) == ("completed", {"x": 1})
    assert [r.getMessage() for r in caplog.records if r.name == "stageflow_trio.dag"] == [
        "Failed to emit stage.s.started: sink down",
        "Failed to emit stage.s.completed: sink down",
        "Failed to emit pipeline_completed: sink down",
    ]


async def test_a_cleanup_may_register_another_and_a_task_outliving_its_run_may_not(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    errors: list[str] = []
    graph: UnifiedStageGraph

    async def second() -> None:
        log.append("second")

    async def first() -> None:
        log.append("first")
        graph.register_cleanup(second)

    async def straggler() -> None:
        await trio.sleep(1)
        try:
            graph.register_cleanup(second)
        except RuntimeError as exc:
            errors.append(str(exc).split(";")[0])

    async with trio.open_nursery() as outside:

        async def stage(ctx: StageContext) -> StageOutput:
            graph.register_cleanup(first)
            outside.start_soon(straggler)  # inherits the stage's context, outlives the run
            return StageOutput.ok()

        graph = UnifiedStageGraph([spec("a", stage)])
        await graph.run(stage_ctx())
        assert log == ["first", "second"]
    assert errors == [
        "UnifiedStageGraph.register_cleanup() was called outside any run of this graph"
    ]


# --- pipeline-level terminal events (issue 13, defect 10) ---------------------------------

UNIFIED_IDS = {
    "pipeline_run_id": str(RUN_ID),
    "request_id": str(REQUEST_ID),
    "execution_mode": "test",
}


def pipeline_events(sink: RecordingEventSink) -> list[tuple[str, dict[str, Any]]]:
    """The run's pipeline-level events (``pipeline_*``; ``pipeline.wide`` is not one)."""
    return [(kind, payload(data)) for kind, data in sink.events if kind.startswith("pipeline_")]


def ends_with_one(sink: RecordingEventSink, kind: str) -> dict[str, Any]:
    """The payload of the run's one pipeline-level event, which must be its last event."""
    [(only, data)] = pipeline_events(sink)
    assert (only, sink.types()[-1]) == (kind, kind)
    return data


async def test_a_completed_unified_run_ends_with_pipeline_completed(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()

    async def one_second(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("b", one_second), spec("a", one_second, ["b"])])
    await graph.run(stage_ctx(sink))
    assert ends_with_one(sink, "pipeline_completed") == {
        **UNIFIED_IDS,
        "stages_completed": ["a", "b"],
        "duration_ms": 2000,
    }


@pytest.mark.parametrize("how", ["raises", "returns_fail"])
async def test_a_failed_unified_run_ends_with_pipeline_failed(
    autojump_clock: trio.abc.Clock, how: str
) -> None:
    sink = RecordingEventSink()

    async def bad(ctx: StageContext) -> StageOutput:
        await trio.sleep(3)
        if how == "raises":
            raise KeyError("boom")
        return StageOutput.fail(error="no good")

    graph = UnifiedStageGraph([spec("a"), spec("bad", bad, ["a"]), spec("s", sleeper)])
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx(sink))
    assert ends_with_one(sink, "pipeline_failed") == {
        **UNIFIED_IDS,
        "stage": "bad",
        "error": "'boom'" if how == "raises" else "no good",
        "stages_completed": ["a"],
        "duration_ms": 3000,
    }


async def test_a_unified_run_cancelled_by_a_stage_the_token_or_a_deadline_has_one_terminal_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()

    async def cancel(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.cancel(reason="enough")

    graph = UnifiedStageGraph([spec("a"), spec("c", cancel, ["a"]), spec("s", sleeper)])
    with pytest.raises(UnifiedPipelineCancelled):
        await graph.run(stage_ctx(sink))
    data = ends_with_one(sink, "pipeline_cancelled")
    assert (data["stage"], data["reason"], data["stages_completed"]) == ("c", "enough", ["a"])

    sink.clear()
    token = CancellationToken()

    async def cancel_soon() -> None:
        # Before stage c returns its own cancel at t=1: at the same instant, which of
        # the two ends the run would be up to the scheduler.
        await trio.sleep(0.5)
        token.cancel("user left")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_soon)
        with pytest.raises(UnifiedPipelineCancelled):
            await graph.run(stage_ctx(sink), cancel_token=token)
    data = ends_with_one(sink, "pipeline_cancelled")
    assert (data["stage"], data["reason"]) == ("<external>", "user left")

    sink.clear()
    with trio.move_on_after(0.5):
        await graph.run(stage_ctx(sink))
    data = ends_with_one(sink, "pipeline_cancelled")
    assert (data["stage"], data["reason"]) == ("<external>", "deadline exceeded")


async def test_a_stage_cancel_and_an_outer_cancel_together_give_one_terminal_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()
    outer: list[trio.CancelScope] = []

    async def cancel_everything(ctx: StageContext) -> StageOutput:
        # The outer scope is cancelled too, so the run ends by cancellation from
        # outside after the stage's own cancel was reported.
        outer[0].cancel()
        return StageOutput.cancel(reason="enough")

    graph = UnifiedStageGraph([spec("c", cancel_everything), spec("s", sleeper)])
    with trio.CancelScope() as scope:
        outer.append(scope)
        await graph.run(stage_ctx(sink))
    assert scope.cancelled_caught
    assert ends_with_one(sink, "pipeline_cancelled")["stage"] == "c"


class Deny(BaseInterceptor):
    """Fails the legacy run at ``stage`` (a critical error) after ``delay`` seconds."""

    name = "deny"
    priority = 1

    def __init__(self, stage: str, delay: float) -> None:
        self.stage = stage
        self.delay = delay

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        if stage_name == self.stage:
            await trio.sleep(self.delay)
            raise CriticalInterceptorError("bad", self.name)

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None


async def test_a_broken_sink_never_fails_a_run_through_its_terminal_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    graph = UnifiedStageGraph([spec("a")])
    results = await graph.run(stage_ctx(FailingSink("pipeline_completed")))
    assert results["a"].data == {"stage": "a"}
    assert "Failed to emit event pipeline_completed: sink down" in caplog.messages

    async def fine(ctx: PipelineContext) -> dict[str, Any]:
        return {}

    legacy = StageGraph([StageSpec(name="s", runner=fine)], interceptors=[Deny("s", 0)])
    sink = FailingSink("pipeline_failed")
    # The stage's error, not the sink's, comes out of the run.
    with pytest.raises(StageExecutionError) as info:
        await legacy.run(create_test_pipeline_context(event_sink=sink))
    assert str(info.value.original) == "bad"
    assert "Failed to emit pipeline_failed: sink down" in caplog.messages


class _Watch(BaseInterceptor):
    """Lets every stage through; its presence gives the unified run its PipelineContext view."""

    name = "watch"
    priority = 1

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None


@pytest.mark.parametrize("interceptors", [[], [_Watch()]], ids=["direct", "intercepted"])
async def test_a_broken_sink_never_fails_a_unified_stage(
    caplog: pytest.LogCaptureFixture, interceptors: list[BaseInterceptor]
) -> None:
    # Every lifecycle event goes to a sink that is down: from the run's templates
    # before there is a view, from the view after an interceptor made one.
    async def bad(ctx: StageContext) -> StageOutput:
        raise ValueError("bad")

    graph = UnifiedStageGraph([spec("a"), spec("b", bad, deps=["a"])], interceptors=interceptors)
    with pytest.raises(UnifiedStageExecutionError) as failed:
        await graph.run(stage_ctx(FailingSink()))
    # The stage's error, not the sink's, comes out of the run.
    assert (failed.value.stage, str(failed.value.original)) == ("b", "bad")
    assert [m for m in caplog.messages if m.startswith("Failed to emit")] == [
        "Failed to emit stage.a.started: sink down",
        "Failed to emit stage.a.completed: sink down",
        "Failed to emit stage.b.started: sink down",
        "Failed to emit stage.b.failed: sink down",
        "Failed to emit event pipeline_failed: sink down",
    ]


async def test_an_intercepted_stage_that_raises_ends_failed_in_every_event() -> None:
    # The interceptor chain turns the error into a failed result: the stage still
    # ends with stage.b.failed, and the wide events count it as failed.
    async def bad(ctx: StageContext) -> StageOutput:
        raise ValueError("bad")

    sink = RecordingEventSink()
    graph = UnifiedStageGraph(
        [spec("a"), spec("b", bad, deps=["a"])],
        interceptors=[_Watch()],
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    with pytest.raises(UnifiedStageExecutionError) as failed:
        await graph.run(stage_ctx(sink))
    assert (failed.value.stage, str(failed.value.original)) == ("b", "bad")
    assert [t for t in sink.types() if t.startswith("stage.b")] == [
        "stage.b.started",
        "stage.b.failed",
    ]
    assert payload(sink.of_type("stage.b.failed")[0])["error"] == "bad"
    wide = {payload(e)["stage"]: payload(e) for e in sink.of_type("stage.wide")}
    assert (wide["b"]["status"], wide["b"]["error"]) == ("failed", "bad")
    summary = payload(sink.of_type("pipeline.wide")[0])
    assert (summary["status"], summary["stage_counts"]) == ("failed", {"completed": 1, "failed": 1})


@pytest.mark.parametrize("interceptors", [[], [_Watch()]], ids=["direct", "intercepted"])
async def test_a_stage_whose_own_graph_failed_ends_failed_and_passes_the_error_on(
    interceptors: list[BaseInterceptor],
) -> None:
    async def bad(ctx: StageContext) -> StageOutput:
        raise ValueError("bad")

    inner = UnifiedStageGraph([spec("inner", bad)])

    async def runs_inner(ctx: StageContext) -> StageOutput:
        await inner.run(stage_ctx())
        return StageOutput.ok()

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("outer", runs_inner)], interceptors=interceptors)
    with pytest.raises(UnifiedStageExecutionError) as failed:
        await graph.run(stage_ctx(sink))
    assert sink.types()[:2] == ["stage.outer.started", "stage.outer.failed"]
    error = payload(sink.of_type("stage.outer.failed")[0])["error"]
    if interceptors:
        # The chain turned it into a failed result: the outer stage's error now.
        assert error == "Stage 'inner' failed: bad"
        assert (failed.value.stage, str(failed.value.original)) == ("outer", error)
    else:
        # As the reference: the inner graph's error goes on as it is.
        assert (failed.value.stage, str(failed.value.original)) == ("inner", "bad")
        assert error == str(failed.value)


async def test_legacy_runs_end_with_one_terminal_event(autojump_clock: trio.abc.Clock) -> None:
    sink = RecordingEventSink()

    async def one_second(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(1)
        return {}

    async def marks_canceled(ctx: PipelineContext) -> dict[str, Any]:
        ctx.mark_canceled()
        return {}

    ctx = create_test_pipeline_context(event_sink=sink)
    ids = {
        "pipeline_run_id": str(ctx.pipeline_run_id),
        "request_id": str(ctx.request_id),
        "execution_mode": "test",
        "topology": "test",
        "service": "test",
    }
    ok = StageSpec(name="ok", runner=one_second)
    after = StageSpec(name="after", runner=one_second, dependencies=("ok",))
    await StageGraph([ok, after], interceptors=[]).run(ctx)
    assert ends_with_one(sink, "pipeline_completed") == {
        **ids,
        "stages_completed": ["after", "ok"],
        "duration_ms": 2000,
    }

    sink.clear()
    bad = StageSpec(name="bad", runner=one_second, dependencies=("ok",))
    with pytest.raises(StageExecutionError):
        await StageGraph([ok, bad], interceptors=[Deny("bad", 1)]).run(ctx)
    assert ends_with_one(sink, "pipeline_failed") == {
        **ids,
        "stage": "bad",
        "error": "bad",
        "stages_completed": ["ok"],
        "duration_ms": 2000,
    }

    sink.clear()
    with trio.move_on_after(1.5):
        await StageGraph([ok, after], interceptors=[]).run(ctx)
    data = ends_with_one(sink, "pipeline_cancelled")
    assert (data["stage"], data["reason"], data["stages_completed"]) == (
        "<external>",
        "deadline exceeded",
        ["ok"],
    )

    sink.clear()
    mark = StageSpec(name="mark", runner=marks_canceled)
    results = await StageGraph([mark, after, ok], interceptors=[]).run(ctx)
    assert results["after"].error == "Pipeline canceled"
    assert ends_with_one(sink, "pipeline_cancelled") == {
        **ids,
        "stage": "mark",
        "reason": "Pipeline canceled",
        "stages_completed": ["mark"],
    }


async def test_an_interrupt_reaching_a_run_ends_it_with_pipeline_failed(
    autojump_clock: trio.abc.Clock,
) -> None:
    """KeyboardInterrupt is not a stage failure, but the run still says it ended."""

    async def legacy_stage(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(1)
        raise KeyboardInterrupt

    async def unified_stage(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        raise KeyboardInterrupt

    sink = RecordingEventSink()
    ok = StageSpec(name="ok", runner=legacy_stage)
    with pytest.raises(KeyboardInterrupt):
        await StageGraph([ok], interceptors=[]).run(create_test_pipeline_context(event_sink=sink))
    data = ends_with_one(sink, "pipeline_failed")
    assert (data["stage"], data["error"], data["stages_completed"], data["duration_ms"]) == (
        "<external>",
        "KeyboardInterrupt",
        [],
        1000,
    )

    sink.clear()
    with pytest.raises(KeyboardInterrupt):
        await UnifiedStageGraph([spec("k", unified_stage)]).run(stage_ctx(sink))
    data = ends_with_one(sink, "pipeline_failed")
    assert (data["stage"], data["error"], data["stages_completed"]) == (
        "<external>",
        "KeyboardInterrupt",
        [],
    )


async def test_a_legacy_run_with_wide_events_reports_a_failure_and_a_cancel(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def fails(ctx: PipelineContext) -> dict[str, Any]:
        raise ValueError("bad input")

    async def one_second(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(1)
        return {}

    sink = RecordingEventSink()
    # A legacy stage's exception is recorded as a failed result (the run goes on).
    graph = StageGraph(
        [StageSpec(name="f", runner=fails)],
        interceptors=[],
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    results = await graph.run(create_test_pipeline_context(event_sink=sink))
    assert results["f"].status == "failed"
    [stage_wide] = sink.of_type("stage.wide")
    assert (payload(stage_wide)["stage"], payload(stage_wide)["status"]) == ("f", "failed")

    sink.clear()
    with trio.move_on_after(0.5):
        await StageGraph(
            [StageSpec(name="slow", runner=one_second)],
            interceptors=[],
            emit_stage_wide_events=True,
            emit_pipeline_wide_event=True,
        ).run(create_test_pipeline_context(event_sink=sink))
    [pipeline_wide] = sink.of_type("pipeline.wide")
    assert payload(pipeline_wide)["status"] == "cancelled"
    assert sink.types()[-2:] == ["pipeline_cancelled", "pipeline.wide"]
