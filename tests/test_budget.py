"""The checkpoint budget: a cancellation point on every call, a schedule point when due."""

from __future__ import annotations

import functools
import math
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio import _budget
from stageflow_trio._budget import checkpoint_due, schedule_point_due
from stageflow_trio.context import output_bag as _output_bag
from stageflow_trio.context.output_bag import OutputBag
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.helpers.streaming import ChunkQueue
from stageflow_trio.lowlevel import (
    DEFAULT_CALLS,
    DEFAULT_SECONDS,
    checkpoint_budget,
    cooperative_checkpoint,
)
from stageflow_trio.testing import reset_globals


class StepCounter(trio.abc.Instrument):
    """Counts the steps of one task: each new step follows a schedule point."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def yield_pattern(call: Callable[[], Awaitable[object]], n: int) -> list[bool]:
    """Whether each of ``n`` calls of ``call`` let the scheduler switch."""
    counter = StepCounter(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(counter)
    try:
        pattern = []
        for _ in range(n):
            before = counter.steps
            await call()
            pattern.append(counter.steps != before)
        return pattern
    finally:
        trio.lowlevel.remove_instrument(counter)


def every(calls: int, n: int) -> list[bool]:
    return [i % calls == 0 for i in range(n)]


class FakeClock:
    """Seconds in ``now``; read as ``time.time_ns()`` would give them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> int:
        return round(self.now * 1e9)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(_budget, "_clock", clock)
    return clock


async def test_defaults_are_64_calls_and_1_ms() -> None:
    assert (DEFAULT_CALLS, DEFAULT_SECONDS) == (64, 0.001)


async def test_first_call_and_then_every_calls_th_call_yield() -> None:
    with checkpoint_budget(calls=4, seconds=math.inf):
        assert await yield_pattern(cooperative_checkpoint, 10) == every(4, 10)


@given(calls=st.integers(min_value=1, max_value=20), n=st.integers(min_value=1, max_value=60))
async def test_yield_pattern_property(calls: int, n: int) -> None:
    with checkpoint_budget(calls=calls, seconds=math.inf):
        assert await yield_pattern(cooperative_checkpoint, n) == every(calls, n)


async def test_default_budget_yields_at_least_every_64_calls(fake_clock: FakeClock) -> None:
    pattern = await yield_pattern(cooperative_checkpoint, 200)
    assert pattern == every(64, 200)


async def test_a_call_yields_once_the_time_budget_is_spent(fake_clock: FakeClock) -> None:
    with checkpoint_budget(calls=1000, seconds=0.001):
        results = []
        for advance in (0.0, 0.0005, 0.0004, 0.0001, 0.0002, 0.0009):
            fake_clock.now += advance
            results += await yield_pattern(cooperative_checkpoint, 1)
    # Yields at t=0 (fresh budget), then at t=1 ms, not at 1.2 ms, then at 2.1 ms.
    assert results == [True, False, False, True, False, True]


async def test_a_reading_passed_in_replaces_the_clock(fake_clock: FakeClock) -> None:
    # OutputBag.write shares its timestamp's clock reading with the budget.
    with checkpoint_budget(calls=1000, seconds=0.001):
        assert schedule_point_due(now=5_000_000_000) is True
        assert schedule_point_due(now=5_000_500_000) is False
        fake_clock.now = 5.0009
        assert schedule_point_due() is False
        assert schedule_point_due(now=5_001_000_000) is True
        assert schedule_point_due() is False  # the fresh budget runs from 5.001 s


async def test_output_bag_write_spends_the_budget_at_its_own_reading(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_output_bag, "_wall_clock", fake_clock)
    bag = OutputBag()
    with checkpoint_budget(calls=1000, seconds=0.001):
        results = []
        for i, advance in enumerate((0.0, 0.0005, 0.0006)):
            fake_clock.now += advance
            write = functools.partial(bag.write, f"s{i}", StageOutput.ok())
            results += await yield_pattern(write, 1)
    assert results == [True, False, True]
    last = bag.get("s2")
    assert last is not None
    # 1000.0011 s after the epoch, cut to the microsecond.
    assert last.timestamp == datetime(1970, 1, 1, 0, 16, 40, 1100, tzinfo=UTC)


@pytest.mark.parametrize("seconds", [math.inf, 1e300, sys.float_info.max, 2e21])
async def test_a_huge_time_budget_leaves_only_the_calls_bound(seconds: float) -> None:
    with checkpoint_budget(calls=3, seconds=seconds):
        assert await yield_pattern(cooperative_checkpoint, 7) == every(3, 7)
    assert _budget._thread_state().blocks == []
    # Nothing left behind that breaks the next block (no time bound: a 1 ms one fires
    # on a busy machine, as a full run beside three others saw).
    with checkpoint_budget(calls=2, seconds=math.inf):
        assert await yield_pattern(cooperative_checkpoint, 4) == every(2, 4)


