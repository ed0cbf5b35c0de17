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
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)

from .graph_helpers import snapshot, spec, stage_ctx


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


def test_an_infinite_or_zero_cleanup_timeout_is_accepted() -> None:
    UnifiedStageGraph([spec("a")], cleanup_timeout=math.inf)
    StructuredTaskGroup(cleanup_timeout=0)


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
