"""Every stage shape ``PipelineBuilder.with_stage`` documents (a PipelineContext in), and rejections."""

from __future__ import annotations

from typing import Any, assert_type

import trio

from stageflow_trio.core import StageContext, StageOutput
from stageflow_trio.pipeline import FluentPipelineBuilder, PipelineBuilder, StageGraph
from stageflow_trio.pipeline.spec import LegacyRunnerLike, StageRunner
from stageflow_trio.stages import PipelineContext, StageResult


class Load:
    async def execute(self, ctx: PipelineContext) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return {"rows": 3}


class Checked:
    async def execute(self, ctx: PipelineContext) -> StageOutput:
        return StageOutput.ok()


class WithArgs:
    def __init__(self, table: str) -> None:
        self.table = table

    async def execute(self, ctx: PipelineContext) -> StageResult | None:
        return None


async def transform(ctx: PipelineContext) -> None:
    await trio.lowlevel.checkpoint()


builder = (
    PipelineBuilder("etl")
    .with_stage("load", Load)
    .with_stage("checked", Checked(), dependencies=("load",))
    .with_stage("args", WithArgs, args={"table": "t"})
    .with_stage("transform", transform, dependencies=["load"])
)
assert_type(builder, PipelineBuilder)
assert_type(builder.build(emit_stage_wide_events=True), StageGraph)
assert_type(
    FluentPipelineBuilder("f").stage("load", Load).stage("t", transform).build(), StageGraph
)

# StageRunner is the runtime-checkable protocol of a legacy stage instance.
runner: StageRunner = Load()
shapes: list[LegacyRunnerLike] = [Load, Load(), transform]


# Rejected: unified stages (a StageContext in) belong to Pipeline.


class UnifiedStage:
    async def execute(self, ctx: StageContext) -> StageOutput:
        return StageOutput.ok()


async def unified_function(ctx: StageContext) -> StageOutput:
    return StageOutput.ok()


b = PipelineBuilder()
b.with_stage("unified class", UnifiedStage)  # type: ignore[arg-type]
b.with_stage("unified instance", UnifiedStage())  # type: ignore[arg-type]
b.with_stage("unified function", unified_function)  # type: ignore[arg-type]
b.build(emit_stage_wide_event=True)  # type: ignore[call-arg]
FluentPipelineBuilder("f").build(interceptors=[])  # type: ignore[call-arg]
