"""The pytest plugin's fixtures (the project's conftest enables it as users would)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.context import ContextSnapshot
from stageflow_trio.core import StageContext
from stageflow_trio.events import get_event_sink, set_event_sink
from stageflow_trio.events.sink import NoOpEventSink
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink


def test_reset_runs_around_every_test(request: pytest.FixtureRequest) -> None:
    assert "reset_stageflow_globals" in request.fixturenames
    set_event_sink(RecordingEventSink())  # the next test starts without it


def test_the_global_sink_was_reset() -> None:
    assert isinstance(get_event_sink(), NoOpEventSink)


async def test_virtual_clock_runs_the_test_in_virtual_time(
    virtual_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    with trio.move_on_after(3600):
        await trio.sleep_forever()
    assert trio.current_time() - start == 3600
    assert virtual_clock.autojump_threshold == 0


def test_builders_record_into_the_recording_sink(
    recording_sink: RecordingEventSink,
    make_snapshot: Any,
    make_stage_context: Any,
    make_pipeline_context: Any,
) -> None:
    snapshot = make_snapshot(input_text="hi")
    assert isinstance(snapshot, ContextSnapshot)
    assert snapshot.input_text == "hi"
    stage_ctx = make_stage_context(snapshot=snapshot)
    assert isinstance(stage_ctx, StageContext)
    assert stage_ctx.event_sink is recording_sink
    pipeline_ctx = make_pipeline_context()
    assert isinstance(pipeline_ctx, PipelineContext)
    assert pipeline_ctx.event_sink is recording_sink
    other = RecordingEventSink()
    assert make_stage_context(event_sink=other).event_sink is other
    assert make_pipeline_context(event_sink=other).event_sink is other
