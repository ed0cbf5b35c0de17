"""Audit 16 of the engine: long-running use, one graph from many tasks, failure paths.

Three tests pin defects fixed in that audit: a run's end scanned the graph's other
runs in progress, a token shared by many runs unbound each in time proportional to
their number, and a stage error that went through an interceptor chain reached the
caller as a RuntimeError carrying only its message. The other tests pin behaviour
checked and found right.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

from stageflow_trio._engine._unified_run import UnifiedRun
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline import (
    CancellationToken,
    ErrorAction,
    GuardRetryPolicy,
    GuardRetryStrategy,
)
from stageflow_trio.pipeline.dag import (
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    TimeoutInterceptor,
    get_default_interceptors,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink
from tests.pipeline.graph_helpers import snapshot, spec, stage_ctx

# -- long-running use: bookkeeping that must not grow with the runs in progress --


async def test_ending_a_run_does_not_scan_the_graphs_other_runs(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run is compared with another only by a scan of the runs in progress: count them.
    compared = 0

    def counting_eq(self: object, other: object) -> bool:
        nonlocal compared
        compared += 1
        return self is other

    monkeypatch.setattr(UnifiedRun, "__eq__", counting_eq)
    runs = 300
    arrived = 0
    graph: UnifiedStageGraph

    async def serve(ctx: StageContext) -> StageOutput:
        nonlocal arrived
        arrived += 1

        async def release() -> None:
            await trio.lowlevel.checkpoint()

        graph.register_cleanup(release)  # looks the caller's run up among those in progress
        # The run started last ends first: the order in which a scan finds it last.
        await trio.sleep(runs - arrived + 1)
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("serve", serve)])
    async with trio.open_nursery() as nursery:
        for _ in range(runs):
            nursery.start_soon(graph.run, stage_ctx())
    assert arrived == runs
    assert graph.cancel_token is None  # every run is gone
    # O(1) per run: no comparison at all. The scans (the lookup of the caller's run
    # and the removal) made about runs**2 (89,700).
    assert compared < runs


async def test_unbinding_a_token_shared_by_many_runs_costs_the_same_in_any_order() -> None:
    # One token for every run of a service (a shutdown token): each run binds its scope
    # and unbinds it at its end, in whatever order the runs end.
    count = 3000
    scopes = [trio.CancelScope() for _ in range(count)]

    def unbind_time(order: Callable[[list[Callable[[], None]]], Any]) -> float:
        best = float("inf")
        for _ in range(2):
            token = CancellationToken()
            unbinds = [token.bind_scope(scope) for scope in scopes]
            # CPU time of this process: other processes' load does not count.
            started = time.process_time()
            for unbind in order(unbinds):
                unbind()
            best = min(best, time.process_time() - started)
            token.cancel("after the runs")  # cancels none of the unbound scopes
            assert not any(scope.cancel_called for scope in scopes)
        return best

    first_in_first_out = unbind_time(iter)
    last_in_first_out = unbind_time(reversed)
    # O(1) each: the same cost. The scan made the second ~100 times the first at 3,000.
    assert last_in_first_out < 20 * first_in_first_out + 0.005


async def test_one_graph_run_from_many_tasks_keeps_nothing_once_they_end(
    autojump_clock: trio.abc.Clock,
) -> None:
    token = CancellationToken()  # shared by every run, as a service's shutdown token
    graph = UnifiedStageGraph(
        [spec("a"), spec("b", deps=["a"]), spec("c", deps=["a"]), spec("d", deps=["b", "c"])],
        interceptors=get_default_interceptors(),
    )

    async def one() -> None:
        results = await graph.run(stage_ctx(), cancel_token=token)
        assert sorted(results) == ["a", "b", "c", "d"]

    for _ in range(3):
        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(one)
        assert graph.cancel_token is None
        assert not token._callbacks  # white box: every run unbound its scope


# -- the same graph from many tasks, one caller cancelled at every checkpoint --


def _guarded_graph(
    cleaned: dict[str, int], drafts: dict[str, int], interceptors: list[BaseInterceptor] | None
) -> UnifiedStageGraph:
    async def checkpoints() -> None:
        for _ in range(3):
            await trio.lowlevel.checkpoint()

    async def draft(ctx: StageContext) -> StageOutput:
        key = ctx.snapshot.topology or ""
        drafts[key] = drafts.get(key, 0) + 1

        async def cleanup() -> None:
            await trio.lowlevel.checkpoint()
            cleaned[key] = cleaned.get(key, 0) + 1

        ctx.register_cleanup(cleanup)
        await checkpoints()
        return StageOutput.ok(text="x" * drafts[key])

    async def side(ctx: StageContext) -> StageOutput:
        await checkpoints()
        return StageOutput.ok(side=1)

    async def guard(ctx: StageContext) -> StageOutput:
        await checkpoints()
        text = ctx.inputs.get_from("draft", "text")
        if len(text) < 2:
            return StageOutput.fail(error="short")
        return StageOutput.ok(length=len(text))

    return UnifiedStageGraph(
        [
            spec("draft", draft),
            spec("side", side),
            spec("guard", guard, deps=["draft"], kind=StageKind.GUARD),
            spec("end", deps=["guard", "side"]),
        ],
        guard_retry_strategy=GuardRetryStrategy(
            {"guard": GuardRetryPolicy("draft", max_attempts=5)}
        ),
        interceptors=interceptors,
    )


async def _three_runs_one_cancelled_after(
    steps: int, interceptors: list[BaseInterceptor] | None
) -> tuple[UnifiedStageGraph, dict[int, object], dict[str, int], dict[str, int], list[str]]:
    """Three concurrent runs of one graph; run 0's caller is cancelled after ``steps``."""
    cleaned: dict[str, int] = {}
    drafts: dict[str, int] = {}
    graph = _guarded_graph(cleaned, drafts, interceptors)
    sink = RecordingEventSink()
    results: dict[int, object] = {}
    target = trio.CancelScope()

    async def one(i: int, scope: trio.CancelScope) -> None:
        results[i] = "cancelled"
        with scope:
            snap = snapshot(topology=f"t{i}")
            results[i] = await graph.run(stage_ctx(event_sink=sink if i == 0 else None, snap=snap))

    async def cancel_after() -> None:
        for _ in range(steps):
            await trio.lowlevel.checkpoint()
        target.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, 0, target)
        nursery.start_soon(one, 1, trio.CancelScope())
        nursery.start_soon(one, 2, trio.CancelScope())
        nursery.start_soon(cancel_after)
    return graph, results, cleaned, drafts, [t for t, _ in sink.events]


