"""Audit 16: long-lived objects of the command line and the testing harness.

The CLI's event recorder and ``assert_no_orphans`` are each kept for a whole run or
block; a run or a soak test that goes on for thousands of events or runs must not
hold memory for every one of them.
"""

from __future__ import annotations

import gc
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.cli.main import main
from stageflow_trio.cli.run import (
    EventsFileError,
    PlainView,
    RunOptions,
    RunRecorder,
    run_graph,
)
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.testing import assert_no_orphans, create_test_stage_context

from .sources import FAILING, SIMPLE, write


class _KeepRecorder:
    """A view that remembers the recorder it is shown through (and shows nothing)."""

    def __init__(self) -> None:
        self.recorder: RunRecorder | None = None
        self.events = 0

    def event(self, recorder: RunRecorder, record: Mapping[str, Any]) -> None:
        self.recorder = recorder
        self.events += 1

    async def tick(self, recorder: RunRecorder) -> None:
        await trio.lowlevel.checkpoint()

    def finish(self, recorder: RunRecorder, outcome: Mapping[str, Any]) -> None:
        self.recorder = recorder


async def test_run_graph_keeps_a_bounded_number_of_event_records(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A long run (a stream: an event per chunk) used to keep every event in memory."""

    async def stream(ctx: StageContext) -> StageOutput:
        for seq in range(6000):
            ctx.try_emit_event(type="chunk.sent", data={"seq": seq})
        await trio.sleep(1)
        return StageOutput.ok(chunks=6000)

    graph = Pipeline(name="stream").with_stage("stream", stream, StageKind.WORK).build()
    view = _KeepRecorder()
    events = io.StringIO()
    status = await run_graph(graph, RunOptions(), view, events_file=events, handle_sigint=False)
    assert status == 0
    recorder = view.recorder
    assert recorder is not None
    assert len(recorder.records) <= 2000  # the latest RECENT_RECORDS (1000), trimmed in batches
    assert recorder.records[-1]["event"] == "pipeline_completed"
    assert recorder.records[-2]["event"] == "stage.stream.completed"
    # The view and the events file still got every event.
    assert view.events == 6000 + 3
    assert len(events.getvalue().splitlines()) == 6000 + 3
    assert recorder.stages["stream"].status == "completed"


async def test_run_recorder_max_records_keeps_the_latest() -> None:
    out = io.StringIO()
    recorder = RunRecorder(["a"], PlainView(out), max_records=10)
    for seq in range(1000):
        recorder.try_emit(type="tick", data={"seq": seq})
        assert len(recorder.records) <= 20
    assert recorder.records[-1]["data"] == {"seq": 999}
    seqs = [record["data"]["seq"] for record in recorder.records]
    assert seqs == list(range(1000 - len(seqs), 1000))  # a contiguous tail, in order
    assert len(seqs) >= 10
    assert len(out.getvalue().splitlines()) == 1000  # the view saw every event
    unbounded = RunRecorder(["a"], PlainView(io.StringIO()))
    for seq in range(50):
        unbounded.try_emit(type="tick", data={"seq": seq})
    assert len(unbounded.records) == 50  # the default keeps every event, as documented
    with pytest.raises(ValueError, match="max_records must be at least 0"):
        RunRecorder(["a"], PlainView(out), max_records=-1)
    with pytest.raises(TypeError, match="max_records must be an int"):
        RunRecorder(["a"], PlainView(out), max_records="10")  # type: ignore[arg-type]


def _live_tasks() -> int:
    gc.collect()
    return sum(isinstance(obj, trio.lowlevel.Task) for obj in gc.get_objects())


async def test_assert_no_orphans_holds_no_state_per_finished_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A soak test under one ``assert_no_orphans()`` used to keep every task it ran."""

    async def step(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.01)
        return StageOutput.ok()

    graph = (
        Pipeline()
        .with_stage("a", step, StageKind.ENRICH)
        .with_stage("b", step, StageKind.ENRICH)
        .with_stage("c", step, StageKind.WORK, dependencies=("a", "b"))
        .build()
    )
    before = _live_tasks()
    async with assert_no_orphans() as block:
        for _ in range(400):
            await graph.run(create_test_stage_context())
        # Every run started a task of its own (the second root stage); none is left.
        assert _live_tasks() - before < 20
        watcher = block._watcher
        assert watcher is not None
        assert len(watcher.tracked) == 1  # the block's own task
        assert watcher.times == []  # step times are the explorer's, not kept here
        assert watcher.steps > 400  # steps are still counted

    # And it still catches an orphan after all that.
    async with trio.open_nursery() as outer:
        check = assert_no_orphans()

        async def leave_an_orphan() -> None:
            async with check:
                for _ in range(50):
                    await graph.run(create_test_stage_context())
                outer.start_soon(trio.sleep_forever, name="escapee")

        with pytest.raises(AssertionError, match="outlived it: 'escapee'"):
            await leave_an_orphan()
        assert check.orphans == ["escapee"]
        outer.cancel_scope.cancel()


class _FullDisk(io.StringIO):
    """An events file whose writes fail after ``room`` of them (a disk filling up)."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, text: str) -> int:
        if self.room <= 0:
            raise OSError(28, "No space left on device")
        self.room -= 1
        return super().write(text)


async def test_a_failing_events_file_stops_the_file_not_the_view(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each event after the disk filled used to vanish from the view too (and log a warning)."""

    async def stream(ctx: StageContext) -> StageOutput:
        for seq in range(50):
            ctx.try_emit_event(type="chunk.sent", data={"seq": seq})
            await trio.sleep(0.01)
        return StageOutput.ok(chunks=50)

    graph = Pipeline(name="stream").with_stage("stream", stream, StageKind.WORK).build()
    out = io.StringIO()
    events = _FullDisk(room=10)
    with pytest.raises(EventsFileError) as caught:
        await run_graph(
            graph, RunOptions(), PlainView(out), events_file=events, handle_sigint=False
        )
    assert caught.value.exit_status == 0  # the run itself completed
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.strerror == "No space left on device"
    assert len(events.getvalue().splitlines()) == 10
    lines = out.getvalue().splitlines()
    assert sum("chunk.sent" in line for line in lines) == 50  # the view saw every event
    assert lines[-1].startswith("1/1 stages; completed in ")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(("source", "status"), [(SIMPLE, 2), (FAILING, 1)])
def test_run_events_on_a_full_disk_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, status: int
) -> None:
    """A full disk used to end ``run --events`` in a traceback (with "During handling")."""
    path = write(tmp_path, "p.py", source)
    code = main(["run", str(path), "--input", "hi", "--events", "/dev/full"])
    captured = capsys.readouterr()
    assert code == status  # 2 as for an unwritable path; a failed run keeps its 1
    assert captured.err.splitlines()[-1] == (
        "stageflow-trio run: error: --events: cannot write /dev/full: No space left on device"
    )
    assert "Traceback" not in captured.err
    assert "Failed to emit" not in captured.err
