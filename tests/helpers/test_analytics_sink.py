"""AnalyticsSink: filtering, event conversion, and the owned or given export tasks."""

from __future__ import annotations

import asyncio
import logging
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.helpers import _analytics_sink as analytics_sink_module
from stageflow_trio.helpers.analytics import AnalyticsSink
from tests.fakes import EVENT_RUN_ID, RecordingExporter


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
        {"pipeline_run_id": str(EVENT_RUN_ID), "stage": "a", "duration_ms": 1.0},
        {"pipeline_run_id": EVENT_RUN_ID, "other": [1]},
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


async def test_held_events_warn_once_when_they_reach_the_threshold(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sink installed without a nursery and never flushed grows with every event:
    # the count reaching PENDING_WARNING says so, once each time it gets there.
    monkeypatch.setattr(analytics_sink_module, "PENDING_WARNING", 5)
    sink = AnalyticsSink(RecordingExporter())
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.helpers.analytics"):
        for _ in range(12):
            sink.try_emit(type="a", data=None)
        assert [r.getMessage() for r in caplog.records] == [
            "AnalyticsSink holds 5 events: it has no nursery to export them in, and only"
            " flush_pending() exports held events; use `async with AnalyticsSink(...)` or"
            " pass nursery="
        ]
        assert await sink.flush_pending() == 12
        for _ in range(5):
            sink.try_emit(type="a", data=None)
    assert len(caplog.records) == 2


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


async def test_async_with_entry_is_a_checkpoint_and_a_cancelled_one_starts_nothing() -> None:
    inner = RecordingExporter()
    sink = AnalyticsSink(inner)
    with trio.CancelScope() as scope:
        scope.cancel()
        await sink.__aenter__()
    assert scope.cancelled_caught
    with trio.testing.assert_checkpoints():
        entered = await sink.__aenter__()  # the cancelled entry did not use it up
    assert entered is sink
    assert sink.try_emit(type="stage.started", data=None) is True
    await sink.__aexit__(None, None, None)
    assert inner.types() == ["stage.started"]
