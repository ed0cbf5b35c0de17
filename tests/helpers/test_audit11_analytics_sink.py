"""Audit 11: AnalyticsSink.flush_pending called by two tasks at once."""

from __future__ import annotations

import trio
import trio.testing

from stageflow_trio.helpers.analytics import AnalyticsSink
from tests.fakes import RecordingExporter


def _held_sink(exporter: RecordingExporter, count: int) -> AnalyticsSink:
    sink = AnalyticsSink(exporter)
    for i in range(count):
        # No nursery: try_emit holds each event for flush_pending().
        assert sink.try_emit(type=f"e{i}", data={"i": i}) is False
    return sink


async def test_concurrent_flush_pending_exports_each_event_once_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    exporter = RecordingExporter(delay=1.0)
    sink = _held_sink(exporter, 4)
    counts: list[int] = []

    async def flush() -> None:
        counts.append(await sink.flush_pending())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flush)
        nursery.start_soon(flush)

    # Before the fix both calls exported e0, then each popped one event: e1 was
    # never exported, e0 went out twice, and the last pop hit an empty deque.
    assert [event.event_type for event in exporter.events] == ["e0", "e1", "e2", "e3"]
    assert sorted(counts) == [0, 4]
    assert sink.pending_count == 0


async def test_flush_pending_while_the_exit_flush_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    exporter = RecordingExporter(delay=1.0)
    sink = _held_sink(exporter, 3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.flush_pending)
        await trio.sleep(0.5)  # the first export is in progress
        assert await sink.flush_pending() == 0
    assert [event.event_type for event in exporter.events] == ["e0", "e1", "e2"]
    assert sink.pending_count == 0


async def test_a_flush_cancelled_while_waiting_its_turn_exports_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    exporter = RecordingExporter(delay=1.0)
    sink = _held_sink(exporter, 2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.flush_pending)
        await trio.sleep(0.5)
        with trio.move_on_after(0.1) as scope:
            await sink.flush_pending()
        assert scope.cancelled_caught
    assert [event.event_type for event in exporter.events] == ["e0", "e1"]
    assert sink.pending_count == 0