async def test_seconds_zero_or_calls_one_yield_every_time() -> None:
    with checkpoint_budget(calls=1, seconds=math.inf):
        assert await yield_pattern(cooperative_checkpoint, 5) == [True] * 5
    with checkpoint_budget(calls=1000, seconds=0):
        assert await yield_pattern(cooperative_checkpoint, 5) == [True] * 5


async def test_every_call_is_a_cancellation_point() -> None:
    with checkpoint_budget(calls=1000, seconds=math.inf):
        await cooperative_checkpoint()  # the fresh budget's schedule point
        for _ in range(10):
            with trio.CancelScope() as scope:
                scope.cancel()
                await cooperative_checkpoint()
                pytest.fail("cooperative_checkpoint did not raise Cancelled")  # pragma: no cover
            assert scope.cancelled_caught


async def test_checkpoint_due_is_true_only_when_due_or_cancelled() -> None:
    with checkpoint_budget(calls=1000, seconds=math.inf):
        assert checkpoint_due() is True  # the fresh budget's schedule point
        assert checkpoint_due() is False
        with trio.CancelScope() as scope:
            assert checkpoint_due() is False
            scope.cancel()
            assert checkpoint_due() is True
            # A shield inside the cancelled scope hides the cancellation, as it
            # does from trio.lowlevel.checkpoint_if_cancelled.
            with trio.CancelScope(shield=True):  # noqa: ASYNC100 - read, not awaited
                assert checkpoint_due() is False
            assert checkpoint_due() is True
            await trio.lowlevel.checkpoint()
        assert scope.cancelled_caught
        assert checkpoint_due() is False


async def test_checkpoint_due_falls_back_to_full_checkpoints_without_the_cancel_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A trio that keeps the running task or its cancel status elsewhere: every
    # call checkpoints fully.
    class Moved:
        task = object()

    for run_context in (Moved(), object(), None):
        monkeypatch.setattr(_budget, "_RUN_CONTEXT", run_context)
        with checkpoint_budget(calls=1000, seconds=math.inf):
            assert [checkpoint_due() for _ in range(4)] == [True] * 4
            assert await yield_pattern(cooperative_checkpoint, 4) == [True] * 4


def test_checkpoint_due_outside_a_trio_task_is_a_runtime_error() -> None:
    _budget._reset()
    # One instant for both calls: on a loaded machine the time between them could
    # pass the budget's span, and a due call reads no task (a CI run failed so).
    now = time.time_ns()
    checkpoint_due(now)  # the fresh budget's first call is due: no task is read
    with pytest.raises(RuntimeError, match="must be called from async context"):
        checkpoint_due(now)


async def test_checkpoint_due_reads_the_status_trio_keeps_on_the_task() -> None:
    # The fast path reads what trio.lowlevel.checkpoint_if_cancelled reads; if a
    # trio upgrade moves it, this fails (the library stays correct, only slower).
    status = trio.lowlevel.current_task()._cancel_status
    assert status.effectively_cancelled is False
    # ... and finds the task where trio.lowlevel.current_task finds it.
    assert _budget._RUN_CONTEXT is not None
    assert _budget._RUN_CONTEXT.task is trio.lowlevel.current_task()
    # cancel_called() reads the flag trio keeps on the scope (the same kind of guard).
    scope = trio.CancelScope()
    assert scope._cancel_called is False
    scope.cancel()
    assert scope._cancel_called is True


async def test_budgeted_calls_are_full_checkpoints_under_calls_one() -> None:
    bag = OutputBag()
    queue: ChunkQueue[int] = ChunkQueue(max_size=10)
    with checkpoint_budget(calls=1):
        for i in range(3):
            with trio.testing.assert_checkpoints():
                await cooperative_checkpoint()
            with trio.testing.assert_checkpoints():
                await bag.write(f"s{i}", StageOutput.ok())
            with trio.testing.assert_checkpoints():
                await queue.put(i)
            with trio.testing.assert_checkpoints():
                assert await queue.get() == i


