"""Audit 19: reentrancy, and objects reused from one run to the next.

Services fall into these patterns: the same PipelineContext given to a run again (a
request retried whole) or to two runs at once; a stage that runs another graph, or
its own graph, inline (not through the spawner); interceptors, cleanup callbacks and
cancel tokens re-entered; builders and pipelines reused after a build.

Four defects were found:

- a cleanup callback that registers another one each time it runs (a resource
  that re-arms its own cleanup) kept ``CleanupRegistry.run_all`` going for ever,
  and with it the graph run, whose cleanup is shielded: the run never ended and
  could not be cancelled. ``run_all`` now gives callbacks registered while it runs
  only what is left of the timeout (the reference drops them, so it ends);
- a caller's per-stage ``ctx.data["_timeout.{stage}"]`` was deleted by the first
  UnifiedStageGraph run through an interceptor chain (the engine removed the key
  whether or not it had put it there), so a retried run of the same context ran
  the stage without its limit;
- the guard-retry attempt marks (``_stage_attempt.{stage}``) stayed in the
  context's data after the run, so the next run of the same context showed its
  interceptors a first attempt as attempt 2;
- two ``PipelineRunner.run(pipeline_ctx=ctx)`` at once left ``ctx.event_sink`` set
  to the first run's (finished) sink: every later event of that context was lost.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.helpers import PipelineRunner
from stageflow_trio.pipeline import GuardRetryPolicy, GuardRetryStrategy, Pipeline
from stageflow_trio.pipeline.builder import PipelineBuilder
from stageflow_trio.pipeline.cancellation import CancellationToken, CleanupRegistry
from stageflow_trio.pipeline.dag import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.interceptors import BaseInterceptor, TimeoutInterceptor
from stageflow_trio.pipeline.pipeline import run_stage
from stageflow_trio.pipeline.subpipeline import MaxDepthExceededError, SubpipelineSpawner
from stageflow_trio.stages import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink

T = StageKind.TRANSFORM


class AttemptSeen(BaseInterceptor):
    """Records the attempt mark each call of each stage shows the chain."""

    name = "attempt_seen"
    priority = 50

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        self.seen.append((stage_name, ctx.data.get(f"_stage_attempt.{stage_name}")))

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        pass


# --------------------------------------------------------------------------- defects


async def test_a_cleanup_callback_that_re_registers_itself_does_not_keep_the_run_going(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Before the fix: run_all ran the re-registered callback again and again, shielded
    # (the run's cleanup is), so the run never returned, not even under move_on_after.
    ran = 0

    async def stage(ctx: StageContext) -> StageOutput:
        registry = ctx.cleanup_registry
        assert registry is not None

        async def close() -> None:
            nonlocal ran
            ran += 1
            await trio.sleep(0.01)
            registry.register(close)  # re-arms itself

        registry.register(close)
        return StageOutput.ok(done=True)

    pipeline = Pipeline("p").with_stage("a", stage, T)
    with trio.move_on_after(100) as scope:
        results = await pipeline.run(PipelineContext.create(), cleanup_timeout=1.0)
    assert not scope.cancelled_caught
    assert results["a"].data["done"] is True
    # The callbacks shared the 1 s timeout: about 100 of 10 ms each, then it ended.
    assert 50 <= ran <= 100
    assert trio.current_time() <= 1.0 + 1e-9


async def test_run_all_reports_a_late_callback_it_had_no_time_left_for(
    autojump_clock: trio.abc.Clock,
) -> None:
    # A callback that re-registers itself without taking any time: each run counts
    # the 10 ms floor, so run_all ends after the timeout's worth of them.
    registry = CleanupRegistry()
    ran = 0

    async def again() -> None:
        nonlocal ran
        ran += 1
        registry.register(again, name="again")

    registry.register(again, name="again")
    with trio.fail_after(1):
        completed, failed = await registry.run_all(timeout=0.5)
    assert ran == 50
    assert completed == ["again"] * 50
    assert [(name, type(exc), str(exc)) for name, exc in failed] == [
        ("again", TimeoutError, "Cleanup timed out before it ran: again")
    ]
    assert registry.pending_count == 0


async def test_a_late_callback_still_runs_within_the_time_left(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Two callbacks, 2 s each of a 4 s timeout; the first (0.5 s) registers a third,
    # which gets min(its 2 s share, the 1.5 s the first left; audit 20: the last one's
    # share is kept for it): it is not cut short at 1 s.
    registry = CleanupRegistry()
    log: list[str] = []

    async def late() -> None:
        await trio.sleep(1.45)
        log.append("late")

    async def first() -> None:
        await trio.sleep(0.5)
        registry.register(late)
        log.append("first")

    async def last() -> None:
        log.append("last")

    registry.register(last)
    registry.register(first)
    completed, failed = await registry.run_all(timeout=4)
    assert (completed, failed) == (["first", "late", "last"], [])
    assert log == ["first", "late", "last"]


async def test_a_callers_per_stage_timeout_holds_for_a_retried_run_of_the_same_context(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Before the fix the first run deleted "_timeout.a", so the retry ran 5 s.
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(5)
        return StageOutput.ok()

    pipeline = Pipeline("p").with_stage("a", slow, T)
    ctx = PipelineContext.create(data={"_timeout.a": 1000})
    for _ in range(2):
        started = trio.current_time()
        with pytest.raises(UnifiedStageExecutionError, match="timed out after 1000ms"):
            await pipeline.run(ctx)
        assert trio.current_time() - started == pytest.approx(1.0)
        assert ctx.data == {"_timeout.a": 1000}


async def test_the_engine_s_timeout_placeholder_is_still_removed(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The other half of the fix: the key the engine put there (no caller value) goes.
    async def stage(ctx: StageContext) -> StageOutput:
        return StageOutput.ok()

    ctx = PipelineContext.create(data={"_timeout_ms": 2500})
    await Pipeline("p").with_stage("a", stage, T).run(ctx)
    assert ctx.data == {"_timeout_ms": 2500}


async def test_guard_retry_attempt_marks_do_not_carry_into_the_next_run_of_the_context(
    autojump_clock: trio.abc.Clock,
) -> None:
    guard_calls = 0

    async def draft(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text="x")

    async def guard(ctx: StageContext) -> StageOutput:
        nonlocal guard_calls
        guard_calls += 1
        return StageOutput.ok() if guard_calls % 2 == 0 else StageOutput.fail(error="bad")

    seen = AttemptSeen()
    graph = (
        Pipeline("p")
        .with_stage("draft", draft, T)
        .with_stage("guard", guard, StageKind.GUARD, after="draft")
        .build(
            interceptors=[seen],
            guard_retry_strategy=GuardRetryStrategy(
                {"guard": GuardRetryPolicy(retry_stage="draft", max_attempts=3)}
            ),
        )
    )
    ctx = PipelineContext.create()
    for _ in range(2):
        seen.seen.clear()
        await graph.run(ctx)
        # Before the fix the second run showed [("draft", 2), ("guard", 2), ...].
        assert seen.seen == [("draft", None), ("guard", None), ("draft", 2), ("guard", 2)]
        assert ctx.data == {}


def sleeping_stage_on_own_sink() -> tuple[Pipeline, RecordingEventSink, PipelineContext]:
    """A one-stage pipeline whose stage sleeps ``input_text`` seconds (0 when unset),
    and a context with a sink of its own (runner runs on it lend theirs)."""

    async def stage(ctx: StageContext) -> StageOutput:
        await trio.sleep(float(ctx.snapshot.input_text or 0))
        return StageOutput.ok()

    own = RecordingEventSink()
    return Pipeline("p").with_stage("s", stage, T), own, PipelineContext.create(event_sink=own)


async def test_concurrent_runner_runs_sharing_a_pipeline_context_give_its_own_sink_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def stage(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok()

    pipeline = Pipeline("p").with_stage("s", stage, T)
    own = RecordingEventSink()
    ctx = PipelineContext.create(event_sink=own)
    runner = PipelineRunner(verbose=False)
    results: dict[int, Any] = {}

    async def run(index: int, delay: float) -> None:
        await trio.sleep(delay)
        results[index] = await runner.run(pipeline, pipeline_ctx=ctx)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, 1, 0)
        nursery.start_soon(run, 2, 0.5)
    assert results[1].success
    assert results[2].success
    # Before the fix: the first run's ObservableEventSink, so the next events were lost.
    assert ctx.event_sink is own
    await pipeline.run(ctx)
    assert own.types() == ["stage.s.started", "stage.s.completed", "pipeline_completed"]


async def test_overlapping_runner_runs_end_in_either_order_with_the_context_s_own_sink(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The newer run ends first: the older one's events go to its own sink again.
    pipeline, own, ctx = sleeping_stage_on_own_sink()
    runner = PipelineRunner(verbose=False)
    sinks_during: list[object] = []

    async def long_run() -> None:
        ctx.input_text = "3"
        await runner.run(pipeline, pipeline_ctx=ctx)

    async def short_run() -> None:
        await trio.sleep(0.5)
        ctx.input_text = "1"
        await runner.run(pipeline, pipeline_ctx=ctx)
        sinks_during.append(ctx.event_sink)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(long_run)
        nursery.start_soon(short_run)
    # While the long run was still going, the context held a sink of a run in progress.
    assert len(sinks_during) == 1
    assert sinks_during[0] is not own
    assert type(sinks_during[0]).__name__ == "ObservableEventSink"
    assert ctx.event_sink is own


# --------------------------------------------------------------- what held: one context


async def test_a_context_cancelled_in_one_run_cancels_its_retry_as_1_2_does(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Parity with 1.2.0: the flag stays on the context, so the retry ends "<external>"
    # with the first reason before any stage starts; clearing it lets the retry run.
    started: list[str] = []

    async def stage(ctx: StageContext) -> StageOutput:
        started.append("a")
        if len(started) == 1:
            pctx.mark_canceled("client gone")
            await trio.sleep(1)
        return StageOutput.ok(n=len(started))

    pipeline = Pipeline("p").with_stage("a", stage, T)
    pctx = PipelineContext.create()
    for _ in range(2):
        with pytest.raises(UnifiedPipelineCancelled) as info:
            await pipeline.run(pctx)
        assert (info.value.stage, info.value.reason) == ("<external>", "client gone")
    assert started == ["a"]
    pctx.canceled = False
    pctx.cancellation_reason = None
    results = await pipeline.run(pctx)
    assert results["a"].data["n"] == 2
    assert pctx._cancel_callbacks == {}


async def test_a_stage_s_cancel_output_does_not_mark_the_context(
    autojump_clock: trio.abc.Clock,
) -> None:
    calls = 0

    async def stage(ctx: StageContext) -> StageOutput:
        nonlocal calls
        calls += 1
        return StageOutput.cancel(reason="no") if calls == 1 else StageOutput.ok()

    pipeline = Pipeline("p").with_stage("a", stage, T)
    pctx = PipelineContext.create()
    with pytest.raises(UnifiedPipelineCancelled):
        await pipeline.run(pctx)
    assert not pctx.canceled
    assert (await pipeline.run(pctx))["a"].status.value == "ok"


async def test_a_reused_context_carries_no_outputs_and_no_subscriptions(
    autojump_clock: trio.abc.Clock,
) -> None:
    counter = 0

    async def produce(ctx: StageContext) -> StageOutput:
        nonlocal counter
        counter += 1
        return StageOutput.ok(n=counter)

    async def consume(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(seen=ctx.inputs.get("n"))

    pipeline = (
        Pipeline("p")
        .with_stage("produce", produce, T)
        .with_stage("consume", consume, T, after="produce")
    )
    sink = RecordingEventSink()
    pctx = PipelineContext.create(event_sink=sink)
    for expected in (1, 2, 3):
        results = await pipeline.run(pctx)
        assert results["consume"].data["seen"] == expected
        assert pctx.data == {}
        assert pctx._cancel_callbacks == {}
        assert pctx.artifacts == []
    assert sink.types().count("pipeline_completed") == 3


async def test_two_runs_at_once_on_one_context_are_both_cancelled_by_its_mark(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(10)
        return StageOutput.ok()

    pipeline = Pipeline("p").with_stage("s", slow, T)
    pctx = PipelineContext.create(data={"_timeout_ms": 60_000})
    outcomes: list[tuple[str, str]] = []

    async def run() -> None:
        try:
            await pipeline.run(pctx)
        except UnifiedPipelineCancelled as exc:
            outcomes.append((exc.stage, exc.reason))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        nursery.start_soon(run)
        await trio.sleep(1)
        assert len(pctx._cancel_callbacks) == 2
        pctx.mark_canceled("shutdown")
    assert outcomes == [("<external>", "shutdown")] * 2
    assert trio.current_time() == pytest.approx(1.0)
    assert pctx.data == {"_timeout_ms": 60_000}


# ------------------------------------------------------ what held: runs inside stages


async def test_a_graph_run_inline_from_its_own_stage_keeps_each_level_s_run_state(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[tuple[Any, ...]] = []
    cleaned: list[int] = []
    level = 0

    async def recurse(ctx: StageContext) -> StageOutput:
        nonlocal level
        mine = level
        token, registry = graph.cancel_token, graph.cleanup_registry
        assert registry is not None
        assert ctx.cleanup_registry is registry

        async def cleanup() -> None:
            cleaned.append(mine)

        graph.register_cleanup(cleanup)
        if mine < 2:
            level += 1
            await graph.run(ctx)
            level -= 1
        # The inner run has ended: this stage sees its own run's token and registry.
        log.append((mine, graph.cancel_token is token, graph.cleanup_registry is registry))
        log.append((mine, list(cleaned)))
        return StageOutput.ok(level=mine)

    graph = Pipeline("rec").with_stage("a", recurse, T).build()
    sink = RecordingEventSink()
    results = await graph.run(PipelineContext.create(event_sink=sink))
    assert results["a"].data["level"] == 0
    assert log == [
        (2, True, True),
        (2, []),
        (1, True, True),
        (1, [2]),
        (0, True, True),
        (0, [2, 1]),
    ]
    assert cleaned == [2, 1, 0]
    assert graph.cancel_token is None
    assert graph._runs == {}
    assert sink.types().count("pipeline_completed") == 3


async def test_the_outer_run_s_cancel_reaches_inline_runs_and_the_runner_keeps_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner_state: dict[str, Any] = {}

    async def inner_stage(ctx: StageContext) -> StageOutput:
        inner_state["started"] = True
        try:
            await trio.sleep(100)
        except trio.Cancelled:
            inner_state["cancelled"] = True
            raise
        return StageOutput.ok()

    inner = Pipeline("inner").with_stage("i", inner_stage, T)
    inner_graph = inner.build()
    runner = PipelineRunner(verbose=False)

    async def via_runner(ctx: StageContext) -> StageOutput:
        inner_state["runner_result"] = await runner.run(inner, input_text="x")
        return StageOutput.ok()

    async def via_graph(ctx: StageContext) -> StageOutput:
        await inner_graph.run(ctx)
        return StageOutput.ok()

    async def killer(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        pctx.mark_canceled("stop")
        return StageOutput.ok()

    for nested in (via_runner, via_graph):
        inner_state.clear()
        outer = Pipeline("outer").with_stage("o", nested, T).with_stage("k", killer, T)
        pctx = PipelineContext.create()
        with pytest.raises(UnifiedPipelineCancelled) as info:
            await outer.run(pctx)
        assert (info.value.stage, info.value.reason) == ("<external>", "stop")
        # The runner did not turn the cancellation into a RunResult.
        assert inner_state == {"started": True, "cancelled": True}


async def test_run_stage_called_recursively_from_its_own_stage(
    autojump_clock: trio.abc.Clock,
) -> None:
    depth = 0

    async def recurse(ctx: StageContext) -> StageOutput:
        nonlocal depth
        mine = depth
        if mine == 3:
            return StageOutput.ok(path=[mine])
        depth += 1
        inner = await run_stage("r", recurse, "transform")
        depth -= 1
        return StageOutput.ok(path=[mine, *inner.data["path"]])

    output = await run_stage("r", recurse, "transform")
    assert list(output.data["path"]) == [0, 1, 2, 3]


async def test_a_spawn_from_an_inline_run_of_a_child_counts_the_child_s_depth(
    autojump_clock: trio.abc.Clock,
) -> None:
    spawner = SubpipelineSpawner(max_depth=1)
    errors: list[BaseException] = []

    async def child(child_ctx: PipelineContext) -> dict[str, object]:
        async def spawns_again(ctx: StageContext) -> StageOutput:
            await spawner.spawn("grandchild", child_ctx, uuid.uuid4(), "g", child)
            return StageOutput.ok()

        try:
            await Pipeline("inline").with_stage("g", spawns_again, T).run(child_ctx)
        except UnifiedStageExecutionError as exc:
            errors.append(exc.original)
        return {}

    parent = PipelineContext.create(pipeline_run_id=uuid.uuid4())
    result = await spawner.spawn("child", parent, uuid.uuid4(), "s", child)
    assert result.success
    assert len(errors) == 1
    assert isinstance(errors[0], MaxDepthExceededError)


async def test_a_timeout_interceptor_re_entered_through_the_same_context_leaves_it_clean(
    autojump_clock: trio.abc.Clock,
) -> None:
    # One TimeoutInterceptor instance, one context, the same stage name at each level.
    timeouts: list[Any] = []
    level = 0

    async def recurse(ctx: StageContext) -> StageOutput:
        nonlocal level
        timeouts.append(pctx.data.get("_timeout.a"))
        if level < 2:
            level += 1
            await graph.run(pctx)
            level -= 1
        return StageOutput.ok()

    graph = Pipeline("p").with_stage("a", recurse, T).build(interceptors=[TimeoutInterceptor()])
    pctx = PipelineContext.create(data={"_timeout_ms": 5000})
    await graph.run(pctx)
    assert timeouts == [5000, 5000, 5000]
    assert pctx.data == {"_timeout_ms": 5000}


# ------------------------------------------------------------ what held: tokens, cycles


async def test_linked_tokens_and_contexts_that_cancel_each_other_end(
    autojump_clock: trio.abc.Clock,
) -> None:
    a, b = CancellationToken(), CancellationToken()
    a._link(b)
    b._link(a)
    ctx = PipelineContext.create()
    ctx.on_cancel(a.cancel)
    b.on_cancel(lambda: ctx.mark_canceled("from b"))
    seen: list[str] = []
    a.on_cancel(lambda: seen.append("a"))
    b.on_cancel(lambda: seen.append("b"))
    b.cancel("first")
    assert (a.reason, b.reason) == ("first", "first")
    assert (ctx.canceled, ctx.cancellation_reason) == (True, "from b")
    assert sorted(seen) == ["a", "b"]
    ctx.mark_canceled("again")  # nothing left to call
    assert ctx.cancellation_reason == "from b"


# ------------------------------------------------------------ what held: builders reused


async def test_a_built_graph_does_not_change_when_its_builder_grows(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def stage(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(name=ctx.stage_name)

    pipeline = Pipeline("p").with_stage("a", stage, T)
    await pipeline.run()  # keeps its built graph
    first = pipeline.build()
    bigger = pipeline.with_stage("b", stage, T, after="a")
    replaced = pipeline.with_stage("a", stage, StageKind.WORK)
    assert [spec.name for spec in first.stage_specs] == ["a"]
    assert list(await pipeline.run()) == ["a"]
    assert list(await bigger.run()) == ["a", "b"]
    assert pipeline.stages["a"].kind is T
    assert replaced.stages["a"].kind is StageKind.WORK

    async def legacy(ctx: PipelineContext) -> dict[str, Any]:
        return {}

    builder = PipelineBuilder("b").with_stage("x", legacy)
    legacy_graph = builder.build()
    builder.with_stage("y", legacy, ("x",))
    builder.with_stage("x", legacy, ())  # replaces on a copy
    assert [spec.name for spec in legacy_graph.stage_specs] == ["x"]
    assert list(builder.stages) == ["x"]


async def test_one_function_under_two_stage_names(autojump_clock: trio.abc.Clock) -> None:
    async def shared(ctx: StageContext) -> StageOutput:
        await trio.sleep(1 if ctx.stage_name == "first" else 0.5)
        return StageOutput.ok(me=ctx.stage_name, deps=sorted(ctx.inputs.prior_outputs))

    pipeline = (
        Pipeline("p")
        .with_stage("first", shared, T)
        .with_stage("second", shared, T)
        .with_stage("third", shared, T, after=("first", "second"))
    )
    results = await pipeline.run()
    assert {name: out.data["me"] for name, out in results.items()} == {
        "first": "first",
        "second": "second",
        "third": "third",
    }
    assert list(results["third"].data["deps"]) == ["first", "second"]
    graph = UnifiedStageGraph(pipeline.build().stage_specs)
    assert set(await graph.run(PipelineContext.create())) == {"first", "second", "third"}
