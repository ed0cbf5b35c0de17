"""Audit 15: the cancellation harness reports hangs, bad arguments and misused helpers clearly."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.testing import (
    RunRecord,
    assert_no_orphans,
    create_test_stage_context,
    current_run,
    explore_cancellation,
    invariant,
    tracked_cleanup,
)

# The explorer jumps a MockClock to 2**20 s before each run; a guard past that turns a
# harness that hangs into a failure of the test instead of a hung test run.
GUARD = 2**21


async def _tick() -> None:
    await trio.sleep(1)


async def test_a_run_blocked_for_good_is_reported_in_virtual_time(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def waits_for_nobody() -> None:
        await trio.Event().wait()  # nothing sets it, and no timer is pending

    with trio.fail_after(GUARD), pytest.raises(AssertionError) as failure:
        await explore_cancellation(waits_for_nobody)
    message = str(failure.value)
    assert "broke at the uncancelled run" in message
    assert "the run had not ended 3600 s after it started" in message


async def test_a_shielded_wait_that_never_ends_is_reported_and_ended(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def stage(ctx: StageContext) -> StageOutput:
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await trio.Event().wait()  # a release that never comes
            raise
        return StageOutput.ok()

    graph = Pipeline().with_stage("hold", stage, StageKind.WORK).build()

    async def run() -> object:
        return await graph.run(create_test_stage_context(event_sink=current_run().sink))

    with trio.fail_after(GUARD), pytest.raises(AssertionError) as failure:
        await explore_cancellation(run, hang_timeout=60)
    message = str(failure.value)
    assert "the run had not ended 60 s after it was cancelled" in message
    assert "blocked inside a shielded CancelScope" in message
    assert "explore_cancellation(run_fn, seed=0, at=[" in message


async def test_a_shielded_wait_that_outlasts_the_limit_is_not_a_pass(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def run() -> None:
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await trio.sleep(10**5)  # "cleanup" that holds the caller for a day
            raise

    with pytest.raises(AssertionError, match="had not ended 3600 s after it was cancelled"):
        await explore_cancellation(run)
    # A longer limit, or none, accepts it.
    report = await explore_cancellation(run, hang_timeout=math.inf)
    assert report.outcomes == {"returned": 1, "cancelled": 1}


async def test_a_long_correct_run_passes_with_a_longer_limit(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def run() -> None:
        await trio.sleep(5000)

    with pytest.raises(AssertionError, match="had not ended 3600 s after it started"):
        await explore_cancellation(run)
    report = await explore_cancellation(run, hang_timeout=6000)
    assert report.outcomes == {"returned": 1, "cancelled": 1}


@pytest.mark.parametrize(
    ("value", "error", "rule"),
    [
        (-1, ValueError, "hang_timeout must be >= 0"),
        (0, ValueError, "hang_timeout must be > 0"),
        (math.nan, ValueError, "hang_timeout must be >= 0"),
        (True, TypeError, "hang_timeout must be a number"),
        ("60", TypeError, "hang_timeout must be a number"),
    ],
)
async def test_a_bad_hang_timeout_is_named(value: Any, error: type[Exception], rule: str) -> None:
    with pytest.raises(error, match=rule):
        await explore_cancellation(_tick, hang_timeout=value)


@pytest.mark.parametrize(
    ("param", "value"), [("invariants", None), ("deadlines", 5), ("at", 3), ("deadlines", "1")]
)
async def test_a_non_iterable_argument_is_named(param: str, value: Any) -> None:
    kwargs: dict[str, Any] = {param: value}
    with pytest.raises(TypeError, match=f"explore_cancellation: {param} must be an iterable"):
        await explore_cancellation(_tick, **kwargs)


async def test_an_invariant_must_return_none_or_a_str(
    virtual_clock: trio.testing.MockClock,
) -> None:
    @invariant("returns a bool")
    def boolish(run: RunRecord) -> str | None:
        return run.outcome == "returned"  # type: ignore[return-value]

    with pytest.raises(TypeError, match="invariant 'returns a bool' must return None"):
        await explore_cancellation(_tick, invariants=[boolish])


async def test_an_invariant_that_raises_is_named_in_a_note(
    virtual_clock: trio.testing.MockClock,
) -> None:
    @invariant("reads the result")
    def reads(run: RunRecord) -> str | None:
        return run.result["rows"]  # type: ignore[no-any-return]

    with pytest.raises(TypeError) as failure:
        await explore_cancellation(_tick, invariants=[reads])
    notes = getattr(failure.value, "__notes__", [])
    assert any("invariant 'reads the result'" in note for note in notes)
    assert any("the uncancelled run" in note for note in notes)


async def test_tracked_cleanup_of_a_sync_function_is_named() -> None:
    def release() -> None:
        pass

    cleanup = tracked_cleanup(release, name="hold")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"tracked_cleanup: callback must return an awaitable"):
        await cleanup()


async def test_assert_no_orphans_exit_is_a_checkpoint() -> None:
    block = assert_no_orphans()
    await block.__aenter__()
    with trio.testing.assert_checkpoints():
        await block.__aexit__(None, None, None)


async def test_the_watchdog_leaves_the_schedule_alone(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def stage(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.25)
        return StageOutput.ok()

    graph = (
        Pipeline()
        .with_stage("a", stage, StageKind.WORK)
        .with_stage("b", stage, StageKind.WORK)
        .with_stage("c", stage, StageKind.WORK, dependencies=("a", "b"))
        .build()
    )

    async def run() -> object:
        return await graph.run(create_test_stage_context(event_sink=current_run().sink))

    with_limit = await explore_cancellation(run, seed=3)
    without = await explore_cancellation(run, seed=3, hang_timeout=math.inf)
    assert with_limit == without
