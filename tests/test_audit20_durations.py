"""Audit 20: stage durations seen by interceptors and wide events follow trio's clock.

A ``StageResult``'s consumers (``MetricsInterceptor``, ``LoggingInterceptor``,
the tracing interceptor, ``stage.wide`` / ``pipeline.wide``) take a stage's
duration as ``ended_at - started_at``. Both were wall-clock reads, so under
``MockClock`` a 5 s stage said 0 ms, and a wall clock stepping back during a
stage made the duration negative. ``ended_at`` is now ``started_at`` plus the
time on the run's clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

import stageflow_trio._time as time_module
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageGraph
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
    LoggingInterceptor,
    MetricsInterceptor,
    run_with_interceptors,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.errors import StageRunner, with_error_handling
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import extra, payload, pipeline_context
from tests.pipeline.graph_helpers import spec, stage_ctx

FIVE_SECONDS = timedelta(seconds=5)


def logged(caplog: pytest.LogCaptureFixture) -> dict[str, list[int]]:
    """The ``duration_ms`` the metrics and logging interceptors logged, in order."""
    by_logger = {
        "stageflow_trio.stage_metrics": "metrics",
        "stageflow_trio.stage_interceptor": "logging",
    }
    found: dict[str, list[int]] = {"metrics": [], "logging": []}
    for record in caplog.records:
        key = by_logger.get(record.name)
        if key is not None and "duration_ms" in record.__dict__:
            found[key].append(extra(record, "duration_ms"))
    return found


class Recorder(BaseInterceptor):
    """Keeps every result its ``after`` hook sees."""

    name = "recorder"
    priority = 60

    def __init__(self) -> None:
        self.results: list[StageResult] = []

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        self.results.append(result)


def interceptors(recorder: Recorder) -> list[BaseInterceptor]:
    return [MetricsInterceptor(), LoggingInterceptor(), recorder]


def wide(sink: RecordingEventSink) -> tuple[list[int], list[int]]:
    """``duration_ms`` of each ``stage.wide``, and of each stage in ``pipeline.wide``."""
    stages = [payload(event)["duration_ms"] for event in sink.of_type("stage.wide")]
    [pipeline] = sink.of_type("pipeline.wide")
    return stages, [detail["duration_ms"] for detail in payload(pipeline)["stage_details"]]


# -- the legacy graph -----------------------------------------------------------------


async def test_legacy_graph_reports_a_five_second_stage_as_5000_ms(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def slow(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(5)
        return {"done": True}

    recorder = Recorder()
    sink = RecordingEventSink()
    caplog.set_level(logging.INFO)
    graph = StageGraph(
        [StageSpec(name="slow", runner=slow)],
        interceptors=interceptors(recorder),
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    results = await graph.run(pipeline_context(event_sink=sink))
    result = results["slow"]
    assert result.ended_at - result.started_at == FIVE_SECONDS
    assert [r.ended_at - r.started_at for r in recorder.results] == [FIVE_SECONDS]
    assert logged(caplog) == {"metrics": [5000], "logging": [5000]}
    assert wide(sink) == ([5000], [5000])
    [completed] = sink.of_type("stage.slow.completed")
    assert payload(completed)["duration_ms"] == 5000


async def test_legacy_chain_results_of_its_own_span_the_call(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure, a timeout and a short-circuit: the results the chain builds itself."""

    async def fails(ctx: PipelineContext) -> None:
        await trio.sleep(5)
        raise ValueError("boom")

    async def hangs(ctx: PipelineContext) -> None:
        await trio.sleep_forever()

    class SlowShortCircuit(BaseInterceptor):
        name = "slow_short_circuit"
        priority = 5

        async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
            if stage_name != "cached":
                return None
            await trio.sleep(3)
            return InterceptorResult(stage_ran=False, result={"cached": True})

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            return None

    recorder = Recorder()
    caplog.set_level(logging.INFO)
    graph = StageGraph(
        [
            StageSpec(name="fails", runner=fails),
            StageSpec(name="hangs", runner=hangs, dependencies=("fails",)),
            StageSpec(name="cached", runner=hangs, dependencies=("hangs",)),
        ],
        interceptors=[*interceptors(recorder), SlowShortCircuit()],
    )
    ctx = pipeline_context()
    ctx.data["_timeout.hangs"] = 2000
    results = await graph.run(ctx)
    assert [(r.name, r.status) for r in recorder.results] == [
        ("fails", "failed"),
        ("hangs", "failed"),
        ("cached", "completed"),
    ]
    spans = [timedelta(seconds=5), timedelta(seconds=2), timedelta(seconds=3)]
    assert [r.ended_at - r.started_at for r in recorder.results] == spans
    assert [r.ended_at - r.started_at for r in results.values()] == spans
    assert logged(caplog) == {"metrics": [5000, 2000, 3000], "logging": [5000, 2000, 3000]}


