"""BufferedExporter: batching, overflow and the high-water mark, timed flushes, owners."""

from __future__ import annotations

import asyncio
import logging
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.helpers.analytics import AnalyticsEvent, BufferedExporter
from tests.fakes import EVENT_TIME, RecordingExporter, ev


async def test_buffered_batch_size_flush_close() -> None:
    inner = RecordingExporter()
    buffered = BufferedExporter(inner, batch_size=3)
    for i in range(4):
        await buffered.export(ev(i))
    assert inner.batches == [["e0", "e1", "e2"]]
    assert buffered.buffer_size == 1
    await buffered.flush()
    assert inner.batches[-1] == ["e3"]
    await buffered.flush()  # nothing buffered: no empty batch
    assert len(inner.batches) == 2
    await buffered.export_batch([ev(4), ev(5)])
    await buffered.close()
    assert inner.batches[-1] == ["e4", "e5"]
    assert inner.closes == 1
    assert buffered.buffer_size == 0


async def test_buffered_overflow_and_high_water() -> None:
    calls: list[tuple[int, int]] = []
    inner = RecordingExporter()
    buffered = BufferedExporter(
        inner,
        batch_size=100,
        max_buffer_size=3,
        on_overflow=lambda dropped, size: calls.append((dropped, size)),
    )
    for i in range(5):
        await buffered.export(ev(i))
    assert calls == [(-1, 3), (1, 2), (2, 2)]
    assert buffered.dropped_count == 2
    assert buffered.stats == {
        "buffer_size": 3,
        "max_buffer_size": 3,
        "dropped_count": 2,
        "fill_ratio": 1.0,
        "high_water_warned": True,
    }
    await buffered.flush()
    assert inner.types() == ["e2", "e3", "e4"]


async def test_buffered_high_water_rearms_below_half() -> None:
    calls: list[tuple[int, int]] = []
    buffered = BufferedExporter(
        RecordingExporter(),
        batch_size=100,
        max_buffer_size=10,
        high_water_mark=0.5,
        on_overflow=lambda dropped, size: calls.append((dropped, size)),
    )
    for i in range(5):
        await buffered.export(ev(i))
    assert calls == [(-1, 5)]
    await buffered.flush()
    after_flush = buffered.stats
    assert after_flush["high_water_warned"] is True  # only an export re-arms it
    await buffered.export(ev(5))
    await buffered.export(ev(6))  # 0.2 < 0.25: still re-armed
    assert buffered.stats["high_water_warned"] is False
    for i in range(3):
        await buffered.export(ev(7 + i))
    assert calls == [(-1, 5), (-1, 5)]


async def test_buffered_high_water_rearm_threshold_is_half_the_mark() -> None:
    calls: list[tuple[int, int]] = []
    buffered = BufferedExporter(
        RecordingExporter(),
        batch_size=100,
        max_buffer_size=10,
        high_water_mark=0.21,  # half is 0.105: one buffered event (0.1) re-arms
        on_overflow=lambda dropped, size: calls.append((dropped, size)),
    )
    for i in range(3):
        await buffered.export(ev(i))
    await buffered.flush()
    await buffered.export(ev(3))
    rearmed = buffered.stats
    assert rearmed["high_water_warned"] is False
    await buffered.export(ev(4))
    await buffered.export(ev(5))
    assert calls == [(-1, 3), (-1, 3)]


async def test_buffered_high_water_exactly_half_does_not_rearm() -> None:
    calls: list[tuple[int, int]] = []
    buffered = BufferedExporter(
        RecordingExporter(),
        batch_size=100,
        max_buffer_size=10,
        high_water_mark=0.2,  # half is 0.1: one buffered event is not below it
        on_overflow=lambda dropped, size: calls.append((dropped, size)),
    )
    await buffered.export(ev(0))
    await buffered.export(ev(1))
    await buffered.flush()
    await buffered.export(ev(2))
    await buffered.export(ev(3))
    assert calls == [(-1, 2)]


async def test_buffered_high_water_stays_between_half_and_mark() -> None:
    calls: list[tuple[int, int]] = []
    buffered = BufferedExporter(
        RecordingExporter(),
        batch_size=6,
        max_buffer_size=10,
        high_water_mark=0.5,
        on_overflow=lambda dropped, size: calls.append((dropped, size)),
    )
    for i in range(5):
        await buffered.export(ev(i))
    # fill 0.3 after the 3rd export is not < 0.25, so the warning stays latched
    assert calls == [(-1, 5)]
    assert buffered.stats["high_water_warned"] is True


