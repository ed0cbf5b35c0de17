"""Audit 15: TracingInterceptor spans under short-circuits, nesting and cancellation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from stageflow_trio._time import utc_now
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    InterceptorResult,
    TracingInterceptor,
    run_with_interceptors,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from tests.fakes import RecordingTracer as Tracer
from tests.fakes import pipeline_context


class Gate(BaseInterceptor):
    """Runs before tracing (priority 1); skips the call while ``closed``."""

    name = "gate"
    priority = 1

    def __init__(self) -> None:
        self.closed = False

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        return InterceptorResult(stage_ran=False, error="closed") if self.closed else None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None


def stage_taking(seconds: float) -> Callable[[], Awaitable[StageResult]]:
    async def run() -> StageResult:
        await trio.sleep(seconds)
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    return run


async def test_a_skipped_nested_call_leaves_the_outer_span_alone(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The chain calls every after hook, also tracing's when an earlier interceptor
    # skipped the call before tracing's before ran: that after must not end the
    # span of the call of the same stage it is nested in.
    tracer = Tracer()
    gate = Gate()
    tracing = TracingInterceptor(tracer)
    ctx = pipeline_context()

    seen: list[Any] = []

    async def outer() -> StageResult:
        gate.closed = True
        skipped = await run_with_interceptors("s", stage_taking(0), ctx, [gate, tracing])
        gate.closed = False
        seen.append((skipped.error, [span.ended for span in tracer.spans]))
        return await stage_taking(1)()

    result = await run_with_interceptors("s", outer, ctx, [gate, tracing])
    assert result.status == "completed"
    assert seen == [("closed", [0])]  # the outer span was still open
    assert len(tracer.spans) == 1
    span = tracer.spans[0]
    assert span.ended == 1
    assert span.attributes["stageflow.stage.status"] == "completed"
    assert "stageflow.stage.error" not in span.attributes
    assert tracing._spans == {}
