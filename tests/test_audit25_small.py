"""Audit 25: small items left by earlier audits' notes, each with a test that failed before.

- ``ChildTrackerMetricsInterceptor`` and ``SubpipelineSpawner()`` bound
  ``get_child_tracker`` at import, so patching the public name
  ``stageflow_trio.pipeline.subpipeline.get_child_tracker`` (as the reference's own
  tests patch ``stageflow.pipeline.subpipeline.get_child_tracker``) changed nothing.
  Both now read it from that module when they need a tracker.
- ``StageOutput(duration_ms=nan)`` and ``with_duration(inf)`` were accepted (as the
  reference) and reached the events' JSON as ``NaN`` / ``Infinity``, which JSON parsers
  refuse: a ValueError naming ``duration_ms`` now (parity row).
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

import pytest

from stageflow_trio._time import utc_now
from stageflow_trio.core import StageOutput, StageStatus
from stageflow_trio.pipeline import subpipeline
from stageflow_trio.pipeline.interceptors import (
    ChildTrackerMetricsInterceptor,
    run_with_interceptors,
)
from stageflow_trio.pipeline.subpipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.stages.result import StageResult
from tests.fakes import pipeline_context


class _CountingTracker(ChildRunTracker):
    def __init__(self) -> None:
        super().__init__()
        self.metrics_calls = 0

    async def get_metrics(self) -> dict[str, Any]:
        self.metrics_calls += 1
        return {"active_children": 42}


async def _completed() -> StageResult:
    now = utc_now()
    return StageResult(name="s", status="completed", started_at=now, ended_at=now)


async def test_metrics_interceptor_reads_a_patched_get_child_tracker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = _CountingTracker()
    monkeypatch.setattr(subpipeline, "get_child_tracker", lambda: tracker)
    caplog.set_level(logging.INFO, logger="stageflow_trio.child_tracker_metrics")
    child = pipeline_context(parent_run_id=uuid.uuid4())

    result = await run_with_interceptors("s", _completed, child, [ChildTrackerMetricsInterceptor()])

    assert result.status == "completed"
    assert tracker.metrics_calls == 1
    [record] = [r for r in caplog.records if r.name == "stageflow_trio.child_tracker_metrics"]
    assert record.__dict__["active_children"] == 42


async def test_metrics_interceptor_logs_a_failing_patched_tracker_and_completes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> ChildRunTracker:
        raise RuntimeError("tracker unavailable")

    monkeypatch.setattr(subpipeline, "get_child_tracker", broken)
    caplog.set_level(logging.WARNING, logger="stageflow_trio.child_tracker_metrics")
    child = pipeline_context(parent_run_id=uuid.uuid4())

    result = await run_with_interceptors("s", _completed, child, [ChildTrackerMetricsInterceptor()])

    assert result.status == "completed"
    assert [r.getMessage() for r in caplog.records] == [
        "Failed to log ChildRunTracker metrics: tracker unavailable"
    ]


def test_spawner_default_tracker_is_read_through_the_public_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracker = ChildRunTracker()
    monkeypatch.setattr(subpipeline, "get_child_tracker", lambda: tracker)
    assert SubpipelineSpawner()._tracker is tracker
    own = ChildRunTracker()
    assert SubpipelineSpawner(child_tracker=own)._tracker is own


# --- StageOutput duration_ms: NaN and the infinities -------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_duration_ms_must_be_finite(value: float) -> None:
    with pytest.raises(ValueError, match="duration_ms must be a finite number of milliseconds"):
        StageOutput.ok().with_duration(value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duration_ms must be a finite number of milliseconds"):
        StageOutput(status=StageStatus.OK, duration_ms=value)  # type: ignore[arg-type]


def test_finite_durations_are_kept() -> None:
    assert StageOutput.ok().with_duration(12).duration_ms == 12
    assert StageOutput.ok().with_duration(1.5).duration_ms == 1.5  # type: ignore[arg-type]
    assert StageOutput.ok().with_duration(0).duration_ms == 0


# --- UnifiedPipelineCancelled.results: one type with what run returns -------------------


def test_cancelled_results_are_pipeline_results() -> None:
    from stageflow_trio.pipeline.dag import UnifiedPipelineCancelled
    from stageflow_trio.pipeline.results import PipelineResults

    output = StageOutput.ok(n=1)
    error = UnifiedPipelineCancelled("s", "stop", {"a": output})
    assert type(error.results) is PipelineResults
    assert error.results == {"a": output}
    assert error.results.data("a") == {"n": 1}
    given = PipelineResults(a=output)
    assert UnifiedPipelineCancelled("s", "stop", given).results is given
