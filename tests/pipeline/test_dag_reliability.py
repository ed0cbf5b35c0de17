"""Reliability at the edges (issue 13): tokens, cleanup, abort hooks, terminal events."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import (
    UnifiedPipelineCancelled,
    UnifiedStageGraph,
)

from .graph_helpers import spec, stage_ctx


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
