"""Audit 15: claims of the user guides (README, getting started, concepts, engine, builders,
events, context, migration, subpipelines, streaming, duplex, deployment), pinned one by one."""

from __future__ import annotations

import contextlib
import inspect
import uuid
from types import ModuleType
from typing import Any

import pytest
import trio

import stageflow_trio
from stageflow_trio.context import ContextSnapshot
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import (
    ChildRunTracker,
    GuardRetryPolicy,
    GuardRetryStrategy,
    Pipeline,
    SubpipelineSpawner,
)
from stageflow_trio.pipeline.dag import UnifiedPipelineCancelled, UnifiedStageExecutionError
from stageflow_trio.pipeline.idempotency import STAGE_ATTEMPT_KEY
from stageflow_trio.pipeline.interceptors import BaseInterceptor, get_default_interceptors
from stageflow_trio.pipeline.retry import RetryInterceptor
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
)


def test_concepts_default_interceptors_hold_no_retry_interceptor() -> None:
    """concepts.md: get_default_interceptors() lists these, in this order, without retries."""
    chain = get_default_interceptors()
    assert [type(i).__name__ for i in chain] == [
        "IdempotencyInterceptor",
        "TimeoutInterceptor",
        "CircuitBreakerInterceptor",
        "TracingInterceptor",
        "MetricsInterceptor",
        "ChildTrackerMetricsInterceptor",
        "LoggingInterceptor",
    ]
    assert not any(isinstance(i, RetryInterceptor) for i in chain)


def test_context_constructor_refuses_an_unhashable_leaf_and_keeps_a_hashable_one() -> None:
    """context.md: the constructors refuse a set leaf with from_dict's message; frozenset kept."""
    message = (
        "metadata.tags must be a dict, a list or an immutable value "
        "(free-form data is frozen and hashable), got set"
    )
    with pytest.raises(TypeError) as built:
        ContextSnapshot(metadata={"tags": {1, 2}})
    with pytest.raises(TypeError) as read:
        ContextSnapshot.from_dict({"metadata": {"tags": {1, 2}}})
    assert str(built.value) == str(read.value) == message
    tags = frozenset({1})
    assert ContextSnapshot(metadata={"tags": tags}).metadata["tags"] is tags


def test_migration_top_level_all_holds_every_reference_name(reference: ModuleType) -> None:
    """migration.md: every name of stageflow's top-level __all__ is in stageflow_trio's."""
    ours = set(stageflow_trio.__all__)
    assert set(reference.__all__) <= ours
    assert {"stage", "run_stage", "PipelineResults", "stage_metadata"} <= ours


def test_builders_pipeline_with_stage_signature() -> None:
    """builders.md: kind defaults to None and after= is keyword-only."""
    params = inspect.signature(Pipeline.with_stage).parameters
    assert list(params)[1:] == [
        "name",
        "runner",
        "kind",
        "dependencies",
        "conditional",
        "config",
        "after",
    ]
    assert params["kind"].default is None
    assert params["after"].kind is inspect.Parameter.KEYWORD_ONLY


async def test_engine_guard_retry_marks_both_reruns_with_the_attempt_key() -> None:
    """engine.md: STAGE_ATTEMPT_KEY (public in pipeline.idempotency) is 2, 3 on re-runs."""
    assert STAGE_ATTEMPT_KEY == "_stage_attempt.{stage}"
    seen: list[tuple[str, Any, Any]] = []

    class Spy(BaseInterceptor):
        name = "spy"
        priority = 1

        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            seen.append(
                (
                    stage_name,
                    ctx.data.get(STAGE_ATTEMPT_KEY.format(stage="draft")),
                    ctx.data.get(STAGE_ATTEMPT_KEY.format(stage="guard")),
                )
            )

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            return None

    drafts = iter(["a", "b", "long enough"])

    async def draft(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text=next(drafts))

    async def guard(ctx: StageContext) -> StageOutput:
        if len(ctx.inputs.get_from("draft", "text")) < 5:
            return StageOutput.fail(error="short")
        return StageOutput.ok()

    graph = (
        Pipeline()
        .with_stage("draft", draft, StageKind.TRANSFORM)
        .with_stage("guard", guard, StageKind.GUARD, after="draft")
        .build(
            guard_retry_strategy=GuardRetryStrategy(
                {"guard": GuardRetryPolicy("draft", max_attempts=3)}
            ),
            interceptors=[Spy()],
        )
    )
    await graph.run(create_test_stage_context())
    assert seen == [
        ("draft", None, None),
        ("guard", None, None),
        ("draft", 2, None),
        ("guard", 2, 2),
        ("draft", 3, 2),
        ("guard", 3, 3),
    ]


async def test_engine_bad_return_type_fails_the_stage_with_type_error() -> None:
    """engine.md: anything but StageOutput, dict or None fails the stage with TypeError."""

    async def bad(ctx: StageContext) -> Any:
        return 42

    graph = Pipeline().with_stage("bad", bad, StageKind.WORK).build()
    with pytest.raises(UnifiedStageExecutionError) as failed:
        await graph.run(create_test_stage_context())
    assert isinstance(failed.value.original, TypeError)


async def test_events_cancel_and_retry_outputs_end_with_completed() -> None:
    """events.md: a stage returning cancel or retry ends with stage.{name}.completed."""
    for output in (StageOutput.cancel(reason="stop"), StageOutput.retry(error="again")):

        async def stage(ctx: StageContext, output: StageOutput = output) -> StageOutput:
            return output

        sink = RecordingEventSink()
        graph = Pipeline().with_stage("s", stage, StageKind.WORK).build()
        with contextlib.suppress(UnifiedPipelineCancelled):  # the cancel output stops the run
            await graph.run(create_test_stage_context(event_sink=sink))
        assert sink.types()[:2] == ["stage.s.started", "stage.s.completed"]


async def test_events_skipped_payload_keys(autojump_clock: trio.abc.Clock) -> None:
    """events.md: stage.{name}.skipped carries stage, reason, duration_ms and two ids."""

    async def skipper(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.5)
        return StageOutput.skip(reason="nothing")

    sink = RecordingEventSink()
    graph = Pipeline().with_stage("s", skipper, StageKind.WORK).build()
    await graph.run(create_test_stage_context(event_sink=sink))
    [payload] = sink.of_type("stage.s.skipped")
    assert payload is not None
    assert set(payload) == {"stage", "reason", "duration_ms", "pipeline_run_id", "request_id"}
    assert (payload["reason"], payload["duration_ms"]) == ("nothing", 500)


async def test_subpipelines_spawn_detached_under_a_cancelled_parent_returns_none() -> None:
    """subpipelines.md: spawn_detached under a cancelled parent starts nothing: None."""
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    parent = create_test_pipeline_context()
    parent.mark_canceled()
    called: list[str] = []

    async def runner(child: PipelineContext) -> dict[str, Any]:
        called.append("ran")
        return {}

    async with trio.open_nursery() as nursery:
        child_id = await spawner.spawn_detached(
            "x", parent, uuid.uuid4(), "s", runner, nursery=nursery
        )
    assert child_id is None
    assert called == []
