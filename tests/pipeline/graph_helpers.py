"""Small builders shared by the graph tests."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.core.timer import PipelineTimer
from stageflow_trio.pipeline.dag import UnifiedStageSpec
from stageflow_trio.stages.inputs import StageInputs

RUN_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQUEST_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")

Runner = Callable[[StageContext], Awaitable[Any]]


def snapshot(**kwargs: Any) -> ContextSnapshot:
    ids = RunIdentity(pipeline_run_id=RUN_ID, request_id=REQUEST_ID)
    kwargs.setdefault("topology", "test_topology")
    kwargs.setdefault("execution_mode", "test")
    return ContextSnapshot(run_id=ids, **kwargs)


def stage_ctx(event_sink: Any = None, snap: ContextSnapshot | None = None) -> StageContext:
    snap = snap or snapshot()
    return StageContext(
        snapshot=snap,
        inputs=StageInputs(snapshot=snap),
        stage_name="pipeline",
        timer=PipelineTimer(),
        event_sink=event_sink,
    )


def spec(
    name: str,
    runner: Runner | None = None,
    deps: Sequence[str] = (),
    *,
    kind: StageKind | None = StageKind.TRANSFORM,
    conditional: bool = False,
) -> UnifiedStageSpec:
    async def ok(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(stage=name)

    return UnifiedStageSpec(
        name=name,
        runner=runner or ok,
        kind=kind,
        dependencies=tuple(deps),
        conditional=conditional,
    )
