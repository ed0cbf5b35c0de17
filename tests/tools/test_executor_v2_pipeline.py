"""End to end: a pipeline stage runs a tool that needs approval; cancelling it while it waits."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import set_event_sink
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context
from stageflow_trio.tools.approval import ApprovalService, ApprovalStatus, InMemoryApprovalBackend
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor
from stageflow_trio.tools.undo import UndoStore
from tests.tools.test_executor_v2 import ACTION, REQ, RUN, Act, Document, edit_tool


def all_tasks() -> list[trio.lowlevel.Task]:
    """Every task alive in this trio run."""
    tasks = []
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        assert task is not None
        tasks.append(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return tasks


class Setup:
    def __init__(self) -> None:
        self.doc = Document()
        self.service = ApprovalService()
        self.store = UndoStore()
        self.tools = AdvancedToolExecutor(undo_store=self.store, approval_service=self.service)
        self.tools.register(edit_tool(self.doc, requires_approval=True))
        self.sink = RecordingEventSink()
        set_event_sink(self.sink)
        self.ctx = create_test_stage_context(
            pipeline_run_id=RUN, request_id=REQ, execution_mode="doc_edit"
        )

    async def apply_edit(self, ctx: StageContext) -> StageOutput:
        output = await self.tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "final"}), ctx)
        assert output.data is not None
        return StageOutput.ok(text=output.data["text"])

    def tool_events(self) -> list[str]:
        return [t for t in self.sink.types() if t.startswith(("tool.", "approval."))]


async def approve(service: ApprovalService, after: float) -> None:
    await trio.sleep(after)
    [request] = await service.get_pending_requests(RUN)
    await service.record_decision(request.id, True)


async def test_a_stage_runs_a_tool_approved_by_another_task_then_undoes_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    setup = Setup()
    graph = Pipeline().with_stage("apply", setup.apply_edit, StageKind.TRANSFORM).build()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(approve, setup.service, 4)
        results = await graph.run(setup.ctx)
    assert results["apply"].data == {"text": "final"}
    assert setup.doc.text == "final"
    assert setup.doc.calls == [(4.0, "edit")]
    metadata = await setup.store.get(ACTION)
    assert metadata is not None
    assert (metadata.tool_name, metadata.undo_data) == ("edit_document", {"before": "draft"})
    assert setup.tool_events() == [
        "tool.invoked",
        "approval.requested",
        "approval.decided",
        "tool.started",
        "tool.completed",
    ]
    # The ids and mode come from the stage's context.
    invoked = setup.sink.of_type("tool.invoked")[0]
    assert invoked is not None
    assert (invoked["pipeline_run_id"], invoked["request_id"], invoked["behavior"]) == (
        str(RUN),
        str(REQ),
        "doc_edit",
    )

    assert await setup.tools.undo_action(ACTION, setup.ctx) is True
    assert setup.doc.text == "draft"
    assert setup.doc.calls[-1] == (5.75, "undo")
    assert await setup.store.get(ACTION) is None
    assert setup.tool_events()[-1] == "tool.undone"


async def _cancelled_while_waiting(setup: Setup, run: Any) -> None:
    before = len(all_tasks())
    await run()
    assert len(all_tasks()) == before  # no task left behind
    assert await setup.service.get_pending_requests() == []
    [request] = _memory(setup.service)._requests.values()
    assert request.status is ApprovalStatus.CANCELLED
    assert setup.doc.calls == []
    assert setup.doc.text == "draft"
    assert len(setup.store) == 0
    assert setup.tool_events() == ["tool.invoked", "approval.requested"]


async def test_cancelling_the_run_while_it_waits_for_approval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    setup = Setup()
    graph = Pipeline().with_stage("apply", setup.apply_edit, StageKind.TRANSFORM).build()

    async def run() -> None:
        with trio.move_on_after(10) as scope:
            await graph.run(setup.ctx)
        assert scope.cancelled_caught
        assert trio.current_time() == 10

    await _cancelled_while_waiting(setup, run)


async def test_a_failing_sibling_cancels_the_wait_for_approval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    setup = Setup()

    async def fail_later(ctx: StageContext) -> StageOutput:
        await trio.sleep(2)
        raise RuntimeError("sibling failed")

    graph = (
        Pipeline()
        .with_stage("apply", setup.apply_edit, StageKind.TRANSFORM)
        .with_stage("other", fail_later, StageKind.TRANSFORM)
        .build()
    )

    async def run() -> None:
        with pytest.raises(UnifiedStageExecutionError):
            await graph.run(setup.ctx)
        assert trio.current_time() == 2

    await _cancelled_while_waiting(setup, run)


async def test_a_decision_after_the_cancel_changes_nothing_that_ran(
    autojump_clock: trio.testing.MockClock,
) -> None:
    setup = Setup()
    with trio.move_on_after(1):
        await setup.tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "x"}), setup.ctx)
    [request] = _memory(setup.service)._requests.values()
    assert await setup.service.cancel_request(request.id) is False  # already cancelled
    await setup.service.record_decision(request.id, True)  # too late: nothing runs
    await trio.sleep(100)
    assert setup.doc.calls == []


class BlockingSink(RecordingEventSink):
    """Records events; ``approval.requested`` never finishes emitting."""

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await super().emit(type=type, data=data)
        if type == "approval.requested":
            await trio.sleep_forever()


async def test_cancelled_while_emitting_approval_requested_cancels_the_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    setup = Setup()
    set_event_sink(BlockingSink())
    with trio.move_on_after(2):
        await setup.tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "x"}), setup.ctx)
    [request] = _memory(setup.service)._requests.values()
    assert request.status is ApprovalStatus.CANCELLED
    assert await setup.service.get_pending_requests() == []
    assert trio.current_time() == 2


class StuckApprovals(ApprovalService):
    """A replacement service whose waits fail and whose cancel never returns."""

    async def await_decision(
        self, request_id: uuid.UUID, timeout_seconds: float | None = None
    ) -> Any:
        raise ConnectionError("approvals backend down")

    async def cancel_request(self, request_id: uuid.UUID) -> bool:
        await trio.sleep_forever()


async def test_a_blocking_cancel_is_bounded_and_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    setup = Setup()
    tools = AdvancedToolExecutor(undo_store=UndoStore(), approval_service=StuckApprovals())
    tools.register(edit_tool(setup.doc, requires_approval=True))
    with (
        caplog.at_level(logging.WARNING, logger="stageflow_trio.tools.executor"),
        pytest.raises(ConnectionError, match=r"^approvals backend down$"),
    ):
        await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "x"}), setup.ctx)
    assert trio.current_time() == 5.0
    [record] = caplog.records
    assert record.getMessage().startswith("Gave up cancelling approval request ")
    assert record.getMessage().endswith(" after 5.0 s")
    assert setup.doc.calls == []


def _memory(service: ApprovalService) -> InMemoryApprovalBackend:
    """The service's default backend, whose internals these tests look at."""
    backend = service.backend
    assert isinstance(backend, InMemoryApprovalBackend)
    return backend