@pytest.mark.parametrize("chain", [False, True], ids=["direct", "interceptors"])
async def test_cancelling_one_caller_at_every_checkpoint_leaves_the_other_runs_whole(
    chain: bool,
) -> None:
    cancelled_at: list[int] = []
    for step in range(24):
        interceptors = get_default_interceptors() if chain else None
        graph, results, cleaned, drafts, types = await _three_runs_one_cancelled_after(
            step, interceptors
        )
        for i in (1, 2):  # the others: whole, their guard retried once, cleaned up twice
            outputs = results[i]
            assert isinstance(outputs, dict), (step, i, outputs)
            assert sorted(outputs) == ["draft", "end", "guard", "side"]
            assert outputs["guard"].data["length"] == 2
            assert cleaned[f"t{i}"] == drafts[f"t{i}"] == 2
        assert cleaned.get("t0", 0) == drafts.get("t0", 0)  # each draft's cleanup ran once
        assert graph.cancel_token is None
        if results[0] == "cancelled":
            cancelled_at.append(step)
            assert types.count("pipeline_cancelled") == len(types[:1])  # one, if any event
            for name in ("draft", "side", "guard", "end"):
                ends = sum(
                    types.count(f"stage.{name}.{end}")
                    for end in ("completed", "failed", "cancelled")
                )
                assert types.count(f"stage.{name}.started") == ends, (step, types)
    assert cancelled_at[:1] == [0]  # cancelled before it started ...
    assert len(cancelled_at) < 24  # ... and the later steps let it finish


