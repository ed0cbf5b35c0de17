"""Audit 16 of the tools and the agent: long-lived objects, concurrent callers, typed use.

- ``InMemoryUndoBackend``: a store nobody reads (the executor reads undo data only to undo)
  used to keep every expired entry for ever; a sweep now runs after as many puts as the last
  sweep left entries (at least 64), so it stays bounded at a constant cost per put.
- ``InMemoryApprovalBackend``: ``pending()`` and ``latest_for_action()`` used to scan every
  request ever made (an approver polling ``get_pending_requests`` paid for the whole history);
  they read indexes now, with the same results.
- ``ApprovalService.await_decision``: a decision recorded as the wait timed out (before the
  request could be closed as EXPIRED) used to be dropped: the caller got ``TimeoutError`` while
  the request said APPROVED, and the executor reported an approval timeout. It is returned.
- ``AdvancedToolExecutor(undo_store=..., approval_service=...)``: a store or service that does
  not subclass (documented as accepted) needed a ``type: ignore`` under ``mypy --strict``; the
  parameters take the ``UndoStoreLike`` / ``ApprovalServiceLike`` protocols (this file is
  type-checked by the package's mypy run).
- ``Agent.run``: the system prompt's response schema (AgentTurn's, fixed) was rebuilt and
  re-encoded on every run, half a run's cost with a fast model; it is written once per agent.
"""

from __future__ import annotations

import json
import sys
import uuid
from types import FrameType
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.agent import Agent, AgentTurn
from stageflow_trio.agent import validation as agent_validation
from stageflow_trio.events import set_event_sink
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.tools import approval as approval_module
from stageflow_trio.tools.adapters import adapt_context
from stageflow_trio.tools.approval import (
    ApprovalDecision,
    ApprovalService,
    ApprovalStatus,
    InMemoryApprovalBackend,
)
from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput, UndoMetadata
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor, ToolExecutorConfig
from stageflow_trio.tools.registry import ToolRegistry
from stageflow_trio.tools.undo import UndoStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


@attrs.frozen
class Action:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


async def _edit(tool_input: ToolInput) -> ToolOutput:
    return ToolOutput.ok(data={"done": True}, undo_metadata={"before": "x"})


undone: list[UndoMetadata] = []


async def _undo_edit(metadata: UndoMetadata) -> None:
    undone.append(metadata)


def _edit_tool(*, requires_approval: bool = False) -> ToolDefinition:
    return ToolDefinition(
        name="edit",
        action_type="EDIT",
        handler=_edit,
        requires_approval=requires_approval,
        undoable=True,
        undo_handler=_undo_edit,
    )


# -- the undo store stays bounded ----------------------------------------------------------


async def test_an_undo_store_nobody_reads_stays_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = UndoStore()
    executor = AdvancedToolExecutor(
        ToolExecutorConfig(undo_ttl_seconds=1.0, emit_events=False),
        undo_store=store,
        approval_service=ApprovalService(),
    )
    executor.register(_edit_tool())
    ctx = adapt_context({"execution_mode": "agent"})
    last = uuid.uuid4()
    for _ in range(600):  # a call every 0.1 s: about 10 entries live at any time
        last = uuid.uuid4()
        await executor.execute(Action(last, "EDIT", {}), ctx)
        await trio.sleep(0.1)
    # Before: all 600 entries, 590 of them expired, held until read.
    assert len(store) <= 2 * 11 + 64
    live = await store.get_all()
    assert 1 <= len(live) <= 11
    assert live[-1].action_id == last
    # What the API returns is unchanged: the live data is there and undoable.
    assert await executor.undo_action(last, ctx) is True
    assert undone[-1].action_id == last


# -- approval lookups do not scan the history ------------------------------------------------


