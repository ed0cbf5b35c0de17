"""The agent's turn values and entry points check their input where it is given.

A blank final answer next to tool calls is a tool turn (as AgentTurn says), the turn
values refuse wrong types with a ValueError naming the field (pydantic's
ValidationError in 1.2.0 is one), and ``TypedLLMOutput`` and ``Agent.run`` refuse
bad arguments before any model call.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.agent import Agent, AgentToolCall, AgentTurn, TypedLLMOutput
from stageflow_trio.tools.registry import ToolRegistry

from .fakes import ScriptedChat, SlowTool, answer


def _agent(client: Any, *tools: SlowTool) -> Agent:
    registry = ToolRegistry()
    for tool in tools:
        registry.register(tool)
    return Agent(llm_client=client, tool_registry=registry)


async def test_tool_calls_with_a_blank_answer_run_the_tools(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tool = SlowTool("lookup", 1)
    reply = {"tool_calls": [{"name": "lookup", "arguments": {"n": 1}, "call_id": "c1"}]}
    client = ScriptedChat(json.dumps({**reply, "final_answer": "   "}), answer("done"))
    start = trio.current_time()
    result = await _agent(client, tool).run("q")
    assert (result.response, result.iterations) == ("done", 2)
    assert (tool.started, tool.finished) == (1, 1)
    assert [(r.call_id, r.success, dict(r.data or {})) for r in result.tool_results] == [
        ("c1", True, {"slept": 1, "n": 1})
    ]
    assert trio.current_time() - start == 1.0
    assert len(client.messages) == 2


def test_a_blank_answer_next_to_tool_calls_is_no_answer() -> None:
    turn = AgentTurn(tool_calls=[AgentToolCall(name="lookup")], final_answer="  ")
    assert [call.name for call in turn.tool_calls] == ["lookup"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: AgentTurn(final_answer=5),  # type: ignore[arg-type]
            "AgentTurn: final_answer must be a str or None; got int",
        ),
        (
            lambda: AgentTurn(thought=["x"], final_answer="a"),  # type: ignore[arg-type]
            "AgentTurn: thought must be a str or None; got list",
        ),
        (
            lambda: AgentTurn(tool_calls=[{"name": "x"}]),  # type: ignore[list-item]
            r"AgentTurn: tool_calls\[0\] must be an AgentToolCall; got dict",
        ),
        (
            lambda: AgentTurn(tool_calls="lookup"),  # type: ignore[arg-type]
            "AgentTurn: tool_calls must be a list of AgentToolCall; got str",
        ),
        (
            lambda: AgentTurn(tool_calls=5),  # type: ignore[arg-type]
            "AgentTurn: tool_calls must be a list of AgentToolCall; got int",
        ),
        (
            lambda: AgentToolCall(name=5),  # type: ignore[arg-type]
            "AgentToolCall: name must be a str; got int",
        ),
        (
            lambda: AgentToolCall(name="x", call_id=7),  # type: ignore[arg-type]
            "AgentToolCall: call_id must be a str or None; got int",
        ),
        (
            lambda: AgentToolCall(name="x", arguments=[1]),  # type: ignore[arg-type]
            "AgentToolCall: arguments must be a mapping; got list",
        ),
    ],
)
def test_turn_values_refuse_wrong_types(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{message}$"):
        build()


def test_a_reply_with_a_non_str_answer_fails_validation() -> None:
    with pytest.raises(
        ValueError,
        match=r"^AgentTurn validation failed: ",
    ):
        TypedLLMOutput(AgentTurn, strict=True).validate_text('{"final_answer": 5}')


@pytest.mark.parametrize(("text", "kind"), [(None, "NoneType"), (5, "int"), (b"{}", "bytes")])
def test_validate_text_needs_a_str(text: Any, kind: str) -> None:
    with pytest.raises(
        TypeError, match=rf"^TypedLLMOutput.validate_text: text must be a str; got {kind}$"
    ):
        TypedLLMOutput(AgentTurn).validate_text(text)


class CountingChat:
    def __init__(self) -> None:
        self.calls = 0

    async def chat(self, *, messages: Any, model: str, **kwargs: Any) -> str:
        self.calls += 1
        return answer("x")


@pytest.mark.parametrize(
    ("messages", "model", "message"),
    [
        (
            "hello",
            "m",
            r"messages must be a sequence of mappings \(role, content\); got str",
        ),
        (
            {"role": "user"},
            "m",
            r"messages must be a sequence of mappings \(role, content\); got dict",
        ),
        (
            [{"role": "user", "content": "x"}, "hi"],
            "m",
            r"messages\[1\] must be a mapping \(role, content\); got str",
        ),
        ([], 5, "model must be a str; got int"),
    ],
)
async def test_generate_checks_its_arguments_before_calling(
    messages: Any, model: Any, message: str
) -> None:
    client = CountingChat()
    with pytest.raises(TypeError, match=rf"^TypedLLMOutput.generate: {message}$"):
        await TypedLLMOutput(AgentTurn).generate(client, messages, model=model)
    assert client.calls == 0


async def test_run_checks_the_stage_context_before_calling_the_model() -> None:
    client = CountingChat()
    with pytest.raises(
        TypeError,
        match=r"^Agent.run: stage_context must be a StageContext \(an object with to_dict\(\)\) "
        r"or None; got int$",
    ):
        await _agent(client).run("q", stage_context=5)
    assert client.calls == 0
