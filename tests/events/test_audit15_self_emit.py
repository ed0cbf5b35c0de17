"""A downstream that emits into its own BackpressureAwareEventSink never waits on itself.

The downstream's ``emit`` runs in the task that delivers the sink's events (the
worker, or the task running a draining ``stop``). When it awaits ``sink.emit``
on a full queue, only its own task could make room: the old code waited for
ever. It now drops the event as ``try_emit`` does. The hang happened in an
unshielded wait, so ``fail_after`` on the virtual clock turns it into a failure.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.events import BackpressureAwareEventSink

LOGGER = "stageflow_trio.events.backpressure"


class EchoingSink:
    """Records what it delivers; delivering ``"echo"`` emits ``copies`` events into ``sink``."""

    def __init__(self, copies: int) -> None:
        self.sink: BackpressureAwareEventSink | None = None
        self.copies = copies
        self.delivered: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.delivered.append(type)
        if type == "echo":
            assert self.sink is not None
            for index in range(self.copies):
                await self.sink.emit(type=f"copy{index}", data=None)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        raise AssertionError("the sink delivers with emit")


def make_sink(
    copies: int, max_queue_size: int, dropped: list[str]
) -> tuple[EchoingSink, BackpressureAwareEventSink]:
    downstream = EchoingSink(copies)
    sink = BackpressureAwareEventSink(
        downstream, max_queue_size=max_queue_size, on_drop=lambda t, d: dropped.append(t)
    )
    downstream.sink = sink
    return downstream, sink


async def test_worker_emitting_into_its_full_sink_drops_instead_of_hanging(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    dropped: list[str] = []
    downstream, sink = make_sink(copies=3, max_queue_size=2, dropped=dropped)
    with trio.fail_after(100):
        async with sink:
            assert sink.try_emit(type="echo", data=None)
            await trio.testing.wait_all_tasks_blocked()
    # The first two copies fit in the queue; the third found it full and was dropped.
    assert downstream.delivered == ["echo", "copy0", "copy1"]
    assert dropped == ["copy2"]
    assert (sink.metrics.emitted, sink.metrics.dropped, sink.metrics.undelivered) == (3, 1, 0)
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "Event dropped due to backpressure"
    ]
    assert trio.current_time() == 0.0


async def test_draining_stop_emitting_into_its_full_sink_drops_instead_of_hanging(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # No worker: stop() delivers the queue in its own task.
    dropped: list[str] = []
    downstream, sink = make_sink(copies=2, max_queue_size=1, dropped=dropped)
    assert sink.try_emit(type="echo", data=None)
    with trio.fail_after(100):
        await sink.stop()
    assert downstream.delivered == ["echo", "copy0"]
    assert dropped == ["copy1"]
    assert sink.queue_size == 0


async def test_other_tasks_still_wait_for_room(autojump_clock: trio.testing.MockClock) -> None:
    dropped: list[str] = []
    _, sink = make_sink(copies=0, max_queue_size=1, dropped=dropped)
    assert sink.try_emit(type="first", data=None)
    with trio.move_on_after(5) as waited:
        await sink.emit(type="second", data=None)
    assert waited.cancelled_caught  # no worker: it waited for room, as before
    assert dropped == []
    assert sink.queue_size == 1
    assert sink.metrics.emitted == 1


async def test_emit_checkpoints_and_a_cancelled_emit_queues_nothing() -> None:
    dropped: list[str] = []
    _, sink = make_sink(copies=0, max_queue_size=4, dropped=dropped)
    with trio.testing.assert_checkpoints():
        await sink.emit(type="a", data=None)
    with trio.CancelScope() as scope:
        scope.cancel()
        await sink.emit(type="b", data=None)
    assert sink.queue_size == 1
    assert sink.metrics.emitted == 1
