"""The current tenant under trio: concurrent runs, the tasks their stages start, and stage changes.

A task's context is copied when it is spawned, from the task that spawns it. So
runs started in one nursery, each setting its tenant first, never see each
other's tenant, and neither do the tasks their stages start. What a stage sets
follows the engine's tasks (docs/auth.md, docs/parity.md "Auth and tenancy").
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest
import trio

from stageflow_trio.auth import AuthInterceptor
from stageflow_trio.auth.tenant import get_current_tenant, require_tenant, set_current_tenant
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageGraph
from stageflow_trio.stages.context import PipelineContext
from tests.auth.helpers import ORG, OTHER_ORG, USER
from tests.fakes import pipeline_context
from tests.pipeline.graph_helpers import spec, stage_ctx

TENANTS = {"red": UUID(ORG), "blue": UUID(OTHER_ORG)}
# A diamond: a -> (b, c) -> d, so stages run inline, in spawned tasks, and after a join.
EDGES: dict[str, tuple[str, ...]] = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}


class Recorder:
    """Records (run, stage, where, tenant, time) at each observation point."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, UUID | None, float]] = []

    def note(self, run: str, stage: str, where: str) -> None:
        self.seen.append((run, stage, where, get_current_tenant(), trio.current_time()))

    async def stage_body(self, run: str, stage: str) -> None:
        """Observe, start two tasks that observe after different delays, observe again."""
        self.note(run, stage, "start")

        async def worker(index: int) -> None:
            await trio.sleep(index * 0.5)
            self.note(run, stage, f"task{index}")

            async def grandchild() -> None:
                await trio.sleep(0.25)
                self.note(run, stage, f"task{index}.child")

            async with trio.open_nursery() as inner:
                inner.start_soon(grandchild)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker, 1)
            nursery.start_soon(worker, 2)
        await trio.sleep(1)
        self.note(run, stage, "end")


def _unified_graph(recorder: Recorder) -> UnifiedStageGraph:
    def runner(stage: str) -> Any:
        async def run(ctx: StageContext) -> StageOutput:
            await recorder.stage_body(ctx.snapshot.topology or "", stage)
            return StageOutput.ok()

        return run

    return UnifiedStageGraph([spec(name, runner(name), deps) for name, deps in EDGES.items()])


def _legacy_graph(recorder: Recorder) -> StageGraph:
    def runner(stage: str) -> Any:
        async def run(ctx: PipelineContext) -> dict[str, Any]:
            await recorder.stage_body(ctx.topology or "", stage)
            return {}

        return run

    return StageGraph(
        [StageSpec(name=n, runner=runner(n), dependencies=d) for n, d in EDGES.items()],
        [AuthInterceptor()],
    )


async def _run_unified(graph: UnifiedStageGraph, run: str) -> None:
    from tests.pipeline.graph_helpers import snapshot

    set_current_tenant(TENANTS[run])
    await graph.run(stage_ctx(snap=snapshot(topology=run)))
    assert require_tenant() == TENANTS[run]


async def _run_legacy(graph: StageGraph, run: str) -> None:
    set_current_tenant(TENANTS[run])
    await graph.run(pipeline_context(topology=run, data={"_auth_token": "plain"}))
    assert require_tenant() == TENANTS[run]


@pytest.mark.parametrize("kind", ["unified", "legacy"])
async def test_concurrent_runs_never_see_each_others_tenant(
    kind: str, autojump_clock: trio.abc.Clock
) -> None:
    recorder = Recorder()
    set_current_tenant(UUID(USER))  # the parent's own tenant: neither run may see it either
    async with trio.open_nursery() as nursery:
        if kind == "unified":
            unified = _unified_graph(recorder)
            for run in TENANTS:
                nursery.start_soon(_run_unified, unified, run)
        else:
            legacy = _legacy_graph(recorder)
            for run in TENANTS:
                nursery.start_soon(_run_legacy, legacy, run)
    assert get_current_tenant() == UUID(USER)

    wrong = [entry for entry in recorder.seen if entry[3] != TENANTS[entry[0]]]
    assert wrong == []
    # Every observation point was reached in both runs: 4 stages x 6 points.
    per_run = {
        run: sorted((s, w) for r, s, w, _, _ in recorder.seen if r == run) for run in TENANTS
    }
    assert len(per_run["red"]) == 24
    assert per_run["red"] == per_run["blue"]
    # The runs really overlapped: at each virtual time both were observing.
    times = {run: {t for r, _, _, _, t in recorder.seen if r == run} for run in TENANTS}
    assert times["red"] == times["blue"]
    # Each stage: start, tasks at +0.5 and +1, their children 0.25 later, end at +2.25.
    assert sorted(times["red"]) == [
        *(0.0, 0.5, 0.75, 1.0, 1.25, 2.25),
        *(2.75, 3.0, 3.25, 3.5, 4.5),
        *(5.0, 5.25, 5.5, 5.75, 6.75),
    ]


