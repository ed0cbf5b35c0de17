"""Cancellation of exporters and the sink: every event is delivered or counted, and
nothing escapes as an exception group."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import trio
import trio.testing

from stageflow_trio.helpers.analytics import (
    AnalyticsEvent,
    AnalyticsSink,
    BufferedExporter,
    CompositeExporter,
    JSONFileExporter,
)
from tests.fakes import RecordingExporter, ev

if TYPE_CHECKING:
    from pathlib import Path


async def test_buffered_close_in_cancelled_scope_counts_everything() -> None:
    inner = RecordingExporter()
    buffered = BufferedExporter(inner)
    for i in range(3):
        await buffered.export(ev(i))
    with trio.CancelScope() as scope:
        scope.cancel()
        await buffered.close()
    assert scope.cancelled_caught
    assert inner.batches == []
    assert buffered.dropped_count == 3
    assert buffered.buffer_size == 0
    assert inner.closes == 0  # its close() hit the cancelled scope at its first checkpoint


async def test_buffered_close_in_cancelled_scope_still_closes_a_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    inner = JSONFileExporter(path)
    await inner.export(ev("written"))
    buffered = BufferedExporter(inner)
    await buffered.export(ev("buffered"))
    with trio.CancelScope() as scope:
        scope.cancel()
        await buffered.close()
    assert scope.cancelled_caught
    assert buffered.dropped_count == 1
    # JSONFileExporter.close is shielded: its buffered line reached the disk.
    assert [json.loads(line)["event_type"] for line in path.read_text().splitlines()] == [
        "ewritten"
    ]


async def test_cancelled_hand_off_is_counted(autojump_clock: trio.testing.MockClock) -> None:
    inner = RecordingExporter(gate=trio.Event())
    buffered = BufferedExporter(inner)
    await buffered.export(ev(1))
    await buffered.export(ev(2))
    with trio.move_on_after(1) as scope:
        await buffered.flush()  # stuck in the exporter until cancelled
    assert scope.cancelled_caught
    assert buffered.dropped_count == 2
    assert buffered.buffer_size == 0


async def test_cancelled_export_buffers_nothing() -> None:
    buffered = BufferedExporter(RecordingExporter())
    with trio.CancelScope() as scope:
        scope.cancel()
        await buffered.export(ev(1))
    assert scope.cancelled_caught
    assert (buffered.buffer_size, buffered.dropped_count) == (0, 0)


async def test_cancelled_async_with_counts_and_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = RecordingExporter()
    with trio.move_on_after(5) as scope:
        async with BufferedExporter(inner, flush_interval_seconds=10) as buffered:
            await buffered.export(ev(1))
            await buffered.export(ev(2))
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() == 5.0  # the timed flush did not keep the block open
    assert inner.batches == []
    assert buffered.dropped_count == 2
    assert buffered.buffer_size == 0


async def test_cancel_during_timed_flush_counts_the_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = RecordingExporter(delay=10)
    with trio.move_on_after(5) as scope:
        async with BufferedExporter(inner, flush_interval_seconds=1) as buffered:
            await buffered.export(ev(1))
            await buffered.export(ev(2))
            await trio.sleep(2)  # the timed flush took both at t=1 and is writing
            await buffered.export(ev(3))
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert inner.batches == []
    assert buffered.dropped_count == 3


async def test_composite_cancellation_is_not_a_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    escaped: list[BaseException] = []
    composite = CompositeExporter([RecordingExporter(delay=10), RecordingExporter(delay=10)])
    with trio.move_on_after(1) as scope:
        try:
            await composite.export(ev(1))
        except BaseException as exc:
            escaped.append(exc)
            raise
    assert scope.cancelled_caught
    assert [type(exc) for exc in escaped] == [trio.Cancelled]


async def test_composite_close_in_cancelled_scope_reaches_every_exporter(
    tmp_path: Path,
) -> None:
    files = [JSONFileExporter(tmp_path / f"{n}.jsonl") for n in ("a", "b")]
    for exporter in files:
        await exporter.export(ev(1))
    with trio.CancelScope() as scope:
        scope.cancel()
        await CompositeExporter(list(files)).close()
    assert scope.cancelled_caught
    for n in ("a", "b"):
        assert len((tmp_path / f"{n}.jsonl").read_text().splitlines()) == 1


async def test_json_close_in_cancelled_scope_delivers(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    exporter = JSONFileExporter(path)
    await exporter.export_batch([ev(1), ev(2)])
    assert path.read_text() == ""  # still in the file object's buffer
    with trio.CancelScope() as scope:
        scope.cancel()
        await exporter.close()
    assert scope.cancelled_caught
    assert len(path.read_text().splitlines()) == 2
    assert exporter.event_count == 2


async def test_sink_cancelled_with_exports_in_flight_keeps_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = RecordingExporter(delay=10)
    sink = AnalyticsSink(inner)
    with trio.move_on_after(1) as scope:
        async with sink:
            for i in range(3):
                sink.try_emit(type=f"e{i}", data=None)
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert inner.events == []
    assert sink.pending_count == 3
    inner.delay = 0
    assert await sink.flush_pending() == 3
    assert sorted(inner.types()) == ["e0", "e1", "e2"]


async def test_sink_flush_pending_cancelled_keeps_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = RecordingExporter(delay=1)
    sink = AnalyticsSink(inner)
    for i in range(3):
        sink.try_emit(type=f"e{i}", data=None)
    with trio.move_on_after(1.5):
        await sink.flush_pending()
    assert inner.types() == ["e0"]
    assert sink.pending_count == 2


async def test_wait_for_event_sink_tasks_waits_for_owned_analytics_exports(
    autojump_clock: trio.abc.Clock,
) -> None:
    from stageflow_trio.events.sink import wait_for_event_sink_tasks

    exported: list[str] = []

    class SlowExporter:
        async def export(self, event: AnalyticsEvent) -> None:
            await trio.sleep(2)
            exported.append(event.event_type)

        async def export_batch(self, events: list[AnalyticsEvent]) -> None:
            await trio.lowlevel.checkpoint()

        async def flush(self) -> None:
            await trio.lowlevel.checkpoint()

        async def close(self) -> None:
            await trio.lowlevel.checkpoint()

    async with AnalyticsSink(SlowExporter()) as sink:
        assert sink.try_emit(type="a", data=None)
        await trio.sleep(1)
        assert sink.try_emit(type="b", data=None)
        start = trio.current_time()
        await wait_for_event_sink_tasks()
        # "a" finishes at t=2 and "b" at t=3: the wait ends when the last export does.
        assert trio.current_time() - start == 2
        assert exported == ["a", "b"]
        await wait_for_event_sink_tasks()  # nothing in flight: returns at once
        assert trio.current_time() - start == 2


async def test_export_cancelled_behind_a_write_buffers_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The audit's repro: batch_size=1, a 1 s write in progress, the second export cancelled."""
    inner = RecordingExporter(delay=1)
    buffered = BufferedExporter(inner, batch_size=1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(buffered.export, ev("a"))
        await trio.sleep(0.1)
        with trio.move_on_after(0.1) as scope:
            await buffered.export(ev("b"))  # waits behind a's write
        assert scope.cancelled_caught
        assert (buffered.buffer_size, buffered.dropped_count) == (0, 0)
    await buffered.flush()
    assert inner.batches == [["ea"]]  # b was never buffered, so never delivered
    assert buffered.dropped_count == 0


async def test_exports_queued_behind_a_write_keep_call_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """While an export waits to complete a batch, later ones queue behind it (and a
    cancelled one in the queue leaves no trace)."""
    gate = trio.Event()
    inner = RecordingExporter(gate=gate)
    buffered = BufferedExporter(inner, batch_size=2)
    async with trio.open_nursery() as nursery:
        await buffered.export(ev(1))
        nursery.start_soon(buffered.export, ev(2))  # completes a batch: the write waits on gate
        await trio.testing.wait_all_tasks_blocked()
        await buffered.export(ev(3))  # below batch size and no one queued: no wait
        nursery.start_soon(buffered.export, ev(4))  # completes a batch: queued
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(buffered.export, ev(5))  # someone is queued: queued too
        await trio.testing.wait_all_tasks_blocked()
        cancel_six = trio.CancelScope()

        async def export_six() -> None:
            with cancel_six:
                await buffered.export(ev(6))

        nursery.start_soon(export_six)
        await trio.testing.wait_all_tasks_blocked()
        cancel_six.cancel()  # leaves the queue without a trace
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(buffered.export, ev(7))
        await trio.testing.wait_all_tasks_blocked()
        assert buffered.buffer_size == 1  # only e3: the queued ones are not buffered yet
        gate.set()
    await buffered.flush()
    assert inner.batches == [["e1", "e2"], ["e3", "e4"], ["e5", "e7"]]
    assert buffered.dropped_count == 0