def _lines_run_in(module_file: str, call: Callable[[], Awaitable[Any]]) -> tuple[int, Any]:
    """Run ``call`` in a fresh trio run; how many lines of ``module_file`` it executed."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if frame.f_code.co_filename != module_file:
            return None
        if event == "line":
            count += 1
        return tracer

    result: list[Any] = []

    async def main() -> None:
        previous = sys.gettrace()  # a coverage tracer, say: put back afterwards
        sys.settrace(tracer)
        try:
            result.append(await call())
        finally:
            sys.settrace(previous)

    trio.run(main)
    return count, result[0]


def test_pending_and_status_lookups_cost_does_not_grow_with_decided_requests() -> None:
    backend = InMemoryApprovalBackend()
    service = ApprovalService(backend=backend)
    action = uuid.uuid4()
    run = uuid.uuid4()

    async def fill() -> list[uuid.UUID]:
        first = await service.request_approval(action, "edit", pipeline_run_id=run)
        second = await service.request_approval(action, "edit", pipeline_run_id=run)
        for _ in range(2000):
            request = await service.request_approval(uuid.uuid4(), "edit", pipeline_run_id=run)
            await service.record_decision(request.id, granted=True)
        waiting = await service.request_approval(uuid.uuid4(), "edit", pipeline_run_id=run)
        return [first.id, second.id, waiting.id]

    first, second, waiting = trio.run(fill)
    module_file = approval_module.__file__

    lines, pending = _lines_run_in(module_file, lambda: service.get_pending_requests(run))
    assert [r.id for r in pending] == [first, second, waiting]  # oldest first, as before
    assert lines < 100  # before: a line per request ever made (over 2000)

    lines, status = _lines_run_in(module_file, lambda: service.get_status(uuid.uuid4()))
    assert status is None
    assert lines < 100  # an unknown action id scanned the whole history

    # The newest request of an action answers for it; once forgotten, the one before.
    async def decide_and_forget() -> tuple[ApprovalStatus | None, ApprovalStatus | None]:
        await service.record_decision(second, granted=False)
        newest = await service.get_status(action)
        await service.cleanup(second)
        return newest, await service.get_status(action)

    assert trio.run(decide_and_forget) == (ApprovalStatus.DENIED, ApprovalStatus.PENDING)
    assert [r.id for r in trio.run(service.get_pending_requests)] == [first, waiting]


# -- a decision that lands as the wait times out is not lost --------------------------------


class _SlowCloseBackend(InMemoryApprovalBackend):
    """A shared backend's latency: closing a request takes 1 s (a round trip)."""

    async def close_pending(
        self, request_id: uuid.UUID, status: ApprovalStatus, decision: ApprovalDecision | None
    ) -> bool:
        await trio.sleep(1)
        return await super().close_pending(request_id, status, decision)


