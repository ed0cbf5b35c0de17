"""Shapes pyright (and so Pylance) rejected while mypy accepted them (audit 19).

mypy checks this file with the rest of the suite; ``tests/typing/test_audit19_pyright.py``
checks it with pyright in strict mode, when pyright is installed.
"""

from __future__ import annotations

from typing import Any, assert_type
from uuid import UUID, uuid4

from stageflow_trio.helpers.mocks import MockTranscription
from stageflow_trio.pipeline.idempotency import (
    CachedStageResult,
    IdempotencyInterceptor,
    IdempotencyStore,
    InMemoryIdempotencyStore,
)
from stageflow_trio.pipeline.interceptors import InterceptorContext
from stageflow_trio.protocols import ExecutionContext
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RunRecord
from stageflow_trio.tools import AdvancedToolExecutor, ToolExecutor, ToolRegistry
from stageflow_trio.tools.approval import (
    ApprovalDecision,
    ApprovalRequest,
    set_approval_service,
)
from stageflow_trio.tools.base import BaseTool, Tool, ToolInput, ToolOutput
from stageflow_trio.tools.definitions import UndoMetadata
from stageflow_trio.tools.executor import ToolOutputLike
from stageflow_trio.tools.undo import set_undo_store
from stageflow_trio.utils.frozen import FrozenList

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


# Audit 21. A BaseTool subclass with class attributes, as the reference's tools guide
# writes it: pyright rejected a class attribute over BaseTool's properties.


class Calculator(BaseTool):
    name = "calculator"
    description = "Perform basic arithmetic"
    action_type = "CALCULATE"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        payload = input.action.payload
        return ToolOutput(success=True, data={"result": payload["a"] + payload["b"]})


class Annotated(BaseTool):
    name: str = "annotated"
    description: str = ""
    action_type: str = "ANNOTATED"


ToolRegistry().register(Calculator())
more_tools: list[Tool] = [Calculator(), Annotated(), Lookup(), BaseTool()]
assert_type(Annotated().name, str)


# MockTranscription.words: a plain list of word dicts in, a FrozenList of them out; a
# list of anything else was accepted (the converter took Iterable[Any]).

transcription = MockTranscription(text="hi", words=[{"word": "hi", "start": 0.0}])
assert_type(transcription.words, FrozenList[dict[str, Any]])
MockTranscription(text="hi", words=["hi"])  # type: ignore[list-item]


# IdempotencyInterceptor's ttl_seconds and the stores' set take seconds as a float, as
# they always did at run time; a store written for the reference (ttl_seconds: int)
# still type-checks with an int lifetime, and with a float one is refused.


class ReferenceStore:
    async def get(self, key: str) -> CachedStageResult | None:
        return None

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: int | None = None
    ) -> None:
        pass

    async def delete(self, key: str) -> None:
        pass


IdempotencyInterceptor(ttl_seconds=1.5)
IdempotencyInterceptor(store=InMemoryIdempotencyStore(), ttl_seconds=0.25)
IdempotencyInterceptor(store=ReferenceStore(), ttl_seconds=3600)
IdempotencyInterceptor(store=ReferenceStore(), ttl_seconds=1.5)  # type: ignore[call-overload]


async def cache(store: IdempotencyStore, entry: CachedStageResult) -> None:
    await InMemoryIdempotencyStore().set("k", entry, ttl_seconds=0.5)
    await store.set("k", entry, ttl_seconds=0.5)


# A process-wide undo store or approval service need not subclass UndoStore or
# ApprovalService: the methods the tool executor calls are enough.


class MyUndoStore:
    async def store(
        self,
        action_id: UUID,
        tool_name: str,
        undo_data: dict[str, Any],
        ttl_seconds: float | None = None,
    ) -> None:
        pass

    async def get(self, action_id: UUID) -> UndoMetadata | None:
        return None

    async def delete(self, action_id: UUID) -> bool:
        return False


class MyApprovals:
    async def request_approval(
        self,
        action_id: UUID,
        tool_name: str,
        pipeline_run_id: UUID | None = None,
        approval_message: str = "",
        payload_summary: dict[str, Any] | None = None,
    ) -> ApprovalRequest:
        return ApprovalRequest(id=uuid4(), action_id=action_id, tool_name=tool_name)

    async def await_decision(
        self, request_id: UUID, timeout_seconds: float | None = None
    ) -> ApprovalDecision:
        return ApprovalDecision(request_id=request_id, granted=True)

    async def cancel_request(self, request_id: UUID) -> bool:
        return False


set_undo_store(MyUndoStore())
set_approval_service(MyApprovals())
set_undo_store(object())  # type: ignore[arg-type]