async def test_buffered_callback_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    def boom(dropped: int, size: int) -> None:
        raise RuntimeError("alert down")

    buffered = BufferedExporter(RecordingExporter(), max_buffer_size=1, on_overflow=boom)
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.helpers.analytics"):
        await buffered.export(ev(1))
        await buffered.export(ev(2))
    assert [r.getMessage() for r in caplog.records] == [
        "BufferedExporter on_overflow callback failed"
    ] * 2
    assert buffered.dropped_count == 1


def test_buffered_overflow_matches_reference(reference: ModuleType) -> None:
    ref = reference.helpers.analytics
    plan = [("export", i) for i in range(14)] + [("flush", 0)] + [("export", i) for i in range(6)]

    async def drive(buffered: Any, make: Any) -> None:
        for op, i in plan:
            if op == "export":
                await buffered.export(make(event_type=f"e{i}", timestamp=EVENT_TIME))
            else:
                await buffered.flush()
            stats.append(dict(buffered.stats))

    ours_calls: list[tuple[int, int]] = []
    ref_calls: list[tuple[int, int]] = []
    kwargs: dict[str, Any] = {"batch_size": 50, "max_buffer_size": 8, "high_water_mark": 0.7}
    stats: list[dict[str, Any]] = []
    trio.run(
        drive,
        BufferedExporter(
            RecordingExporter(), on_overflow=lambda d, s: ours_calls.append((d, s)), **kwargs
        ),
        AnalyticsEvent,
    )
    ours_stats, stats = stats, []

    class RefSink:
        async def export_batch(self, events: list[Any]) -> None:
            return None

    async def run_ref() -> None:
        buffered = ref.BufferedExporter(
            RefSink(), on_overflow=lambda d, s: ref_calls.append((d, s)), **kwargs
        )
        await drive(buffered, ref.AnalyticsEvent)
        buffered._closed = True
        buffered._flush_task.cancel()

    asyncio.run(run_ref())
    assert ours_calls == ref_calls
    assert ours_stats == stats


async def test_buffered_rejects_empty_capacity() -> None:
    with pytest.raises(
        ValueError, match=r"^BufferedExporter: max_buffer_size must be at least 1; got 0$"
    ):
        BufferedExporter(RecordingExporter(), max_buffer_size=0)


async def test_buffered_calls_are_checkpoints() -> None:
    buffered = BufferedExporter(RecordingExporter())
    with trio.testing.assert_checkpoints():
        await buffered.export(ev(1))
    with trio.testing.assert_checkpoints():
        await buffered.export_batch([])
    with trio.testing.assert_checkpoints():
        await buffered.flush()
    with trio.testing.assert_checkpoints():
        await buffered.flush()  # empty
    with trio.testing.assert_checkpoints():
        await buffered.close()


async def test_timed_flush_owned_by_async_with(autojump_clock: trio.testing.MockClock) -> None:
    inner = RecordingExporter()
    async with BufferedExporter(inner, flush_interval_seconds=10) as buffered:
        await trio.sleep(5)  # the timer starts with the first export, not on entry
        await buffered.export(ev(1))
        await trio.sleep(10.5)
        assert inner.batch_times == [15.0]
        await buffered.export(ev(2))
        await buffered.export(ev(3))
        await trio.sleep(10)
        assert inner.batch_times == [15.0, 25.0]
        await buffered.export(ev(4))
    assert inner.batches == [["e1"], ["e2", "e3"], ["e4"]]
    assert inner.batch_times[-1] == 25.5  # close flushed it at exit, without waiting
    assert inner.closes == 1
    assert trio.current_time() == 25.5


