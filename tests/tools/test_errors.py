"""Tests for stageflow_trio.tools.errors: messages, to_dict keys, pickling, the reference."""

from __future__ import annotations

import pickle
import uuid
from types import ModuleType
from typing import Any

import pytest

from stageflow_trio.errors import StageflowError
from stageflow_trio.tools import errors
from stageflow_trio.tools.errors import (
    ToolApprovalDeniedError,
    ToolApprovalTimeoutError,
    ToolDeniedError,
    ToolError,
    ToolExecutionError,
    ToolNotFoundError,
    ToolUndoError,
)

ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
REQUEST = uuid.UUID("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")

CASES: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    (
        "ToolError",
        ("plain", "t"),
        {"error_type": "ToolError", "message": "plain", "tool": "t"},
    ),
    (
        "ToolNotFoundError",
        ("EDIT",),
        {
            "error_type": "ToolNotFoundError",
            "message": "No tool registered for action type: EDIT",
            "tool": "EDIT",
            "action_type": "EDIT",
        },
    ),
    (
        "ToolDeniedError",
        ("edit", "practice", ("doc_edit",)),
        {
            "error_type": "ToolDeniedError",
            "message": "Tool 'edit' denied: current behavior 'practice' not in allowed behaviors ('doc_edit',)",
            "tool": "edit",
            "behavior": "practice",
            "allowed_behaviors": ["doc_edit"],
        },
    ),
    (
        "ToolApprovalDeniedError",
        ("edit",),
        {
            "error_type": "ToolApprovalDeniedError",
            "message": "Tool 'edit' approval denied: user_denied",
            "tool": "edit",
            "request_id": None,
            "reason": "user_denied",
        },
    ),
    (
        "ToolApprovalDeniedError",
        ("edit", REQUEST, "policy"),
        {
            "error_type": "ToolApprovalDeniedError",
            "message": "Tool 'edit' approval denied: policy",
            "tool": "edit",
            "request_id": str(REQUEST),
            "reason": "policy",
        },
    ),
    (
        "ToolApprovalTimeoutError",
        ("edit", REQUEST, 30.0),
        {
            "error_type": "ToolApprovalTimeoutError",
            "message": "Tool 'edit' approval denied: timeout",
            "tool": "edit",
            "request_id": str(REQUEST),
            "reason": "timeout",
            "timeout_seconds": 30.0,
        },
    ),
    (
        "ToolUndoError",
        ("edit", ACTION, "disk full"),
        {
            "error_type": "ToolUndoError",
            "message": f"Failed to undo action '{ACTION}' for tool 'edit': disk full",
            "tool": "edit",
            "action_id": str(ACTION),
            "reason": "disk full",
        },
    ),
    (
        "ToolExecutionError",
        ("edit",),
        {
            "error_type": "ToolExecutionError",
            "message": "Tool 'edit' execution failed",
            "tool": "edit",
            "action_id": None,
            "cause": None,
        },
    ),
    (
        "ToolExecutionError",
        ("edit", ACTION, ValueError("bad")),
        {
            "error_type": "ToolExecutionError",
            "message": "Tool 'edit' execution failed: bad",
            "tool": "edit",
            "action_id": str(ACTION),
            "cause": "bad",
        },
    ),
]


def test_all_matches_the_reference(reference: ModuleType) -> None:
    assert sorted(errors.__all__) == sorted(reference.tools.errors.__all__)


@pytest.mark.parametrize(("name", "args", "expected"), CASES)
def test_to_dict_has_stable_keys(
    name: str, args: tuple[Any, ...], expected: dict[str, Any]
) -> None:
    error = getattr(errors, name)(*args)
    assert error.to_dict() == expected
    assert list(error.to_dict()) == list(expected)
    assert str(error) == expected["message"]
    assert isinstance(error, ToolError)
    assert isinstance(error, StageflowError)


@pytest.mark.parametrize(("name", "args", "expected"), CASES)
def test_errors_match_the_reference(
    reference: ModuleType, name: str, args: tuple[Any, ...], expected: dict[str, Any]
) -> None:
    theirs = getattr(reference.tools.errors, name)(*args)
    assert getattr(errors, name)(*args).to_dict() == theirs.to_dict()


@pytest.mark.parametrize(("name", "args", "expected"), CASES)
def test_errors_pickle_with_their_fields(
    name: str, args: tuple[Any, ...], expected: dict[str, Any]
) -> None:
    error = getattr(errors, name)(*args)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.to_dict() == expected


def test_hierarchy() -> None:
    assert issubclass(ToolApprovalTimeoutError, ToolApprovalDeniedError)
    for cls in (ToolNotFoundError, ToolDeniedError, ToolUndoError, ToolExecutionError):
        assert cls.__bases__ == (ToolError,)
    assert ToolError.__bases__ == (StageflowError,)
