"""Audit: TracingInterceptor ends every span it starts and checks its tracer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio

from stageflow_trio._time import utc_now
from stageflow_trio.pipeline.interceptors import TracingInterceptor, run_with_interceptors
from stageflow_trio.stages.result import StageResult
from tests.fakes import RecordingTracer as Tracer
from tests.fakes import pipeline_context


def stage_taking(seconds: float) -> Callable[[], Awaitable[StageResult]]:
    async def run() -> StageResult:
        await trio.sleep(seconds)
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    return run


async def test_concurrent_calls_of_one_stage_on_one_context_end_both_spans(
    autojump_clock: trio.abc.Clock,
) -> None:
    tracer = Tracer()
    tracing = TracingInterceptor(tracer)
    ctx = pipeline_context()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_with_interceptors, "s", stage_taking(1), ctx, [tracing])
        nursery.start_soon(run_with_interceptors, "s", stage_taking(2), ctx, [tracing])
    assert [(span.ended, span.attributes["stageflow.stage.status"]) for span in tracer.spans] == [
        (1, "completed"),
        (1, "completed"),
    ]
    assert tracing._spans == {}


async def test_a_nested_call_of_the_same_stage_ends_its_own_span() -> None:
    tracer = Tracer()
    tracing = TracingInterceptor(tracer)
    ctx = pipeline_context()

    async def outer() -> StageResult:
        await run_with_interceptors("s", stage_taking(0), ctx, [tracing])
        assert [span.ended for span in tracer.spans] == [0, 1]  # the inner one
        return await stage_taking(0)()

    await run_with_interceptors("s", outer, ctx, [tracing])
    assert [span.ended for span in tracer.spans] == [1, 1]
    assert tracing._spans == {}


async def test_a_span_refusing_attributes_is_still_ended(autojump_clock: trio.abc.Clock) -> None:
    tracer = Tracer(refuse=True)
    tracing = TracingInterceptor(tracer)
    await run_with_interceptors("s", stage_taking(0), pipeline_context(), [tracing])
    with trio.move_on_after(1):
        await run_with_interceptors("s", stage_taking(5), pipeline_context(), [tracing])
    assert [span.ended for span in tracer.spans] == [1, 1]
    assert tracing._spans == {}


def test_tracer_is_checked_at_construction() -> None:
    with pytest.raises(
        TypeError,
        match=(
            r"^TracingInterceptor: tracer must have a callable "
            r"start_span\(name, attributes=\.\.\.\); got str$"
        ),
    ):
        TracingInterceptor(tracer="otel")
    with pytest.raises(
        TypeError,
        match=(
            r"^TracingInterceptor: tracer must be an instance with a callable start_span; "
            r"got the class RecordingTracer \(pass RecordingTracer\(\)\)$"
        ),
    ):
        TracingInterceptor(tracer=Tracer)
