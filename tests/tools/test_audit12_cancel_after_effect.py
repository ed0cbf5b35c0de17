"""Audit 12: a cancellation that arrives once a change is made must not half-apply it.

- ``AdvancedToolExecutor.execute``: the handler ran, so its undo data is stored even when the
  caller is cancelled while ``tool.completed`` is emitted or while the data is stored.
- ``AdvancedToolExecutor.undo_action``: the undo handler ran, so the undo data is deleted even
  when the caller is cancelled while ``tool.undone`` is emitted (else a second
  ``undo_action`` would undo the action again).
- ``ApprovalService.await_decision``: a wait that timed out marks its request EXPIRED even when
  the caller is cancelled at that moment (else the request stays PENDING for ever).
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.events import set_event_sink
from stageflow_trio.tools.adapters import DictContextAdapter
from stageflow_trio.tools.approval import (
    ApprovalService,
    ApprovalStatus,
    InMemoryApprovalBackend,
)
from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput, UndoMetadata
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor, ToolExecutorConfig
from stageflow_trio.tools.undo import UndoStore

ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")


@attrs.frozen
class Act:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


class SlowSink:
    """An event sink whose ``emit`` takes a second (a network sink, a full buffer)."""

    def __init__(self) -> None:
        self.types: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.sleep(1)
        self.types.append(type)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.types.append(type)


class SlowUndoStore(UndoStore):
    """An UndoStore whose ``store`` and ``delete`` take a second before acting."""

    async def store(self, *args: Any, **kwargs: Any) -> UndoMetadata:
        await trio.sleep(1)
        return await super().store(*args, **kwargs)

    async def delete(self, action_id: uuid.UUID) -> bool:
        await trio.sleep(1)
        return await super().delete(action_id)


class Counter:
    """A tool whose action adds one and whose undo takes it away."""

    def __init__(self) -> None:
        self.value = 0

    async def add(self, tool_input: ToolInput) -> ToolOutput:
        self.value += 1
        return ToolOutput.ok(undo_metadata={"before": self.value - 1})

    async def undo(self, metadata: UndoMetadata) -> None:
        self.value -= 1

    def tool(self) -> ToolDefinition:
        return ToolDefinition("add", "ADD", self.add, undoable=True, undo_handler=self.undo)


def ctx() -> DictContextAdapter:
    return DictContextAdapter({"pipeline_run_id": None, "request_id": None, "execution_mode": None})


def make_executor(
    counter: Counter, store: UndoStore, *, emit_events: bool = True
) -> AdvancedToolExecutor:
    executor = AdvancedToolExecutor(
        ToolExecutorConfig(emit_events=emit_events),
        undo_store=store,
        approval_service=ApprovalService(),
    )
    executor.register(counter.tool())
    return executor


@pytest.mark.parametrize("deadline", [1.5, 2.5])
async def test_cancelled_while_reporting_completion_keeps_the_undo_data(
    autojump_clock: trio.testing.MockClock, deadline: float
) -> None:
    # tool.invoked ends at t=1, tool.started at t=2, tool.completed would end at t=3: the
    # deadline at 2.5 falls while tool.completed is emitted, after the handler's change.
    sink = SlowSink()
    set_event_sink(sink)
    counter, store = Counter(), UndoStore()
    executor = make_executor(counter, store)
    with trio.move_on_after(deadline) as scope:
        await executor.execute(Act(ACTION, "ADD", {}), ctx())
    assert scope.cancelled_caught
    if deadline < 2:  # cancelled before the handler: nothing changed, nothing stored
        assert counter.value == 0
        assert await store.get(ACTION) is None
        return
    assert counter.value == 1
    metadata = await store.get(ACTION)
    assert metadata is not None
    assert metadata.undo_data == {"before": 0}
    # ...so the change can still be undone, through the tool that made it.
    assert await executor.undo_action(ACTION, ctx()) is True
    assert counter.value == 0


async def test_cancelled_while_storing_the_undo_data_still_stores_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter, store = Counter(), SlowUndoStore()
    executor = make_executor(counter, store, emit_events=False)
    with trio.move_on_after(0.5) as scope:
        await executor.execute(Act(ACTION, "ADD", {}), ctx())
    assert scope.cancelled_caught
    assert counter.value == 1
    assert await store.get(ACTION) is not None
    assert await executor.undo_action(ACTION, ctx()) is True
    assert counter.value == 0


async def test_cancelled_while_reporting_an_undo_forgets_the_undo_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter, store = Counter(), UndoStore()
    executor = make_executor(counter, store, emit_events=False)
    await executor.execute(Act(ACTION, "ADD", {}), ctx())
    assert counter.value == 1
    sink = SlowSink()
    set_event_sink(sink)
    executor.config = attrs.evolve(executor.config, emit_events=True)
    with trio.move_on_after(0.5) as scope:
        await executor.undo_action(ACTION, ctx())
    assert scope.cancelled_caught
    assert counter.value == 0
    assert await store.get(ACTION) is None
    # A second undo finds nothing to undo: the action is not undone twice.
    assert await executor.undo_action(ACTION, ctx()) is False
    assert counter.value == 0


async def test_cancelled_while_deleting_undone_data_still_deletes_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter, store = Counter(), SlowUndoStore()
    executor = make_executor(counter, store, emit_events=False)
    await executor.execute(Act(ACTION, "ADD", {}), ctx())
    with trio.move_on_after(0.5) as scope:
        await executor.undo_action(ACTION, ctx())
    assert scope.cancelled_caught
    assert counter.value == 0
    assert await store.get(ACTION) is None
    assert await executor.undo_action(ACTION, ctx()) is False
    assert counter.value == 0


async def test_a_store_error_while_cancelled_does_not_replace_the_cancellation(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenStore(UndoStore):
        async def store(self, *args: Any, **kwargs: Any) -> UndoMetadata:
            raise OSError("store down")

    set_event_sink(SlowSink())
    counter = Counter()
    executor = make_executor(counter, BrokenStore())
    with trio.move_on_after(2.5) as scope:
        await executor.execute(Act(ACTION, "ADD", {}), ctx())
    assert scope.cancelled_caught  # Cancelled propagated, not OSError
    assert counter.value == 1
    assert any("store down" in record.getMessage() for record in caplog.records)


class CancelOnClose(InMemoryApprovalBackend):
    """Cancels ``scope`` just as the service closes a request (a sibling failing then)."""

    scope: trio.CancelScope | None = None

    async def close_pending(self, request_id: Any, status: Any, decision: Any) -> bool:
        if self.scope is not None:
            self.scope.cancel()
        return await super().close_pending(request_id, status, decision)


async def test_a_timed_out_wait_cancelled_at_once_leaves_no_pending_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = CancelOnClose()
    service = ApprovalService(backend=backend)
    request = await service.request_approval(ACTION, "add")
    with trio.CancelScope() as scope:
        backend.scope = scope
        with pytest.raises(TimeoutError):
            await service.await_decision(request.id, timeout_seconds=5)
    assert trio.current_time() == 5
    assert request.status is ApprovalStatus.EXPIRED
    assert await service.get_pending_requests() == []
