"""Small builders shared by the graph tests."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.events.sink import EventSink
from stageflow_trio.pipeline.dag import UnifiedStageSpec
from stageflow_trio.testing import create_test_snapshot, create_test_stage_context

RUN_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQUEST_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")

Runner = Callable[[StageContext], Awaitable[Any]]


def snapshot(**kwargs: Any) -> ContextSnapshot[Any]:
    kwargs.setdefault("topology", "test_topology")
    return create_test_snapshot(pipeline_run_id=RUN_ID, request_id=REQUEST_ID, **kwargs)


def stage_ctx(
    event_sink: EventSink | None = None, snap: ContextSnapshot[Any] | None = None
) -> StageContext:
    """The root context a graph run starts from (the graph makes each stage's own)."""
    return create_test_stage_context(
        snapshot=snap or snapshot(), stage_name="pipeline", event_sink=event_sink
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
