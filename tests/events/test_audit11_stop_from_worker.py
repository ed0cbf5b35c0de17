"""BackpressureAwareEventSink.stop called from the task it would wait for never waits on itself.

The downstream's ``emit`` runs in the worker's task (or, during a drain, in the
task running ``stop``). A ``stop`` called from there used to wait for its own
task to exit, inside a shielded scope: it hung forever. A shielded wait cannot
be cancelled, so each test runs a watchdog that, after a long virtual time,
releases the wait and fails the test instead of hanging.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.events import BackpressureAwareEventSink
from tests.fakes import extra

LOGGER = "stageflow_trio.events.backpressure"
HANG = 1000.0  # virtual seconds; far more than any budget used below


@pytest.fixture(autouse=True)
def _capture_sink_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="stageflow_trio.events")


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


class SelfStoppingSink:
    """Records events with their time; on ``stop_on`` its emit calls ``sink.stop(**stop_args)``.

    After ``stop`` returns it records ``"<type>:returned"``, then takes ``after``
    seconds to finish that delivery.
    """

    def __init__(
        self, stop_on: str = "stop", *, after: float = 0.0, delay: float = 0.0, **stop_args: Any
    ) -> None:
        self.sink: BackpressureAwareEventSink | None = None
        self.stop_on = stop_on
        self.after = after
        self.delay = delay
        self.stop_args = stop_args
        self.log: list[tuple[str, float]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        if self.delay:
            await trio.sleep(self.delay)
        if type == self.stop_on:
            assert self.sink is not None
            await self.sink.stop(**self.stop_args)
            self.log.append((f"{type}:returned", trio.current_time()))
            if self.after:
                await trio.sleep(self.after)
        self.log.append((type, trio.current_time()))

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        raise AssertionError("the sink delivers with emit")

    def types(self) -> list[str]:
        return [t for t, _ in self.log]


def running(sink: BackpressureAwareEventSink) -> bool:
    """``sink.is_running`` as a call, so a type checker does not carry its value over awaits."""
    return sink.is_running


def make_sink(
    downstream: SelfStoppingSink, given_up: list[str] | None = None
) -> BackpressureAwareEventSink:
    on_drop = None if given_up is None else (lambda t, d: given_up.append(t))
    sink = BackpressureAwareEventSink(downstream, max_queue_size=0, on_drop=on_drop)
    downstream.sink = sink
    return sink


class Watchdog:
    """Fails the test (rather than let it hang) after ``HANG`` virtual seconds.

    Its sleep is shielded so that a failing test body does not cancel it: the
    old code's hang sat in a shielded wait (for the worker's own exit), which
    only releasing that wait could end. ``done()`` ends the watch.
    """

    def __init__(self, sink: BackpressureAwareEventSink) -> None:
        self.sink = sink
        self.scope = trio.CancelScope(shield=True)

    async def run(self) -> None:
        with self.scope:
            await trio.sleep(HANG)
            exited = getattr(getattr(self.sink, "_worker", None), "exited", None)
            if isinstance(exited, trio.Event):
                exited.set()
            raise AssertionError(f"still running after {HANG} virtual seconds: stop() hung")

    def done(self) -> None:
        self.scope.cancel()


async def test_stop_from_the_downstream_emit_returns_and_the_worker_drains_the_rest(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    downstream = SelfStoppingSink(after=1.0)
    given_up: list[str] = []
    sink = make_sink(downstream, given_up)
    async with trio.open_nursery() as nursery:
        guard = Watchdog(sink)
        nursery.start_soon(guard.run)
        await sink.start(nursery)
        for event_type in ("a", "stop", "b", "c"):
            sink.try_emit(type=event_type, data=None)
        await trio.testing.wait_all_tasks_blocked()
        # stop() returned at once; the delivery that called it is still running.
        assert downstream.log == [("a", 0.0), ("stop:returned", 0.0)]
        # Others wait for the stop the worker asked for.
        await sink.stop()
        assert trio.current_time() == 1.0
        guard.done()
    # The delivery finished, then the rest of the queue was delivered, in order.
    assert downstream.types() == ["a", "stop:returned", "stop", "b", "c"]
    assert not sink.is_running
    assert sink.queue_size == 0
    assert given_up == []
    assert (sink.metrics.emitted, sink.metrics.undelivered, sink.metrics.dropped) == (4, 0, 0)
    assert warnings(caplog) == []


async def test_stop_from_the_downstream_emit_without_drain_gives_up_the_rest(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    downstream = SelfStoppingSink(drain=False)
    given_up: list[str] = []
    sink = make_sink(downstream, given_up)
    async with trio.open_nursery() as nursery:
        guard = Watchdog(sink)
        nursery.start_soon(guard.run)
        await sink.start(nursery)
        for event_type in ("a", "stop", "b", "c"):
            sink.try_emit(type=event_type, data=None)
        await trio.testing.wait_all_tasks_blocked()
        assert not sink.is_running
        await sink.stop()  # already stopped: returns at once
        assert trio.current_time() == 0.0
        guard.done()
    # The delivery that called stop() finishes; the queue behind it is given up.
    assert downstream.types() == ["a", "stop:returned", "stop"]
    assert given_up == ["b", "c"]
    assert (sink.metrics.emitted, sink.metrics.undelivered, sink.metrics.dropped) == (4, 2, 2)
    [warning] = warnings(caplog)
    assert warning.getMessage() == "Stopped before delivering all events"
    assert extra(warning, "remaining") == 2


async def test_stop_from_the_downstream_emit_shares_one_budget(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The delivery that called stop(timeout=2) wants 10 more seconds: it is cut
    # at the budget and counted, like an event cut by stop's own timeout.
    downstream = SelfStoppingSink(after=10.0, timeout=2.0)
    given_up: list[str] = []
    sink = make_sink(downstream, given_up)
    async with trio.open_nursery() as nursery:
        guard = Watchdog(sink)
        nursery.start_soon(guard.run)
        await sink.start(nursery)
        for event_type in ("a", "stop", "b"):
            sink.try_emit(type=event_type, data=None)
        await trio.testing.wait_all_tasks_blocked()
        await sink.stop()
        assert trio.current_time() == 2.0
        guard.done()
    assert downstream.types() == ["a", "stop:returned"]
    assert given_up == ["stop", "b"]
    assert (sink.metrics.emitted, sink.metrics.undelivered) == (3, 2)
    [warning] = warnings(caplog)
    assert warning.getMessage() == "Drain timeout, some events may be lost"


async def test_stop_from_the_downstream_emit_during_another_stop_does_not_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The test's stop() waits for the worker to finish "stop"; that delivery
    # calls stop() too, which must not wait for the stop that waits for it.
    downstream = SelfStoppingSink(delay=1.0)
    given_up: list[str] = []
    sink = make_sink(downstream, given_up)
    async with trio.open_nursery() as nursery:
        guard = Watchdog(sink)
        nursery.start_soon(guard.run)
        await sink.start(nursery)
        for event_type in ("stop", "b"):
            sink.try_emit(type=event_type, data=None)
        await trio.sleep(0.5)  # the worker is in the middle of "stop"
        await sink.stop()
        assert trio.current_time() == 2.0  # "stop", then "b" from the drain
        guard.done()
    assert downstream.types() == ["stop:returned", "stop", "b"]
    assert given_up == []
    assert sink.metrics.undelivered == 0


async def test_stop_from_the_downstream_emit_during_a_drain_does_not_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # No worker: stop() drains from the calling task, so the downstream's emit
    # runs in that task. A stop() from there used to wait for the whole budget
    # and then cut the event it was delivering.
    downstream = SelfStoppingSink()
    given_up: list[str] = []
    sink = make_sink(downstream, given_up)
    for event_type in ("a", "stop", "b"):
        sink.try_emit(type=event_type, data=None)
    async with trio.open_nursery() as nursery:
        guard = Watchdog(sink)
        nursery.start_soon(guard.run)
        await sink.stop()
        guard.done()
    assert trio.current_time() == 0.0
    assert downstream.types() == ["a", "stop:returned", "stop", "b"]
    assert given_up == []
    assert sink.metrics.undelivered == 0


async def test_async_with_exits_after_the_downstream_stopped_the_sink(
    autojump_clock: trio.testing.MockClock,
) -> None:
    downstream = SelfStoppingSink(after=1.0)
    sink = make_sink(downstream)
    async with trio.open_nursery() as nursery:
        guard = Watchdog(sink)
        nursery.start_soon(guard.run)
        async with sink:
            for event_type in ("stop", "b"):
                sink.try_emit(type=event_type, data=None)
            await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 1.0
        guard.done()
    assert downstream.types() == ["stop:returned", "stop", "b"]


async def test_sink_restarts_after_the_downstream_stopped_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    downstream = SelfStoppingSink()
    sink = make_sink(downstream)
    async with trio.open_nursery() as nursery:
        guard = Watchdog(sink)
        nursery.start_soon(guard.run)
        await sink.start(nursery)
        sink.try_emit(type="stop", data=None)
        await trio.testing.wait_all_tasks_blocked()
        assert not running(sink)
        await sink.start(nursery)
        assert running(sink)
        sink.try_emit(type="again", data=None)
        sink.try_emit(type="and again", data=None)
        await trio.testing.wait_all_tasks_blocked()
        # The new worker keeps going: the stop flag did not leak into it.
        assert running(sink)
        assert downstream.types() == ["stop:returned", "stop", "again", "and again"]
        await sink.stop()
        guard.done()
    assert (sink.metrics.emitted, sink.metrics.undelivered) == (3, 0)


async def test_owner_cancelled_while_the_self_stop_waits_still_accounts_for_every_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    downstream = SelfStoppingSink(after=10.0)
    given_up: list[str] = []
    sink = make_sink(downstream, given_up)
    async with trio.open_nursery() as outer:
        guard = Watchdog(sink)
        outer.start_soon(guard.run)
        with trio.move_on_after(1.0) as owner:
            async with trio.open_nursery() as nursery:
                await sink.start(nursery)
                for event_type in ("stop", "b"):
                    sink.try_emit(type=event_type, data=None)
                await trio.sleep(HANG / 2)
        guard.done()
    assert owner.cancelled_caught
    # "stop" was cut by the owner's cancellation: counted, not re-sent; the
    # worker's task still drained the rest (shielded) before it exited.
    assert downstream.types() == ["stop:returned", "b"]
    assert given_up == ["stop"]
    assert (sink.metrics.emitted, sink.metrics.undelivered) == (2, 1)
    assert not sink.is_running
    assert trio.current_time() == 1.0
