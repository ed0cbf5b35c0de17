"""Audit 19, mutation pass: tests that pin behaviour this session's changes added and
that no other test held (each kills a mutant of the new code that survived the suite).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.helpers import PipelineRunner
from stageflow_trio.pipeline import GuardRetryPolicy, GuardRetryStrategy, Pipeline
from stageflow_trio.pipeline.cancellation import CleanupRegistry
from stageflow_trio.pipeline.interceptors import BaseInterceptor
from stageflow_trio.stages import PipelineContext
from stageflow_trio.stages.errors import handle_async_task_error, log_debug_failure, log_stage_error
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink
from tests.test_audit19_reentry import sleeping_stage_on_own_sink

T = StageKind.TRANSFORM


async def test_three_overlapping_runner_runs_on_one_context_each_get_their_own_events(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Runs A, B, C start in that order on one context and end in the other order: when
    # C ends the context's sink must be B's (the newest run still going), not A's and
    # not C's finished one; when B ends, A's. Each run's result then holds exactly its
    # own stage's events.
    pipeline, own, ctx = sleeping_stage_on_own_sink()
    runner = PipelineRunner(verbose=False, capture_events=True)
    results: dict[str, Any] = {}

    async def run(label: str, start: float, length: str) -> None:
        await trio.sleep(start)
        ctx.input_text = length
        results[label] = await runner.run(pipeline, pipeline_ctx=ctx)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "A", 0, "5")
        nursery.start_soon(run, "B", 0.5, "3")
        nursery.start_soon(run, "C", 1, "1")
    for label in "ABC":
        types = [event["type"] for event in results[label].events]
        assert types.count("stage.s.completed") == 1, (label, types)
    assert ctx.event_sink is own


async def test_the_first_late_cleanup_callback_gets_only_the_time_left(
    autojump_clock: trio.abc.Clock,
) -> None:
    # One callback (its share: the whole 1 s) takes 0.9 s and registers another that
    # would take 5 s: the late one is cut at the 0.1 s left, not given a full share.
    registry = CleanupRegistry()

    async def late() -> None:
        await trio.sleep(5)

    async def first() -> None:
        await trio.sleep(0.9)
        registry.register(late, name="late")

    registry.register(first, name="first")
    completed, failed = await registry.run_all(timeout=1)
    assert completed == ["first"]
    assert [(name, str(exc)) for name, exc in failed] == [("late", "Cleanup timed out: late")]
    assert trio.current_time() == pytest.approx(1.0)


async def test_a_late_cleanup_callback_with_under_half_the_floor_left_does_not_run(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # 4 ms left of the budget (under half the 10 ms floor): reported, never started.
    registry = CleanupRegistry()
    ran: list[str] = []

    async def late() -> None:
        ran.append("late")

    async def first() -> None:
        await trio.sleep(0.996)
        registry.register(late, name="late")

    registry.register(first, name="first")
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.cancellation"):
        completed, failed = await registry.run_all(timeout=1)
    assert [r.getMessage() for r in caplog.records] == ["Cleanup timed out before it ran: late"]
    assert ran == []
    assert completed == ["first"]
    assert [(name, str(exc)) for name, exc in failed] == [
        ("late", "Cleanup timed out before it ran: late")
    ]


class _Remark(BaseInterceptor):
    """Writes another value into draft's attempt mark after guard's second call (as
    another run of the same context would)."""

    name = "remark"
    priority = 50

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        pass

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        if stage_name == "guard" and ctx.data.get("_stage_attempt.guard") == 2:
            ctx.data["_stage_attempt.draft"] = 7


async def test_an_attempt_mark_changed_since_the_run_set_it_is_left_in_place(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The run removes only the marks it left as it set them: one holding another value
    # by the end of the run belongs to someone else (another run of the context).
    guard_calls = 0

    async def draft(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text="x")

    async def guard(ctx: StageContext) -> StageOutput:
        nonlocal guard_calls
        guard_calls += 1
        return StageOutput.ok() if guard_calls % 2 == 0 else StageOutput.fail(error="bad")

    graph = (
        Pipeline("p")
        .with_stage("draft", draft, T)
        .with_stage("guard", guard, StageKind.GUARD, after="draft")
        .build(
            interceptors=[_Remark()],
            guard_retry_strategy=GuardRetryStrategy(
                {"guard": GuardRetryPolicy(retry_stage="draft", max_attempts=3)}
            ),
        )
    )
    ctx = PipelineContext.create()
    await graph.run(ctx)
    assert guard_calls == 2
    assert ctx.data == {"_stage_attempt.draft": 7}


async def test_a_runner_run_gives_back_the_sink_the_context_has_when_it_starts(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The context's own sink is read at each run's start: one the caller set between
    # two runs is the one the second run gives back (not the first run's, kept over).
    async def stage(ctx: StageContext) -> StageOutput:
        return StageOutput.ok()

    pipeline = Pipeline("p").with_stage("s", stage, T)
    first, second = RecordingEventSink(), RecordingEventSink()
    ctx = PipelineContext.create(event_sink=first)
    runner = PipelineRunner(verbose=False)
    assert (await runner.run(pipeline, pipeline_ctx=ctx)).success
    assert ctx.event_sink is first
    ctx.event_sink = second
    assert (await runner.run(pipeline, pipeline_ctx=ctx)).success
    assert ctx.event_sink is second
    await pipeline.run(ctx)
    assert second.types() == ["stage.s.started", "stage.s.completed", "pipeline_completed"]
    assert first.types() == []


@pytest.mark.parametrize(
    ("call", "owner"),
    [
        (
            lambda c: log_stage_error("s", ValueError("x"), additional_context=c),
            "log_stage_error: additional_context",
        ),
        (
            lambda c: log_debug_failure("op", ValueError("x"), context=c),
            "log_debug_failure: context",
        ),
        (
            lambda c: handle_async_task_error("t", ValueError("x"), context=c),
            "handle_async_task_error: context",
        ),
    ],
    ids=["log_stage_error", "log_debug_failure", "handle_async_task_error"],
)
def test_the_error_log_helpers_refuse_a_context_that_is_not_a_mapping(
    call: Any, owner: str
) -> None:
    with pytest.raises(TypeError, match=f"^{owner} must be a dict or None; got list$"):
        call([("name", "x")])
