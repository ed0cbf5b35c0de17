"""Tests for stageflow_trio.tools.executor_v2: the event sequence, gating, approval, undo."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from types import MappingProxyType, ModuleType
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.events import set_event_sink
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.tools import executor_v2
from stageflow_trio.tools.adapters import DictContextAdapter
from stageflow_trio.tools.approval import ApprovalService, ApprovalStatus, get_approval_service
from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput, UndoMetadata
from stageflow_trio.tools.errors import (
    ToolApprovalDeniedError,
    ToolApprovalTimeoutError,
    ToolDeniedError,
    ToolExecutionError,
    ToolNotFoundError,
    ToolUndoError,
)
from stageflow_trio.tools.executor_v2 import (
    AdvancedToolExecutor,
    ExecutionResult,
    ToolExecutorConfig,
)
from stageflow_trio.tools.undo import UndoStore, get_undo_store
from tests.fakes import FailingSink

ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQ = uuid.UUID("22222222-2222-4222-8222-222222222222")
LOGGER = "stageflow_trio.tools.executor"


@attrs.frozen
class Act:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


def make_ctx(mode: str | None = "doc_edit") -> DictContextAdapter:
    return DictContextAdapter(
        {"pipeline_run_id": str(RUN), "request_id": str(REQ), "execution_mode": mode}
    )


IDS: dict[str, Any] = {
    "tool_name": "edit_document",
    "action_id": str(ACTION),
    "pipeline_run_id": str(RUN),
    "request_id": str(REQ),
}


class Document:
    """The state a tool changes and its undo restores."""

    def __init__(self) -> None:
        self.text = "draft"
        self.calls: list[tuple[float, str]] = []

    async def edit(self, tool_input: ToolInput) -> ToolOutput:
        self.calls.append((trio.current_time(), "edit"))
        await trio.sleep(1.5)
        before, self.text = self.text, tool_input.payload["text"]
        return ToolOutput.ok(data={"text": self.text}, undo_metadata={"before": before})

    async def undo(self, metadata: UndoMetadata) -> None:
        await trio.sleep(0.25)
        self.calls.append((trio.current_time(), "undo"))
        self.text = metadata.undo_data["before"]


def edit_tool(doc: Document, **kwargs: Any) -> ToolDefinition:
    fields: dict[str, Any] = {
        "name": "edit_document",
        "action_type": "EDIT_DOCUMENT",
        "handler": doc.edit,
        "undoable": True,
        "undo_handler": doc.undo,
        **kwargs,
    }
    return ToolDefinition(**fields)


@pytest.fixture
def sink() -> RecordingEventSink:
    recorder = RecordingEventSink()
    set_event_sink(recorder)
    return recorder


def payloads(sink: RecordingEventSink) -> list[tuple[str, dict[str, Any]]]:
    """The recorded events with their timestamps checked (ISO 8601, UTC) and removed."""
    result = []
    for event_type, data in sink.events:
        assert data is not None
        rest = dict(data)
        offset = datetime.fromisoformat(rest.pop("timestamp")).utcoffset()
        assert offset is not None
        assert offset.total_seconds() == 0
        result.append((event_type, rest))
    return result


def executor(**config: Any) -> AdvancedToolExecutor:
    return AdvancedToolExecutor(
        ToolExecutorConfig(**config), undo_store=UndoStore(), approval_service=ApprovalService()
    )


def test_all_matches_the_reference(reference: ModuleType) -> None:
    assert sorted(executor_v2.__all__) == sorted(reference.tools.executor_v2.__all__)


def test_config_and_result_defaults_match_the_reference(reference: ModuleType) -> None:
    ref = reference.tools.executor_v2
    ours = attrs.asdict(ToolExecutorConfig())
    # The concurrency limits are additions (off by default); the reference's fields come
    # first, in its order, so its positional calls mean the same here.
    assert ours == {
        **vars(ref.ToolExecutorConfig()),
        "max_concurrent": None,
        "max_concurrent_per_tool": None,
    }
    assert list(ours)[:4] == list(vars(ref.ToolExecutorConfig()))
    assert attrs.asdict(ExecutionResult(True), recurse=False) == vars(ref.ExecutionResult(True))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"approval_timeout_seconds": -1},
            ValueError,
            "ToolExecutorConfig: approval_timeout_seconds must be >= 0; got -1",
        ),
        (
            {"undo_ttl_seconds": "1"},
            TypeError,
            "ToolExecutorConfig: undo_ttl_seconds must be a number; got str",
        ),
        ({"emit_events": 1}, TypeError, "ToolExecutorConfig: emit_events must be a bool; got int"),
        ({"log_level": 1.0}, TypeError, "ToolExecutorConfig: log_level must be an int; got float"),
    ],
)
def test_config_rejects_bad_values(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{message}$"):
        ToolExecutorConfig(**kwargs)


def test_constructor_and_register_reject_bad_input() -> None:
    with pytest.raises(
        TypeError,
        match=r"^AdvancedToolExecutor: config must be a ToolExecutorConfig or None; got dict$",
    ):
        AdvancedToolExecutor({})  # type: ignore[arg-type]  # the wrong type on purpose
    with pytest.raises(
        TypeError,
        match=r"^AdvancedToolExecutor.register: tool must be a ToolDefinition; got str$",
    ):
        executor().register("edit")  # type: ignore[arg-type]  # the wrong type on purpose


async def test_defaults_are_the_process_wide_store_and_service() -> None:
    tools = AdvancedToolExecutor()
    assert tools.config == ToolExecutorConfig()
    assert tools._undo_store is get_undo_store()
    assert tools._approval_service is get_approval_service()
    # An empty store is falsy (it has __len__): it is still the one used.
    mine = UndoStore()
    assert AdvancedToolExecutor(undo_store=mine)._undo_store is mine


def test_register_get_tool_and_can_execute() -> None:
    doc = Document()
    tools = executor()
    first = edit_tool(doc)
    tools.register(first)
    assert tools.get_tool("EDIT_DOCUMENT") is first
    assert tools.can_execute("EDIT_DOCUMENT")
    assert not tools.can_execute("edit_document")  # keyed by action type
    assert tools.get_tool("nope") is None
    second = edit_tool(doc, name="other")
    tools.register(second)
    assert tools.get_tool("EDIT_DOCUMENT") is second


async def test_success_emits_invoked_started_completed(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    doc = Document()
    tools = executor()
    tools.register(edit_tool(doc))
    output = await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "final"}), make_ctx())
    assert output == ToolOutput.ok(data={"text": "final"}, undo_metadata={"before": "draft"})
    assert payloads(sink) == [
        ("tool.invoked", {**IDS, "payload_summary": {"text": "final"}, "behavior": "doc_edit"}),
        ("tool.started", IDS),
        (
            "tool.completed",
            {
                **IDS,
                "duration_ms": 1500.0,
                "output_summary": {
                    "success": True,
                    "has_data": True,
                    "has_error": False,
                    "has_artifacts": False,
                    "has_undo_metadata": True,
                },
                "artifacts_count": 0,
            },
        ),
    ]


async def test_unknown_action_type(sink: RecordingEventSink) -> None:
    with (
        trio.testing.assert_checkpoints(),
        pytest.raises(ToolNotFoundError, match=r"^No tool registered for action type: NOPE$"),
    ):
        await executor().execute(Act(ACTION, "NOPE", {}), make_ctx())
    assert sink.events == []


async def test_behavior_gating_denies(sink: RecordingEventSink) -> None:
    doc = Document()
    tools = executor()
    tools.register(edit_tool(doc, allowed_behaviors=("doc_edit", "review")))
    with pytest.raises(ToolDeniedError) as info:
        await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "x"}), make_ctx("practice"))
    assert info.value.to_dict() == {
        "error_type": "ToolDeniedError",
        "message": "Tool 'edit_document' denied: current behavior 'practice' not in allowed"
        " behaviors ('doc_edit', 'review')",
        "tool": "edit_document",
        "behavior": "practice",
        "allowed_behaviors": ["doc_edit", "review"],
    }
    assert doc.calls == []
    assert payloads(sink) == [
        ("tool.invoked", {**IDS, "payload_summary": {"text": "x"}, "behavior": "practice"}),
        (
            "tool.denied",
            {
                **IDS,
                "reason": "behavior_not_allowed",
                "behavior": "practice",
                "allowed_behaviors": ["doc_edit", "review"],
            },
        ),
    ]


async def approve_when_asked(service: ApprovalService, granted: bool, after: float) -> None:
    """Another task: waits ``after`` seconds, then decides the one pending request."""
    await trio.sleep(after)
    [request] = await service.get_pending_requests()
    await service.record_decision(request.id, granted)


async def test_approval_granted_by_another_task(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    doc = Document()
    service = ApprovalService()
    tools = AdvancedToolExecutor(undo_store=UndoStore(), approval_service=service)
    tools.register(edit_tool(doc, requires_approval=True))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(approve_when_asked, service, True, 4)
        await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "final"}), make_ctx())
    assert doc.calls == [(4.0, "edit")]  # ran at the moment of the decision
    events = payloads(sink)
    assert [event_type for event_type, _ in events] == [
        "tool.invoked",
        "approval.requested",
        "approval.decided",
        "tool.started",
        "tool.completed",
    ]
    request_id = events[1][1]["request_id"]
    assert events[1][1] == {
        "request_id": request_id,
        "tool_name": "edit_document",
        "action_id": str(ACTION),
        "pipeline_run_id": str(RUN),
        "approval_message": "Approve edit_document?",
    }
    assert events[2][1] == {
        "request_id": request_id,
        "tool_name": "edit_document",
        "action_id": str(ACTION),
        "decision": "approved",
        "decided_by": None,
        "pipeline_run_id": str(RUN),
    }
    request = await service.get_request(uuid.UUID(request_id))
    assert request is not None
    assert request.status is ApprovalStatus.APPROVED
    assert request.payload_summary == {"text": "final"}


async def test_approval_denied(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    doc = Document()
    service = ApprovalService()
    tools = AdvancedToolExecutor(undo_store=UndoStore(), approval_service=service)
    tools.register(edit_tool(doc, requires_approval=True, approval_message="Overwrite the doc?"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(approve_when_asked, service, False, 1)
        with pytest.raises(ToolApprovalDeniedError) as info:
            await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "x"}), make_ctx())
    assert type(info.value) is ToolApprovalDeniedError
    assert (info.value.request_id, info.value.reason) == (None, "user_denied")
    assert doc.calls == []
    events = payloads(sink)
    assert [event_type for event_type, _ in events] == [
        "tool.invoked",
        "approval.requested",
        "approval.decided",
    ]
    assert events[1][1]["approval_message"] == "Overwrite the doc?"
    assert events[2][1]["decision"] == "denied"


async def test_approval_timeout_at_exactly_the_configured_second(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    doc = Document()
    service = ApprovalService()
    tools = AdvancedToolExecutor(
        ToolExecutorConfig(approval_timeout_seconds=30), UndoStore(), service
    )
    tools.register(edit_tool(doc, requires_approval=True))
    with pytest.raises(ToolApprovalTimeoutError) as info:
        await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "x"}), make_ctx())
    assert trio.current_time() == 30.0
    events = payloads(sink)
    request_id = uuid.UUID(events[1][1]["request_id"])
    assert info.value.to_dict() == {
        "error_type": "ToolApprovalTimeoutError",
        "message": "Tool 'edit_document' approval denied: timeout",
        "tool": "edit_document",
        "request_id": str(request_id),
        "reason": "timeout",
        "timeout_seconds": 30,
    }
    assert type(info.value.__cause__) is TimeoutError
    assert [event_type for event_type, _ in events] == [
        "tool.invoked",
        "approval.requested",
        "tool.denied",
    ]
    assert events[2][1] == {
        **IDS,
        "reason": "approval_timeout",
        "behavior": "doc_edit",
        "allowed_behaviors": [],
    }
    request = await service.get_request(request_id)
    assert request is not None
    assert request.status is ApprovalStatus.EXPIRED
    assert doc.calls == []


async def test_handler_exception_emits_failed_and_raises(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    async def broken(tool_input: ToolInput) -> ToolOutput:
        await trio.sleep(0.5)
        raise ValueError("disk full")

    tools = executor()
    tools.register(ToolDefinition("edit_document", "EDIT_DOCUMENT", broken))
    with pytest.raises(ToolExecutionError) as info:
        await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {}), make_ctx())
    assert str(info.value) == "Tool 'edit_document' execution failed: disk full"
    assert info.value.action_id == ACTION
    assert isinstance(info.value.cause, ValueError)
    assert info.value.__cause__ is info.value.cause
    assert payloads(sink)[1:] == [
        ("tool.started", IDS),
        (
            "tool.failed",
            {**IDS, "duration_ms": 500.0, "error_code": "ValueError", "error_message": "disk full"},
        ),
    ]


async def test_a_failed_output_is_returned_and_stores_no_undo(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    async def refuses(tool_input: ToolInput) -> ToolOutput:
        return ToolOutput(success=False, error="no", undo_metadata={"x": 1}, artifacts=[{"a": 1}])

    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    tools.register(ToolDefinition("edit_document", "EDIT_DOCUMENT", refuses, undoable=True))
    output = await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {}), make_ctx())
    assert output.error == "no"
    assert len(store) == 0
    assert payloads(sink)[-1] == (
        "tool.completed",
        {
            **IDS,
            "duration_ms": 0.0,
            "output_summary": {
                "success": False,
                "has_data": False,
                "has_error": True,
                "has_artifacts": True,
                "has_undo_metadata": True,
            },
            "artifacts_count": 1,
        },
    )


@pytest.mark.parametrize(
    ("undoable", "success", "undo_metadata", "stored"),
    [
        (True, True, {"before": 1}, True),
        (False, True, {"before": 1}, False),
        (True, False, {"before": 1}, False),
        (True, True, None, False),
        (True, True, {}, False),  # empty: nothing to store, as in the reference
    ],
)
async def test_undo_metadata_is_stored_only_when_undoable_successful_and_present(
    autojump_clock: trio.testing.MockClock,
    undoable: bool,
    success: bool,
    undo_metadata: dict[str, Any] | None,
    stored: bool,
) -> None:
    async def run(tool_input: ToolInput) -> ToolOutput:
        return ToolOutput(success=success, undo_metadata=undo_metadata)

    store = UndoStore()
    tools = AdvancedToolExecutor(
        ToolExecutorConfig(undo_ttl_seconds=20),
        undo_store=store,
        approval_service=ApprovalService(),
    )
    tools.register(ToolDefinition("edit_document", "EDIT_DOCUMENT", run, undoable=undoable))
    await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {}), make_ctx())
    metadata = await store.get(ACTION)
    assert (metadata is not None) is stored
    if metadata is not None:
        assert (metadata.tool_name, metadata.undo_data) == ("edit_document", undo_metadata)
        await trio.sleep(20.001)  # the configured TTL
        assert await store.get(ACTION) is None


async def test_undo_restores_and_emits_undone(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    doc = Document()
    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    # Name and action type differ: the reference never finds such a tool to undo.
    tools.register(edit_tool(doc))
    await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "final"}), make_ctx())
    metadata = await store.get(ACTION)
    assert metadata is not None
    sink.events.clear()
    assert await tools.undo_action(ACTION, make_ctx()) is True
    assert doc.text == "draft"
    assert await store.get(ACTION) is None
    assert payloads(sink) == [
        (
            "tool.undone",
            {**IDS, "duration_ms": 250.0, "original_action_timestamp": metadata.created_at},
        )
    ]
    assert await tools.undo_action(ACTION, make_ctx()) is False  # already undone


async def test_undo_without_metadata_or_handler_returns_false(
    sink: RecordingEventSink, caplog: pytest.LogCaptureFixture
) -> None:
    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    with caplog.at_level(logging.WARNING, logger=LOGGER), trio.testing.assert_checkpoints():
        assert await tools.undo_action(ACTION, make_ctx()) is False
    await store.store(ACTION, "edit_document", {"before": 1})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert await tools.undo_action(ACTION, make_ctx()) is False  # no such tool
        tools.register(edit_tool(Document(), undo_handler=None))
        assert await tools.undo_action(ACTION, make_ctx()) is False  # no undo handler
    assert [r.getMessage() for r in caplog.records] == [
        f"No undo metadata found for action {ACTION}",
        "No undo handler for tool edit_document",
        "No undo handler for tool edit_document",
    ]
    assert sink.events == []
    assert await store.get(ACTION) is not None


async def test_undo_looks_the_tool_up_under_its_registration(sink: RecordingEventSink) -> None:
    doc = Document()
    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    tools.register(edit_tool(doc))
    await store.store(ACTION, "edit_document", {"before": "old"})
    # Another tool now holds the action type: the undo data's tool is gone.
    tools.register(edit_tool(doc, name="replacement"))
    assert await tools.undo_action(ACTION, make_ctx()) is False
    # A tool whose name equals another tool's action type is not confused with it.
    tools.register(edit_tool(doc, name="EDIT_DOCUMENT", action_type="edit_document"))
    assert await tools.undo_action(ACTION, make_ctx()) is False


async def test_undo_failure_emits_undo_failed_and_raises(sink: RecordingEventSink) -> None:
    async def broken_undo(metadata: UndoMetadata) -> None:
        raise OSError("read-only")

    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    tools.register(edit_tool(Document(), undo_handler=broken_undo))
    await store.store(ACTION, "edit_document", {"before": "old"})
    with pytest.raises(ToolUndoError) as info:
        await tools.undo_action(ACTION, make_ctx())
    assert info.value.to_dict() == {
        "error_type": "ToolUndoError",
        "message": f"Failed to undo action '{ACTION}' for tool 'edit_document': read-only",
        "tool": "edit_document",
        "action_id": str(ACTION),
        "reason": "read-only",
    }
    assert isinstance(info.value.__cause__, OSError)
    assert payloads(sink) == [
        ("tool.undo_failed", {**IDS, "error_message": "read-only", "reason": "OSError"})
    ]
    assert await store.get(ACTION) is not None  # kept for another try


async def test_emit_events_false_emits_nothing(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    async def broken_undo(metadata: UndoMetadata) -> None:
        raise OSError("read-only")

    async def broken(tool_input: ToolInput) -> ToolOutput:
        raise ValueError("x")

    doc = Document()
    tools = AdvancedToolExecutor(
        ToolExecutorConfig(emit_events=False, approval_timeout_seconds=1),
        undo_store=UndoStore(),
        approval_service=ApprovalService(),
    )
    tools.register(edit_tool(doc))
    await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "t"}), make_ctx())
    assert await tools.undo_action(ACTION, make_ctx()) is True
    tools.register(edit_tool(doc, allowed_behaviors=("other",)))
    with pytest.raises(ToolDeniedError):
        await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "t"}), make_ctx())
    tools.register(edit_tool(doc, requires_approval=True))
    with pytest.raises(ToolApprovalTimeoutError):
        await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "t"}), make_ctx())
    tools.register(ToolDefinition("b", "B", broken))
    with pytest.raises(ToolExecutionError):
        await tools.execute(Act(ACTION, "B", {}), make_ctx())
    tools.register(edit_tool(doc, undo_handler=broken_undo))
    await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "u"}), make_ctx())
    with pytest.raises(ToolUndoError):
        await tools.undo_action(ACTION, make_ctx())
    assert sink.events == []


async def test_approval_denial_without_events_still_raises(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    service = ApprovalService()
    tools = AdvancedToolExecutor(
        ToolExecutorConfig(emit_events=False), UndoStore(), approval_service=service
    )
    tools.register(edit_tool(Document(), requires_approval=True))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(approve_when_asked, service, False, 1)
        with pytest.raises(ToolApprovalDeniedError):
            await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "x"}), make_ctx())
    assert sink.events == []


async def test_a_broken_sink_is_logged_and_the_call_goes_on(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    set_event_sink(FailingSink("tool.started"))
    doc = Document()
    tools = executor()
    tools.register(edit_tool(doc))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {"text": "t"}), make_ctx())
    assert doc.text == "t"
    assert [r.getMessage() for r in caplog.records] == [
        "Failed to emit event tool.started: sink down"
    ]


async def test_a_sink_without_emit_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    set_event_sink(object())  # type: ignore[arg-type]  # not a sink, on purpose
    tools = executor()
    tools.register(ToolDefinition("t", "T", _ok))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await tools.execute(Act(ACTION, "T", {}), make_ctx())
    assert len(caplog.records) == 3
    assert caplog.records[0].getMessage().startswith("Failed to emit event tool.invoked: ")


async def _ok(tool_input: ToolInput) -> ToolOutput:
    return ToolOutput.ok()


async def test_payload_summary_shortens_long_values(sink: RecordingEventSink) -> None:
    tools = executor()
    tools.register(ToolDefinition("t", "T", _ok))
    payload = {
        "short": "s",
        "long": "x" * 201,
        "edge": "y" * 200,
        "items": list(range(100)),
        "few": [1, 2],
        "mapping": {str(i): i for i in range(50)},
        "number": 7,
    }
    await tools.execute(Act(ACTION, "T", payload), make_ctx())
    assert payloads(sink)[0][1]["payload_summary"] == {
        "short": "s",
        "long": "x" * 200 + "...",
        "edge": "y" * 200,
        "items": "<list with 100 items>",
        "few": [1, 2],
        "mapping": "<dict with 50 items>",
        "number": 7,
    }


async def test_execute_and_undo_are_checkpoints() -> None:
    tools = executor(emit_events=False)
    tools.register(ToolDefinition("t", "T", _ok, allowed_behaviors=("x",)))
    with trio.testing.assert_checkpoints(), pytest.raises(ToolDeniedError):
        await tools.execute(Act(ACTION, "T", {}), make_ctx())


async def test_a_cancelled_handler_propagates_without_failed_event(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    async def slow(tool_input: ToolInput) -> ToolOutput:
        await trio.sleep(100)
        return ToolOutput.ok()

    tools = executor()
    tools.register(ToolDefinition("t", "T", slow))
    with trio.move_on_after(3) as scope:
        await tools.execute(Act(ACTION, "T", {}), make_ctx())
    assert scope.cancelled_caught
    assert sink.types() == ["tool.invoked", "tool.started"]


# --- undo finds the tool that made the data -------------------------------------------------

SHEET_ACTION = uuid.UUID("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")


class SharedName:
    """Two tools called "edit", for EDIT_DOC and EDIT_SHEET, each with its own undo."""

    def __init__(self) -> None:
        self.undone: list[tuple[str, dict[str, Any]]] = []

    async def run(self, tool_input: ToolInput) -> ToolOutput:
        return ToolOutput.ok(undo_metadata={"before": tool_input.payload["v"]})

    def tool(self, action_type: str, name: str = "edit", undoable: bool = True) -> ToolDefinition:
        async def undo(metadata: UndoMetadata) -> None:
            self.undone.append((action_type, dict(metadata.undo_data)))

        return ToolDefinition(
            name=name,
            action_type=action_type,
            handler=self.run,
            undoable=undoable,
            undo_handler=undo if undoable else None,
        )


async def test_undo_runs_the_handler_of_the_action_type_that_made_the_data(
    sink: RecordingEventSink,
) -> None:
    tools, shared = executor(), SharedName()
    tools.register(shared.tool("EDIT_DOC"))
    tools.register(shared.tool("EDIT_SHEET"))
    await tools.execute(Act(ACTION, "EDIT_DOC", {"v": "doc text"}), make_ctx())
    await tools.execute(Act(SHEET_ACTION, "EDIT_SHEET", {"v": "cell"}), make_ctx())
    assert await tools.undo_action(ACTION, make_ctx()) is True
    assert await tools.undo_action(SHEET_ACTION, make_ctx()) is True
    assert shared.undone == [
        ("EDIT_DOC", {"before": "doc text"}),
        ("EDIT_SHEET", {"before": "cell"}),
    ]


async def test_undo_survives_the_other_same_named_tool_being_replaced(
    sink: RecordingEventSink,
) -> None:
    tools, shared = executor(), SharedName()
    tools.register(shared.tool("EDIT_DOC"))
    tools.register(shared.tool("EDIT_SHEET"))
    await tools.execute(Act(ACTION, "EDIT_DOC", {"v": "doc text"}), make_ctx())
    tools.register(shared.tool("EDIT_SHEET", name="sheet_editor"))
    assert await tools.undo_action(ACTION, make_ctx()) is True
    assert shared.undone == [("EDIT_DOC", {"before": "doc text"})]


async def test_undo_is_false_when_the_maker_was_replaced_by_a_tool_that_cannot_undo(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    shared = SharedName()
    tools.register(shared.tool("EDIT_DOC"))
    tools.register(shared.tool("EDIT_SHEET"))
    await tools.execute(Act(ACTION, "EDIT_DOC", {"v": "doc text"}), make_ctx())
    # Same name and action type, not undoable: EDIT_SHEET's undo must not stand in for it.
    tools.register(shared.tool("EDIT_DOC", undoable=False))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert await tools.undo_action(ACTION, make_ctx()) is False
    # Replaced by a tool of another name: gone.
    tools.register(shared.tool("EDIT_DOC", name="doc_editor"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert await tools.undo_action(ACTION, make_ctx()) is False
    assert shared.undone == []
    assert caplog.messages == ["No undo handler for tool edit", "No undo handler for tool edit"]
    assert await store.get(ACTION) is not None  # kept


async def test_undo_of_data_stored_elsewhere_needs_a_unique_tool_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    shared = SharedName()
    tools.register(shared.tool("EDIT_DOC"))
    tools.register(shared.tool("EDIT_SHEET"))
    # Stored by another executor (or process) sharing the store: only the name is known.
    await store.store(ACTION, "edit", {"before": "elsewhere"})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert await tools.undo_action(ACTION, make_ctx()) is False
    assert caplog.messages == [
        f"Undo data of action {ACTION} names tool edit, registered for several action types"
        " (EDIT_DOC, EDIT_SHEET): cannot tell which made it",
        "No undo handler for tool edit",
    ]
    tools.register(shared.tool("EDIT_SHEET", name="sheet_editor"))  # "edit" is unique again
    assert await tools.undo_action(ACTION, make_ctx()) is True
    assert shared.undone == [("EDIT_DOC", {"before": "elsewhere"})]


async def test_the_recorded_action_types_expire_with_the_undo_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tools, shared = executor(undo_ttl_seconds=10), SharedName()
    tools.register(shared.tool("EDIT_DOC"))
    first, second = uuid.uuid4(), uuid.uuid4()
    await tools.execute(Act(first, "EDIT_DOC", {"v": 1}), make_ctx())
    await trio.sleep(10)
    await tools.execute(Act(second, "EDIT_DOC", {"v": 2}), make_ctx())
    assert list(tools._undo_keys) == [first, second]  # first is valid up to its expiry instant
    await trio.sleep(0.5)
    await tools.execute(Act(ACTION, "EDIT_DOC", {"v": 3}), make_ctx())
    assert list(tools._undo_keys) == [second, ACTION]
    assert await tools.undo_action(second, make_ctx()) is True
    assert list(tools._undo_keys) == [ACTION]


# --- bad input fails at the call -------------------------------------------------------------


class DuckContext:
    """The three attributes the executor reads, nothing else."""

    def __init__(self, run_id: object) -> None:
        self.pipeline_run_id = run_id
        self.request_id = None
        self.execution_mode = "doc_edit"


EXECUTE = "AdvancedToolExecutor.execute"


@pytest.mark.parametrize(
    ("action", "ctx", "message"),
    [
        (None, make_ctx(), f"{EXECUTE}: action must be an Action (with id, type and payload); got NoneType"),
        (Act(ACTION, "EDIT_DOCUMENT", None), make_ctx(), f"{EXECUTE}: action.payload must be a mapping; got NoneType"),  # type: ignore[arg-type]
        (Act("abc", "EDIT_DOCUMENT", {}), make_ctx(), f"{EXECUTE}: action.id must be a UUID; got str"),  # type: ignore[arg-type]
        (Act(ACTION, ["EDIT_DOCUMENT"], {}), make_ctx(), f"{EXECUTE}: action.type must be a str; got list"),  # type: ignore[arg-type]
        (Act(ACTION, "EDIT_DOCUMENT", {}), {"execution_mode": "doc_edit"}, f"{EXECUTE}: ctx must be an ExecutionContext (wrap a dict with adapt_context()); got dict"),
        (Act(ACTION, "EDIT_DOCUMENT", {}), None, f"{EXECUTE}: ctx must be an ExecutionContext (with pipeline_run_id, request_id and execution_mode); got NoneType"),
        (Act(ACTION, "EDIT_DOCUMENT", {}), DuckContext(str(RUN)), f"{EXECUTE}: ctx.pipeline_run_id must be a UUID or None; got str"),
    ],
)  # fmt: skip
async def test_execute_rejects_bad_input_before_any_event(
    sink: RecordingEventSink, action: Any, ctx: Any, message: str
) -> None:
    doc = Document()
    tools = executor()
    tools.register(edit_tool(doc))
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        await tools.execute(action, ctx)
    assert (sink.events, doc.calls) == ([], [])


async def test_execute_takes_any_mapping_payload_and_a_duck_context(
    sink: RecordingEventSink,
) -> None:
    seen: list[Any] = []

    async def run(tool_input: ToolInput) -> ToolOutput:
        seen.append(tool_input.payload)
        return ToolOutput.ok()

    tools = executor()
    tools.register(ToolDefinition("t", "T", run))
    payload = MappingProxyType({"k": 1})
    await tools.execute(Act(ACTION, "T", payload), DuckContext(RUN))  # type: ignore[arg-type]
    assert seen == [payload]
    assert sink.types() == ["tool.invoked", "tool.started", "tool.completed"]


async def test_undo_action_rejects_a_bad_ctx_before_the_handler_runs(
    sink: RecordingEventSink,
) -> None:
    doc = Document()
    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    tools.register(edit_tool(doc))
    await store.store(ACTION, "edit_document", {"before": "old"})
    with pytest.raises(
        TypeError,
        match=r"^AdvancedToolExecutor\.undo_action: ctx must be an ExecutionContext "
        r"\(wrap a dict with adapt_context\(\)\); got dict$",
    ):
        await tools.undo_action(ACTION, {})  # type: ignore[arg-type]
    assert (sink.events, doc.calls, doc.text) == ([], [], "draft")
    assert await store.get(ACTION) is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"undo_store": {}},
            "AdvancedToolExecutor: undo_store must be an UndoStore or None (any object with"
            " store, get and delete methods); got dict",
        ),
        (
            {"approval_service": "x"},
            "AdvancedToolExecutor: approval_service must be an ApprovalService or None (any"
            " object with request_approval, await_decision and cancel_request methods); got str",
        ),
    ],
)
def test_constructor_rejects_a_store_or_service_without_their_methods(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        AdvancedToolExecutor(**kwargs)


def test_constructor_takes_a_replacement_store_and_service_that_do_not_subclass() -> None:
    class Store:
        async def store(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def get(self, action_id: uuid.UUID) -> None:
            pass

        async def delete(self, action_id: uuid.UUID) -> bool:
            return False

    class Service:
        async def request_approval(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def await_decision(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def cancel_request(self, request_id: uuid.UUID) -> bool:
            return False

    store, service = Store(), Service()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=service)  # type: ignore[arg-type]
    used: tuple[object, object] = (tools._undo_store, tools._approval_service)
    assert used[0] is store
    assert used[1] is service


async def test_undo_metadata_that_is_not_a_dict_fails_before_tool_completed(
    sink: RecordingEventSink,
) -> None:
    async def run(tool_input: ToolInput) -> ToolOutput:
        return ToolOutput.ok(undo_metadata=["before"])  # type: ignore[arg-type]

    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    tools.register(ToolDefinition("edit", "EDIT", run, undoable=True))
    with pytest.raises(ToolExecutionError) as info:
        await tools.execute(Act(ACTION, "EDIT", {}), make_ctx())
    message = "AdvancedToolExecutor: the undo_metadata of tool 'edit' must be a dict; got list"
    assert isinstance(info.value.__cause__, TypeError)
    assert str(info.value.__cause__) == message
    assert sink.types() == ["tool.invoked", "tool.started", "tool.failed"]
    assert await store.get_all() == []
