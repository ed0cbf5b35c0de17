"""Properties of the scheduling kernel on random DAGs with random delays, in virtual time."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio._engine._scheduler import Topology
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.lowlevel import checkpoint_budget
from stageflow_trio.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec
from tests.pipeline.graph_helpers import stage_ctx
from tests.pipeline.strategies import Graph, shuffled_dags


@st.composite
def timed_dags(draw: st.DrawFn) -> tuple[Graph, dict[str, float]]:
    graph = draw(shuffled_dags(max_stages=10))
    delays = {name: draw(st.sampled_from([0.0, 0.0, 0.001, 0.5, 1.0, 2.5])) for name in graph}
    return graph, delays


@given(timed_dags(), st.sampled_from([1, 2, 64]))
def test_every_stage_runs_once_after_all_its_dependencies(
    case: tuple[Graph, dict[str, float]], calls: int
) -> None:
    """Whatever the checkpoint budget: yielding between every two stages or rarely."""
    graph, delays = case
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    runs: list[str] = []

    def runner(name: str) -> Callable[[StageContext], Awaitable[StageOutput]]:
        async def run(ctx: StageContext) -> StageOutput:
            started[name] = trio.current_time()
            runs.append(name)
            for dep in graph[name]:
                assert dep in finished, f"{name} started before its dependency {dep}"
            await trio.sleep(delays[name])
            finished[name] = trio.current_time()
            return StageOutput.ok(name=name)

        return run

    specs = [
        UnifiedStageSpec(name=name, runner=runner(name), dependencies=deps)
        for name, deps in graph.items()
    ]

    async def main() -> dict[str, StageOutput]:
        return await UnifiedStageGraph(specs).run(stage_ctx())

    with checkpoint_budget(calls=calls, seconds=math.inf):
        results = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert sorted(runs) == sorted(graph)
    assert set(results) == set(graph)
    for name, deps in graph.items():
        # Starts as soon as the last dependency finished: no idle gap in virtual time.
        expected = max((finished[d] for d in deps), default=0.0)
        assert started[name] == expected


def test_topology_is_computed_once_with_deduplicated_dependencies() -> None:
    topo = Topology({"a": (), "b": ("a", "a"), "c": ("a", "b")})
    assert topo.roots == ("a",)
    assert topo.deps["b"] == ("a",)
    assert topo.indegree == {"a": 0, "b": 1, "c": 2}
    assert topo.children == {"a": ("b", "c"), "b": ("c",), "c": ()}
    assert topo.dep_sets["c"] == frozenset({"a", "b"})