async def test_legacy_stage_wide_of_a_call_that_raised_spans_the_call(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Critical(BaseInterceptor):
        name = "critical"
        priority = 1

        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            return None

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            raise CriticalInterceptorError("stop", "critical")

    async def slow(ctx: PipelineContext) -> None:
        await trio.sleep(5)

    sink = RecordingEventSink()
    graph = StageGraph(
        [StageSpec(name="slow", runner=slow)],
        interceptors=[Critical()],
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    with pytest.raises(Exception, match="stop"):
        await graph.run(pipeline_context(event_sink=sink))
    [event] = sink.of_type("stage.wide")
    assert (payload(event)["status"], payload(event)["duration_ms"]) == ("failed", 5000)


# -- the unified graph ----------------------------------------------------------------


async def test_unified_graph_reports_a_five_second_stage_as_5000_ms(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(5)
        return StageOutput.ok(done=True)

    recorder = Recorder()
    sink = RecordingEventSink()
    caplog.set_level(logging.INFO)
    graph = UnifiedStageGraph(
        [spec("slow", slow)],
        interceptors=interceptors(recorder),
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    results = await graph.run(stage_ctx(event_sink=sink))
    assert results["slow"].duration_ms == 5000
    assert [r.ended_at - r.started_at for r in recorder.results] == [FIVE_SECONDS]
    assert logged(caplog) == {"metrics": [5000], "logging": [5000]}
    assert wide(sink) == ([5000], [5000])


async def test_unified_wide_events_without_interceptors(autojump_clock: trio.abc.Clock) -> None:
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(5)
        return StageOutput.ok()

    async def fails(ctx: StageContext) -> StageOutput:
        await trio.sleep(2)
        raise ValueError("boom")

    sink = RecordingEventSink()
    graph = UnifiedStageGraph(
        [spec("slow", slow), spec("fails", fails, deps=["slow"])],
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
    )
    with pytest.raises(Exception, match="boom"):
        await graph.run(stage_ctx(event_sink=sink))
    assert wide(sink) == ([5000, 2000], [5000, 2000])
    [pipeline] = sink.of_type("pipeline.wide")
    assert payload(pipeline)["duration_ms"] == 7000


# -- a wall clock that steps back -------------------------------------------------------


class SteppingWallClock(datetime):
    """``datetime.now`` of a wall clock that stands still until :meth:`step` moves it."""

    offset = timedelta()
    base = datetime(2026, 1, 1, 12, tzinfo=UTC)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return cls.base + cls.offset

    @classmethod
    def step(cls, by: timedelta) -> None:
        cls.offset += by


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> type[SteppingWallClock]:
    monkeypatch.setattr(SteppingWallClock, "offset", timedelta())
    monkeypatch.setattr(time_module, "datetime", SteppingWallClock)
    return SteppingWallClock


@pytest.mark.parametrize("graph_kind", ["legacy", "unified"])
async def test_a_wall_clock_stepping_back_gives_no_negative_duration(
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
    wall: type[SteppingWallClock],
    graph_kind: str,
) -> None:
    async def body() -> None:
        await trio.sleep(5)
        wall.step(timedelta(hours=-1))  # an NTP correction while the stage runs

    async def legacy(ctx: PipelineContext) -> None:
        await body()

    async def unified(ctx: StageContext) -> StageOutput:
        await body()
        return StageOutput.ok()

    recorder = Recorder()
    sink = RecordingEventSink()
    caplog.set_level(logging.INFO)
    options: dict[str, Any] = {
        "interceptors": interceptors(recorder),
        "emit_stage_wide_events": True,
        "emit_pipeline_wide_event": True,
    }
    if graph_kind == "legacy":
        await StageGraph([StageSpec(name="s", runner=legacy)], **options).run(
            pipeline_context(event_sink=sink)
        )
    else:
        await UnifiedStageGraph([spec("s", unified)], **options).run(stage_ctx(event_sink=sink))
    [result] = recorder.results
    assert result.started_at == wall.base  # still the wall-clock start
    assert result.ended_at - result.started_at == FIVE_SECONDS
    assert logged(caplog) == {"metrics": [5000], "logging": [5000]}
    assert wide(sink) == ([5000], [5000])


# -- the chain on its own, and the legacy helpers -----------------------------------------


async def test_run_with_interceptors_failure_spans_the_call(
    autojump_clock: trio.abc.Clock, wall: type[SteppingWallClock]
) -> None:
    async def stage_run() -> StageResult:
        await trio.sleep(5)
        wall.step(timedelta(hours=-1))
        raise ValueError("boom")

    result = await run_with_interceptors("s", stage_run, pipeline_context(), [])
    assert result.status == "failed"
    assert result.ended_at - result.started_at == FIVE_SECONDS


async def test_legacy_helpers_time_the_call_on_trio_clock(
    autojump_clock: trio.abc.Clock, wall: type[SteppingWallClock]
) -> None:
    @with_error_handling(stage_name="decorated")
    async def decorated(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(5)
        wall.step(timedelta(hours=-1))
        return {"x": 1}

    async def work() -> dict[str, Any]:
        await trio.sleep(5)
        wall.step(timedelta(hours=-1))
        return {"y": 2}

    ctx = pipeline_context()
    by_decorator = await decorated(ctx)
    by_runner = await StageRunner(stage_name="run", ctx=ctx).run(work)
    for result in (by_decorator, by_runner):
        assert result.ended_at - result.started_at == FIVE_SECONDS
