"""The agent loop under deadlines and cancellation, in virtual time.

A deadline that expires during a model call or a tool call ends the run at that
instant: ``trio.Cancelled`` goes through the call in progress (each tool's
``finally`` runs exactly once), no later call starts, and nothing is swallowed
(not by the loop's "a failing tool is a result" handler, not by AgentStage).
"""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.agent import Agent, AgentStage
from stageflow_trio.core import StageKind
from stageflow_trio.helpers import PipelineRunner
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context
from stageflow_trio.tools.registry import ToolRegistry

from .fakes import ScriptedChat, SlowTool, answer


def _two_tools_then_answer() -> tuple[ScriptedChat, SlowTool, SlowTool, Agent]:
    # Each model call takes 1s; tool a takes 2s, tool b 4s:
    # call 1: [0, 1]; a: [1, 3]; b: [3, 7]; call 2: [7, 8].
    first = SlowTool("a", 2)
    second = SlowTool("b", 4)
    registry = ToolRegistry()
    registry.register(first)
    registry.register(second)
    turn = json.dumps(
        {"tool_calls": [{"name": "a", "call_id": "1"}, {"name": "b", "call_id": "2"}]}
    )
    client = ScriptedChat(turn, answer("done"), delay=1)
    return client, first, second, Agent(llm_client=client, tool_registry=registry)


async def test_deadline_during_a_tool_call_stops_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, first, second, agent = _two_tools_then_answer()
    sink = RecordingEventSink()
    ctx = create_test_stage_context(event_sink=sink)
    start = trio.current_time()
    with trio.move_on_after(5) as scope:
        await agent.run("go", stage_context=ctx)
    assert scope.cancelled_caught
    # The cancelled tool is not recorded as a failed result.
    executed = [data["call_id"] for data in sink.of_type("agent.tool.executed") if data]
    assert executed == ["1"]
    assert trio.current_time() - start == 5
    assert (first.started, first.finished, first.cleanups) == (1, 1, 1)
    assert (second.started, second.finished, second.cleanups) == (1, 0, 1)
    assert len(client.messages) == 1  # no model call after the cancelled tool


async def test_deadline_during_a_model_call_stops_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, first, second, agent = _two_tools_then_answer()
    start = trio.current_time()
    with pytest.raises(trio.TooSlowError):
        with trio.fail_after(7.5):
            await agent.run("go")
    assert trio.current_time() - start == 7.5
    assert (len(client.messages), client.cancelled) == (2, 1)
    assert (first.cleanups, second.cleanups) == (1, 1)
    assert (first.finished, second.finished) == (1, 1)


async def test_first_model_call_cancelled_runs_no_tool(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, first, second, agent = _two_tools_then_answer()
    with trio.move_on_after(0.5):
        await agent.run("go")
    assert (len(client.messages), client.cancelled) == (1, 1)
    assert first.started + second.started == 0


async def test_already_cancelled_run_calls_nothing() -> None:
    client, first, _, agent = _two_tools_then_answer()
    with trio.CancelScope() as scope:
        scope.cancel()
        await agent.run("go")
    assert scope.cancelled_caught
    assert client.messages == []
    assert first.started == 0


async def test_agent_stage_does_not_turn_a_deadline_into_a_failed_output(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, first, second, agent = _two_tools_then_answer()
    stage = AgentStage(agent)
    with trio.move_on_after(2) as scope:
        await stage.execute(create_test_stage_context(input_text="go"))
    assert scope.cancelled_caught
    assert (first.started, first.cleanups, second.started) == (1, 1, 0)


async def test_run_without_deadline_takes_the_scripted_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, first, second, agent = _two_tools_then_answer()
    start = trio.current_time()
    result = await agent.run("go")
    assert (len(client.messages), first.finished, second.finished) == (2, 1, 1)
    assert trio.current_time() - start == 8
    assert result.response == "done"


# Deadlines between the scripted events (a quarter past each half second), so no
# deadline ties with a call's end.
@given(deadline=st.integers(min_value=0, max_value=17).map(lambda half: half / 2 + 0.25))
def test_any_deadline_stops_at_that_instant_with_each_started_tool_cleaned_once(
    deadline: float,
) -> None:
    async def main() -> None:
        client, first, second, agent = _two_tools_then_answer()
        start = trio.current_time()
        with trio.move_on_after(deadline) as scope:
            await agent.run("go")
        elapsed = trio.current_time() - start
        finished = not scope.cancelled_caught
        # The run ends at 8; a later deadline lets it finish first.
        assert finished == (deadline > 8)
        assert elapsed == (8 if finished else deadline)
        for tool, begins in ((first, 1), (second, 3)):
            assert tool.started == (1 if deadline > begins else 0)
            assert tool.cleanups == tool.started
        in_model_call = deadline < 1 or 7 < deadline < 8
        assert client.cancelled == (1 if in_model_call else 0)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_a_pipeline_run_deadline_reaches_the_tool_in_progress(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, first, second, agent = _two_tools_then_answer()
    pipeline = Pipeline("assistant").with_stage("agent", AgentStage(agent), StageKind.AGENT)
    start = trio.current_time()
    with trio.move_on_after(2) as scope:
        await PipelineRunner(verbose=False).run(pipeline, input_text="go")
    assert scope.cancelled_caught
    assert trio.current_time() - start == 2
    assert (first.started, first.finished, first.cleanups, second.started) == (1, 0, 1, 0)
