"""Audit 16 mutation pass over the engine: tests for the mutants the suite did not fail on.

Both mutants below made ``GuardRetryState.record_failure`` forget a reached
limit (``return "timeout"`` / ``return "stagnation"`` turned into ``return
None``): the existing tests then hung (a guard retried forever) instead of
failing. These tests bound the run in virtual time, so such a regression fails
fast with a clear assertion rather than stalling the suite.
"""

from __future__ import annotations

import pytest
import trio

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError, UnifiedStageGraph
from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy
from stageflow_trio.testing import RecordingEventSink
from tests.pipeline.graph_helpers import spec, stage_ctx


def _graph(policy: GuardRetryPolicy, calls: dict[str, int]) -> UnifiedStageGraph:
    async def draft(ctx: StageContext) -> StageOutput:
        calls["draft"] = calls.get("draft", 0) + 1
        await trio.sleep(1)  # each attempt costs one virtual second
        return StageOutput.ok(text="same")

    async def guard(ctx: StageContext) -> StageOutput:
        calls["guard"] = calls.get("guard", 0) + 1
        return StageOutput.fail(error="bad", data={"n": calls["guard"]})

    return UnifiedStageGraph(
        [spec("draft", draft), spec("guard", guard, ["draft"], kind=StageKind.GUARD)],
        guard_retry_strategy=GuardRetryStrategy({"guard": policy}),
    )


async def test_guard_retry_timeout_ends_the_retries(autojump_clock: trio.abc.Clock) -> None:
    """Kills ``record_failure``: ``return "timeout"`` -> ``return None`` (retried forever)."""
    sink = RecordingEventSink()
    calls: dict[str, int] = {}
    policy = GuardRetryPolicy(
        retry_stage="draft", max_attempts=1000, stagnation_limit=1000, timeout_seconds=2.5
    )
    with trio.fail_after(60), pytest.raises(UnifiedStageExecutionError):
        await _graph(policy, calls).run(stage_ctx(event_sink=sink))
    # Guard failures at t=1, 2, 3 are within 2.5 s of the first; the one at t=4 is not.
    exhausted = [e for e in sink.of_type("guard_retry.exhausted") if e is not None]
    assert [e["reason"] for e in exhausted] == ["timeout"]
    assert exhausted[0]["attempts"] == calls["guard"] == 4


async def test_guard_retry_stagnation_ends_the_retries(autojump_clock: trio.abc.Clock) -> None:
    """Kills ``record_failure``: ``return "stagnation"`` -> ``return None`` (retried forever)."""
    sink = RecordingEventSink()
    calls: dict[str, int] = {}
    # The guard's data changes every attempt, but only "missing" is hashed: it never does.
    policy = GuardRetryPolicy(
        retry_stage="draft", max_attempts=1000, stagnation_limit=2, hash_fields=("missing",)
    )
    with trio.fail_after(60), pytest.raises(UnifiedStageExecutionError):
        await _graph(policy, calls).run(stage_ctx(event_sink=sink))
    exhausted = [e for e in sink.of_type("guard_retry.exhausted") if e is not None]
    assert [(e["reason"], e["stagnation_hits"]) for e in exhausted] == [("stagnation", 2)]
    assert calls["guard"] == 3
