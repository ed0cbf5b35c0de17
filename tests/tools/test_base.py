"""The v1 tool base types: Tool, BaseTool, ToolInput, ToolOutput."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.tools import base
from stageflow_trio.tools.base import BaseTool, Tool, ToolInput, ToolOutput
from stageflow_trio.tools.registry import tool
from stageflow_trio.utils.frozen import FrozenDict, FrozenList


@attrs.frozen
class Action:
    type: str
    payload: dict[str, Any] = attrs.field(factory=dict)


class Complete(BaseTool):
    @property
    def name(self) -> str:
        return "complete"

    @property
    def description(self) -> str:
        return "does it all"

    @property
    def action_type(self) -> str:
        return "do"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        await trio.lowlevel.checkpoint()
        return ToolOutput(success=True, data={"got": input.action.payload, "ctx": ctx})


def test_all_matches_the_reference(reference: ModuleType) -> None:
    assert sorted(base.__all__) == sorted(reference.tools.base.__all__)


def test_tool_output_defaults_and_frozen_copies() -> None:
    assert ToolOutput(success=False) == ToolOutput(False, None, None, None)
    data = {"a": 1}
    artifacts = [{"kind": "doc"}]
    output = ToolOutput(success=True, data=data, artifacts=artifacts)
    data["b"] = 2
    artifacts.append({"kind": "other"})
    assert output.data == {"a": 1}
    assert output.artifacts == [{"kind": "doc"}]
    assert isinstance(output.data, FrozenDict)
    assert isinstance(output.artifacts, FrozenList)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        output.success = False  # type: ignore[misc]
    again = ToolOutput(success=True, data=output.data, artifacts=output.artifacts)
    assert again.data is output.data
    assert again.artifacts is output.artifacts


def test_tool_input_wraps_the_action() -> None:
    action = Action("do", {"x": 1})
    assert ToolInput(action=action).action is action
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ToolInput(action=action).action = action  # type: ignore[misc]


async def test_a_complete_subclass_is_a_tool() -> None:
    instance: Tool = Complete()
    assert (instance.name, instance.description, instance.action_type) == (
        "complete",
        "does it all",
        "do",
    )
    assert repr(instance) == "<Tool: complete>"
    output = await instance.execute(ToolInput(Action("do", {"x": 1})), {"k": "v"})
    assert output == ToolOutput(success=True, data={"got": {"x": 1}, "ctx": {"k": "v"}})


async def test_an_undecorated_incomplete_subclass_fails_where_it_is_incomplete() -> None:
    class Bare(BaseTool):
        pass

    bare = Bare()  # not an ABC, as in the reference
    for attribute in ("name", "description", "action_type"):
        with pytest.raises(
            NotImplementedError,
            match=rf"^Bare must define {attribute} \(or be decorated with @tool\)$",
        ):
            getattr(bare, attribute)
    assert repr(bare) == "<Tool: Bare>"
    with pytest.raises(NotImplementedError, match=r"^Bare must define name"):
        await bare.execute(ToolInput(Action("x")), {})


async def test_execute_not_overridden_raises_after_a_checkpoint() -> None:
    @tool("noop", name="noop_tool", description="nothing")
    class Noop(BaseTool):
        pass

    with (
        trio.testing.assert_checkpoints(),
        pytest.raises(NotImplementedError, match=r"^Tool noop_tool must implement execute\(\)$"),
    ):
        await Noop().execute(ToolInput(Action("noop")), {})


def test_the_tool_decorator_supplies_the_metadata() -> None:
    @tool("search")
    class Search(BaseTool):
        pass

    assert (Search().name, Search().description, Search().action_type) == ("Search", "", "search")
    assert repr(Search()) == "<Tool: Search>"
