"""Audit 15 of the engine: conditional skips, errors from stages with a nursery, isolation.

The first tests pin the defects this audit found and fixed: a conditional stage
skipped only by the first input with a skip_reason key (an empty one hid a later
truthy one), and an error raised while a stage with its own nursery was interrupted
escaping the graph bare (a group of Cancelled and the error). The others pin
behaviour checked and found right.
"""

from __future__ import annotations

import pytest
import trio

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline import GuardRetryPolicy, GuardRetryStrategy
from stageflow_trio.pipeline.dag import (
    StageGraph,
    StageSpec,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from tests.fakes import payload
from tests.pipeline.graph_helpers import snapshot, spec, stage_ctx


def _pipeline_events(sink: RecordingEventSink) -> list[tuple[str, object, object]]:
    return [
        (t, payload(d).get("stage"), payload(d).get("error"))
        for t, d in sink.events
        if t.startswith("pipeline")
    ]


# -- conditional stages ------------------------------------------------------


async def test_a_conditional_stage_skips_when_any_input_has_a_truthy_skip_reason() -> None:
    async def clear(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(skip_reason="")

    async def stop(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(skip_reason="no audio")

    ran: list[str] = []

    async def guarded(ctx: StageContext) -> StageOutput:
        ran.append("guarded")
        return StageOutput.ok()

    sink = RecordingEventSink()
    graph = UnifiedStageGraph(
        [
            spec("clear", clear),
            spec("stop", stop),
            spec("guarded", guarded, deps=["clear", "stop"], conditional=True),
        ]
    )
    results = await graph.run(stage_ctx(event_sink=sink))
    assert ran == []
    assert results["guarded"].data["reason"] == "no audio"
    assert "stage.guarded.skipped" in sink.types()


async def test_a_conditional_stage_sees_only_its_declared_dependencies() -> None:
    # A skip_reason two stages up does not skip it: inputs are not transitive.
    async def root(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(skip_reason="upstream")

    async def middle(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text="hi")

    async def leaf(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(seen=ctx.inputs.get("skip_reason"))

    graph = UnifiedStageGraph(
        [
            spec("root", root),
            spec("middle", middle, deps=["root"]),
            spec("leaf", leaf, deps=["middle"], conditional=True),
        ]
    )
    results = await graph.run(stage_ctx())
    assert results["leaf"].data == {"seen": None}


# -- a stage whose own nursery fails while the run interrupts it --------------


async def _sleep_then_break() -> None:
    try:
        await trio.sleep(10)
    finally:
        raise ValueError("cleanup broke")


async def _stage_with_a_nursery(ctx: object) -> StageOutput:
    # Interrupted, its nursery raises BaseExceptionGroup([Cancelled, ValueError]).
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_sleep_then_break)
        await trio.sleep(10)
    return StageOutput.ok()


async def test_an_error_from_an_interrupted_stage_with_a_nursery_does_not_replace_the_first(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def failing(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        raise KeyError("first")

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("f", failing), spec("n", _stage_with_a_nursery)])
    with pytest.raises(UnifiedStageExecutionError) as info:
        await graph.run(stage_ctx(event_sink=sink))
    # As with a stage without a nursery: the first failure is the run's.
    assert info.value.stage == "f"
    assert isinstance(info.value.original, KeyError)
    assert _pipeline_events(sink) == [("pipeline_failed", "f", "'first'")]


async def test_an_interrupted_stage_with_a_nursery_that_fails_is_a_stage_failure(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def cancelling(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.cancel(reason="stop")

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("c", cancelling), spec("n", _stage_with_a_nursery)])
    with pytest.raises(UnifiedStageExecutionError) as info:
        await graph.run(stage_ctx(event_sink=sink))
    # "An error beats a cancellation" (docs/events.md), named after its stage.
    assert info.value.stage == "n"
    assert str(info.value.original) == "cleanup broke"
    assert _pipeline_events(sink) == [("pipeline_failed", "n", "cleanup broke")]


async def test_a_legacy_stage_with_a_nursery_failing_under_mark_canceled_gets_a_failed_result(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def marker(ctx: PipelineContext) -> StageOutput:
        await trio.sleep(1)
        ctx.mark_canceled()
        return StageOutput.ok()

    sink = RecordingEventSink()
    graph = StageGraph(
        [StageSpec(name="m", runner=marker), StageSpec(name="n", runner=_stage_with_a_nursery)],
        interceptors=[],
    )
    # As a stage without a nursery whose finally raises: a failed result, and the
    # run ends as cancelled by "m".
    results = await graph.run(create_test_pipeline_context(event_sink=sink))
    assert (results["n"].status, results["n"].error) == ("failed", "cleanup broke")
    assert _pipeline_events(sink) == [("pipeline_cancelled", "m", None)]


# -- checked and fine ----------------------------------------------------------


async def test_concurrent_runs_of_one_graph_keep_guard_retries_and_cleanups_apart(
    autojump_clock: trio.abc.Clock,
) -> None:
    drafts: dict[str, int] = {}
    cleaned: dict[str, int] = {}
    graph: UnifiedStageGraph

    async def draft(ctx: StageContext) -> StageOutput:
        key = ctx.snapshot.topology or ""
        drafts[key] = drafts.get(key, 0) + 1

        async def cleanup() -> None:
            cleaned[key] = cleaned.get(key, 0) + 1

        graph.register_cleanup(cleanup)
        await trio.sleep(0.1 * int(key[1:]))
        return StageOutput.ok(text="x" * drafts[key])

    async def guard(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.05)
        if ctx.snapshot.topology == "t3":
            raise ValueError("t3 breaks")
        if len(ctx.inputs.get_from("draft", "text")) < 3:
            return StageOutput.fail(error="short")
        return StageOutput.ok(length=len(ctx.inputs.get_from("draft", "text")))

    graph = UnifiedStageGraph(
        [spec("draft", draft), spec("guard", guard, deps=["draft"], kind=StageKind.GUARD)],
        guard_retry_strategy=GuardRetryStrategy(
            {"guard": GuardRetryPolicy("draft", max_attempts=5)}
        ),
    )
    outcomes: dict[int, object] = {}

    async def one(i: int) -> None:
        sink = RecordingEventSink()
        try:
            results = await graph.run(stage_ctx(event_sink=sink, snap=snapshot(topology=f"t{i}")))
        except UnifiedStageExecutionError as error:
            outcomes[i] = error.stage
        else:
            outcomes[i] = results["guard"].data["length"]
        assert sink.types().count("guard_retry.recovered") == (0 if i == 3 else 1)

    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(one, i)
    assert outcomes == {0: 3, 1: 3, 2: 3, 3: "guard", 4: 3, 5: 3}
    assert cleaned == drafts == {f"t{i}": 1 if i == 3 else 3 for i in range(6)}


async def test_a_cleanup_registered_by_a_cleanup_of_a_failed_run_runs() -> None:
    order: list[str] = []
    graph: UnifiedStageGraph

    async def failing(ctx: StageContext) -> StageOutput:
        async def second() -> None:
            order.append("second")

        async def first() -> None:
            order.append("first")
            graph.register_cleanup(second)

        graph.register_cleanup(first)
        raise RuntimeError("boom")

    graph = UnifiedStageGraph([spec("a", failing)])
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx())
    assert order == ["first", "second"]


async def test_a_deadline_at_a_stage_boundary_starts_no_further_stage(
    autojump_clock: trio.abc.Clock,
) -> None:
    ran: list[str] = []

    async def first(ctx: StageContext) -> StageOutput:
        # Finishes its work at the deadline (shielded), so the run stops between
        # the two stages.
        with trio.CancelScope(shield=True):
            await trio.sleep(1)
        ran.append("first")
        return StageOutput.ok()

    async def second(ctx: StageContext) -> StageOutput:
        ran.append("second")  # never awaits: only the boundary's check can stop it
        return StageOutput.ok()

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("first", first), spec("second", second, deps=["first"])])
    with trio.move_on_after(1) as scope:
        await graph.run(stage_ctx(event_sink=sink))
    assert scope.cancelled_caught
    assert ran == ["first"]
    (ended,) = sink.of_type("pipeline_cancelled")
    assert ended is not None
    assert (ended["stage"], ended["stages_completed"]) == ("<external>", ["first"])
