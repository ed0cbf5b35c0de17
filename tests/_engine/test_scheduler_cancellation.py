"""Cancellation properties of the kernel on random DAGs, in virtual time.

For random graphs with random stage durations, a token cancelled (or a stage
failing) at a random moment must stop the run exactly there: no stage starts
afterwards, every stage still running sees ``trio.Cancelled``, and the result
holds exactly the stages that had finished.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

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
from tests.pipeline.graph_helpers import stage_ctx
from tests.pipeline.strategies import Graph, shuffled_dags

DURATIONS = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])
# The checkpoint budget must not matter: a yield between every two stages, or rarely.
BUDGET_CALLS = st.sampled_from([1, 2, 64])


class Trace:
    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.cancelled: dict[str, float] = {}


def _graph(
    graph: Graph, delays: dict[str, float], trace: Trace, failing: str | None
) -> UnifiedStageGraph:
    def runner(name: str) -> Callable[[StageContext], Awaitable[StageOutput]]:
        async def run(ctx: StageContext) -> StageOutput:
            trace.started[name] = trio.current_time()
            try:
                await trio.sleep(delays[name])
            except trio.Cancelled:
                trace.cancelled[name] = trio.current_time()
                raise
            if name == failing:
                raise RuntimeError(f"{name} failed")
            trace.finished[name] = trio.current_time()
            return StageOutput.ok()

        return run

    return UnifiedStageGraph(
        [UnifiedStageSpec(name=n, runner=runner(n), dependencies=d) for n, d in graph.items()]
    )


@given(shuffled_dags(max_stages=8), st.data())
def test_a_token_cancel_stops_the_run_exactly_there(graph: Graph, data: st.DataObject) -> None:
    delays = {name: data.draw(DURATIONS) for name in graph}
    cancel_at = data.draw(st.sampled_from([0.25, 0.75, 1.25, 1.75, 2.25, 3.25, 5.25]))
    trace = Trace()
    dag = _graph(graph, delays, trace, failing=None)
    token = CancellationToken()

    async def main() -> object:
        async def cancel() -> None:
            await trio.sleep_until(cancel_at)
            token.cancel("stop")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel)
            try:
                return await dag.run(stage_ctx(), cancel_token=token)
            except UnifiedPipelineCancelled as stopped:
                return stopped
            finally:
                nursery.cancel_scope.cancel()

    with checkpoint_budget(calls=data.draw(BUDGET_CALLS), seconds=math.inf):
        outcome = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # Times are multiples of 0.5 and the cancel lands between them: no ties.
    if isinstance(outcome, UnifiedPipelineCancelled):
        assert set(outcome.results) == set(trace.finished)
        assert all(t < cancel_at for t in trace.finished.values())
        assert all(t < cancel_at for t in trace.started.values())
        assert set(trace.cancelled) == set(trace.started) - set(trace.finished)
        assert all(t == cancel_at for t in trace.cancelled.values())
    else:
        assert set(trace.finished) == set(graph)
        assert max(trace.finished.values()) < cancel_at


@given(shuffled_dags(max_stages=8), st.data())
def test_a_failing_stage_stops_the_run_exactly_there(graph: Graph, data: st.DataObject) -> None:
    delays = {name: data.draw(DURATIONS) for name in graph}
    failing = data.draw(st.sampled_from(sorted(graph)))
    trace = Trace()
    dag = _graph(graph, delays, trace, failing=failing)

    async def main() -> UnifiedStageExecutionError:
        try:
            await dag.run(stage_ctx())
        except UnifiedStageExecutionError as exc:
            return exc
        raise AssertionError("the failing stage did not fail the run")

    with checkpoint_budget(calls=data.draw(BUDGET_CALLS), seconds=math.inf):
        error = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert error.stage == failing
    failed_at = trace.started[failing] + delays[failing]
    # Stages finishing at the very same instant may or may not have completed.
    assert all(t <= failed_at for t in trace.started.values())
    assert all(t <= failed_at for t in trace.finished.values())
    assert set(trace.cancelled) <= set(trace.started) - set(trace.finished) - {failing}
    assert all(t == failed_at for t in trace.cancelled.values())
    still_running = {
        n for n, t in trace.started.items() if n != failing and t + delays[n] > failed_at
    }
    assert still_running <= set(trace.cancelled)
