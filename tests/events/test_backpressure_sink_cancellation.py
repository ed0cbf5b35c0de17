"""BackpressureAwareEventSink under cancellation: every event is delivered or counted."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from stageflow_trio.events import BackpressureAwareEventSink, wait_for_event_sink_tasks
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import SlowSink, extra, extras

LOGGER = "stageflow_trio.events.backpressure"


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.fixture(autouse=True)
def _capture_sink_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="stageflow_trio.events")


async def test_cancelled_owner_delivers_the_queue_and_counts_the_interrupted_event(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    downstream = SlowSink(1.0)
    given_up: list[str] = []
    sink = BackpressureAwareEventSink(downstream, on_drop=lambda t, d: given_up.append(t))
    start = trio.current_time()
    reached_end_of_body = False
    with trio.move_on_after(0.5) as scope:
        async with sink:
            for n in range(4):
                sink.try_emit(type=f"e{n}", data=None)
            await trio.sleep(10)
            reached_end_of_body = True
    assert scope.cancelled_caught
    assert not reached_end_of_body
    # e0 was mid-delivery when the owner was cancelled: counted, not re-sent.
    assert given_up == ["e0"]
    assert downstream.types() == ["e1", "e2", "e3"]
    assert [t - start for t in downstream.times] == [1.5, 2.5, 3.5]
    assert (sink.metrics.emitted, sink.metrics.undelivered, sink.metrics.dropped) == (4, 1, 1)
    assert not sink.is_running
    [warning] = warnings(caplog)
    assert (warning.getMessage(), extra(warning, "remaining")) == (
        "Stopped before delivering all events",
        1,
    )


async def test_cancelled_owner_with_more_than_the_budget_counts_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    downstream = SlowSink(0.75)
    sink = BackpressureAwareEventSink(downstream, max_queue_size=0)
    start = trio.current_time()
    with trio.move_on_after(0.5):
        async with sink:
            for n in range(20):
                sink.try_emit(type=f"e{n}", data=None)
            await trio.sleep_forever()
    # The 5 s drain budget runs from 0.5 to 5.5: e1..e6 are delivered (the last at
    # 5.0); e0 (interrupted), e7 (cut by the budget) and e8..e19 are counted.
    assert downstream.types() == [f"e{n}" for n in range(1, 7)]
    assert downstream.times[-1] - start == 5.0
    assert sink.metrics.undelivered == 14
    assert len(downstream.events) + sink.metrics.undelivered == sink.metrics.emitted == 20
    assert sink.queue_size == 0


async def test_stop_inside_a_cancelled_scope_drains_then_raises_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    downstream = SlowSink(1.0)
    sink = BackpressureAwareEventSink(downstream)
    for n in range(3):
        sink.try_emit(type=f"e{n}", data=None)
    after_stop = False
    with trio.CancelScope() as scope:
        scope.cancel()
        await sink.stop()
        after_stop = True
    assert scope.cancelled_caught
    assert not after_stop
    assert downstream.types() == ["e0", "e1", "e2"]
    assert sink.metrics.undelivered == 0


async def test_cancelling_the_caller_of_stop_does_not_cut_the_drain(
    autojump_clock: trio.testing.MockClock,
) -> None:
    downstream = SlowSink(1.0)
    sink = BackpressureAwareEventSink(downstream)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        for n in range(3):
            sink.try_emit(type=f"e{n}", data=None)
        with trio.move_on_after(0.5) as scope:
            await sink.stop()
        assert scope.cancelled_caught
    assert trio.current_time() - start == 3.0
    assert downstream.types() == ["e0", "e1", "e2"]
    assert sink.metrics.undelivered == 0


async def test_cancelled_worker_is_accounted_for_on_restart(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    downstream = SlowSink(1.0)
    sink = BackpressureAwareEventSink(downstream)
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        sink.try_emit(type="e0", data=None)
        sink.try_emit(type="e1", data=None)
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    assert not sink.is_running
    assert sink.queue_size == 1
    async with sink:
        [warning] = warnings(caplog)
        assert (warning.getMessage(), *extras(warning, "event_type", "dropped_total")) == (
            "Event delivery was interrupted by cancellation",
            "e0",
            1,
        )
        await wait_for_event_sink_tasks()
    assert downstream.types() == ["e1"]
    assert sink.metrics.undelivered == 1


async def test_event_handed_to_a_worker_cancelled_before_it_ran_is_kept() -> None:
    downstream = RecordingEventSink()
    sink = BackpressureAwareEventSink(downstream)
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        sink.try_emit(type="a", data=None)  # handed straight to the parked worker
        nursery.cancel_scope.cancel()
    assert (sink.is_running, sink.queue_size, downstream.events) == (False, 0, [])
    async with sink:
        await wait_for_event_sink_tasks()
        assert downstream.types() == ["a"]
    assert sink.metrics.dropped == 0


async def test_cancelled_emit_queues_nothing(autojump_clock: trio.testing.MockClock) -> None:
    sink = BackpressureAwareEventSink(RecordingEventSink(), max_queue_size=1)
    await sink.emit(type="a", data=None)
    with trio.move_on_after(1.0):
        await sink.emit(type="b", data=None)
    assert (sink.queue_size, sink.metrics.emitted) == (1, 1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await sink.emit(type="c", data=None)
    assert scope.cancelled_caught
    assert (sink.queue_size, sink.metrics.emitted) == (1, 1)


async def test_wait_for_event_sink_tasks_is_cancellable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    downstream = SlowSink(3.0)
    async with BackpressureAwareEventSink(downstream) as sink:
        sink.try_emit(type="a", data=None)
        with trio.move_on_after(1.0) as scope:
            await wait_for_event_sink_tasks()
        assert scope.cancelled_caught
        assert downstream.events == []
    assert downstream.types() == ["a"]


async def test_body_cancelled_while_worker_idle_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    downstream = RecordingEventSink()
    sink = BackpressureAwareEventSink(downstream)
    with trio.move_on_after(1.0):
        async with sink:
            sink.try_emit(type="a", data=None)
            await wait_for_event_sink_tasks()
            sink.try_emit(type="b", data=None)
            await trio.sleep_forever()
    assert downstream.types() == ["a", "b"]
    assert sink.metrics.dropped == 0


async def test_a_failed_start_leaves_the_sink_startable() -> None:
    downstream = RecordingEventSink()
    sink = BackpressureAwareEventSink(downstream)
    async with trio.open_nursery() as closed:
        pass
    with pytest.raises(RuntimeError, match=r"^Nursery is closed to new arrivals$"):
        await sink.start(closed)
    assert (sink.is_running, sink.queue_size) == (False, 0)
    sink.try_emit(type="kept", data=None)
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)  # not a no-op: the failed start left nothing behind
        assert (sink.is_running, len(nursery.child_tasks)) == (True, 1)
        await sink.stop()
    assert downstream.types() == ["kept"]


async def test_an_async_with_cancelled_on_entry_leaves_the_sink_usable() -> None:
    downstream = RecordingEventSink()
    sink = BackpressureAwareEventSink(downstream)
    with trio.CancelScope() as scope:
        scope.cancel()
        async with sink:
            raise AssertionError("the body must not run")  # pragma: no cover
    assert scope.cancelled_caught
    assert not sink.is_running
    async with sink:  # neither "already used in an async with" nor a stale worker
        sink.try_emit(type="after", data=None)
    assert downstream.types() == ["after"]
