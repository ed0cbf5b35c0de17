"""Fakes for the agent tests: a scripted model client and tools that record their lives."""

from __future__ import annotations

import json
from typing import Any

import trio

from stageflow_trio.tools.base import BaseTool, ToolInput, ToolOutput


def answer(text: str) -> str:
    return json.dumps({"final_answer": text})


def calls(*names: str) -> str:
    return json.dumps(
        {"tool_calls": [{"name": name, "call_id": f"c{i}"} for i, name in enumerate(names, 1)]}
    )


class ScriptedChat:
    """Returns its replies in order; each call may first sleep ``delay`` seconds."""

    def __init__(self, *replies: str, delay: float = 0.0) -> None:
        self.replies = list(replies)
        self.delay = delay
        self.messages: list[list[dict[str, Any]]] = []
        self.cancelled = 0

    async def chat(self, *, messages: list[dict[str, Any]], model: str, **kwargs: Any) -> str:
        self.messages.append([dict(m) for m in messages])
        try:
            await trio.sleep(self.delay)
        except trio.Cancelled:
            self.cancelled += 1
            raise
        return self.replies.pop(0)


class SlowTool(BaseTool):
    """Sleeps ``duration`` seconds; counts starts, finishes and cleanups."""

    def __init__(self, action_type: str, duration: float) -> None:
        self._action_type = action_type
        self.duration = duration
        self.started = 0
        self.finished = 0
        self.cleanups = 0
        self.contexts: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return self._action_type

    @property
    def description(self) -> str:
        return f"sleeps {self.duration}s"

    @property
    def action_type(self) -> str:
        return self._action_type

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        self.started += 1
        self.contexts.append(ctx)
        try:
            await trio.sleep(self.duration)
            self.finished += 1
            return ToolOutput(success=True, data={"slept": self.duration, **input.action.payload})
        finally:
            self.cleanups += 1
