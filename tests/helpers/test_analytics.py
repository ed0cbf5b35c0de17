"""Analytics: AnalyticsEvent, JSONFileExporter, ConsoleExporter, BufferedExporter,
CompositeExporter and AnalyticsSink."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.helpers.analytics import (
    AnalyticsEvent,
    AnalyticsSink,
    BufferedExporter,
    CompositeExporter,
    ConsoleExporter,
    JSONFileExporter,
)

if TYPE_CHECKING:
    from pathlib import Path

TS = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
RUN_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def ev(n: int | str, **kwargs: Any) -> AnalyticsEvent:
    return AnalyticsEvent(event_type=f"e{n}", timestamp=TS, **kwargs)


class RecordingExporter:
    """An AnalyticsExporter fake: records calls and the time of each hand-off.

    ``gate`` (if set) must be set before export_batch completes; ``delay`` is
    virtual time per call; ``failures`` exceptions are raised by the next calls.
    """

    def __init__(self, *, delay: float = 0.0, gate: trio.Event | None = None) -> None:
        self.delay = delay
        self.gate = gate
        self.failures: list[Exception] = []
        self.events: list[AnalyticsEvent] = []
        self.batches: list[list[str]] = []
        self.batch_times: list[float] = []
        self.flushes = 0
        self.closes = 0

    async def _step(self) -> None:
        await trio.sleep(self.delay)
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)

    async def export(self, event: AnalyticsEvent) -> None:
        await self._step()
        self.events.append(event)

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        await self._step()
        self.events.extend(events)
        self.batches.append([event.event_type for event in events])
        self.batch_times.append(trio.current_time())

    async def flush(self) -> None:
        await self._step()
        self.flushes += 1

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()
        self.closes += 1

    def types(self) -> list[str]:
        return [event.event_type for event in self.events]


# --- AnalyticsEvent -------------------------------------------------------------------


def test_event_defaults() -> None:
    before = datetime.now(UTC)
    event = AnalyticsEvent(event_type="x")
    assert before <= event.timestamp <= datetime.now(UTC)
    assert event.timestamp.tzinfo is UTC
    assert (event.data, event.metadata) == ({}, {})
    assert (event.pipeline_run_id, event.stage_name, event.duration_ms) == (None, None, None)


def test_event_to_dict_minimal_and_full() -> None:
    assert ev(1).to_dict() == {"event_type": "e1", "timestamp": TS.isoformat(), "data": {}}
    full = ev(
        2,
        data={"k": 1},
        pipeline_run_id=RUN_ID,
        stage_name="llm",
        duration_ms=0.0,
        metadata={"m": True},
    ).to_dict()
    assert full == {
        "event_type": "e2",
        "timestamp": "2026-03-04T05:06:07.891234+00:00",
        "data": {"k": 1},
        "pipeline_run_id": str(RUN_ID),
        "stage_name": "llm",
        "duration_ms": 0.0,
        "metadata": {"m": True},
    }
    assert type(full["data"]) is dict
    assert type(full["metadata"]) is dict
    # Falsy optional values are left out.
    assert list(ev(3, stage_name="", metadata={}).to_dict()) == ["event_type", "timestamp", "data"]


def test_event_from_dict() -> None:
    event = AnalyticsEvent.from_dict(
        {
            "event_type": "stage.completed",
            "timestamp": "2026-03-04T05:06:07.891234+00:00",
            "pipeline_run_id": str(RUN_ID),
            "stage_name": "llm",
            "duration_ms": 12.5,
        }
    )
    assert event == AnalyticsEvent(
        event_type="stage.completed",
        timestamp=TS,
        pipeline_run_id=RUN_ID,
        stage_name="llm",
        duration_ms=12.5,
    )
    assert AnalyticsEvent.from_dict({"event_type": "x", "timestamp": TS}).timestamp is TS


def test_event_from_dict_errors() -> None:
    with pytest.raises(
        KeyError, match=r"^\"AnalyticsEvent.from_dict: missing required key 'timestamp'\"$"
    ):
        AnalyticsEvent.from_dict({"event_type": "x"})
    with pytest.raises(
        KeyError, match=r"^\"AnalyticsEvent.from_dict: missing required key 'event_type'\"$"
    ):
        AnalyticsEvent.from_dict({"timestamp": TS.isoformat()})
    with pytest.raises(ValueError, match=r"^pipeline_run_id must be a UUID string, got 'nope'$"):
        AnalyticsEvent.from_dict(
            {"event_type": "x", "timestamp": TS.isoformat(), "pipeline_run_id": "nope"}
        )


def test_event_is_frozen_and_read_only() -> None:
    event = ev(1, data={"a": 1})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.stage_name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.data["a"] = 2


json_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
events = st.builds(
    AnalyticsEvent,
    event_type=st.text(max_size=20),
    timestamp=st.datetimes(timezones=st.just(UTC)),
    data=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    pipeline_run_id=st.none() | st.uuids(),
    stage_name=st.none() | st.text(min_size=1, max_size=10),
    duration_ms=st.none() | st.floats(allow_nan=False),
    metadata=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
)


@given(events)
def test_event_round_trip(event: AnalyticsEvent) -> None:
    assert AnalyticsEvent.from_dict(event.to_dict()) == event
    assert AnalyticsEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event


@given(events)
def test_event_to_dict_matches_reference(reference: ModuleType, event: AnalyticsEvent) -> None:
    ref = reference.helpers.analytics
    theirs = ref.AnalyticsEvent(
        event_type=event.event_type,
        timestamp=event.timestamp,
        data=dict(event.data),
        pipeline_run_id=event.pipeline_run_id,
        stage_name=event.stage_name,
        duration_ms=event.duration_ms,
        metadata=dict(event.metadata),
    )
    assert event.to_dict() == theirs.to_dict()
    assert AnalyticsEvent.from_dict(theirs.to_dict()) == event


# --- JSONFileExporter -----------------------------------------------------------------


async def test_json_exporter_opens_lazily_and_creates_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "events.jsonl"
    exporter = JSONFileExporter(path)
    await exporter.flush()
    assert not path.parent.exists()
    await exporter.export(ev(1, data={"id": RUN_ID, "at": TS}))
    await exporter.close()
    line = json.dumps(ev(1, data={"id": RUN_ID, "at": TS}).to_dict(), default=str)
    assert path.read_text() == line + "\n"
    assert json.loads(line)["data"] == {"id": str(RUN_ID), "at": str(TS)}
    assert exporter.event_count == 1


async def test_json_exporter_append_and_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("old\n")
    appender = JSONFileExporter(path)
    await appender.export(ev(1))
    await appender.close()
    assert path.read_text().splitlines()[0] == "old"
    assert len(path.read_text().splitlines()) == 2
    writer = JSONFileExporter(path, append=False)
    await writer.export_batch([ev(2), ev(3)])
    await writer.close()
    assert [json.loads(line)["event_type"] for line in path.read_text().splitlines()] == [
        "e2",
        "e3",
    ]
    assert writer.event_count == 2


async def test_json_exporter_batch_flush_close(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    exporter = JSONFileExporter(path)
    await exporter.export_batch([])
    assert path.exists()
    assert exporter.event_count == 0
    await exporter.export_batch([ev(1), ev(2)])
    await exporter.export(ev(3))
    await exporter.flush()
    assert len(path.read_text().splitlines()) == 3  # visible before close
    await exporter.close()
    await exporter.close()  # idempotent
    await exporter.export(ev(4))  # reopens (append mode)
    await exporter.close()
    assert [json.loads(line)["event_type"] for line in path.read_text().splitlines()] == [
        "e1",
        "e2",
        "e3",
        "e4",
    ]
    assert exporter.event_count == 4


async def test_json_exporter_concurrent_exports_keep_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    exporter = JSONFileExporter(path)
    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(exporter.export, ev(i))
    await exporter.close()
    lines = path.read_text().splitlines()
    assert sorted(json.loads(line)["event_type"] for line in lines) == sorted(
        f"e{i}" for i in range(20)
    )


async def test_json_exporter_calls_are_checkpoints(tmp_path: Path) -> None:
    exporter = JSONFileExporter(tmp_path / "events.jsonl")
    with trio.testing.assert_checkpoints():
        await exporter.flush()
    with trio.testing.assert_checkpoints():
        await exporter.close()
    with trio.testing.assert_checkpoints():
        await exporter.export(ev(1))
    with trio.testing.assert_checkpoints():
        await exporter.export_batch([ev(2)])
    await exporter.close()


def test_json_exporter_lines_match_reference(reference: ModuleType, tmp_path: Path) -> None:
    ref = reference.helpers.analytics
    fields: dict[str, Any] = {
        "event_type": "stage.completed",
        "timestamp": TS,
        "pipeline_run_id": RUN_ID,
        "stage_name": "llm",
        "duration_ms": 3.5,
    }
    data = {"tokens": 5, "when": TS}

    async def write_ref() -> None:
        exporter = ref.JSONFileExporter(tmp_path / "ref.jsonl")
        await exporter.export(ref.AnalyticsEvent(data=data, **fields))
        await exporter.export_batch([ref.AnalyticsEvent(data=data, **fields)])
        await exporter.close()

    async def write_ours() -> None:
        exporter = JSONFileExporter(tmp_path / "ours.jsonl")
        await exporter.export(AnalyticsEvent(data=data, **fields))
        await exporter.export_batch([AnalyticsEvent(data=data, **fields)])
        await exporter.close()

    asyncio.run(write_ref())
    trio.run(write_ours)
    assert (tmp_path / "ours.jsonl").read_text() == (tmp_path / "ref.jsonl").read_text()


# --- ConsoleExporter ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "color"),
    [
        ("stage.failed", "\033[91m"),
        ("tool.error", "\033[91m"),
        ("stage.completed", "\033[92m"),
        ("run.success", "\033[92m"),
        ("stage.started", "\033[94m"),
        ("pipeline.progress", "\033[96m"),
    ],
)
def test_console_colors(event_type: str, color: str) -> None:
    text = ConsoleExporter()._format_event(AnalyticsEvent(event_type=event_type, timestamp=TS))
    assert text == f"{color}[05:06:07.891] {event_type}\033[0m"


def test_console_details_and_verbose() -> None:
    event = ev(1, stage_name="llm", duration_ms=12.345, data={"tokens": 5})
    assert ConsoleExporter(colorize=False)._format_event(event) == (
        "[05:06:07.891] e1\n  stage: llm\n  duration: 12.3ms"
    )
    assert ConsoleExporter(colorize=False, verbose=True)._format_event(event) == (
        '[05:06:07.891] e1\n  stage: llm\n  duration: 12.3ms\n  data: {"tokens": 5}'
    )
    assert ConsoleExporter(colorize=False, verbose=True)._format_event(ev(2)) == (
        "[05:06:07.891] e2"
    )


async def test_console_prints_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    exporter = ConsoleExporter(colorize=False)
    with trio.testing.assert_checkpoints():
        await exporter.export(ev(1))
    with trio.testing.assert_checkpoints():
        await exporter.export_batch([ev(2), ev(3)])
    with trio.testing.assert_checkpoints():
        await exporter.flush()
    with trio.testing.assert_checkpoints():
        await exporter.close()
    assert capsys.readouterr().out == "".join(f"[05:06:07.891] e{i}\n" for i in (1, 2, 3))
    assert exporter.event_count == 3


@given(
    st.sampled_from(["stage.failed", "x.error", "a.completed", "b.success", "c.start", "other"]),
    st.none() | st.text(min_size=1, max_size=5),
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
    st.booleans(),
)
def test_console_format_matches_reference(
    reference: ModuleType,
    event_type: str,
    stage: str | None,
    duration: float | None,
    data: dict[str, int],
    colorize: bool,
    verbose: bool,
) -> None:
    ref = reference.helpers.analytics
    fields: dict[str, Any] = {
        "event_type": event_type,
        "timestamp": TS,
        "data": data,
        "stage_name": stage,
        "duration_ms": duration,
    }
    ours = ConsoleExporter(colorize=colorize, verbose=verbose)._format_event(
        AnalyticsEvent(**fields)
    )
    theirs = ref.ConsoleExporter(colorize=colorize, verbose=verbose)._format_event(
        ref.AnalyticsEvent(**fields)
    )
    assert ours == theirs


# --- BufferedExporter -----------------------------------------------------------------


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
    buffered = BufferedExporter(
        RecordingExporter(),
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
    assert [e.event_type for e in buffered._exporter.events] == ["e2", "e3", "e4"]  # type: ignore[attr-defined]


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
                await buffered.export(make(event_type=f"e{i}", timestamp=TS))
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
    with pytest.raises(ValueError, match=r"^max_buffer_size must be at least 1, got 0$"):
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


# --- CompositeExporter ----------------------------------------------------------------


async def test_composite_fans_out_concurrently(autojump_clock: trio.testing.MockClock) -> None:
    first, second = RecordingExporter(delay=1), RecordingExporter(delay=1)
    composite = CompositeExporter([first, second])
    await composite.export(ev(1))
    await composite.export_batch([ev(2), ev(3)])
    await composite.flush()
    await composite.close()
    assert trio.current_time() == 3.0  # each call waited once, not once per exporter
    for exporter in (first, second):
        assert exporter.types() == ["e1", "e2", "e3"]
        assert (exporter.flushes, exporter.closes) == (1, 1)


async def test_composite_calls_everyone_then_raises_first_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow_fail, fast_fail, ok = (
        RecordingExporter(delay=2),
        RecordingExporter(delay=1),
        RecordingExporter(delay=3),
    )
    slow_fail.failures.append(ValueError("slow"))
    fast_fail.failures.append(OSError("fast"))
    composite = CompositeExporter([slow_fail, fast_fail, ok])
    with pytest.raises(OSError, match=r"^fast$") as info:
        await composite.export(ev(1))
    assert type(info.value) is OSError
    assert ok.types() == ["e1"]
    assert trio.current_time() == 3.0  # waited for every exporter


async def test_composite_empty_is_a_checkpoint() -> None:
    composite = CompositeExporter([])
    with trio.testing.assert_checkpoints():
        await composite.export(ev(1))
    with trio.testing.assert_checkpoints():
        await composite.close()


# --- AnalyticsSink --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include", "exclude", "kept"),
    [
        (None, None, ["stage.started", "stage.completed", "pipeline.failed", "tool.debug"]),
        (None, ["debug"], ["stage.started", "stage.completed", "pipeline.failed"]),
        (["stage."], None, ["stage.started", "stage.completed"]),
        (["stage.", "failed"], ["started"], ["stage.completed", "pipeline.failed"]),
        ([], [], ["stage.started", "stage.completed", "pipeline.failed", "tool.debug"]),
    ],
)
async def test_sink_filters(
    reference: ModuleType, include: list[str] | None, exclude: list[str] | None, kept: list[str]
) -> None:
    inner = RecordingExporter()
    sink = AnalyticsSink(inner, include_patterns=include, exclude_patterns=exclude)
    for event_type in ["stage.started", "stage.completed", "pipeline.failed", "tool.debug"]:
        await sink.emit(type=event_type, data=None)
    assert inner.types() == kept
    ref = reference.helpers.analytics
    theirs = ref.AnalyticsSink(inner, include_patterns=include, exclude_patterns=exclude)
    assert [t for t in inner.types() if theirs._should_export(t)] == kept


async def test_sink_converts_events() -> None:
    inner = RecordingExporter()
    sink = AnalyticsSink(inner)
    data = {"pipeline_run_id": "run-1", "stage": "llm", "duration_ms": 5.5, "x": 1}
    await sink.emit(type="stage.completed", data=data)
    await sink.emit(type="pipeline.started", data=None)
    first, second = inner.events
    assert first.data == data
    assert first.pipeline_run_id == "run-1"  # kept as given, not parsed
    assert (first.stage_name, first.duration_ms) == ("llm", 5.5)
    assert (second.data, second.pipeline_run_id, second.stage_name, second.duration_ms) == (
        {},
        None,
        None,
        None,
    )


def test_sink_conversion_matches_reference(reference: ModuleType) -> None:
    ref = reference.helpers.analytics
    inputs: list[dict[str, Any] | None] = [
        {"pipeline_run_id": str(RUN_ID), "stage": "a", "duration_ms": 1.0},
        {"pipeline_run_id": RUN_ID, "other": [1]},
        {},
        None,
    ]

    class Keep:
        def __init__(self) -> None:
            self.events: list[Any] = []

        async def export(self, event: Any) -> None:
            self.events.append(event)

    ours_inner, ref_inner = RecordingExporter(), Keep()

    async def feed_ours() -> None:
        for data in inputs:
            await AnalyticsSink(ours_inner).emit(type="t", data=data)

    async def feed_ref() -> None:
        for data in inputs:
            await ref.AnalyticsSink(ref_inner).emit(type="t", data=data)

    trio.run(feed_ours)
    asyncio.run(feed_ref())

    def shape(event: Any) -> dict[str, Any]:
        out: dict[str, Any] = event.to_dict()
        del out["timestamp"]
        return out

    assert [shape(e) for e in ours_inner.events] == [shape(e) for e in ref_inner.events]


async def test_sink_emit_checkpoints_even_when_filtered() -> None:
    sink = AnalyticsSink(RecordingExporter(), exclude_patterns=["x"])
    with trio.testing.assert_checkpoints():
        await sink.emit(type="x", data=None)
    with trio.testing.assert_checkpoints():
        assert await sink.flush_pending() == 0


async def test_try_emit_without_nursery_holds_events() -> None:
    inner = RecordingExporter()
    sink = AnalyticsSink(inner, exclude_patterns=["debug"])
    assert sink.try_emit(type="a", data=None) is False
    assert sink.try_emit(type="debug", data=None) is False  # filtered: not held
    assert sink.try_emit(type="b", data={"stage": "s"}) is False
    assert sink.pending_count == 2
    assert inner.events == []
    assert await sink.flush_pending() == 2
    assert inner.types() == ["a", "b"]
    assert sink.pending_count == 0


async def test_try_emit_into_given_nursery(autojump_clock: trio.testing.MockClock) -> None:
    inner = RecordingExporter(delay=1)
    async with trio.open_nursery() as nursery:
        sink = AnalyticsSink(inner, nursery=nursery)
        assert sink.try_emit(type="a", data=None) is True
        assert sink.try_emit(type="b", data=None) is True
        assert inner.events == []
    assert sorted(inner.types()) == ["a", "b"]
    assert trio.current_time() == 1.0  # concurrent exports


async def test_sink_async_with_owns_exports(autojump_clock: trio.testing.MockClock) -> None:
    inner = RecordingExporter(delay=1)
    sink = AnalyticsSink(inner)
    sink.try_emit(type="early", data=None)  # held: no nursery yet
    async with sink:
        assert sink.try_emit(type="inside", data=None) is True
    assert sorted(inner.types()) == ["early", "inside"]
    assert sink.pending_count == 0
    assert sink.try_emit(type="after", data=None) is False  # owner gone: held again
    assert sink.pending_count == 1


async def test_sink_async_with_given_nursery(autojump_clock: trio.testing.MockClock) -> None:
    inner = RecordingExporter(delay=1)
    async with trio.open_nursery() as nursery:
        async with AnalyticsSink(inner, nursery=nursery) as sink:
            assert sink.try_emit(type="a", data=None) is True
        assert inner.events == []  # the given nursery, not the block, owns the export
    assert inner.types() == ["a"]


async def test_try_emit_into_exited_nursery_is_a_clear_error() -> None:
    async with trio.open_nursery() as nursery:
        sink = AnalyticsSink(RecordingExporter(), nursery=nursery)
    with pytest.raises(
        RuntimeError,
        match=r"^AnalyticsSink.try_emit: the nursery it exports in has already exited; "
        r"keep the sink inside its nursery block or use `async with AnalyticsSink\(\.\.\.\)`$",
    ):
        sink.try_emit(type="a", data=None)


async def test_owned_export_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    inner = RecordingExporter()
    inner.failures.append(OSError("backend down"))
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.helpers.analytics"):
        async with AnalyticsSink(inner) as sink:
            sink.try_emit(type="lost", data=None)
        async with trio.open_nursery() as nursery:
            AnalyticsSink(inner, nursery=nursery).try_emit(type="kept", data=None)
    assert inner.types() == ["kept"]
    assert [r.getMessage() for r in caplog.records] == ["AnalyticsSink export of lost failed"]


async def test_sink_async_with_is_single_use() -> None:
    sink = AnalyticsSink(RecordingExporter())
    async with sink:
        pass
    with pytest.raises(
        RuntimeError, match=r"^AnalyticsSink: `async with` can be entered only once$"
    ):
        async with sink:
            pass


def test_event_timestamp_is_close_to_now() -> None:
    event = AnalyticsSink._to_event("x", None)
    assert abs(event.timestamp - datetime.now(UTC)) < timedelta(seconds=5)