async def test_a_tight_loop_of_budgeted_calls_does_not_starve_other_tasks() -> None:
    bag = OutputBag()
    done = trio.Event()
    writes = 0

    async def other() -> None:
        done.set()

    await cooperative_checkpoint()  # spend the fresh budget's schedule point
    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        while not done.is_set():
            await bag.write("s", StageOutput.ok(), allow_overwrite=True)
            writes += 1
    # Our first schedule point puts `other` in the next batch; trio may run us
    # first in that batch, for at most one more budget.
    assert 1 <= writes <= 2 * DEFAULT_CALLS


async def test_budget_block_restores_the_previous_policy() -> None:
    state = _budget._thread_state()
    with checkpoint_budget(calls=3, seconds=2.0):
        assert (state.calls, state.seconds) == (3, 2.0)
        inner: list[tuple[int, float]] = []

        def fail_inside() -> None:
            with checkpoint_budget(calls=1, seconds=0):
                inner.append((state.calls, state.seconds))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match=r"^boom$"):
            fail_inside()
        assert inner == [(1, 0.0)]
        assert (state.calls, state.seconds) == (3, 2.0)
    assert (state.calls, state.seconds) == (DEFAULT_CALLS, DEFAULT_SECONDS)


async def test_opening_and_closing_a_budget_block_starts_a_fresh_budget() -> None:
    with checkpoint_budget(calls=100, seconds=math.inf):
        assert await yield_pattern(cooperative_checkpoint, 2) == [True, False]
        with checkpoint_budget(calls=100, seconds=math.inf):
            assert await yield_pattern(cooperative_checkpoint, 2) == [True, False]
        assert await yield_pattern(cooperative_checkpoint, 2) == [True, False]


async def test_reset_globals_restores_the_default_fresh_budget() -> None:
    with checkpoint_budget(calls=5, seconds=9.0):
        reset_globals()
        state = _budget._thread_state()
        assert (state.calls, state.seconds, state.calls_left) == (64, 0.001, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"calls": 0}, ValueError, "calls must be >= 1, got 0"),
        ({"calls": 2.0}, TypeError, "calls must be an int, got float"),
        ({"calls": True}, TypeError, "calls must be an int, got bool"),
        ({"seconds": -1}, ValueError, "seconds must be >= 0, got -1"),
        ({"seconds": math.nan}, ValueError, "seconds must be >= 0, got nan"),
        ({"seconds": "1"}, TypeError, "seconds must be a real number, got str"),
    ],
)
def test_bad_budget_arguments_name_the_parameter(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=rf"^{message}$"):
        checkpoint_budget(**kwargs)  # type: ignore[arg-type]


def test_checkpoint_budget_is_not_a_decorator() -> None:
    with pytest.raises(TypeError, match="not callable"):
        checkpoint_budget(calls=1)(test_the_budget_is_per_thread)  # type: ignore[operator]


def test_the_budget_is_per_thread(fake_clock: FakeClock) -> None:
    seen: list[bool] = []

    def in_other_thread() -> None:
        seen.extend(_budget.schedule_point_due() for _ in range(3))

    with checkpoint_budget(calls=1):
        thread = threading.Thread(target=in_other_thread)
        thread.start()
        thread.join()
        # This thread's policy: every call; the other thread's: the default.
        assert [_budget.schedule_point_due() for _ in range(3)] == [True] * 3
    assert seen == [True, False, False]


async def test_blocks_of_two_tasks_closing_out_of_order_leave_the_default() -> None:
    state = _budget._thread_state()
    a_open, b_open, a_closed = trio.Event(), trio.Event(), trio.Event()
    seen: list[tuple[int, float]] = []

    async def task_a() -> None:
        with checkpoint_budget(calls=1):
            a_open.set()
            await b_open.wait()
        a_closed.set()

    async def task_b() -> None:
        await a_open.wait()
        with checkpoint_budget(calls=5, seconds=2.0):
            b_open.set()
            await a_closed.wait()
            seen.append((state.calls, state.seconds))  # B's block is still open

    async with trio.open_nursery() as nursery:
        nursery.start_soon(task_a)
        nursery.start_soon(task_b)
    assert seen == [(5, 2.0)]
    assert (state.calls, state.seconds, state.blocks) == (DEFAULT_CALLS, DEFAULT_SECONDS, [])


async def test_one_budget_object_can_be_entered_twice() -> None:
    state = _budget._thread_state()
    budget = checkpoint_budget(calls=3)
    with budget:
        with budget:
            assert state.calls == 3
        assert state.calls == 3
    assert state.calls == DEFAULT_CALLS