async def test_a_task_started_before_a_change_keeps_the_old_tenant(
    autojump_clock: trio.abc.Clock,
) -> None:
    seen: dict[str, UUID | None] = {}

    async def late_reader(label: str) -> None:
        await trio.sleep(1)
        seen[label] = get_current_tenant()

    async def stage(ctx: StageContext) -> StageOutput:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(late_reader, "before")  # copies the stage's context now
            set_current_tenant(TENANTS["blue"])
            nursery.start_soon(late_reader, "after")  # and this one after the change
        return StageOutput.ok()

    set_current_tenant(TENANTS["red"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            UnifiedStageGraph([spec("x", stage), spec("y", deps=["x"])]).run, stage_ctx()
        )
    assert seen == {"before": TENANTS["red"], "after": TENANTS["blue"]}


# --- a tenant set by a stage: where it goes, here and in the reference -------------------------


def test_a_tenant_set_by_a_stage_flows_on_in_its_task(
    reference: ModuleType, ref_auth: ModuleType
) -> None:
    """Divergence: here a stage's change reaches the stages it releases, never the caller.

    The first root runs in a copy of the caller's context (the others in tasks, which
    copy it too), and a stage's dependants continue in that stage's task; the reference runs every stage in a task
    of its own, so a change never leaves the stage. Set the tenant before ``run()``.
    """
    seen: dict[str, UUID | None] = {}

    async def setter(ctx: PipelineContext) -> dict[str, Any]:
        set_current_tenant(TENANTS["blue"])
        return {}

    async def after(ctx: PipelineContext) -> dict[str, Any]:
        seen["after"] = get_current_tenant()
        return {}

    async def main() -> UUID | None:
        set_current_tenant(TENANTS["red"])
        graph = StageGraph(
            [
                StageSpec(name="setter", runner=setter),
                StageSpec(name="after", runner=after, dependencies=("setter",)),
            ],
            [],
        )
        await graph.run(pipeline_context())
        return get_current_tenant()

    assert trio.run(main) == TENANTS["red"]  # the caller keeps its own
    assert seen == {"after": TENANTS["blue"]}

    ref_tenant = ref_auth.tenant
    ref_seen: dict[str, UUID | None] = {}

    class RefSetter:
        async def execute(self, ctx: Any) -> dict[str, Any]:
            ref_tenant.set_current_tenant(TENANTS["blue"])
            return {}

    class RefAfter:
        async def execute(self, ctx: Any) -> dict[str, Any]:
            ref_seen["after"] = ref_tenant.get_current_tenant()
            return {}

    async def ref_main() -> UUID | None:
        ref_tenant.set_current_tenant(TENANTS["red"])
        dag = reference.pipeline.dag
        graph = dag.StageGraph(
            [
                dag.StageSpec(name="setter", runner=RefSetter),
                dag.StageSpec(name="after", runner=RefAfter, dependencies=("setter",)),
            ],
            [],
        )
        await graph.run(
            reference.stages.context.PipelineContext(
                pipeline_run_id=None,
                request_id=None,
                session_id=None,
                user_id=None,
                org_id=None,
                interaction_id=None,
            )
        )
        tenant: UUID | None = ref_tenant.get_current_tenant()
        return tenant

    assert asyncio.run(ref_main()) == TENANTS["red"]
    assert ref_seen == {"after": TENANTS["red"]}


async def test_a_stage_change_does_not_reach_a_running_sibling(
    autojump_clock: trio.abc.Clock,
) -> None:
    seen: list[UUID | None] = []

    async def setter(ctx: StageContext) -> StageOutput:
        set_current_tenant(TENANTS["blue"])
        return StageOutput.ok()

    async def sibling(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)  # reads after the setter has run
        seen.append(get_current_tenant())
        return StageOutput.ok()

    set_current_tenant(TENANTS["red"])
    graph = UnifiedStageGraph(
        [spec("root"), spec("setter", setter, ["root"]), spec("sibling", sibling, ["root"])]
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(graph.run, stage_ctx())
    assert seen == [TENANTS["red"]]
