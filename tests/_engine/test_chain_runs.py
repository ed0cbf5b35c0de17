"""A chain-shaped run opens a cancel scope instead of a nursery, and behaves the same.

A chain (one root, at most one dependant per stage, no guard retries) can only run
one stage at a time, so its run never starts a task. These tests pin what that
changes (no task, the closing schedule point under the budget) and what it must not
(stopping, results that stand once the stages are done, cancellation from outside).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
import trio.testing

from stageflow_trio._engine._scheduler import Topology
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.core.stage_context import StageCancellationRequested
from stageflow_trio.lowlevel import checkpoint_budget
from stageflow_trio.pipeline import (
    CancellationToken,
    StageGraph,
    StageSpec,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from tests.pipeline.graph_helpers import spec, stage_ctx


class _SpawnCounter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


async def _spawns_during(graph: UnifiedStageGraph) -> int:
    counter = _SpawnCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        await graph.run(stage_ctx())
    finally:
        trio.lowlevel.remove_instrument(counter)
    return counter.spawned


@pytest.mark.parametrize(
    ("deps", "chain"),
    [
        ({"a": ()}, True),
        ({"a": (), "b": ("a",), "c": ("b",)}, True),
        ({"c": ("b",), "b": ("a",), "a": ()}, True),
        ({"a": (), "b": ("a",), "c": ("a",)}, False),  # fan-out
        ({"a": (), "b": (), "c": ("a", "b")}, False),  # two roots
        ({"a": (), "b": ("a",), "c": ("a", "b")}, False),  # a has two dependants
    ],
)
def test_topology_knows_a_chain(deps: dict[str, Sequence[str]], chain: bool) -> None:
    assert Topology(deps).chain is chain


async def test_a_chain_run_opens_no_nursery_and_a_fan_out_does() -> None:
    seen: list[int] = []

    async def count_nurseries(ctx: StageContext) -> StageOutput:
        seen.append(len(trio.lowlevel.current_task().child_nurseries))
        return StageOutput.ok()

    before = len(trio.lowlevel.current_task().child_nurseries)
    chain = UnifiedStageGraph([spec("a", count_nurseries), spec("b", deps=["a"])])
    await chain.run(stage_ctx())
    fan_out = UnifiedStageGraph(
        [spec("a", count_nurseries), spec("b", deps=["a"]), spec("c", deps=["a"])]
    )
    await fan_out.run(stage_ctx())
    # The root stage runs in the caller's task: inside the run's nursery, if any.
    assert seen == [before, before + 1]


async def test_neither_a_chain_nor_a_fan_out_spawns_more_tasks_than_extra_branches() -> None:
    chain = UnifiedStageGraph([spec("a"), spec("b", deps=["a"]), spec("c", deps=["b"])])
    fan_out = UnifiedStageGraph([spec("a"), spec("b", deps=["a"]), spec("c", deps=["a"])])
    assert await _spawns_during(chain) == 0
    assert await _spawns_during(fan_out) == 1


async def test_a_chain_with_guard_retries_keeps_its_nursery() -> None:
    from stageflow_trio._engine._unified_run import UnifiedRun
    from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy

    specs = [spec("a"), spec("g", deps=["a"], kind=StageKind.GUARD)]
    plain = UnifiedStageGraph(specs)
    guarded = UnifiedStageGraph(
        specs,
        guard_retry_strategy=GuardRetryStrategy(policies={"g": GuardRetryPolicy(retry_stage="a")}),
    )

    def sequential(graph: UnifiedStageGraph) -> bool:
        run = UnifiedRun(graph._plan, stage_ctx(), CancellationToken(), None)  # type: ignore[arg-type]
        return run.sequential

    assert sequential(plain) is True
    assert sequential(guarded) is False


async def test_a_chain_run_is_a_schedule_point_under_a_one_call_budget() -> None:
    graph = UnifiedStageGraph([spec("a"), spec("b", deps=["a"])])
    with checkpoint_budget(calls=1), trio.testing.assert_checkpoints():
        await graph.run(stage_ctx())


async def test_a_cancelled_token_stops_a_blocked_chain(autojump_clock: trio.abc.Clock) -> None:
    token = CancellationToken()
    reached: list[str] = []

    async def blocked(ctx: StageContext) -> StageOutput:
        reached.append("blocked")
        try:
            await trio.sleep_forever()
        finally:
            reached.append("unwound")

    async def never(ctx: StageContext) -> StageOutput:
        reached.append("never")
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("a", blocked), spec("b", never, deps=["a"])])

    async def cancel_later() -> None:
        await trio.sleep(5)
        token.cancel("operator")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(UnifiedPipelineCancelled) as caught:
            await graph.run(stage_ctx(), cancel_token=token)
    assert caught.value.stage == "<external>"
    assert reached == ["blocked", "unwound"]
    assert trio.current_time() == 5


async def test_a_failing_stage_ends_a_chain_before_its_dependants() -> None:
    ran: list[str] = []

    async def boom(ctx: StageContext) -> StageOutput:
        raise ValueError("boom")

    async def after(ctx: StageContext) -> StageOutput:
        ran.append("after")
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("a", boom), spec("b", after, deps=["a"])])
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await graph.run(stage_ctx())
    assert caught.value.stage == "a"
    assert ran == []


@pytest.mark.parametrize("shape", ["chain", "fan-out"])
async def test_results_stand_when_the_caller_is_cancelled_as_the_last_stage_ends(
    shape: str,
) -> None:
    """Both ends of a run raise Cancelled only before its stages are done."""
    outer = trio.CancelScope()

    async def last(ctx: StageContext) -> StageOutput:
        outer.cancel()
        return StageOutput.ok(done=True)

    if shape == "chain":
        specs = [spec("a"), spec("z", last, deps=["a"])]
    else:
        specs = [spec("a"), spec("b", deps=["a"]), spec("z", last, deps=["a", "b"])]
    graph = UnifiedStageGraph(specs)
    results = None
    with outer:
        results = await graph.run(stage_ctx())
        await trio.lowlevel.checkpoint()  # the caller's next checkpoint sees it
        pytest.fail("the cancellation was lost")
    assert outer.cancelled_caught
    assert results is not None
    assert results["z"].data["done"] is True


async def test_a_legacy_chain_starts_no_task_and_stops_on_mark_canceled(
    autojump_clock: trio.abc.Clock,
) -> None:
    ctx = create_test_pipeline_context()
    reached: list[str] = []

    async def first(pctx: PipelineContext) -> dict[str, object]:
        reached.append("first")
        return {}

    async def blocked(pctx: PipelineContext) -> dict[str, object]:
        reached.append("blocked")
        try:
            await trio.sleep_forever()
        finally:
            reached.append("unwound")

    graph = StageGraph(
        [
            StageSpec(name="first", runner=first),
            StageSpec(name="blocked", runner=blocked, dependencies=("first",)),
        ]
    )
    counter = _SpawnCounter()

    async def cancel_later() -> None:
        await trio.sleep(3)
        ctx.mark_canceled()

    trio.lowlevel.add_instrument(counter)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_later)
            spawned_before = counter.spawned
            results = await graph.run(ctx)
    finally:
        trio.lowlevel.remove_instrument(counter)
    # Only cancel_later was spawned (before the run); the run itself started nothing.
    assert spawned_before == 1
    assert counter.spawned == 1
    assert reached == ["first", "blocked", "unwound"]
    assert set(results) >= {"first"}
    assert trio.current_time() == 3


async def test_a_fan_out_under_a_cancelled_token_starts_no_stage() -> None:
    ran: list[str] = []

    async def record(ctx: StageContext) -> StageOutput:
        ran.append(ctx.stage_name)
        return StageOutput.ok()

    token = CancellationToken()
    token.cancel("before the run")
    graph = UnifiedStageGraph(
        [spec("a", record), spec("b", record, deps=["a"]), spec("c", record, deps=["a"])]
    )
    with pytest.raises(UnifiedPipelineCancelled) as caught:
        await graph.run(stage_ctx(), cancel_token=token)
    assert (caught.value.stage, caught.value.reason) == ("<external>", "before the run")
    assert ran == []


async def test_when_parallel_stages_fail_the_first_failure_is_the_runs() -> None:
    async def boom(ctx: StageContext) -> StageOutput:
        raise ValueError("b")

    async def fails_when_stopped(ctx: StageContext) -> StageOutput:
        # Whichever of b and c trio runs first, c fails only once b's failure has
        # stopped the run (a cleanup that raises while cancelled).
        try:
            await trio.sleep_forever()
        finally:
            raise ValueError("c")

    graph = UnifiedStageGraph(
        [spec("a"), spec("b", boom, deps=["a"]), spec("c", fails_when_stopped, deps=["a"])]
    )
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await graph.run(stage_ctx())
    assert caught.value.stage == "b"
    assert str(caught.value.original) == "b"


async def test_a_stage_asking_to_cancel_with_wide_events_on_cancels_the_run() -> None:
    """The path a run with wide events (and no interceptors) takes for each stage."""

    async def stop(ctx: StageContext) -> StageOutput:
        raise StageCancellationRequested("enough")

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("a", stop), spec("b", deps=["a"])], emit_stage_wide_events=True)
    with pytest.raises(UnifiedPipelineCancelled) as caught:
        await graph.run(stage_ctx(sink))
    assert (caught.value.stage, caught.value.reason) == ("a", "enough")
    assert "stage.a.completed" in sink.types()
    assert "stage.b.started" not in sink.types()
    [wide] = [data for kind, data in sink.events if kind == "stage.wide"]
    assert wide is not None
    assert wide["stage"] == "a"
