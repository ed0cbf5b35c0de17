"""Every stage shape ``Pipeline.with_stage`` documents (a StageContext in), and what it rejects."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, assert_type

import trio

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline, UnifiedStageGraph
from stageflow_trio.stages import PipelineContext, StageResult

# The README's first pipeline, verbatim.


class Greet:
    name = "greet"
    kind = StageKind.TRANSFORM

    async def execute(self, ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text=f"hello, {ctx.snapshot.input_text}")


graph = Pipeline().with_stage("greet", Greet, StageKind.TRANSFORM).build()
assert_type(graph, UnifiedStageGraph)


# Accepted shapes.


class Bare:
    """No name or kind attributes: only ``execute`` is needed."""

    async def execute(self, ctx: StageContext) -> StageOutput:
        await trio.lowlevel.checkpoint()
        return StageOutput.ok()


class Configured:
    """A class with constructor keywords, given through ``config``."""

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    async def execute(self, ctx: StageContext) -> dict[str, Any]:
        return {"greeting": self.greeting}


class ReturnsNone:
    async def execute(self, ctx: StageContext) -> None:
        await trio.lowlevel.checkpoint()


class AwaitableExecute:
    """A plain ``def`` returning an awaitable is as good as an ``async def``."""

    def execute(self, ctx: StageContext) -> Awaitable[StageOutput]:
        return Bare().execute(ctx)


async def function(ctx: StageContext) -> StageOutput:
    return StageOutput.ok(input=ctx.snapshot.input_text)


async def untyped_context(ctx: Any) -> None:
    await trio.lowlevel.checkpoint()


accepted = (
    Pipeline()
    .with_stage("class", Bare, StageKind.TRANSFORM)
    .with_stage("instance", Bare(), StageKind.TRANSFORM)
    .with_stage("configured", Configured, StageKind.ENRICH, config={"greeting": "hi"})
    .with_stage("none", ReturnsNone, StageKind.WORK)
    .with_stage("awaitable", AwaitableExecute(), StageKind.WORK)
    .with_stage("function", function, StageKind.TRANSFORM, dependencies=("class",))
    .with_stage("untyped", untyped_context, StageKind.WORK, conditional=True)
    .with_stage("empty config", Bare(), StageKind.WORK, config={})
)
assert_type(accepted, Pipeline)
assert_type(
    accepted.build(
        cleanup_timeout=2.0,
        interceptors=[],
        wide_event_emitter=None,
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    ),
    UnifiedStageGraph,
)


# Rejected shapes.


class LegacyStage:
    """A PipelineBuilder stage: its execute takes a PipelineContext."""

    async def execute(self, ctx: PipelineContext) -> StageResult | None:
        return None


async def legacy_function(ctx: PipelineContext) -> dict[str, Any]:
    return {}


class SyncExecute:
    def execute(self, ctx: StageContext) -> StageOutput:
        return StageOutput.ok()


def sync_function(ctx: StageContext) -> StageOutput:
    return StageOutput.ok()


class WrongResult:
    async def execute(self, ctx: StageContext) -> int:
        return 1


class NoExecute:
    pass


p = Pipeline()
p.with_stage("legacy class", LegacyStage, StageKind.WORK)  # type: ignore[arg-type]
p.with_stage("legacy instance", LegacyStage(), StageKind.WORK)  # type: ignore[call-overload]
p.with_stage("legacy function", legacy_function, StageKind.WORK)  # type: ignore[arg-type]
p.with_stage("sync execute", SyncExecute, StageKind.WORK)  # type: ignore[arg-type]
p.with_stage("sync function", sync_function, StageKind.WORK)  # type: ignore[arg-type]
p.with_stage("wrong result", WrongResult, StageKind.WORK)  # type: ignore[arg-type]
p.with_stage("no execute", NoExecute, StageKind.WORK)  # type: ignore[arg-type]
p.with_stage("kind as str", Bare, "transform")  # a kind's value is typed since 1.2.0
# config is only for classes (the runtime raises PipelineConfigError too).
p.with_stage("config on instance", Bare(), StageKind.WORK, config={"x": 1})  # type: ignore[dict-item]
p.with_stage("config on function", function, StageKind.WORK, config={"x": 1})  # type: ignore[dict-item]
# Graph options are explicit keywords: a typo is caught before the runtime TypeError.
p.build(interceptor=[])  # type: ignore[call-arg]
p.build(cleanup_timeout="10")  # type: ignore[arg-type]
