"""Shapes pyright (and so Pylance) rejected while mypy accepted them (audit 19).

mypy checks this file with the rest of the suite; ``tests/typing/test_audit19_pyright.py``
checks it with pyright in strict mode, when pyright is installed.
"""

from __future__ import annotations

from typing import Any, assert_type
from uuid import uuid4

from stageflow_trio.pipeline.interceptors import InterceptorContext
from stageflow_trio.protocols import ExecutionContext
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RunRecord
from stageflow_trio.tools import AdvancedToolExecutor, ToolExecutor, ToolRegistry
from stageflow_trio.tools.base import BaseTool, Tool, ToolInput, ToolOutput
from stageflow_trio.tools.executor import ToolOutputLike

# A PipelineContext is an ExecutionContext. Its id fields have converters (a UUID string
# is parsed), which pyright types as descriptors it does not match against the
# protocol's properties; PipelineContext declares the protocol as a base for type
# checkers.


def as_execution_context(ctx: PipelineContext) -> ExecutionContext:
    return ctx


async def undo(executor: AdvancedToolExecutor, ctx: PipelineContext) -> bool:
    return await executor.undo_action(uuid4(), ctx)


# A ToolRegistry is the v1 executor's registry: its ToolOutput (``artifacts`` has a
# converter) is a ToolOutputLike by declaration, for the same reason.


def use_registry(executor: ToolExecutor, registry: ToolRegistry) -> None:
    executor.tool_registry = registry


output_like: ToolOutputLike = ToolOutput(success=True, artifacts=[{"kind": "note"}])


# attrs drops the leading underscore of a private field's __init__ parameter; pyright
# keeps it unless the field spells out its alias.


def view(ctx: PipelineContext) -> InterceptorContext:
    return InterceptorContext(ctx=ctx, interceptor_name="timing", observations={})


record = RunRecord("checkpoint 1", 1, None, 0, queues=[], hang=None)


# BaseTool's name, description and action_type are read-only properties (as in the
# reference): overridden by properties, a subclass is a Tool for both checkers. (A class
# attribute over them passes mypy only: docs/tools.md.)


class Lookup(BaseTool):
    @property
    def name(self) -> str:
        return "lookup"

    @property
    def description(self) -> str:
        return "Look an order up"

    @property
    def action_type(self) -> str:
        return "lookup"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        return ToolOutput(success=True, data={"order": input.action.payload.get("id")})


class Plain:
    """Not a BaseTool: class attributes are fine."""

    name = description = action_type = "plain"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        return ToolOutput(success=False, error="not found")


tools: list[Tool] = [Lookup(), Plain()]
assert_type(Lookup().name, str)
