"""The analytics exporters: JSONFileExporter, ConsoleExporter and CompositeExporter."""

from __future__ import annotations

import asyncio
import json
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.helpers.analytics import (
    AnalyticsEvent,
    CompositeExporter,
    ConsoleExporter,
    JSONFileExporter,
)
from tests.fakes import EVENT_RUN_ID, EVENT_TIME, RecordingExporter, ev

if TYPE_CHECKING:
    from pathlib import Path


# --- JSONFileExporter -----------------------------------------------------------------


async def test_json_exporter_opens_lazily_and_creates_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "events.jsonl"
    exporter = JSONFileExporter(path)
    await exporter.flush()
    assert not path.parent.exists()
    await exporter.export(ev(1, data={"id": EVENT_RUN_ID, "at": EVENT_TIME}))
    await exporter.close()
    line = json.dumps(ev(1, data={"id": EVENT_RUN_ID, "at": EVENT_TIME}).to_dict(), default=str)
    assert path.read_text() == line + "\n"
    assert json.loads(line)["data"] == {"id": str(EVENT_RUN_ID), "at": str(EVENT_TIME)}
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
        "timestamp": EVENT_TIME,
        "pipeline_run_id": EVENT_RUN_ID,
        "stage_name": "llm",
        "duration_ms": 3.5,
    }
    data = {"tokens": 5, "when": EVENT_TIME}

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
    text = ConsoleExporter()._format_event(
        AnalyticsEvent(event_type=event_type, timestamp=EVENT_TIME)
    )
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
        "timestamp": EVENT_TIME,
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