# -- failure paths -------------------------------------------------------------


class _Fatal(BaseException):
    """Not an Exception: like KeyboardInterrupt, it stops the process, not a stage."""


@pytest.mark.parametrize("shape", ["chain", "fan-out"])
async def test_a_stage_raising_a_base_exception_gets_it_out_bare(
    shape: str, autojump_clock: trio.abc.Clock
) -> None:
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok()

    async def fatal(ctx: StageContext) -> StageOutput:
        raise _Fatal("stop")

    deps = ["slow"] if shape == "chain" else []
    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("slow", slow), spec("fatal", fatal, deps=deps)])
    with pytest.raises(_Fatal) as info:
        await graph.run(stage_ctx(event_sink=sink))
    assert not isinstance(info.value, BaseExceptionGroup)
    assert info.value.__cause__ is None
    assert [t for t, _ in sink.events if t.startswith("pipeline")] == ["pipeline_failed"]
    assert graph.cancel_token is None


class _RetryOnce(BaseInterceptor):
    name = "retry_once"

    def __init__(self) -> None:
        self.asked = 0

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        self.asked += 1
        return ErrorAction.RETRY if self.asked == 1 else ErrorAction.FAIL


class _QuotaError(ValueError):
    pass


async def test_a_stage_error_through_interceptors_reaches_the_caller_as_raised() -> None:
    async def charge(ctx: StageContext) -> StageOutput:
        raise _QuotaError("quota exceeded for org 7")

    graph = UnifiedStageGraph([spec("charge", charge)], interceptors=get_default_interceptors())
    sink = RecordingEventSink()
    with pytest.raises(UnifiedStageExecutionError) as info:
        await graph.run(stage_ctx(event_sink=sink))
    # As without interceptors (and as stageflow 1.2 with them): the stage's own error,
    # with the stage's frame in its traceback.
    assert isinstance(info.value.original, _QuotaError)
    assert info.value.__cause__ is info.value.original
    frames = []
    tb = info.value.original.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert frames[-1] == "charge"
    assert str(info.value) == "Stage 'charge' failed: quota exceeded for org 7"
    failed = [d for t, d in sink.events if t == "stage.charge.failed"]
    assert [(d or {}).get("error") for d in failed] == ["quota exceeded for org 7"]


async def test_a_timeout_after_a_retried_stage_error_is_reported_as_the_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    attempts = 0

    async def flaky(ctx: StageContext) -> StageOutput:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise _QuotaError("first attempt")
        await trio.sleep(10)
        return StageOutput.ok()

    class _ShortTimeout(TimeoutInterceptor):
        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            ctx.data["_timeout_ms"] = 1000
            await super().before(stage_name, ctx)

    graph = UnifiedStageGraph([spec("flaky", flaky)], interceptors=[_ShortTimeout(), _RetryOnce()])
    with pytest.raises(UnifiedStageExecutionError) as info:
        await graph.run(stage_ctx())
    # The last attempt timed out: that is the failure, not the first attempt's error.
    assert attempts == 2
    assert isinstance(info.value.original, RuntimeError)
    assert str(info.value.original) == "Stage timed out after 1000ms"


async def test_a_broken_sink_and_broken_hooks_do_not_change_the_outcome() -> None:
    class _Broken(RecordingEventSink):
        def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            super().try_emit(type=type, data=data)
            raise OSError("sink down")

    class _Noisy(BaseInterceptor):
        name = "noisy"

        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            raise RuntimeError("before broke")

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            raise RuntimeError("after broke")

    sink = _Broken()
    graph = UnifiedStageGraph([spec("a"), spec("b", deps=["a"])], interceptors=[_Noisy()])
    results = await graph.run(stage_ctx(event_sink=sink))
    assert results["b"].data == {"stage": "b"}
    assert [t for t, _ in sink.events][-1] == "pipeline_completed"
