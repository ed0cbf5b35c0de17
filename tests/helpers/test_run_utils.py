"""ObservableEventSink: captured events, printed lines, summaries, lookups (and the reference's output)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import pytest
import trio
import trio.testing

import stageflow_trio.helpers as helpers_package
from stageflow_trio.helpers.run_utils import ObservableEventSink

EVENTS: list[tuple[str, dict[str, Any] | None]] = [
    ("stage.fetch.started", {"stage": "fetch"}),
    ("stage.fetch.completed", {"stage": "fetch", "duration_ms": 12.5, "ignored": 1}),
    ("tool.invoked", {"tool_name": "search", "action_type": "SEARCH", "behavior": "practice"}),
    ("stage.check.failed", {"stage": "check", "error": "x" * 100}),
    ("stage.maybe.skipped", {"stage": "maybe", "reason": "condition"}),
    ("pipeline.spawned_child", None),
    ("custom.success", {"result": "fine", "execution_mode": "m"}),
]

ELAPSED = re.compile(r"\[ *\d+\.\d\dms\]")


def feed(sink: Any) -> None:
    for event_type, data in EVENTS:
        sink.try_emit(type=event_type, data=data)


def test_the_helpers_package_exports_it() -> None:
    assert helpers_package.ObservableEventSink is ObservableEventSink


async def test_emit_and_try_emit_capture_events_in_order() -> None:
    sink = ObservableEventSink(verbose=False)
    await sink.emit(type="a.started", data={"stage": "a"})
    sink.try_emit(type="b.completed", data=None)
    assert [(e["type"], e["data"]) for e in sink.events] == [
        ("a.started", {"stage": "a"}),
        ("b.completed", {}),
    ]
    for event in sink.events:
        assert list(event) == ["type", "data", "timestamp", "elapsed_ms"]
        assert datetime.fromisoformat(event["timestamp"]).utcoffset() is not None
        assert isinstance(event["elapsed_ms"], float)
    assert 0 <= sink.events[0]["elapsed_ms"] <= sink.events[1]["elapsed_ms"]


async def test_elapsed_ms_counts_milliseconds_from_creation_and_from_clear(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The sink times events on trio's clock: virtual time makes it exact.
    sink = ObservableEventSink(verbose=False)
    await trio.sleep(0.25)
    await sink.emit(type="a", data=None)
    await trio.sleep(1.25)
    sink.try_emit(type="b", data=None)
    assert [e["elapsed_ms"] for e in sink.events] == [250.0, 1500.0]
    sink.clear()
    await trio.sleep(0.005)
    sink.try_emit(type="c", data=None)
    assert [e["elapsed_ms"] for e in sink.events] == [pytest.approx(5.0)]


async def test_emit_is_a_checkpoint_and_a_cancelled_emit_records_nothing() -> None:
    sink = ObservableEventSink(verbose=False)
    with trio.testing.assert_checkpoints():
        await sink.emit(type="a", data=None)
    with trio.CancelScope() as scope:
        scope.cancel()
        await sink.emit(type="b", data=None)
    assert [e["type"] for e in sink.events] == ["a"]


def test_capture_false_keeps_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    sink = ObservableEventSink(capture=False, colorize=False)
    sink.try_emit(type="x.started", data={"stage": "x"})
    assert sink.events == []
    assert ELAPSED.sub("[T]", capsys.readouterr().out) == "[T] x.started\n           stage: x\n"


def test_printed_lines_plain(capsys: pytest.CaptureFixture[str]) -> None:
    feed(ObservableEventSink(colorize=False))
    lines = ELAPSED.sub("[T]", capsys.readouterr().out).splitlines()
    assert lines == [
        "[T] stage.fetch.started",
        "           stage: fetch",
        "[T] stage.fetch.completed",
        "           stage: fetch",
        "           duration_ms: 12.5",
        "[T] tool.invoked",
        "           action_type: SEARCH",
        "           tool_name: search",
        "           behavior: practice",
        "[T] stage.check.failed",
        "           stage: check",
        "           error: " + "x" * 80 + "...",
        "[T] stage.maybe.skipped",
        "           stage: maybe",
        "           reason: condition",
        "[T] pipeline.spawned_child",
        "[T] custom.success",
        "           result: fine",
        "           execution_mode: m",
    ]


def test_colors_follow_the_event_type(capsys: pytest.CaptureFixture[str]) -> None:
    sink = ObservableEventSink(capture=False)
    for event_type in ("a.failed", "a.completed", "a.started", "tool.x", "a.skipped", "other"):
        sink.try_emit(type=event_type, data=None)
    colors = re.findall(r"^(\x1b\[\d+m)\[", capsys.readouterr().out, flags=re.MULTILINE)
    assert colors == ["\x1b[91m", "\x1b[92m", "\x1b[94m", "\x1b[93m", "\x1b[90m", "\x1b[96m"]


def test_summary_lookups_and_clear(capsys: pytest.CaptureFixture[str]) -> None:
    sink = ObservableEventSink(verbose=False)
    sink.print_summary()
    assert capsys.readouterr().out == "\nNo events captured.\n"
    feed(sink)
    assert [e["type"] for e in sink.get_events_by_type("fetch")] == [
        "stage.fetch.started",
        "stage.fetch.completed",
    ]
    assert [e["type"] for e in sink.get_stage_events("check")] == ["stage.check.failed"]
    assert [e["type"] for e in sink.get_stage_events("success")] == ["custom.success"]
    sink.print_summary()
    summary = ELAPSED.sub("[T]", capsys.readouterr().out)
    summary = re.sub(r"Total time: \d+\.\dms", "Total time: Tms", summary)
    assert summary.splitlines() == [
        "",
        "=" * 60,
        "EVENT SUMMARY",
        "=" * 60,
        "Total events: 7",
        "Total time: Tms",
        "",
        "By category:",
        "  custom: 1",
        "  pipeline: 1",
        "  stage: 4",
        "  tool: 1",
        "",
        "Recent events:",
        *(f"  [T] {event_type}" for event_type, _ in EVENTS),
    ]
    sink.clear()
    assert sink.events == []


@pytest.mark.parametrize("colorize", [True, False])
def test_output_matches_the_reference(capsys: pytest.CaptureFixture[str], colorize: bool) -> None:
    ref = pytest.importorskip("stageflow.helpers.run_utils")

    def run(sink: Any) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        feed(sink)
        asyncio.run(sink.emit(type="stage.last.completed", data={"stage": "last"}))
        sink.print_summary()
        out = ELAPSED.sub("[T]", capsys.readouterr().out)
        out = re.sub(r"Total time: \d+\.\dms", "Total time: Tms", out)
        return out, [(e["type"], e["data"]) for e in sink.events]

    theirs = run(ref.ObservableEventSink(colorize=colorize))

    async def ours_async() -> None:
        sink = ObservableEventSink(colorize=colorize)
        feed(sink)
        await sink.emit(type="stage.last.completed", data={"stage": "last"})
        sink.print_summary()
        result.append(sink)

    result: list[ObservableEventSink] = []
    trio.run(ours_async)
    out = ELAPSED.sub("[T]", capsys.readouterr().out)
    out = re.sub(r"Total time: \d+\.\dms", "Total time: Tms", out)
    assert (out, [(e["type"], e["data"]) for e in result[0].events]) == theirs