async def test_a_decision_recorded_as_the_wait_times_out_is_returned(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService(backend=_SlowCloseBackend())
    request = await service.request_approval(uuid.uuid4(), "edit")

    async def approver() -> None:
        await trio.sleep(5.5)  # after the 5 s timeout, before the expiry is written
        await service.record_decision(request.id, granted=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(approver)
        # Before: TimeoutError, although the request says APPROVED.
        decision = await service.await_decision(request.id, timeout_seconds=5)
    assert decision.granted is True
    assert request.status is ApprovalStatus.APPROVED


async def test_the_executor_runs_a_call_approved_as_its_wait_timed_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events = RecordingEventSink()
    set_event_sink(events)
    service = ApprovalService(backend=_SlowCloseBackend())
    executor = AdvancedToolExecutor(
        ToolExecutorConfig(approval_timeout_seconds=5),
        undo_store=UndoStore(),
        approval_service=service,
    )
    executor.register(_edit_tool(requires_approval=True))

    async def approver() -> None:
        await trio.sleep(5.5)
        [request] = await service.get_pending_requests()
        await service.record_decision(request.id, granted=True)

    action = Action(uuid.uuid4(), "EDIT", {})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(approver)
        # Before: ToolApprovalTimeoutError and tool.denied (approval_timeout), the
        # approver's APPROVED request never run.
        output = await executor.execute(action, adapt_context({"execution_mode": "agent"}))
    assert output.data == {"done": True}
    assert events.types() == [
        "tool.invoked",
        "approval.requested",
        "approval.decided",
        "tool.started",
        "tool.completed",
    ]


async def test_an_expired_wait_still_raises_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The other side of the fix: without a decision the wait still times out."""
    service = ApprovalService(backend=_SlowCloseBackend())
    request = await service.request_approval(uuid.uuid4(), "edit")
    with pytest.raises(TimeoutError):
        await service.await_decision(request.id, timeout_seconds=5)
    assert request.status is ApprovalStatus.EXPIRED
    assert trio.current_time() == 6


# -- typed use: a store and a service that do not subclass ----------------------------------


class DictUndoStore:
    """An undo store of a user's own: the three methods the executor calls, no subclass."""

    def __init__(self) -> None:
        self.entries: dict[uuid.UUID, UndoMetadata] = {}

    async def store(
        self,
        action_id: uuid.UUID,
        tool_name: str,
        undo_data: dict[str, Any],
        ttl_seconds: float | None = None,
    ) -> None:
        await trio.lowlevel.checkpoint()
        self.entries[action_id] = UndoMetadata(
            action_id=action_id, tool_name=tool_name, undo_data=undo_data
        )

    async def get(self, action_id: uuid.UUID) -> UndoMetadata | None:
        await trio.lowlevel.checkpoint()
        return self.entries.get(action_id)

    async def delete(self, action_id: uuid.UUID) -> bool:
        await trio.lowlevel.checkpoint()
        return self.entries.pop(action_id, None) is not None


class AutoApprove:
    """An approval service of a user's own (no subclass): approves every call."""

    def __init__(self) -> None:
        self.inner = ApprovalService()

    async def request_approval(
        self,
        action_id: uuid.UUID,
        tool_name: str,
        pipeline_run_id: uuid.UUID | None = None,
        approval_message: str = "",
        payload_summary: dict[str, Any] | None = None,
    ) -> approval_module.ApprovalRequest:
        request = await self.inner.request_approval(action_id, tool_name, pipeline_run_id)
        await self.inner.record_decision(request.id, granted=True)
        return request

    async def await_decision(
        self, request_id: uuid.UUID, timeout_seconds: float | None = None
    ) -> ApprovalDecision:
        return await self.inner.await_decision(request_id, timeout_seconds)

    async def cancel_request(self, request_id: uuid.UUID) -> bool:
        return await self.inner.cancel_request(request_id)


async def test_a_store_and_service_of_ones_own_type_check_and_work() -> None:
    store = DictUndoStore()
    # Before: mypy --strict refused both arguments (UndoStore / ApprovalService expected).
    executor = AdvancedToolExecutor(undo_store=store, approval_service=AutoApprove())
    executor.register(_edit_tool(requires_approval=True))
    ctx = adapt_context({"execution_mode": "agent"})
    action = Action(uuid.uuid4(), "EDIT", {})
    output = await executor.execute(action, ctx)
    assert output.success
    assert list(store.entries) == [action.id]
    assert await executor.undo_action(action.id, ctx) is True
    assert store.entries == {}


# -- the agent writes its response schema once ------------------------------------------------


class _AnswerAtOnce:
    def __init__(self) -> None:
        self.system_prompts: list[str] = []

    def chat(self, *, messages: list[dict[str, Any]], model: str, **kwargs: Any) -> str:
        self.system_prompts.append(messages[0]["content"])
        return json.dumps({"final_answer": "ok"})


async def test_the_agent_builds_its_response_schema_once(monkeypatch: Any) -> None:
    calls = 0
    original = agent_validation.TypedLLMOutput.json_schema

    def counting(self: agent_validation.TypedLLMOutput[Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return original(self)

    monkeypatch.setattr(agent_validation.TypedLLMOutput, "json_schema", counting)
    client = _AnswerAtOnce()
    agent = Agent(llm_client=client, tool_registry=ToolRegistry())
    for _ in range(5):
        assert (await agent.run("hi")).response == "ok"
    assert calls == 1  # before: once per run
    # The prompt still carries the schema, the same text in every run.
    schema = json.dumps(
        original(agent_validation.TypedLLMOutput(AgentTurn)), indent=2, sort_keys=True
    )
    assert len(set(client.system_prompts)) == 1
    assert schema in client.system_prompts[0]
