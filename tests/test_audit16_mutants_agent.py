"""Audit 16 mutation pass: tests for mutants of the agent loop, analytics sink,
buffered exporter, streaming helpers, wide events and the tool registry that
survived the existing suite."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.agent import Agent, AgentRunResult
from stageflow_trio.events import wait_for_event_sink_tasks
from stageflow_trio.events._registry import _run_registry
from stageflow_trio.helpers.analytics import AnalyticsEvent, AnalyticsSink, BufferedExporter
from stageflow_trio.helpers.streaming import (
    RealtimeStageBus,
    StreamingBuffer,
    create_realtime_stage_context,
)
from stageflow_trio.stages.ports import CorePorts
from stageflow_trio.testing import create_test_snapshot
from stageflow_trio.tools.registry import ToolRegistry
from stageflow_trio.utils.frozen import FrozenDict
from tests.agent.fakes import ScriptedChat, answer
from tests.fakes import RecordingExporter

# --- agent/runtime.py ---------------------------------------------------------------


def test_run_result_freezes_plain_llm_and_security_dicts() -> None:
    # kills _frozen_dict `type(value) is FrozenDict` -> `is not` (and the negated IfExp)
    llm: dict[str, Any] = {"content": "x"}
    report: dict[str, Any] = {"source": "user"}
    run = AgentRunResult(
        response="r",
        iterations=1,
        prompt_name="p",
        prompt_version="v",
        llm=llm,
        security=[report],
    )
    assert type(run.llm) is FrozenDict
    assert type(run.security[0]) is FrozenDict
    llm["content"] = "changed"
    report["source"] = "changed"
    assert run.llm["content"] == "x"
    assert run.security[0]["source"] == "user"
    frozen = FrozenDict({"a": 1})
    assert (
        AgentRunResult(
            response="r", iterations=1, prompt_name="p", prompt_version="v", llm=frozen
        ).llm
        is frozen
    )


async def test_run_is_a_checkpoint_even_when_it_refuses_its_input() -> None:
    # kills dropping the `await trio.lowlevel.checkpoint()` that opens Agent.run: the
    # model call checkpoints too, so only a run that fails before it tells them apart.
    agent = Agent(llm_client=ScriptedChat(answer("a")), tool_registry=ToolRegistry())
    with trio.testing.assert_checkpoints(), pytest.raises(TypeError, match="input_text"):
        await agent.run(5)  # type: ignore[arg-type]
    with trio.CancelScope() as scope:
        scope.cancel()
        await agent.run(5)  # type: ignore[arg-type]
    assert scope.cancelled_caught


# --- helpers/_analytics_sink.py -----------------------------------------------------


async def test_sink_waits_for_its_export_then_leaves_the_run_registry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # kills negating `if not self._in_flight:` in AnalyticsSink.try_emit (the first
    # export was not registered, so wait_for_event_sink_tasks did not wait for it),
    # and dropping `registry.sinks.discard(self)` in _export_owned (an idle sink
    # stayed referenced by the run's owned-work registry).
    exporter = RecordingExporter(delay=1)
    async with trio.open_nursery() as nursery:
        sink = AnalyticsSink(exporter, nursery=nursery)
        start = trio.current_time()
        assert sink.try_emit(type="a", data={})
        await wait_for_event_sink_tasks()
        assert trio.current_time() - start == 1
        assert [event.event_type for event in exporter.events] == ["a"]
        assert sink not in _run_registry().sinks


# --- helpers/_buffered.py ------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_size", "error"),
    [(0, ValueError), (-1, ValueError), ("3", TypeError), (True, TypeError), (1.5, TypeError)],
)
def test_buffered_exporter_checks_batch_size(batch_size: Any, error: type[Exception]) -> None:
    # kills dropping the `check_int(owner, "batch_size", ...)` of BufferedExporter.__init__
    with pytest.raises(error, match="batch_size"):
        BufferedExporter(RecordingExporter(), batch_size=batch_size)


def test_buffered_exporter_refuses_a_zero_high_water_mark() -> None:
    # kills `above=True` -> `above=False` in the high_water_mark check: 0 is not a fill ratio
    with pytest.raises(ValueError, match="high_water_mark must be > 0"):
        BufferedExporter(RecordingExporter(), high_water_mark=0)
    assert BufferedExporter(RecordingExporter(), high_water_mark=1).stats["buffer_size"] == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"flush_interval_seconds": 0}, ValueError, "flush_interval_seconds must be > 0"),
        ({"flush_interval_seconds": "1"}, TypeError, "flush_interval_seconds must be a number"),
        ({"flush_interval": 0}, ValueError, "flush_interval must be > 0"),
        ({"on_overflow": 5}, TypeError, "on_overflow must be a callable or None"),
        ({"high_water_mark": "x"}, TypeError, "high_water_mark must be a number"),
    ],
)
def test_buffered_exporter_checks_its_settings(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    # kills dropping the flush_interval_seconds, on_overflow and high_water_mark
    # checks of BufferedExporter.__init__, and `above=True` -> False for the
    # flush_interval alias
    with pytest.raises(error, match=message):
        BufferedExporter(RecordingExporter(), **kwargs)


def test_buffered_exporter_takes_a_sub_second_flush_interval_alias() -> None:
    # kills `minimum=0` -> `minimum=1` in the flush_interval (alias) check
    BufferedExporter(RecordingExporter(), flush_interval=0.5)


class _BatchOnly:
    async def export_batch(self, events: list[AnalyticsEvent]) -> None: ...


class _CloseOnly:
    async def close(self) -> None: ...


@pytest.mark.parametrize("exporter", [_BatchOnly(), _CloseOnly()])
def test_buffered_exporter_needs_both_export_batch_and_close(exporter: object) -> None:
    # kills `and` -> `or` in BufferedExporter.__init__'s exporter check
    with pytest.raises(TypeError, match="exporter must be an AnalyticsExporter"):
        BufferedExporter(exporter)  # type: ignore[arg-type]


async def test_buffered_exporter_runs_one_timed_flush_loop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # kills dropping `self._loop_started = True` in _start_flush_loop: every export
    # started another timed flush loop, so flushes came off the 10 s beat.
    exporter = RecordingExporter()
    async with trio.open_nursery() as nursery:
        buffered = BufferedExporter(
            exporter, batch_size=100, flush_interval_seconds=10, nursery=nursery
        )
        start = trio.current_time()
        for delay in (5, 7, 5, 5):  # exports at 0, 5, 12, 17 and 22
            await buffered.export(AnalyticsEvent(event_type="e"))
            await trio.sleep(delay)
        await buffered.export(AnalyticsEvent(event_type="e"))
        await trio.sleep(1)
        assert [time - start for time in exporter.batch_times] == [10, 20]
        assert [len(batch) for batch in exporter.batches] == [2, 2]
        await buffered.close()
    assert [len(batch) for batch in exporter.batches] == [2, 2, 1]


# --- helpers/_audio.py (StreamingBuffer) and helpers/streaming.py ---------------------


def test_streaming_buffer_refuses_a_non_callable_emitter() -> None:
    # kills dropping `check_callable(owner, "event_emitter", ...)` in StreamingBuffer.__init__
    with pytest.raises(TypeError, match="event_emitter"):
        StreamingBuffer(event_emitter=5)  # type: ignore[arg-type]
    assert StreamingBuffer(event_emitter=None).duration_ms == 0


def test_streaming_buffer_refuses_a_zero_capacity() -> None:
    # kills `above=True` -> `above=False` in the max_duration_ms check
    with pytest.raises(ValueError, match="max_duration_ms must be > 0"):
        StreamingBuffer(max_duration_ms=0)


async def test_bus_channels_block_when_full_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # kills the default `default_drop_on_overflow=False` -> True of RealtimeStageBus
    bus = RealtimeStageBus(default_max_size=1)
    assert await bus.publish("c", 1)
    with trio.move_on_after(1) as scope:
        await bus.publish("c", 2)
    assert scope.cancelled_caught
    stats = await bus.stats()
    assert stats["c"]["size"] == 1
    await bus.close_all()
    assert [item async for item in bus.subscribe("c")] == [1]


async def test_realtime_stage_context_bus_blocks_when_full_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # kills the default `bus_drop_on_overflow=False` -> True of create_realtime_stage_context
    ctx, bus = create_realtime_stage_context(create_test_snapshot(input_text="hi"), bus_max_size=1)
    assert isinstance(ctx.inputs.ports, CorePorts)
    assert ctx.inputs.ports.realtime_bus is bus
    assert await bus.publish("c", 1)
    with trio.move_on_after(1) as scope:
        await bus.publish("c", 2)
    assert scope.cancelled_caught
    assert (await bus.stats())["c"]["backpressure"]["dropped_items"] == 0
