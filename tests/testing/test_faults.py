"""FaultPlan: a named stage raises, fails, cancels, hangs or takes time, on chosen attempts."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import (
    CriticalInterceptorError,
    Pipeline,
    StageExecutionError,
    StageGraph,
    StageSpec,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import (
    Fault,
    FaultInjectionInterceptor,
    FaultPlan,
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
    current_run,
    explore_cancellation,
)


async def work(ctx: StageContext) -> StageOutput:
    await trio.sleep(1)
    return StageOutput.ok(done=True)


class Counter:
    """A stage class: instantiated for every call, with its config."""

    def __init__(self, step: int = 1) -> None:
        self.step = step

    async def execute(self, ctx: StageContext) -> StageOutput:
        await trio.lowlevel.checkpoint()
        return StageOutput.ok(step=self.step)


def pipeline() -> Pipeline:
    return (
        Pipeline("p")
        .with_stage("a", work, StageKind.ENRICH)
        .with_stage("b", Counter, StageKind.WORK, dependencies=("a",), config={"step": 3})
    )


async def test_raise_on_the_first_attempt_only(virtual_clock: trio.testing.MockClock) -> None:
    plan = FaultPlan().raise_error("a", ConnectionError("down"), attempts=[1])
    graph = plan.apply(pipeline()).build()
    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'a' failed: down$") as info:
        await graph.run(create_test_stage_context())
    assert isinstance(info.value.original, ConnectionError)
    assert plan.attempts() == {"a": 1}
    results = await graph.run(create_test_stage_context())
    assert results["a"].data == {"done": True}
    assert results["b"].data == {"step": 3}  # the class runner kept its config
    assert plan.attempts() == {"a": 2}


async def test_fail_and_cancel(virtual_clock: trio.testing.MockClock) -> None:
    failing = FaultPlan().fail("b", "no disk").apply(pipeline()).build()
    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'b' failed: no disk$"):
        await failing.run(create_test_stage_context())
    cancelling = FaultPlan().cancel("b", "user left").apply(pipeline()).build()
    with pytest.raises(UnifiedPipelineCancelled) as info:
        await cancelling.run(create_test_stage_context())
    assert (info.value.stage, info.value.reason) == ("b", "user left")


async def test_hang_until_cancelled_and_delay(virtual_clock: trio.testing.MockClock) -> None:
    hanging = FaultPlan().hang("a").apply(pipeline()).build()
    start = trio.current_time()
    with trio.move_on_after(30) as scope:
        await hanging.run(create_test_stage_context())
    assert scope.cancelled_caught
    assert trio.current_time() - start == 30
    slow = FaultPlan().delay("a", 2.5, attempts=[1]).apply(pipeline()).build()
    start = trio.current_time()
    results = await slow.run(create_test_stage_context())
    assert trio.current_time() - start == 3.5
    assert results["a"].duration_ms == 3500


async def test_the_first_matching_fault_wins_and_wrap_takes_any_runner(
    virtual_clock: trio.testing.MockClock,
) -> None:
    plan = FaultPlan().fail("x", "first", attempts=[2]).fail("x", "second")
    instance = plan.wrap("x", Counter(5))
    cls = plan.wrap("x", Counter)
    function = plan.wrap("x", work)
    ctx = create_test_stage_context()
    assert (await instance(ctx)).error == "second"
    assert (await cls(ctx)).error == "first"
    assert (await function(ctx)).error == "second"
    assert function.__name__ == "faulty_x"
    untouched = FaultPlan().wrap("y", Counter(5))
    assert (await untouched(ctx)).data == {"step": 5}
    assert (await FaultPlan().wrap("y", Counter)(ctx)).data == {"step": 1}


async def test_each_exploration_run_counts_attempts_afresh(
    virtual_clock: trio.testing.MockClock,
) -> None:
    plan = FaultPlan().raise_error("a", ConnectionError("down"), attempts=[1])
    graph = plan.apply(pipeline()).build()
    seen: list[dict[str, int]] = []

    async def run() -> dict[str, StageOutput]:
        try:
            return await graph.run(create_test_stage_context(event_sink=current_run().sink))
        finally:
            seen.append(dict(plan.attempts()))

    report = await explore_cancellation(run, deadlines=())
    # Every run met the fault on its own first attempt, so none got past stage a.
    assert set(report.outcomes) <= {"UnifiedStageExecutionError", "cancelled"}
    assert all(counts in ({"a": 1}, {}) for counts in seen)
    assert plan.attempts() == {}  # outside the exploration nothing was counted


async def charge(ctx: PipelineContext) -> dict[str, Any]:
    await trio.sleep(1)
    return {"charged": True}


def legacy(plan: FaultPlan) -> StageGraph:
    return StageGraph([StageSpec(name="charge", runner=charge)], [plan.interceptor()])


async def test_interceptor_raise_hang_delay_on_the_legacy_graph(
    virtual_clock: trio.testing.MockClock,
) -> None:
    boom = ConnectionError("gateway down")
    raising = legacy(FaultPlan().raise_error("charge", boom))
    with pytest.raises(StageExecutionError) as info:
        await raising.run(create_test_pipeline_context())
    cause = info.value.__cause__ or info.value.original
    assert isinstance(cause, CriticalInterceptorError)
    assert str(cause) == "injected fault in stage 'charge': gateway down"
    assert cause.__cause__ is boom

    start = trio.current_time()
    delayed = legacy(FaultPlan().delay("charge", 4))
    results = await delayed.run(create_test_pipeline_context())
    assert results["charge"].data == {"charged": True}
    assert trio.current_time() - start == 5

    hanging = legacy(FaultPlan().hang("charge"))
    with trio.move_on_after(10) as scope:
        await hanging.run(create_test_pipeline_context())
    assert scope.cancelled_caught


async def test_interceptor_on_the_unified_graph(virtual_clock: trio.testing.MockClock) -> None:
    plan = FaultPlan().delay("a", 1)
    interceptor = plan.interceptor(priority=3)
    assert isinstance(interceptor, FaultInjectionInterceptor)
    assert (interceptor.name, interceptor.priority) == ("fault_injection", 3)
    sink = RecordingEventSink()
    start = trio.current_time()
    results = (
        await pipeline()
        .build(interceptors=[interceptor])
        .run(create_test_stage_context(event_sink=sink))
    )
    assert trio.current_time() - start == 2
    assert results["b"].data == {"step": 3}
    assert plan.attempts() == {"a": 1, "b": 1}


def test_an_interceptor_cannot_fail_or_cancel() -> None:
    with pytest.raises(
        ValueError,
        match=r"^FaultPlan.interceptor: a 'fail' fault \(stage 'b'\) needs the stage wrapper"
        r" \(FaultPlan.apply or wrap\): an interceptor cannot make a stage return$",
    ):
        FaultPlan().fail("b").interceptor()


def test_faults_are_values() -> None:
    plan = FaultPlan([Fault("a", "hang", attempts=[2, 1])])
    assert plan.faults == (Fault("a", "hang", attempts=frozenset({1, 2})),)
    assert Fault("a", "hang").hits(7)
    assert not Fault("a", "hang", attempts=[1]).hits(2)


def test_bad_input_is_named() -> None:
    with pytest.raises(TypeError, match=r"^Fault: stage must be a non-empty str; got ''$"):
        Fault("", "hang")
    with pytest.raises(ValueError, match=r"^Fault: action must be one of \["):
        Fault("a", "explode")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^Fault: attempts must be an iterable of ints >= 1"):
        Fault("a", "hang", attempts=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^Fault: attempts must hold ints >= 1; got 0$"):
        Fault("a", "hang", attempts=[0])
    with pytest.raises(TypeError, match=r"^FaultPlan.add: fault must be a Fault; got str$"):
        FaultPlan().add("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^FaultPlan.raise_error: error must be an exception"):
        FaultPlan().raise_error("a", ValueError)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^FaultPlan.fail: error must be a str; got int$"):
        FaultPlan().fail("a", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^FaultPlan.cancel: reason must be a str; got int$"):
        FaultPlan().cancel("a", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^FaultPlan.delay: seconds must be >= 0"):
        FaultPlan().delay("a", -1)
    with pytest.raises(TypeError, match=r"^FaultPlan.wrap: stage must be a str; got int$"):
        FaultPlan().wrap(1, work)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^FaultPlan.wrap: runner must be a stage class"):
        FaultPlan().wrap("a", 42)
    with pytest.raises(TypeError, match=r"^FaultPlan.apply: pipeline must be a Pipeline"):
        FaultPlan().apply("p")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^FaultPlan.apply: the pipeline has no stage 'z'$"):
        FaultPlan().hang("z").apply(pipeline())
    with pytest.raises(TypeError, match=r"^FaultInjectionInterceptor: plan must be a FaultPlan"):
        FaultInjectionInterceptor("plan")  # type: ignore[arg-type]
