"""validate_snapshot, validate_snapshot_strict and snapshot_from_dict_strict (vs the reference)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from stageflow_trio.context import ContextSnapshot, Conversation, Message, RunIdentity
from stageflow_trio.testing import (
    SnapshotValidationError,
    SnapshotValidationResult,
    create_test_snapshot,
    snapshot_from_dict_strict,
    validate_snapshot,
    validate_snapshot_strict,
)
from stageflow_trio.utils.frozen import FrozenList

if TYPE_CHECKING:
    from types import ModuleType

RUN = uuid.UUID(int=1)
REQ = uuid.UUID(int=2)

CASES: list[dict[str, Any]] = [
    {},
    {"ids": {"pipeline_run_id": RUN}},
    {"ids": {"pipeline_run_id": RUN, "request_id": REQ}, "topology": "t", "execution_mode": "m"},
    {"ids": {"pipeline_run_id": RUN}, "execution_mode": "m"},
    {"messages": [("user", "hi"), ("", "empty role")]},
]
OPTIONS: list[dict[str, Any]] = [
    {},
    {"require_user_id": True, "require_org_id": True, "require_request_id": True},
    {"require_pipeline_run_id": False},
    {"strict": True},
]


def _ours(case: dict[str, Any]) -> ContextSnapshot[Any]:
    messages = [Message(role=role, content=content) for role, content in case.get("messages", [])]
    return ContextSnapshot(
        run_id=RunIdentity(**case.get("ids", {})),
        conversation=Conversation(messages=messages) if messages else None,
        topology=case.get("topology"),
        execution_mode=case.get("execution_mode"),
    )


def _theirs(reference: ModuleType, case: dict[str, Any]) -> Any:
    ctx = reference.context
    messages = [
        ctx.Message(role=role, content=content) for role, content in case.get("messages", [])
    ]
    return ctx.ContextSnapshot(
        run_id=ctx.RunIdentity(**case.get("ids", {})),
        conversation=ctx.Conversation(messages=messages) if messages else None,
        topology=case.get("topology"),
        execution_mode=case.get("execution_mode"),
        extensions={},  # the reference reports extensions=None as an error
    )


def _shape(result: Any) -> tuple[Any, ...]:
    return (
        result.valid,
        bool(result),
        [(e.field, e.message) for e in result.errors],
        [(w.field, w.message) for w in result.warnings],
    )


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_results_match_the_reference(
    reference: ModuleType, case: dict[str, Any], options: dict[str, Any]
) -> None:
    ours = validate_snapshot(_ours(case), **options)
    theirs = reference.testing.validate_snapshot(_theirs(reference, case), **options)
    assert _shape(ours) == _shape(theirs)


def test_a_snapshot_without_extensions_is_valid(reference: ModuleType) -> None:
    assert validate_snapshot(create_test_snapshot()).valid is True
    assert (
        reference.testing.validate_snapshot(reference.testing.create_test_snapshot()).valid is False
    )


def test_non_message_entries_and_empty_roles() -> None:
    snapshot = ContextSnapshot(
        run_id=RunIdentity(pipeline_run_id=RUN),
        conversation=Conversation(messages=[{"role": "user"}, Message(role="", content="x")]),  # type: ignore[list-item]
    )
    result = validate_snapshot(snapshot)
    assert [(e.field, e.message, e.value) for e in result.errors] == [
        ("messages[0]", "Expected Message, got FrozenDict", {"role": "user"})
    ]
    assert [(w.field, w.message) for w in result.warnings] == [
        ("messages[1].role", "Message role is empty")
    ]
    assert isinstance(result.errors, FrozenList)


def test_strict_raises_with_every_error() -> None:
    snapshot = ContextSnapshot(execution_mode="m")
    with pytest.raises(
        ValueError,
        match=r"^ContextSnapshot validation failed: pipeline_run_id: pipeline_run_id is required "
        r"but not set; topology: execution_mode is set but topology is None$",
    ):
        validate_snapshot_strict(snapshot)
    good = create_test_snapshot()
    assert validate_snapshot_strict(good, require_user_id=True) is good


def test_from_dict_strict() -> None:
    data = create_test_snapshot().to_dict()
    assert snapshot_from_dict_strict(data, require_request_id=True).to_dict() == data
    with pytest.raises(ValueError, match=r"^ContextSnapshot validation failed: org_id: "):
        snapshot_from_dict_strict(data, require_org_id=True)


def test_result_values() -> None:
    problem = SnapshotValidationError(field="f", message="m")
    assert problem.value is None
    result = SnapshotValidationResult(valid=False, errors=[problem])
    assert not result
    assert result.warnings == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.valid = True  # type: ignore[misc]
    assert SnapshotValidationResult(valid=True)
