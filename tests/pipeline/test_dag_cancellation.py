"""Structured cancellation of graph runs: siblings, tokens, deadlines, interrupts, cleanup."""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.lowlevel import checkpoint_budget
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
    UnifiedStageSpec,
)
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import payload

from .graph_helpers import spec, stage_ctx


class Probe:
    """Records how blocked stages ended."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def blocker(self, name: str) -> Callable[[StageContext], Awaitable[StageOutput]]:
        async def run(ctx: StageContext) -> StageOutput:
            self.events.append(f"{name}:start")
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                self.events.append(f"{name}:cancelled")
                raise
            finally:
                self.events.append(f"{name}:exit")

        return run


async def test_stage_failure_cancels_running_siblings_and_error_comes_out_unwrapped(
    autojump_clock: trio.abc.Clock,
) -> None:
    probe = Probe()

    async def failing(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        raise KeyError("missing")

    graph = UnifiedStageGraph(
        [
            spec("slow1", probe.blocker("slow1")),
            spec("slow2", probe.blocker("slow2")),
            spec("bad", failing),
        ]
    )
    with pytest.raises(UnifiedStageExecutionError) as info:
        await graph.run(stage_ctx())
    assert type(info.value) is UnifiedStageExecutionError
    assert type(info.value.original) is KeyError
    assert sorted(probe.events) == sorted(
        [
            "slow1:start",
            "slow2:start",
            "slow1:cancelled",
            "slow1:exit",
            "slow2:cancelled",
            "slow2:exit",
        ]
    )
    assert trio.current_time() == 1


async def test_fail_output_cancels_siblings(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()

    async def failing(ctx: StageContext) -> StageOutput:
        return StageOutput.fail(error="no")

    graph = UnifiedStageGraph([spec("slow", probe.blocker("slow")), spec("bad", failing)])
    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'bad' failed: no$"):
        await graph.run(stage_ctx())
    assert "slow:cancelled" in probe.events


async def test_cancel_output_stops_the_other_branches(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()

    async def stopper(ctx: StageContext) -> StageOutput:
        await trio.sleep(2)
        return StageOutput.cancel(reason="enough")

    graph = UnifiedStageGraph([spec("slow", probe.blocker("slow")), spec("stop", stopper)])
    with pytest.raises(UnifiedPipelineCancelled) as info:
        await graph.run(stage_ctx())
    assert info.value.stage == "stop"
    assert probe.events == ["slow:start", "slow:cancelled", "slow:exit"]


async def test_token_cancel_mid_run_interrupts_a_blocked_stage(
    autojump_clock: trio.abc.Clock,
) -> None:
    probe = Probe()
    sink = RecordingEventSink()
    token = CancellationToken()
    graph = UnifiedStageGraph([spec("a"), spec("blocked", probe.blocker("blocked"), ["a"])])

    async def cancel_later() -> None:
        await trio.sleep(5)
        token.cancel("user hung up")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(UnifiedPipelineCancelled) as info:
            await graph.run(stage_ctx(event_sink=sink), cancel_token=token)
    assert info.value.stage == "<external>"
    assert info.value.reason == "user hung up"
    assert set(info.value.results) == {"a"}
    assert probe.events == ["blocked:start", "blocked:cancelled", "blocked:exit"]
    assert trio.current_time() == 5
    assert payload(sink.of_type("pipeline_cancelled")[0])["stage"] == "<external>"


async def test_a_token_cancelled_before_the_run_starts_no_stage() -> None:
    token = CancellationToken()
    token.cancel("early")
    ran: list[str] = []

    async def stage(ctx: StageContext) -> StageOutput:
        ran.append("x")
        return StageOutput.ok()

    with pytest.raises(
        UnifiedPipelineCancelled, match=r"^Pipeline cancelled by stage '<external>': early$"
    ):
        await UnifiedStageGraph([spec("x", stage)]).run(stage_ctx(), cancel_token=token)
    assert ran == []


async def test_graph_token_property_reaches_the_running_run(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    graph = UnifiedStageGraph([spec("blocked", probe.blocker("blocked"))])

    async def cancel_later() -> None:
        await trio.sleep(1)
        assert graph.cancel_token is not None
        graph.cancel_token.cancel("via property")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(UnifiedPipelineCancelled, match="via property"):
            await graph.run(stage_ctx())


async def test_move_on_after_stops_at_the_deadline_and_cleanup_runs_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    probe = Probe()
    cleanups: list[float] = []
    graph = UnifiedStageGraph([spec("blocked", probe.blocker("blocked"))])

    async def cleanup() -> None:
        await trio.sleep(0.5)  # runs shielded even though the run was cancelled
        cleanups.append(trio.current_time())

    async def register_then_block(ctx: StageContext) -> StageOutput:
        graph.register_cleanup(cleanup, name="release")
        return await probe.blocker("blocked")(ctx)

    graph = UnifiedStageGraph([spec("blocked", register_then_block)])
    with trio.move_on_after(3) as scope:
        await graph.run(stage_ctx())
    assert scope.cancelled_caught
    assert cleanups == [3.5]
    assert probe.events == ["blocked:start", "blocked:cancelled", "blocked:exit"]


async def test_keyboard_interrupt_in_a_stage_still_runs_cleanup() -> None:
    cleaned: list[str] = []
    graph: UnifiedStageGraph

    async def cleanup() -> None:
        cleaned.append("done")

    async def interrupted(ctx: StageContext) -> StageOutput:
        graph.register_cleanup(cleanup)
        raise KeyboardInterrupt

    graph = UnifiedStageGraph([spec("k", interrupted)])
    with pytest.raises(KeyboardInterrupt):
        await graph.run(stage_ctx())
    assert cleaned == ["done"]


async def test_nothing_started_by_a_run_is_alive_after_it_raises(
    autojump_clock: trio.abc.Clock,
) -> None:
    probe = Probe()

    async def failing(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        raise RuntimeError("x")

    graph = UnifiedStageGraph(
        [spec(f"b{i}", probe.blocker(f"b{i}")) for i in range(10)] + [spec("f", failing)]
    )
    before = len(trio.lowlevel.current_task().child_nurseries)
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx())
    # Every stage task had exited (its finally ran) before run() raised.
    assert all(probe.events.count(f"b{i}:exit") == 1 for i in range(10))
    assert len(trio.lowlevel.current_task().child_nurseries) == before


async def test_outer_cancellation_is_not_swallowed(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    graph = UnifiedStageGraph([spec("blocked", probe.blocker("blocked"))])
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def cancel_soon() -> None:
                await trio.sleep(1)
                scope.cancel()

            nursery.start_soon(cancel_soon)
            await graph.run(stage_ctx())
            pytest.fail("run returned although its scope was cancelled")  # pragma: no cover
    assert scope.cancelled_caught


def _chain_of(n: int, body: Callable[[str], object]) -> UnifiedStageGraph:
    specs: list[UnifiedStageSpec] = []
    for i in range(n):

        async def run(ctx: StageContext) -> StageOutput:
            body(ctx.stage_name)
            return StageOutput.ok()

        specs.append(spec(f"s{i}", run, [f"s{i - 1}"] if i else []))
    return UnifiedStageGraph(specs)


async def test_a_chain_that_never_awaits_stops_right_after_a_token_cancel() -> None:
    token = CancellationToken()
    ran: list[str] = []

    def body(name: str) -> None:
        ran.append(name)
        if name == "s3":
            token.cancel("stop here")

    with pytest.raises(UnifiedPipelineCancelled, match="stop here"):
        await _chain_of(10, body).run(stage_ctx(), cancel_token=token)
    assert ran == ["s0", "s1", "s2", "s3"]


async def test_a_chain_that_never_awaits_sees_an_outer_cancel_between_stages() -> None:
    ran: list[str] = []
    with trio.CancelScope() as scope:

        def body(name: str) -> None:
            ran.append(name)
            if name == "s2":
                scope.cancel()

        await _chain_of(10, body).run(stage_ctx())
    assert scope.cancelled_caught
    assert ran == ["s0", "s1", "s2"]


async def _progress_seen_by_another_task(stages: int) -> list[int]:
    """Run a chain of stages that never await; the distinct stage counts a ticker saw."""
    ran: list[str] = []
    seen: list[int] = []

    async def ticker() -> None:
        while True:
            seen.append(len(ran))
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        await _chain_of(stages, ran.append).run(stage_ctx())
        # A chain's run ends with a schedule point only when the budget says one is
        # due: let the ticker see the end before it stops.
        await trio.lowlevel.checkpoint()
        nursery.cancel_scope.cancel()
    return sorted(set(seen))


async def test_a_long_chain_that_never_awaits_yields_to_other_tasks() -> None:
    calls = 8
    with checkpoint_budget(calls=calls, seconds=math.inf):
        progress = await _progress_seen_by_another_task(5 * calls)
    assert progress[-1] >= 4 * calls
    # The chain yields every `calls` stages; trio shuffles the order of the tasks
    # within one scheduling batch, so the ticker may see two such steps at once.
    assert max(b - a for a, b in itertools.pairwise(progress)) <= 2 * calls


async def test_a_one_call_budget_yields_between_every_two_stages() -> None:
    with checkpoint_budget(calls=1):
        progress = await _progress_seen_by_another_task(20)
    assert progress[-1] >= 19
    assert max(b - a for a, b in itertools.pairwise(progress)) <= 2


async def test_keyboard_interrupt_survives_a_pending_outer_cancel_during_cleanup() -> None:
    graph: UnifiedStageGraph
    cleaned: list[str] = []
    interrupt_seen = False

    async def cleanup() -> None:
        cleaned.append("done")

    with trio.CancelScope() as scope:

        async def interrupted(ctx: StageContext) -> StageOutput:
            graph.register_cleanup(cleanup)
            scope.cancel()  # a cancel is pending while the run unwinds
            raise KeyboardInterrupt

        graph = UnifiedStageGraph([spec("k", interrupted)])
        with pytest.raises(KeyboardInterrupt):
            await graph.run(stage_ctx())
        interrupt_seen = True
    assert interrupt_seen, "the pending cancel replaced the KeyboardInterrupt"
    assert cleaned == ["done"]


async def test_a_token_reused_across_runs_keeps_no_binding_to_finished_runs() -> None:
    token = CancellationToken()
    graph = UnifiedStageGraph([spec("a"), spec("b", deps=["a"])])
    for _ in range(3):
        await graph.run(stage_ctx(), cancel_token=token)
    assert not token._callbacks  # white box: every run unbound its scope
    token.cancel("later")  # cancelling after the runs touches nothing
    with pytest.raises(
        UnifiedPipelineCancelled, match=r"^Pipeline cancelled by stage '<external>': later$"
    ):
        await graph.run(stage_ctx(), cancel_token=token)
