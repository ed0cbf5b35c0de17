"""A tool that waits for a human's approval, runs, and is undone, in virtual time.

The ``rename`` stage asks an AdvancedToolExecutor to rename a document. The tool is
registered with ``requires_approval=True``, so the executor files an approval request
(``approval.requested``) and waits for a decision. The ``reviewer`` stage, another task
of the same run, stands in for the human (in an application: a UI handler or a chat
command answering from another task): 750 ms later, it approves the pending request it
finds. The tool then runs at once
(``approval.decided``, ``tool.started``, ``tool.completed``) and the executor stores
what it needs to reverse the call (its undo metadata). Finally the ``undo`` stage calls
``undo_action``: the old title is back and ``tool.undone`` is emitted.

Had the run been cancelled while the tool was waiting (a deadline, Ctrl-C, a failing
sibling), the request would have become CANCELLED: no pending request, no task left.

Run it: ``python -m stageflow_trio.examples tool_approval`` (on a MockClock, so it takes
no real time), or with a live view: ``stageflow-trio run stageflow_trio.examples.tool_approval``.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import EventSink, get_event_sink, set_event_sink
from stageflow_trio.examples import _run_main
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.testing import create_test_stage_context
from stageflow_trio.tools import (
    AdvancedToolExecutor,
    ApprovalService,
    ToolDefinition,
    ToolInput,
    ToolOutput,
    UndoMetadata,
    UndoStore,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["RenameAction", "TimedSink", "Workspace", "build_pipeline", "main", "tool_events_to"]

REVIEW_AFTER_S = 0.75


class RenameAction(NamedTuple):
    """An action as the executor takes it: an id, a type and a payload."""

    id: uuid.UUID
    type: str
    payload: dict[str, str]


class Workspace:
    """A document, and the approval service and executor that guard changes to it."""

    def __init__(self, title: str = "Draft notes") -> None:
        self.document: dict[str, str] = {"title": title}
        self.approvals: ApprovalService = ApprovalService()
        self.executor: AdvancedToolExecutor = AdvancedToolExecutor(
            undo_store=UndoStore(), approval_service=self.approvals
        )
        self.executor.register(
            ToolDefinition(
                name="rename_document",
                action_type="RENAME_DOCUMENT",
                handler=self._rename,
                requires_approval=True,
                approval_message="Rename the document?",
                undoable=True,
                undo_handler=self._restore,
            )
        )

    async def _rename(self, tool_input: ToolInput) -> ToolOutput:
        await trio.lowlevel.checkpoint()
        before = self.document["title"]
        self.document["title"] = tool_input.payload["title"]
        # What undo needs, stored by the executor under the action's id.
        return ToolOutput.ok(
            data={"title": self.document["title"]}, undo_metadata={"title": before}
        )

    async def _restore(self, metadata: UndoMetadata) -> None:
        await trio.lowlevel.checkpoint()
        self.document["title"] = metadata.undo_data["title"]


@contextmanager
def tool_events_to(sink: EventSink | None) -> Iterator[None]:
    """Send the executor's events (it emits to the global sink) to the stage's sink.

    The global sink is a context variable: setting it reaches the task the stage runs in,
    which may also run the stages after it (and, for a first stage, is the caller's), so
    what was there is put back afterwards. Without a stage sink, nothing changes.
    """
    previous = get_event_sink()
    set_event_sink(sink if sink is not None else previous)
    try:
        yield
    finally:
        set_event_sink(previous)


def build_pipeline(workspace: Workspace | None = None) -> Pipeline:
    """rename (waits for approval) and reviewer in parallel, then undo."""
    space = workspace if workspace is not None else Workspace()

    async def rename(ctx: StageContext) -> StageOutput:
        action = RenameAction(uuid.uuid4(), "RENAME_DOCUMENT", {"title": "Q3 plan"})
        with tool_events_to(ctx.event_sink):
            output = await space.executor.execute(action, ctx)
        return StageOutput.ok(
            action_id=str(action.id), title=space.document["title"], ok=output.success
        )

    async def reviewer(ctx: StageContext) -> StageOutput:
        # The human looks at the queue of requests after a while and approves what is there.
        await trio.sleep(REVIEW_AFTER_S)
        approved = []
        for request in await space.approvals.get_pending_requests():
            await space.approvals.record_decision(request.id, granted=True)
            approved.append(request.approval_message)
        return StageOutput.ok(approved=approved)

    async def undo(ctx: StageContext) -> StageOutput:
        action_id = uuid.UUID(ctx.inputs.get_from("rename", "action_id"))
        with tool_events_to(ctx.event_sink):
            undone = await space.executor.undo_action(action_id, ctx)
        return StageOutput.ok(undone=undone, title=space.document["title"])

    return (
        Pipeline(name="tool_approval")
        .with_stage("rename", rename, StageKind.WORK)
        .with_stage("reviewer", reviewer, StageKind.WORK)
        .with_stage("undo", undo, StageKind.WORK, dependencies=("rename", "reviewer"))
    )


class TimedSink:
    """An event sink that keeps the tool and approval events, with the time, and prints them."""

    def __init__(self) -> None:
        self.started: float = trio.current_time()
        self.log: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:
        await trio.lowlevel.checkpoint()
        self.try_emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:
        if type.startswith(("tool.", "approval.")):
            line = f"[t={trio.current_time() - self.started:.2f}s] {type}"
            self.log.append(line)
            print(line)


async def main() -> dict[str, Any]:
    workspace = Workspace()
    graph = build_pipeline(workspace).build()
    sink = TimedSink()
    results = await graph.run(create_test_stage_context(event_sink=sink))
    print(f"renamed to {results['rename'].data['title']!r}, then undone:")
    print(f"the title is {workspace.document['title']!r} again")
    pending = await workspace.approvals.get_pending_requests()
    print(f"pending approval requests: {len(pending)}")
    return {
        "results": results,
        "log": sink.log,
        "title": workspace.document["title"],
        "pending": pending,
    }


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main, clock=trio.testing.MockClock(autojump_threshold=0))
