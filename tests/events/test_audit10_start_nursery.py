"""BackpressureAwareEventSink.start checks its nursery argument at the call."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from stageflow_trio.events import BackpressureAwareEventSink
from stageflow_trio.testing import RecordingEventSink


@pytest.mark.parametrize(
    "nursery",
    [None, "nursery", 42, trio.open_nursery],  # trio.open_nursery(): see the next test
    ids=["None", "str", "int", "open_nursery-function"],
)
async def test_start_rejects_a_non_nursery_with_a_type_error(nursery: Any) -> None:
    sink = BackpressureAwareEventSink(RecordingEventSink())
    with pytest.raises(TypeError, match=r"^BackpressureAwareEventSink.start: nursery must be"):
        await sink.start(nursery)
    assert not sink.is_running


async def test_start_rejects_the_unentered_nursery_manager() -> None:
    # The usual slip: passing trio.open_nursery() instead of the nursery it opens.
    sink = BackpressureAwareEventSink(RecordingEventSink())
    with pytest.raises(TypeError, match=r"got NurseryManager$"):
        await sink.start(trio.open_nursery())  # type: ignore[arg-type]
    # Nothing was left half-started: a real nursery still works afterwards.
    downstream = RecordingEventSink()
    sink = BackpressureAwareEventSink(downstream)
    async with trio.open_nursery() as nursery:
        with pytest.raises(TypeError):
            await sink.start(None)  # type: ignore[arg-type]
        await sink.start(nursery)
        assert sink.is_running
        sink.try_emit(type="a", data=None)
        await sink.stop()
    assert downstream.types() == ["a"]


async def test_start_checks_the_nursery_even_when_the_worker_runs() -> None:
    sink = BackpressureAwareEventSink(RecordingEventSink())
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        with pytest.raises(TypeError, match=r"nursery must be a trio\.Nursery; got NoneType"):
            await sink.start(None)  # type: ignore[arg-type]
        assert sink.is_running
        await sink.stop()
