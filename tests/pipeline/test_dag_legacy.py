"""The legacy StageGraph: runs (unlike the reference's PipelineBuilder graph), events, cancel flag."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import StageExecutionError, StageGraph, StageSpec
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from tests.fakes import payload

RUN_ID = uuid.UUID("33333333-3333-4333-8333-333333333333")


def pipeline_ctx(sink: Any = None) -> PipelineContext:
    return create_test_pipeline_context(
        pipeline_run_id=RUN_ID,
        topology="legacy_topology",
        execution_mode="practice",
        event_sink=sink,
    )


def fn(
    name: str, log: list[str], result: Any = None
) -> Callable[[PipelineContext], Awaitable[Any]]:
    async def run(ctx: PipelineContext) -> Any:
        log.append(name)
        return result

    return run


async def test_chain_runs_and_returns_stage_results() -> None:
    log: list[str] = []
    graph = StageGraph(
        [
            StageSpec(name="a", runner=fn("a", log, {"x": 1})),
            StageSpec(name="b", runner=fn("b", log, StageOutput.ok(y=2)), dependencies=("a",)),
            StageSpec(name="c", runner=fn("c", log), dependencies=("b",)),
        ]
    )
    results = await graph.run(pipeline_ctx())
    assert log == ["a", "b", "c"]
    assert {name: r.status for name, r in results.items()} == {
        "a": "completed",
        "b": "completed",
        "c": "completed",
    }
    assert results["a"].data == {"x": 1}
    assert results["b"].data == {"y": 2}
    assert isinstance(results["c"], StageResult)


async def test_class_and_instance_runners() -> None:
    class Stage:
        instances = 0

        def __init__(self) -> None:
            Stage.instances += 1

        async def execute(self, ctx: PipelineContext) -> StageOutput:
            return StageOutput.ok(n=Stage.instances)

    instance = Stage()
    graph = StageGraph(
        [StageSpec(name="cls", runner=Stage), StageSpec(name="obj", runner=instance)]
    )
    results = await graph.run(pipeline_ctx())
    assert results["cls"].data == {"n": 2}  # a fresh instance per run
    assert results["obj"].status == "completed"


async def test_conditional_is_ignored() -> None:
    log: list[str] = []
    graph = StageGraph(
        [
            StageSpec(name="router", runner=fn("router", log, {"skip_reason": "x"})),
            StageSpec(
                name="branch", runner=fn("branch", log), dependencies=("router",), conditional=True
            ),
        ]
    )
    await graph.run(pipeline_ctx())
    assert log == ["router", "branch"]


async def test_a_failed_stage_does_not_stop_the_others() -> None:
    log: list[str] = []

    async def boom(ctx: PipelineContext) -> None:
        raise ValueError("boom")

    graph = StageGraph(
        [
            StageSpec(name="bad", runner=boom),
            StageSpec(name="after", runner=fn("after", log), dependencies=("bad",)),
            StageSpec(name="other", runner=fn("other", log)),
        ]
    )
    results = await graph.run(pipeline_ctx())
    assert results["bad"].status == "failed"
    assert results["bad"].error == "boom"
    assert sorted(log) == ["after", "other"]


async def test_fail_output_is_a_failed_result() -> None:
    async def failing(ctx: PipelineContext) -> StageOutput:
        return StageOutput.fail(error="nope")

    results = await StageGraph([StageSpec(name="f", runner=failing)]).run(pipeline_ctx())
    assert results["f"].status == "failed"
    assert results["f"].error == "nope"


async def test_lifecycle_events_payloads() -> None:
    sink = RecordingEventSink()

    async def boom(ctx: PipelineContext) -> None:
        raise ValueError("boom")

    graph = StageGraph(
        [StageSpec(name="ok", runner=fn("ok", [])), StageSpec(name="bad", runner=boom)]
    )
    await graph.run(pipeline_ctx(sink))
    assert sorted(sink.types()) == sorted(
        [
            "stage.ok.started",
            "stage.ok.completed",
            "stage.bad.started",
            "stage.bad.failed",
            "pipeline_completed",
        ]
    )
    completed = payload(sink.of_type("stage.ok.completed")[0])
    assert set(completed) == {
        "request_id",
        "session_id",
        "user_id",
        "org_id",
        "service",
        "stage",
        "status",
        "timestamp",
        "topology",
        "execution_mode",
        "duration_ms",
        "pipeline_run_id",
    }
    assert completed["pipeline_run_id"] == str(RUN_ID)
    failed = payload(sink.of_type("stage.bad.failed")[0])
    assert failed["error"] == "boom"
    assert failed["status"] == "failed"


async def test_mark_canceled_fails_the_remaining_stages(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []

    async def cancelling(ctx: PipelineContext) -> None:
        ctx.mark_canceled()

    async def slow(ctx: PipelineContext) -> None:
        await trio.sleep(10)
        log.append("slow")

    graph = StageGraph(
        [
            StageSpec(name="cancel", runner=cancelling),
            StageSpec(name="slow", runner=slow),
            StageSpec(name="after", runner=fn("after", log), dependencies=("cancel",)),
        ]
    )
    results = await graph.run(pipeline_ctx())
    assert log == []
    assert results["cancel"].status == "completed"
    assert results["slow"].status == "failed"
    assert results["slow"].error == "Pipeline canceled"
    assert results["after"].error == "Pipeline canceled"
    assert trio.current_time() == 0


async def test_a_mark_canceled_run_says_cancelled_in_pipeline_wide_too() -> None:
    sink = RecordingEventSink()

    async def cancelling(ctx: PipelineContext) -> None:
        ctx.mark_canceled("stop")

    graph = StageGraph(
        [
            StageSpec(name="a", runner=cancelling),
            StageSpec(name="b", runner=fn("b", []), dependencies=("a",)),
        ],
        interceptors=[],
        emit_pipeline_wide_event=True,
    )
    results = await graph.run(pipeline_ctx(sink))
    assert results["b"].error == "Pipeline canceled"
    assert payload(sink.of_type("pipeline_cancelled")[0])["stage"] == "a"
    summary = payload(sink.of_type("pipeline.wide")[0])
    # The stage marked failed still counts as failed; the run's status is its outcome.
    assert (summary["status"], summary["stage_counts"]) == (
        "cancelled",
        {"completed": 1, "failed": 1},
    )


async def test_a_failed_run_emits_pipeline_wide_with_status_failed() -> None:
    # As the unified graph does; the run still raises its error, after pipeline_failed.
    sink = RecordingEventSink()

    class Gate(BaseInterceptor):
        name = "gate"

        async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
            if stage_name == "b":
                raise CriticalInterceptorError("refused", self.name)
            return None

        async def after(self, stage_name: str, result: Any, ctx: PipelineContext) -> None:
            return None

    graph = StageGraph(
        [
            StageSpec(name="a", runner=fn("a", [])),
            StageSpec(name="b", runner=fn("b", []), dependencies=("a",)),
        ],
        interceptors=[Gate()],
        emit_pipeline_wide_event=True,
    )
    with pytest.raises(StageExecutionError):
        await graph.run(pipeline_ctx(sink))
    assert sink.types()[-2:] == ["pipeline_failed", "pipeline.wide"]
    summary = payload(sink.of_type("pipeline.wide")[0])
    assert (summary["status"], summary["stage_counts"]) == ("failed", {"completed": 1})


async def test_critical_interceptor_error_stops_the_run_as_stage_execution_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    cancelled: list[str] = []

    class Gate(BaseInterceptor):
        name = "gate"
        priority = 1

        async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
            if stage_name == "guarded":
                await trio.sleep(1)
                raise CriticalInterceptorError("denied", self.name)
            return None

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            return None

    async def slow(ctx: PipelineContext) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append("slow")
            raise

    graph = StageGraph(
        [StageSpec(name="guarded", runner=fn("g", [])), StageSpec(name="slow", runner=slow)],
        interceptors=[Gate()],
    )
    with pytest.raises(StageExecutionError, match=r"^Stage guarded failed: denied$") as info:
        await graph.run(pipeline_ctx())
    assert info.value.stage == "guarded"
    assert isinstance(info.value.original, CriticalInterceptorError)
    assert cancelled == ["slow"]


def test_specs_are_validated_with_errors_naming_the_stage() -> None:
    with pytest.raises(TypeError, match=r"^StageSpec 'x': runner must be a stage class"):
        StageSpec(name="x", runner=42)
    with pytest.raises(TypeError, match=r"^StageSpec 'x': dependencies must be a tuple or list"):
        StageSpec(name="x", runner=fn("x", []), dependencies="a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^StageSpec name cannot be whitespace-only$"):
        StageSpec(name="  ", runner=fn("x", []))


def test_missing_dependency_is_reported_when_the_graph_is_built() -> None:
    from stageflow_trio.pipeline.spec import PipelineValidationError

    with pytest.raises(
        PipelineValidationError, match=r"^Stage 'a' depends on 'ghost' which does not exist$"
    ) as info:
        StageGraph([StageSpec(name="a", runner=fn("a", []), dependencies=("ghost",))])
    assert info.value.error_info is not None
    assert info.value.error_info.code == "CONTRACT-004-MISSING_DEP"


async def test_unsupported_result_type_is_a_failed_result() -> None:
    async def bad(ctx: PipelineContext) -> int:
        return 5

    results = await StageGraph([StageSpec(name="bad", runner=bad)]).run(pipeline_ctx())
    assert results["bad"].status == "failed"
    assert results["bad"].error == "Stage bad returned unsupported result type <class 'int'>"


def test_graph_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^StageGraph requires at least one StageSpec$"):
        StageGraph([])
    with pytest.raises(TypeError, match=r"^StageGraph: specs\[0\] must be a StageSpec; got int$"):
        StageGraph([5])  # type: ignore[list-item]


async def test_a_context_canceled_before_the_run_fails_every_stage() -> None:
    log: list[str] = []
    ctx = pipeline_ctx()
    ctx.mark_canceled()
    graph = StageGraph(
        [
            StageSpec(name="a", runner=fn("a", log)),
            StageSpec(name="b", runner=fn("b", log), dependencies=("a",)),
        ]
    )
    results = await graph.run(ctx)
    assert log == []
    assert {name: (r.status, r.error) for name, r in results.items()} == {
        "a": ("failed", "Pipeline canceled"),
        "b": ("failed", "Pipeline canceled"),
    }


async def test_a_returned_stage_result_is_kept_as_it_is() -> None:
    made = StageResult(
        name="a", status="completed", started_at=utc_now(), ended_at=utc_now(), data={"v": 1}
    )
    results = await StageGraph([StageSpec(name="a", runner=fn("a", [], made))]).run(pipeline_ctx())
    assert results["a"] is made


async def test_a_stage_marking_the_run_cancelled_completes_unless_it_awaits_after_the_mark(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The mark cancels the run at once (docs/cancellation.md): the marking stage's own
    # call completes only if nothing after the mark yields; the default chain does not.
    class SlowAfter(BaseInterceptor):
        name = "slow_after"

        async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
            return None

        async def after(self, stage_name: str, result: Any, ctx: PipelineContext) -> None:
            await trio.sleep(0.1)

    async def marking(ctx: PipelineContext) -> StageOutput:
        ctx.mark_canceled("stop")
        return StageOutput.ok(x=1)

    outcomes = {}
    for label, chain in (("default", None), ("awaiting after", [SlowAfter()])):
        sink = RecordingEventSink()
        graph = StageGraph(
            [
                StageSpec(name="a", runner=marking),
                StageSpec(name="b", runner=fn("b", []), dependencies=("a",)),
            ],
            interceptors=chain,
        )
        results = await graph.run(pipeline_ctx(sink))
        cancelled = payload(sink.of_type("pipeline_cancelled")[0])
        outcomes[label] = (results["a"].status, results["a"].error, cancelled["stage"])
    assert outcomes == {
        "default": ("completed", None, "a"),
        "awaiting after": ("failed", "Pipeline canceled", "<external>"),
    }