async def test_an_expired_deadline_takes_effect_at_the_next_schedule_point(
    mock_clock: trio.testing.MockClock,
) -> None:
    bag = OutputBag()
    with checkpoint_budget(calls=4, seconds=math.inf), trio.move_on_after(1) as scope:
        await cooperative_checkpoint()  # the fresh budget's schedule point
        mock_clock.jump(2)  # the deadline passes while this task runs
        for i in range(10):
            await bag.write(f"s{i}", StageOutput.ok())
    assert scope.cancelled_caught
    # Calls 2-4 of the budget are cancellation checks only; call 5 is the
    # schedule point where trio turns the passed deadline into Cancelled.
    assert bag.keys() == ["s0", "s1", "s2"]


async def test_an_explicit_cancel_is_seen_by_the_next_call() -> None:
    bag = OutputBag()
    with checkpoint_budget(calls=1000, seconds=math.inf), trio.CancelScope() as scope:
        await cooperative_checkpoint()
        await bag.write("before", StageOutput.ok())
        scope.cancel()
        await bag.write("after", StageOutput.ok())
    assert scope.cancelled_caught
    assert bag.keys() == ["before"]


async def test_one_budget_object_entered_by_two_tasks_closes_each_entry() -> None:
    state = _budget._thread_state()
    shared = checkpoint_budget(calls=1)
    other = checkpoint_budget(calls=7)
    steps = [trio.Event() for _ in range(4)]
    seen: list[int] = []

    async def task_a() -> None:
        with shared:  # entry 1 of `shared`
            steps[0].set()
            await steps[2].wait()
        steps[3].set()  # A left while B's entry of `shared` is still open

    async def task_c() -> None:
        await steps[0].wait()
        with other:
            steps[1].set()
            await trio.sleep_forever()

    async def task_b() -> None:
        await steps[1].wait()
        with shared:  # entry 2 of `shared`, the newest block
            steps[2].set()
            await steps[3].wait()
            seen.append(state.calls)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(task_a)
        nursery.start_soon(task_b)
        nursery.start_soon(task_c)
        await steps[3].wait()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert seen == [1]
    assert (state.calls, state.blocks) == (DEFAULT_CALLS, [])


async def test_a_budgeted_call_counts_as_a_cancel_point_for_assert_checkpoints() -> None:
    # trio.testing.assert_checkpoints wants a cancel point and a schedule point:
    # a budgeted call that is not due is the first, as checkpoint_if_cancelled is.
    bag = OutputBag()
    with checkpoint_budget(calls=1000, seconds=math.inf):
        await cooperative_checkpoint()  # the fresh budget's schedule point
        with trio.testing.assert_checkpoints():
            await bag.write("s", StageOutput.ok())  # not due: the cancel check only
            await trio.lowlevel.cancel_shielded_checkpoint()  # a schedule point only


async def test_cancelled_now_reads_what_the_effective_deadline_says() -> None:
    """``cancelled_now()`` is ``current_effective_deadline() == -inf``, without the walk."""
    from stageflow_trio._budget import cancelled_now

    assert cancelled_now() is False
    with trio.CancelScope() as outer:
        with trio.CancelScope(shield=True):
            outer.cancel()
            assert cancelled_now() is False  # shielded
            assert trio.current_effective_deadline() != -math.inf
            await trio.lowlevel.checkpoint()  # shielded: goes on
        assert cancelled_now() is True
        assert trio.current_effective_deadline() == -math.inf
        await trio.lowlevel.checkpoint()  # delivers the cancellation to outer
    assert outer.cancelled_caught


async def test_cancel_called_reads_the_flag_the_property_reads() -> None:
    """``cancel_called(scope)`` agrees with ``scope.cancel_called`` for a scope with no deadline.

    Before entry, while active, after a cancel from inside and from outside, and after exit;
    the engine and the spawner read it instead of the property (which reads the clock).
    """
    from stageflow_trio._budget import cancel_called

    def both(scope: trio.CancelScope) -> tuple[bool, bool]:
        return cancel_called(scope), scope.cancel_called

    assert both(trio.CancelScope()) == (False, False)
    with trio.CancelScope() as outer:
        with trio.CancelScope() as inner:
            assert both(inner) == both(outer) == (False, False)
            outer.cancel()
            # An outer cancel does not mark the inner scope: only its own cancel() does.
            assert both(inner) == (False, False)
            assert both(outer) == (True, True)
            inner.cancel()
            assert both(inner) == (True, True)
            await trio.lowlevel.checkpoint()
    assert outer.cancelled_caught  # the outermost cancelled scope catches it
    assert both(inner) == both(outer) == (True, True)
    cancelled_before_entry = trio.CancelScope()
    cancelled_before_entry.cancel()
    assert both(cancelled_before_entry) == (True, True)