async def test_sink_and_flush_interval_are_1_2_s_names(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = RecordingExporter()
    async with BufferedExporter(sink=inner, flush_interval=3) as buffered:
        await buffered.export(ev(1))
        await trio.sleep(3.5)
        assert inner.batch_times == [3.0]
    assert inner.batches == [["e1"]]
    assert inner.closes == 1


async def test_timed_flush_in_given_nursery(autojump_clock: trio.testing.MockClock) -> None:
    inner = RecordingExporter()
    async with trio.open_nursery() as nursery:
        buffered = BufferedExporter(inner, flush_interval_seconds=2, nursery=nursery)
        await buffered.export(ev(1))
        await trio.sleep(3)
        assert inner.batch_times == [2.0]
        await buffered.close()  # stops the timer, so the nursery can end
    assert trio.current_time() == 3.0
    assert inner.closes == 1


async def test_given_nursery_with_async_with(autojump_clock: trio.testing.MockClock) -> None:
    inner = RecordingExporter()
    async with trio.open_nursery() as nursery:
        async with BufferedExporter(inner, flush_interval_seconds=2, nursery=nursery) as buffered:
            await buffered.export(ev(1))
            await trio.sleep(2.5)
        assert inner.closes == 1
    assert inner.batch_times == [2.0]
    assert trio.current_time() == 2.5


async def test_no_owner_means_no_timed_flush(autojump_clock: trio.testing.MockClock) -> None:
    inner = RecordingExporter()
    buffered = BufferedExporter(inner, flush_interval_seconds=1)
    await buffered.export(ev(1))
    await trio.sleep(100)
    assert inner.batches == []
    assert buffered.buffer_size == 1
    await buffered.close()
    assert inner.batches == [["e1"]]


async def test_exited_nursery_is_a_clear_error() -> None:
    async with trio.open_nursery() as nursery:
        buffered = BufferedExporter(RecordingExporter(), nursery=nursery)
    with pytest.raises(
        RuntimeError,
        match=r"^BufferedExporter: the nursery that owns its timed flush has already exited; "
        r"close\(\) the exporter before its nursery block ends, or use "
        r"`async with BufferedExporter\(\.\.\.\)`$",
    ):
        await buffered.export(ev(1))
    assert buffered.buffer_size == 0


async def test_async_with_is_single_use() -> None:
    buffered = BufferedExporter(RecordingExporter())
    async with buffered:
        pass
    with pytest.raises(
        RuntimeError, match=r"^BufferedExporter: `async with` can be entered only once$"
    ):
        async with buffered:
            pass


async def test_async_with_body_error_is_unwrapped() -> None:
    inner = RecordingExporter()

    async def use() -> None:
        async with BufferedExporter(inner) as buffered:
            await buffered.export(ev(1))
            raise KeyError("body")

    with pytest.raises(KeyError) as info:
        await use()
    assert type(info.value) is KeyError
    assert inner.batches == [["e1"]]
    assert inner.closes == 1


async def test_buffering_never_waits_for_a_write(autojump_clock: trio.testing.MockClock) -> None:
    gate = trio.Event()
    inner = RecordingExporter(gate=gate)
    buffered = BufferedExporter(inner, batch_size=2)
    async with trio.open_nursery() as nursery:
        await buffered.export(ev(1))
        nursery.start_soon(buffered.export, ev(2))  # hits batch size, waits in the write
        await trio.sleep(1)
        assert buffered.buffer_size == 0
        start = trio.current_time()
        await buffered.export(ev(3))  # below batch size: must not wait for the write
        assert trio.current_time() == start
        assert buffered.buffer_size == 1
        nursery.start_soon(buffered.export, ev(4))  # batch size again: queued behind
        await trio.sleep(1)
        assert inner.batches == []
        gate.set()
    assert inner.batches == [["e1", "e2"], ["e3", "e4"]]


async def test_failed_hand_off_is_counted() -> None:
    inner = RecordingExporter()
    inner.failures.append(OSError("disk full"))
    buffered = BufferedExporter(inner)
    await buffered.export(ev(1))
    await buffered.export(ev(2))
    with pytest.raises(OSError, match=r"^disk full$"):
        await buffered.flush()
    assert buffered.dropped_count == 2
    assert buffered.buffer_size == 0


async def test_timed_flush_survives_an_error(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    inner = RecordingExporter()
    inner.failures.append(OSError("flaky"))
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.helpers.analytics"):
        async with BufferedExporter(inner, flush_interval_seconds=1) as buffered:
            await buffered.export(ev(1))
            await trio.sleep(1.5)
            await buffered.export(ev(2))
            await trio.sleep(1)
    assert inner.batches == [["e2"]]
    assert inner.batch_times == [2.0]
    assert buffered.dropped_count == 1
    assert [r.getMessage() for r in caplog.records] == ["BufferedExporter timed flush failed"]


async def test_async_with_entry_is_a_checkpoint_and_a_cancelled_one_starts_nothing() -> None:
    inner = RecordingExporter()
    buffered = BufferedExporter(inner)
    with trio.CancelScope() as scope:
        scope.cancel()
        await buffered.__aenter__()
    assert scope.cancelled_caught
    with trio.testing.assert_checkpoints():
        entered = await buffered.__aenter__()  # the cancelled entry did not use it up
    assert entered is buffered
    await buffered.export(ev(1))
    await buffered.__aexit__(None, None, None)
    assert (inner.batches, inner.closes) == ([["e1"]], 1)
