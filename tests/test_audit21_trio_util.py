"""Audit 21: explore_cancellation on trio-util (run_and_cancelling, periodic), unchanged.

The deadline task of a deadline run now runs under ``run_and_cancelling`` and the
hang watchdog lifts shields on ``periodic``; both replaced hand-rolled code with
the same nursery and the same timing, so these tests pin what the explorer did
before: what a deadline run raises, and when each shield is lifted.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from stageflow_trio.testing import explore_cancellation

# The explorer jumps a MockClock to 2**20 s before each run; a guard past that turns a
# harness that hangs into a failure of the test instead of a hung test run.
GUARD = 2**21


async def test_a_deadline_run_records_an_error_raised_on_cancel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled_at: list[float] = []

    async def run() -> None:
        start = trio.current_time()
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            cancelled_at.append(trio.current_time() - start)
            raise ValueError("cleanup failed") from None

    report = await explore_cancellation(run, at=[], deadlines=[0.5], invariants=())
    assert report.deadlines == (0.5,)
    assert report.outcomes == {"returned": 1, "ValueError": 1}
    assert cancelled_at == [0.5]  # the deadline task cancelled the run on time


async def test_a_base_exception_out_of_a_deadline_run_still_reaches_the_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def run() -> None:
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            raise SystemExit(3) from None

    # Bare, as from a run cancelled at a checkpoint (before, the deadline task's
    # nursery put it in a BaseExceptionGroup).
    with pytest.raises(SystemExit) as caught:
        await explore_cancellation(run, at=[], deadlines=[0.5])
    assert caught.value.code == 3


async def test_the_hang_watchdog_lifts_a_later_shield_one_limit_after_the_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    entered: list[float] = []
    ended: list[float] = []

    async def run() -> None:
        start = trio.current_time()
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            try:
                entered.append(trio.current_time() - start)
                with trio.CancelScope(shield=True):
                    await trio.Event().wait()  # a release that never comes
            finally:
                entered.append(trio.current_time() - start)
                try:
                    with trio.CancelScope(shield=True):
                        await trio.Event().wait()  # and another, entered once it was lifted
                finally:
                    ended.append(trio.current_time() - start)
            raise

    with trio.fail_after(GUARD), pytest.raises(AssertionError) as failure:
        await explore_cancellation(run, hang_timeout=60, deadlines=())
    message = str(failure.value)
    assert "the run had not ended 60 s after it was cancelled" in message
    assert message.count("blocked inside a shielded CancelScope") == 2
    # Cancelled at once; the first shield lifted when the hang is found (60 s
    # later), the second on the watchdog's next pass (60 s after that).
    assert entered == [0, 60]
    assert ended == [120]
