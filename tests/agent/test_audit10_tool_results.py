"""Audit 10: a tool that returns nothing or a malformed output is a failed result.

In stageflow 1.2.0 the loop builds each tool's result inside its ``try``: a tool that
returns None gives the failed result "Tool registry returned no result", and an
output that does not fit ``AgentToolResult`` a failed result with the validation
error. The model sees the failure on its next turn; the run goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
import trio

from stageflow_trio.agent import Agent, AgentToolResult
from stageflow_trio.tools import ToolRegistry
from stageflow_trio.tools.base import BaseTool, ToolInput, ToolOutput

from .fakes import ScriptedChat, answer, calls


class _Output:
    """A duck-typed tool output (any object with success, data and error)."""

    def __init__(self, success: Any, data: Any = None, error: Any = None) -> None:
        self.success = success
        self.data = data
        self.error = error


class _Returns(BaseTool):
    name = description = action_type = "odd"

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> Any:  # noqa: A002
        self.calls += 1
        await trio.lowlevel.checkpoint()
        return self.value


async def _run_one(value: Any) -> tuple[AgentToolResult, ScriptedChat, _Returns]:
    tool = _Returns(value)
    registry = ToolRegistry()
    registry.register(tool)
    client = ScriptedChat(calls("odd"), answer("done"))
    result = await Agent(llm_client=client, tool_registry=registry).run("go")
    assert result.response == "done"
    assert result.iterations == 2
    (tool_result,) = result.tool_results
    return tool_result, client, tool


async def test_a_tool_returning_none_is_a_failed_result() -> None:
    tool_result, client, tool = await _run_one(None)
    assert tool.calls == 1
    assert tool_result == AgentToolResult(
        call_id="c1", name="odd", success=False, error="Tool registry returned no result"
    )
    # The model saw the failure as the tool's result.
    sent = client.messages[1][-1]["content"]
    assert sent.startswith("Tool result from odd (call_id=c1). ")
    assert json.dumps("Tool registry returned no result") in sent


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (_Output(True, data=[1, 2]), "AgentToolResult: data must be a mapping or None; got list"),
        (_Output("yes"), "AgentToolResult: success must be a bool; got str"),
        (_Output(False, error=5), "AgentToolResult: error must be a str or None; got int"),
        (object(), "'object' object has no attribute 'success'"),
    ],
)
async def test_a_malformed_tool_output_is_a_failed_result(value: Any, error: str) -> None:
    tool_result, _client, _tool = await _run_one(value)
    assert tool_result == AgentToolResult(call_id="c1", name="odd", success=False, error=error)


async def test_a_well_formed_output_is_kept() -> None:
    tool_result, _client, _tool = await _run_one(ToolOutput(success=True, data={"a": [1]}))
    assert tool_result == AgentToolResult(call_id="c1", name="odd", success=True, data={"a": [1]})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"call_id": 1}, "call_id must be a str; got int"),
        ({"name": None}, "name must be a str; got NoneType"),
        ({"success": 1}, "success must be a bool; got int"),
        ({"data": [("a", 1)]}, "data must be a mapping or None; got list"),
        ({"error": b"x"}, "error must be a str or None; got bytes"),
    ],
)
def test_tool_result_refuses_wrong_types(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"call_id": "c", "name": "t", "success": True, **kwargs}
    with pytest.raises(ValueError, match=rf"^AgentToolResult: {message}$"):
        AgentToolResult(**fields)


async def test_tool_data_json_cannot_encode_reaches_the_model_as_text() -> None:
    # Audit 15: json.dumps raised TypeError / ValueError here and ended Agent.run.
    marker = uuid.UUID("12345678-1234-5678-1234-567812345678")
    loop: list[Any] = [1]
    loop.append(loop)
    data = {
        "id": marker,
        "when": dt.date(2026, 12, 6),
        "mixed": {1: "one", "b": "bee", None: "nil"},
        "loop": loop,
    }
    tool_result, client, _tool = await _run_one(ToolOutput(success=True, data=data))
    assert tool_result.success
    sent = client.messages[1][-1]["content"]
    body = sent.split("<tool_result>\n", 1)[1].rsplit("\n</tool_result>", 1)[0]
    assert json.loads(body) == {
        "call_id": "c1",
        "name": "odd",
        "success": True,
        "data": {
            "id": str(marker),
            "when": "2026-12-06",
            "mixed": {"1": "one", "b": "bee", "null": "nil"},
            "loop": [1, "<cycle>"],
        },
        "error": None,
    }


async def test_tool_data_with_an_int_too_long_to_print_reaches_the_model() -> None:
    # The shared conversion (stageflow_trio._json.jsonable): the agent's own copy kept
    # such an int, and its fallback then failed again with ValueError.
    huge = 10**5000
    tool_result, client, _tool = await _run_one(ToolOutput(success=True, data={"n": huge}))
    assert tool_result.success
    sent = client.messages[1][-1]["content"]
    body = sent.split("<tool_result>\n", 1)[1].rsplit("\n</tool_result>", 1)[0]
    assert json.loads(body)["data"] == {"n": f"<int of {huge.bit_length()} bits>"}
