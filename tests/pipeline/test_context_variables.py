"""Context variables a stage sets stay out of the task that called ``run()``.

The reference runs every stage in an asyncio task of its own, so a change never
leaves the stage. Here every root stage gets a task of its own (a copy of the
caller's context) and a stage's dependants continue in its task: a change reaches
the stages a stage releases, never the caller (docs/parity.md, "Stage scheduling").
"""

from __future__ import annotations

import contextvars
from typing import Any

import pytest

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageGraph
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.stages.context import PipelineContext
from tests.fakes import pipeline_context
from tests.pipeline.graph_helpers import spec, stage_ctx

TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="caller's")


async def _set_blue(ctx: Any) -> StageOutput:
    TENANT.set("blue")
    return StageOutput.ok(saw=TENANT.get())


async def _read(ctx: Any) -> StageOutput:
    return StageOutput.ok(saw=TENANT.get())


@pytest.mark.parametrize("roots", [1, 2])
async def test_a_unified_run_leaves_the_callers_context_alone(roots: int) -> None:
    specs = [spec("setter", _set_blue), spec("after", _read, ["setter"])]
    if roots == 2:
        specs.append(spec("other", _read))
    TENANT.set("red")
    results = await UnifiedStageGraph(specs).run(stage_ctx())
    assert TENANT.get() == "red"  # the caller's own value, whichever root ran first
    assert results["setter"].data == {"saw": "blue"}
    assert results["after"].data == {"saw": "blue"}  # released: continues in the task
    if roots == 2:
        assert results["other"].data == {"saw": "red"}  # a task of its own: a copy


async def test_a_legacy_run_leaves_the_callers_context_alone() -> None:
    seen: dict[str, str] = {}

    async def setter(ctx: PipelineContext) -> dict[str, Any]:
        TENANT.set("blue")
        return {}

    async def after(ctx: PipelineContext) -> dict[str, Any]:
        seen["after"] = TENANT.get()
        return {}

    TENANT.set("red")
    graph = StageGraph(
        [
            StageSpec(name="setter", runner=setter),
            StageSpec(name="after", runner=after, dependencies=("setter",)),
        ],
        [],
    )
    await graph.run(pipeline_context())
    assert TENANT.get() == "red"
    assert seen == {"after": "blue"}


async def test_a_pipeline_run_from_a_context_leaves_the_callers_context_alone() -> None:
    async def setter(ctx: StageContext) -> StageOutput:
        TENANT.set("blue")
        return StageOutput.ok()

    TENANT.set("red")
    await Pipeline().with_stage("setter", setter, StageKind.WORK).build().run(stage_ctx())
    assert TENANT.get() == "red"
