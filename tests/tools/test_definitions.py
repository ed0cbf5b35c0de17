"""Tests for stageflow_trio.tools.definitions: ToolDefinition, ToolInput, ToolOutput, UndoMetadata."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import ModuleType
from typing import Any

import attrs
import pytest

from stageflow_trio.tools import definitions
from stageflow_trio.tools.adapters import DictContextAdapter
from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput, UndoMetadata

ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQ = uuid.UUID("22222222-2222-4222-8222-222222222222")


@attrs.frozen
class Act:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


async def handler(tool_input: ToolInput) -> ToolOutput:
    return ToolOutput.ok()


async def undo(metadata: UndoMetadata) -> None:
    return None


def test_all_matches_the_reference(reference: ModuleType) -> None:
    assert sorted(definitions.__all__) == sorted(reference.tools.definitions.__all__)


def test_tool_definition_defaults_and_to_dict() -> None:
    tool = ToolDefinition(name="edit", action_type="EDIT", handler=handler)
    assert tool.to_dict() == {
        "name": "edit",
        "action_type": "EDIT",
        "description": "",
        "input_schema": {},
        "allowed_behaviors": [],
        "requires_approval": False,
        "approval_message": None,
        "undoable": False,
        "artifact_type": None,
    }
    assert tool.undo_handler is None


def test_tool_definition_to_dict_leaves_out_the_handlers() -> None:
    tool = ToolDefinition(
        "edit",
        "EDIT",
        handler,
        description="Edit a doc",
        input_schema={"type": "object"},
        allowed_behaviors=["doc_edit", "practice"],  # any iterable
        requires_approval=True,
        approval_message="Edit it?",
        undoable=True,
        undo_handler=undo,
        artifact_type="document",
    )
    assert tool.allowed_behaviors == ("doc_edit", "practice")
    assert tool.to_dict() == {
        "name": "edit",
        "action_type": "EDIT",
        "description": "Edit a doc",
        "input_schema": {"type": "object"},
        "allowed_behaviors": ["doc_edit", "practice"],
        "requires_approval": True,
        "approval_message": "Edit it?",
        "undoable": True,
        "artifact_type": "document",
    }


@pytest.mark.parametrize(
    ("allowed", "behavior", "expected"),
    [
        ((), None, True),
        ((), "anything", True),
        (("doc_edit",), "doc_edit", True),
        (("doc_edit",), "practice", False),
        (("doc_edit",), None, False),
        (("doc_edit",), "doc", False),
    ],
)
def test_is_behavior_allowed(
    allowed: tuple[str, ...], behavior: str | None, expected: bool
) -> None:
    tool = ToolDefinition("t", "T", handler, allowed_behaviors=allowed)
    assert tool.is_behavior_allowed(behavior) is expected


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": 1}, TypeError, "ToolDefinition: name must be a str; got int"),
        (
            {"action_type": None},
            TypeError,
            "ToolDefinition: action_type must be a str; got NoneType",
        ),
        ({"handler": "h"}, TypeError, "ToolDefinition: handler must be a callable; got str"),
        (
            {"description": None},
            TypeError,
            "ToolDefinition: description must be a str; got NoneType",
        ),
        (
            {"allowed_behaviors": "doc_edit"},
            TypeError,
            "ToolDefinition: allowed_behaviors must be a tuple of str; got str",
        ),
        (
            {"allowed_behaviors": 3},
            TypeError,
            "ToolDefinition: allowed_behaviors must be a tuple of str; got int",
        ),
        (
            {"allowed_behaviors": ("a", 1)},
            TypeError,
            "ToolDefinition: allowed_behaviors item must be a str; got int",
        ),
        (
            {"requires_approval": "yes"},
            TypeError,
            "ToolDefinition: requires_approval must be a bool; got str",
        ),
        ({"undoable": 1}, TypeError, "ToolDefinition: undoable must be a bool; got int"),
        (
            {"undo_handler": 5},
            TypeError,
            "ToolDefinition: undo_handler must be a callable or None; got int",
        ),
        (
            {"approval_message": 5},
            TypeError,
            "ToolDefinition: approval_message must be a str; got int",
        ),
    ],
)
def test_tool_definition_rejects_bad_fields(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    fields: dict[str, Any] = {"name": "t", "action_type": "T", "handler": handler, **kwargs}
    with pytest.raises(error, match=f"^{message}$"):
        ToolDefinition(**fields)


def test_tool_input_from_action_with_a_context() -> None:
    payload = {"doc": "d1"}
    ctx = DictContextAdapter(
        {"pipeline_run_id": str(RUN), "request_id": str(REQ), "execution_mode": "practice"}
    )
    tool_input = ToolInput.from_action(Act(ACTION, "EDIT", payload), "edit", ctx)
    assert tool_input == ToolInput(ACTION, "edit", payload, "practice", RUN, REQ)
    assert tool_input.payload is payload  # the action's own dict, as in the reference
    assert tool_input.to_dict() == {
        "action_id": str(ACTION),
        "tool_name": "edit",
        "payload": {"doc": "d1"},
        "behavior": "practice",
        "pipeline_run_id": str(RUN),
        "request_id": str(REQ),
    }


def test_tool_input_from_action_without_a_context() -> None:
    tool_input = ToolInput.from_action(Act(ACTION, "EDIT", {}), "edit")
    assert (tool_input.behavior, tool_input.pipeline_run_id, tool_input.request_id) == (
        None,
        None,
        None,
    )
    assert tool_input.to_dict() == {
        "action_id": str(ACTION),
        "tool_name": "edit",
        "payload": {},
        "behavior": None,
        "pipeline_run_id": None,
        "request_id": None,
    }


def test_tool_output_ok_and_fail() -> None:
    assert ToolOutput.ok() == ToolOutput(success=True)
    assert ToolOutput.ok({"a": 1}, [{"k": 1}], {"u": 2}) == ToolOutput(
        True, {"a": 1}, None, [{"k": 1}], {"u": 2}
    )
    assert ToolOutput.fail("boom") == ToolOutput(success=False, error="boom")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (ToolOutput.ok(), {"success": True}),
        (ToolOutput.fail("boom"), {"success": False, "error": "boom"}),
        (
            ToolOutput.ok(data={}, artifacts=[], undo_metadata={}),
            {"success": True, "data": {}, "artifacts": [], "undo_metadata": {}},
        ),
        (
            ToolOutput(True, {"a": 1}, "e", [{"k": 1}], {"u": 2}),
            {
                "success": True,
                "data": {"a": 1},
                "error": "e",
                "artifacts": [{"k": 1}],
                "undo_metadata": {"u": 2},
            },
        ),
    ],
)
def test_tool_output_to_dict_omits_absent_fields(
    output: ToolOutput, expected: dict[str, Any]
) -> None:
    assert output.to_dict() == expected


def test_undo_metadata_round_trip() -> None:
    metadata = UndoMetadata(ACTION, "edit", {"before": "x"}, "2026-01-02T03:04:05+00:00")
    assert metadata.to_dict() == {
        "action_id": str(ACTION),
        "tool_name": "edit",
        "undo_data": {"before": "x"},
        "created_at": "2026-01-02T03:04:05+00:00",
    }
    assert UndoMetadata.from_dict(metadata.to_dict()) == metadata


def test_undo_metadata_created_at_defaults_to_now() -> None:
    before = datetime.now().astimezone()
    made = UndoMetadata(ACTION, "edit", {})
    parsed = UndoMetadata.from_dict({"action_id": str(ACTION), "tool_name": "e", "undo_data": {}})
    after = datetime.now().astimezone()
    for created_at in (made.created_at, parsed.created_at):
        stamp = datetime.fromisoformat(created_at)
        assert stamp.utcoffset() is not None
        assert before <= stamp <= after
    assert parsed.action_id == ACTION


def test_undo_metadata_from_dict_bad_input() -> None:
    with pytest.raises(KeyError, match=r"^'tool_name'$"):
        UndoMetadata.from_dict({"action_id": str(ACTION), "undo_data": {}})
    with pytest.raises(ValueError, match=r"^badly formed hexadecimal UUID string$"):
        UndoMetadata.from_dict({"action_id": "x", "tool_name": "e", "undo_data": {}})


def test_matches_the_reference_serialization(reference: ModuleType) -> None:
    ref = reference.tools.definitions
    ctx = DictContextAdapter({"pipeline_run_id": str(RUN), "execution_mode": "m"})
    action = Act(ACTION, "EDIT", {"x": 1})
    assert (
        ToolInput.from_action(action, "edit", ctx).to_dict()
        == ref.ToolInput.from_action(action, "edit", ctx).to_dict()
    )
    for ours, theirs in [
        (ToolOutput.ok({"a": 1}), ref.ToolOutput.ok({"a": 1})),
        (ToolOutput.fail("e"), ref.ToolOutput.fail("e")),
        (ToolOutput.ok(artifacts=[]), ref.ToolOutput.ok(artifacts=[])),
    ]:
        assert ours.to_dict() == theirs.to_dict()
    kwargs: dict[str, Any] = {
        "name": "edit",
        "action_type": "EDIT",
        "handler": handler,
        "allowed_behaviors": ("a", "b"),
        "requires_approval": True,
        "undoable": True,
        "artifact_type": "doc",
    }
    assert ToolDefinition(**kwargs).to_dict() == ref.ToolDefinition(**kwargs).to_dict()
    data = {"action_id": str(ACTION), "tool_name": "t", "undo_data": {"a": 1}, "created_at": "c"}
    assert UndoMetadata.from_dict(data).to_dict() == ref.UndoMetadata.from_dict(data).to_dict()
