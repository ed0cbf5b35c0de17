"""UnifiedStageGraph: ordering, inputs, outputs, skips, failures and events."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest
import trio

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.cancellation import CancellationToken, CleanupRegistry
from stageflow_trio.pipeline.dag import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.interceptors import BaseInterceptor, ErrorAction, InterceptorResult
from stageflow_trio.stages.inputs import UndeclaredDependencyError
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import FailingSink, payload

from .graph_helpers import RUN_ID, spec, stage_ctx

if TYPE_CHECKING:
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult


async def test_chain_runs_in_dependency_order_and_returns_every_output() -> None:
    order: list[str] = []

    def recorder(name: str) -> Callable[[StageContext], Awaitable[StageOutput]]:
        async def run(ctx: StageContext) -> StageOutput:
            order.append(name)
            return StageOutput.ok(value=name)

        return run

    graph = UnifiedStageGraph(
        [spec("c", recorder("c"), ["b"]), spec("a", recorder("a")), spec("b", recorder("b"), ["a"])]
    )
    results = await graph.run(stage_ctx())
    assert order == ["a", "b", "c"]
    assert set(results) == {"a", "b", "c"}
    assert results["b"].data == {"value": "b"}
    assert all(out.status is StageStatus.OK for out in results.values())


async def test_inputs_hold_only_declared_completed_dependencies() -> None:
    seen: dict[str, object] = {}

    async def a(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(x=1)

    async def b(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(y=2)

    async def c(ctx: StageContext) -> StageOutput:
        seen["x"] = ctx.inputs.get_from("a", "x")
        seen["has_b"] = "b" in ctx.inputs.prior_outputs
        with pytest.raises(UndeclaredDependencyError):
            ctx.inputs.get_from("b", "y")
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("a", a), spec("b", b, ["a"]), spec("c", c, ["a"])])
    await graph.run(stage_ctx())
    assert seen == {"x": 1, "has_b": False}


async def test_fan_out_runs_branches_concurrently(autojump_clock: trio.abc.Clock) -> None:
    def sleeper(seconds: float) -> Callable[[StageContext], Awaitable[StageOutput]]:
        async def run(ctx: StageContext) -> StageOutput:
            await trio.sleep(seconds)
            return StageOutput.ok()

        return run

    graph = UnifiedStageGraph(
        [
            spec("root", sleeper(1)),
            *(spec(f"w{i}", sleeper(2), ["root"]) for i in range(5)),
            spec("join", sleeper(1), [f"w{i}" for i in range(5)]),
        ]
    )
    start = trio.current_time()
    results = await graph.run(stage_ctx())
    assert trio.current_time() - start == 4
    assert results["w3"].duration_ms == 2000
    assert results["join"].duration_ms == 1000


async def test_none_and_dict_results_are_normalized() -> None:
    async def none(ctx: StageContext) -> None:
        return None

    async def mapping(ctx: StageContext) -> dict[str, int]:
        return {"k": 1}

    results = await UnifiedStageGraph([spec("a", none), spec("b", mapping)]).run(stage_ctx())
    assert results["a"].status is StageStatus.OK
    assert results["a"].data == {}
    assert results["b"].data == {"k": 1}


async def test_unsupported_result_type_fails_the_stage() -> None:
    async def bad(ctx: StageContext) -> int:
        return 3

    with pytest.raises(UnifiedStageExecutionError) as info:
        await UnifiedStageGraph([spec("bad", bad)]).run(stage_ctx())
    assert (
        str(info.value)
        == "Stage 'bad' failed: Stage bad returned unsupported result type <class 'int'>"
    )
    assert isinstance(info.value.original, TypeError)


async def test_fail_output_raises_with_runtime_error() -> None:
    async def failing(ctx: StageContext) -> StageOutput:
        return StageOutput.fail(error="boom")

    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'f' failed: boom$") as info:
        await UnifiedStageGraph([spec("f", failing)]).run(stage_ctx())
    assert info.value.stage == "f"
    assert isinstance(info.value.original, RuntimeError)
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_exception_is_wrapped_not_grouped() -> None:
    async def raising(ctx: StageContext) -> StageOutput:
        raise ValueError("bad value")

    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'r' failed: bad value$") as info:
        await UnifiedStageGraph([spec("r", raising)]).run(stage_ctx())
    assert type(info.value.original) is ValueError
    assert info.value.__cause__ is info.value.original


async def test_conditional_stage_skips_on_skip_reason_and_emits_event() -> None:
    sink = RecordingEventSink()
    ran: list[str] = []

    async def router(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(skip_reason="not needed")

    async def branch(ctx: StageContext) -> StageOutput:
        ran.append("branch")
        return StageOutput.ok()

    graph = UnifiedStageGraph(
        [spec("router", router), spec("branch", branch, ["router"], conditional=True)]
    )
    results = await graph.run(stage_ctx(event_sink=sink))
    assert ran == []
    assert results["branch"].status is StageStatus.SKIP
    assert results["branch"].data == {"reason": "not needed"}
    assert sink.of_type("stage.branch.skipped") == [
        {
            "stage": "branch",
            "reason": "not needed",
            "pipeline_run_id": str(RUN_ID),
            "request_id": "22222222-2222-4222-8222-222222222222",
        }
    ]


async def test_a_conditional_skip_counts_in_the_wide_events_as_a_returned_skip() -> None:
    sink = RecordingEventSink()

    async def router(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(skip_reason="not needed")

    async def skips(ctx: StageContext) -> StageOutput:
        return StageOutput.skip(reason="returned skip")

    graph = UnifiedStageGraph(
        [
            spec("router", router),
            spec("branch", None, ["router"], conditional=True),
            spec("own", skips),
        ],
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    await graph.run(stage_ctx(event_sink=sink))
    wide = {payload(e)["stage"]: payload(e) for e in sink.of_type("stage.wide")}
    assert set(wide) == {"router", "branch", "own"}
    for name in ("branch", "own"):
        assert (wide[name]["status"], wide[name]["data_keys"]) == ("completed", ["reason"])
    # Its stage.wide comes before its skipped event, as for a stage that returned skip.
    types = sink.types()
    assert types.index("stage.wide", types.index("stage.router.completed")) < types.index(
        "stage.branch.skipped"
    )
    summary = payload(sink.of_type("pipeline.wide")[0])
    assert summary["stage_counts"] == {"completed": 3}
    assert sorted(d["stage"] for d in summary["stage_details"]) == ["branch", "own", "router"]


async def test_non_conditional_stage_ignores_skip_reason() -> None:
    ran: list[str] = []

    async def router(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(skip_reason="x")

    async def after(ctx: StageContext) -> StageOutput:
        ran.append("after")
        return StageOutput.ok()

    await UnifiedStageGraph([spec("router", router), spec("after", after, ["router"])]).run(
        stage_ctx()
    )
    assert ran == ["after"]


async def test_returned_skip_emits_skip_event_with_duration(autojump_clock: trio.abc.Clock) -> None:
    sink = RecordingEventSink()

    async def skipper(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.25)
        return StageOutput.skip(reason="nothing to do")

    await UnifiedStageGraph([spec("s", skipper)]).run(stage_ctx(event_sink=sink))
    assert sink.of_type("stage.s.skipped") == [
        {
            "stage": "s",
            "reason": "nothing to do",
            "duration_ms": 250,
            "pipeline_run_id": str(RUN_ID),
            "request_id": "22222222-2222-4222-8222-222222222222",
        }
    ]


async def test_lifecycle_events_have_the_legacy_payload_shape() -> None:
    sink = RecordingEventSink()
    await UnifiedStageGraph([spec("a"), spec("b", deps=["a"])]).run(stage_ctx(event_sink=sink))
    assert sink.types() == [
        "stage.a.started",
        "stage.a.completed",
        "stage.b.started",
        "stage.b.completed",
        "pipeline_completed",
    ]
    completed = payload(sink.of_type("stage.b.completed")[0])
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
    assert completed["status"] == "completed"
    assert completed["pipeline_run_id"] == str(RUN_ID)
    assert completed["session_id"] is None
    assert completed["topology"] == "test_topology"


async def test_failed_event_carries_error() -> None:
    sink = RecordingEventSink()

    async def failing(ctx: StageContext) -> StageOutput:
        return StageOutput.fail(error="nope")

    with pytest.raises(UnifiedStageExecutionError):
        await UnifiedStageGraph([spec("f", failing)]).run(stage_ctx(event_sink=sink))
    failed = payload(sink.of_type("stage.f.failed")[0])
    assert failed["error"] == "nope"
    assert failed["status"] == "failed"


async def test_cancel_output_raises_with_results_and_emits_pipeline_cancelled() -> None:
    sink = RecordingEventSink()

    async def stopper(ctx: StageContext) -> StageOutput:
        return StageOutput.cancel(reason="user left")

    graph = UnifiedStageGraph([spec("a"), spec("stop", stopper, ["a"]), spec("c", deps=["stop"])])
    with pytest.raises(
        UnifiedPipelineCancelled, match=r"^Pipeline cancelled by stage 'stop': user left$"
    ) as info:
        await graph.run(stage_ctx(event_sink=sink))
    assert info.value.stage == "stop"
    assert info.value.reason == "user left"
    assert set(info.value.results) == {"a", "stop"}
    [event] = map(payload, sink.of_type("pipeline_cancelled"))
    assert event["stage"] == "stop"
    assert event["reason"] == "user left"
    assert event["pipeline_run_id"] == str(RUN_ID)


async def test_one_graph_runs_concurrently_without_sharing_state(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def echo(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok(topology=ctx.snapshot.topology)

    async def read(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(seen=ctx.inputs.get_from("echo", "topology"))

    graph = UnifiedStageGraph([spec("echo", echo), spec("read", read, ["echo"])])
    results: dict[str, str] = {}

    async def one(topology: str) -> None:
        from .graph_helpers import snapshot

        out = await graph.run(stage_ctx(snap=snapshot(topology=topology)))
        results[topology] = out["read"].data["seen"]

    async with trio.open_nursery() as nursery:
        for name in ("t1", "t2", "t3"):
            nursery.start_soon(one, name)
    assert results == {"t1": "t1", "t2": "t2", "t3": "t3"}
    assert graph.cancel_token is None


def test_empty_graph_is_rejected() -> None:
    with pytest.raises(
        ValueError, match=r"^UnifiedStageGraph requires at least one UnifiedStageSpec$"
    ):
        UnifiedStageGraph([])


async def test_run_is_a_checkpoint() -> None:
    graph = UnifiedStageGraph([spec("a")])
    with trio.testing.assert_checkpoints():
        await graph.run(stage_ctx())


def test_cycles_and_missing_dependencies_fail_at_construction() -> None:
    from stageflow_trio.pipeline.spec import CycleDetectedError, PipelineValidationError

    with pytest.raises(
        CycleDetectedError, match=r"^Pipeline contains a cycle: a -> b -> a$"
    ) as info:
        UnifiedStageGraph([spec("a", deps=["b"]), spec("b", deps=["a"])])
    assert info.value.cycle_path == ["a", "b", "a"]
    with pytest.raises(PipelineValidationError) as missing:
        UnifiedStageGraph([spec("a", deps=["ghost"])])
    assert missing.value.error_info is not None
    assert missing.value.error_info.code == "CONTRACT-004-MISSING_DEP"


def test_spec_errors_name_the_stage() -> None:
    from stageflow_trio.pipeline.dag import UnifiedStageSpec

    with pytest.raises(TypeError, match=r"^UnifiedStageSpec 'x': runner must be an async callable"):
        UnifiedStageSpec(name="x", runner=3)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^UnifiedStageSpec 'x': dependencies must contain only str"
    ):
        UnifiedStageSpec(name="x", runner=spec("y").runner, dependencies=(1,))  # type: ignore[arg-type]


class _Recorder(BaseInterceptor):
    """A minimal interceptor recording hook calls."""

    name = "recorder"
    priority = 30

    def __init__(self, short_circuit: str | None = None, retry: bool = False) -> None:
        self.calls: list[str] = []
        self.short_circuit = short_circuit
        self.retry = retry

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        self.calls.append(f"before:{stage_name}:{ctx.pipeline_run_id}")
        if stage_name == self.short_circuit:
            return InterceptorResult(stage_ran=False, result={"cached": True})
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        self.calls.append(f"after:{stage_name}:{result.status}")

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        self.calls.append(f"on_error:{stage_name}")
        return ErrorAction.RETRY if self.retry else ErrorAction.FAIL

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        self.calls.append(f"on_abort:{stage_name}")


async def test_interceptors_wrap_every_stage_with_a_pipeline_context_view() -> None:
    recorder = _Recorder()
    graph = UnifiedStageGraph([spec("a"), spec("b", deps=["a"])], interceptors=[recorder])
    results = await graph.run(stage_ctx())
    assert recorder.calls == [
        f"before:a:{RUN_ID}",
        "after:a:completed",
        f"before:b:{RUN_ID}",
        "after:b:completed",
    ]
    assert results["b"].data == {"stage": "b"}


async def test_an_interceptor_can_short_circuit_a_unified_stage() -> None:
    ran: list[str] = []

    async def stage_a(ctx: StageContext) -> StageOutput:
        ran.append("a")
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("a", stage_a)], interceptors=[_Recorder(short_circuit="a")])
    results = await graph.run(stage_ctx())
    assert ran == []
    assert results["a"].status is StageStatus.OK
    assert results["a"].data == {"cached": True}


async def test_an_interceptor_can_retry_a_raising_unified_stage() -> None:
    attempts: list[int] = []

    async def flaky(ctx: StageContext) -> StageOutput:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionError("down")
        return StageOutput.ok(attempt=len(attempts))

    recorder = _Recorder(retry=True)
    results = await UnifiedStageGraph([spec("f", flaky)], interceptors=[recorder]).run(stage_ctx())
    assert results["f"].data == {"attempt": 3}
    assert recorder.calls.count("on_error:f") == 2


async def test_an_error_through_the_chain_fails_the_run_with_its_message() -> None:
    async def broken(ctx: StageContext) -> StageOutput:
        raise ValueError("broken stage")

    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'x' failed: broken stage$"):
        await UnifiedStageGraph([spec("x", broken)], interceptors=[_Recorder()]).run(stage_ctx())


async def test_a_cancelled_unified_stage_calls_on_abort(autojump_clock: trio.abc.Clock) -> None:
    recorder = _Recorder()

    async def forever(ctx: StageContext) -> StageOutput:
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    with trio.move_on_after(1):
        await UnifiedStageGraph([spec("x", forever)], interceptors=[recorder]).run(stage_ctx())
    assert recorder.calls == [f"before:x:{RUN_ID}", "on_abort:x"]


async def test_a_context_without_a_timer_gets_one_for_the_run() -> None:
    from stageflow_trio.core.timer import PipelineTimer

    seen: list[object] = []

    async def stage_a(ctx: StageContext) -> StageOutput:
        seen.append(ctx.timer)
        return StageOutput.ok()

    base = stage_ctx()
    no_timer = StageContext(
        snapshot=base.snapshot,
        inputs=base.inputs,
        stage_name="pipeline",
        timer=None,  # type: ignore[arg-type]
    )
    await UnifiedStageGraph([spec("a", stage_a)]).run(no_timer)
    assert isinstance(seen[0], PipelineTimer)


async def test_a_broken_sink_is_logged_and_never_fails_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def router(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(skip_reason="not needed")

    graph = UnifiedStageGraph(
        [spec("router", router), spec("branch", router, ["router"], conditional=True)]
    )
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.dag"):
        results = await graph.run(stage_ctx(event_sink=FailingSink(error=OSError)))
    assert results["router"].status is StageStatus.OK
    assert results["branch"].status is StageStatus.SKIP
    messages = [r.getMessage() for r in caplog.records if r.name == "stageflow_trio.dag"]
    assert "Failed to emit stage.branch.skipped: sink down" in messages
    assert "Failed to emit stage.router.started: sink down" in messages
    assert "Failed to emit stage.router.completed: sink down" in messages


async def test_run_scoped_properties_follow_the_runs_in_progress() -> None:
    graph: UnifiedStageGraph
    seen: list[object] = []

    async def look(ctx: StageContext) -> StageOutput:
        seen.extend([graph.cancel_token, graph.cleanup_registry])
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("look", look)])
    assert (graph.cancel_token, graph.cleanup_registry) == (None, None)
    await graph.run(stage_ctx())
    token, registry = seen
    assert isinstance(token, CancellationToken)
    assert isinstance(registry, CleanupRegistry)
    assert (graph.cancel_token, graph.cleanup_registry) == (None, None)


def test_specs_must_be_unified_stage_specs() -> None:
    with pytest.raises(
        TypeError, match=r"^UnifiedStageGraph: specs\[0\] must be a UnifiedStageSpec; got int$"
    ):
        UnifiedStageGraph([5])  # type: ignore[list-item]


def _sinkless_ctx() -> StageContext:
    """A root context without an event sink: the run takes its plain fast path."""
    ctx = stage_ctx()
    return StageContext(
        snapshot=ctx.snapshot, inputs=ctx.inputs, stage_name=ctx.stage_name, timer=ctx.timer
    )


async def test_the_sinkless_fast_path_normalizes_and_times_outputs(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def slow_dict(ctx: StageContext) -> dict[str, int]:
        await trio.sleep(0.25)
        return {"n": 1}

    graph = UnifiedStageGraph([spec("a"), spec("b", slow_dict, ["a"])])
    results = await graph.run(_sinkless_ctx())
    assert results["a"] == StageOutput.ok(stage="a").with_duration(0)
    assert results["b"].status is StageStatus.OK
    assert results["b"].data == {"n": 1}
    assert results["b"].duration_ms == 250


async def test_the_sinkless_fast_path_wraps_a_stage_error_once() -> None:
    boom = ValueError("boom")
    already = UnifiedStageExecutionError("elsewhere", KeyError("k"))

    async def raises(ctx: StageContext) -> StageOutput:
        raise boom

    async def raises_wrapped(ctx: StageContext) -> StageOutput:
        raise already

    with pytest.raises(UnifiedStageExecutionError) as info:
        await UnifiedStageGraph([spec("a", raises)]).run(_sinkless_ctx())
    assert (info.value.stage, info.value.original) == ("a", boom)
    assert info.value.__cause__ is boom
    with pytest.raises(UnifiedStageExecutionError) as info:
        await UnifiedStageGraph([spec("a", raises_wrapped)]).run(_sinkless_ctx())
    assert info.value is already
