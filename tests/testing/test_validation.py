"""validate_snapshot and its strict forms, against the reference where it is right."""

from __future__ import annotations

import uuid
from types import ModuleType
from typing import Any

import pytest

from stageflow_trio.context import ContextSnapshot
from stageflow_trio.context.conversation import Conversation
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.context.types import Message
from stageflow_trio.testing import (
    SnapshotValidationError,
    SnapshotValidationResult,
    snapshot_from_dict_strict,
    validate_snapshot,
    validate_snapshot_strict,
)

RUN = uuid.UUID(int=1)


def test_a_default_snapshot_lacks_only_the_run_id() -> None:
    result = validate_snapshot(ContextSnapshot())
    assert result == SnapshotValidationResult(
        valid=False,
        errors=(
            SnapshotValidationError("pipeline_run_id", "pipeline_run_id is required but not set"),
        ),
    )
    assert not result


def test_required_ids_and_warnings() -> None:
    snapshot = ContextSnapshot(
        run_id=RunIdentity(pipeline_run_id=RUN),
        conversation=Conversation(
            messages=[Message(role="user", content="fine"), Message(role="", content="hi")]
        ),
        topology=None,
        execution_mode="practice",
    )
    result = validate_snapshot(
        snapshot, require_user_id=True, require_org_id=True, require_request_id=True
    )
    assert [e.field for e in result.errors] == ["request_id", "user_id", "org_id"]
    assert [(w.field, w.message) for w in result.warnings] == [
        ("messages[1].role", "Message role is empty"),
        ("topology", "execution_mode is set but topology is None"),
    ]
    strict = validate_snapshot(snapshot, strict=True)
    assert [e.field for e in strict.errors] == ["messages[1].role", "topology"]
    assert strict.warnings == []
    with pytest.raises(
        ValueError,
        match=r"^ContextSnapshot validation failed: messages\[1\]\.role: Message role is empty;"
        r" topology: execution_mode is set but topology is None$",
    ):
        validate_snapshot_strict(snapshot)


def test_a_message_that_is_not_a_message_is_an_error() -> None:
    snapshot = ContextSnapshot(
        run_id=RunIdentity(pipeline_run_id=RUN),
        conversation=Conversation(messages=["hi"]),  # type: ignore[list-item]
    )
    [error] = validate_snapshot(snapshot).errors
    assert error == SnapshotValidationError("messages[0]", "Expected Message, got str", "hi")


def test_strict_forms_return_the_snapshot() -> None:
    snapshot = ContextSnapshot(run_id=RunIdentity(pipeline_run_id=RUN), topology="t")
    assert validate_snapshot_strict(snapshot) is snapshot
    again = snapshot_from_dict_strict(snapshot.to_dict())
    assert again.pipeline_run_id == RUN
    with pytest.raises(ValueError, match=r"^ContextSnapshot validation failed: user_id: "):
        snapshot_from_dict_strict(snapshot.to_dict(), require_user_id=True)


def test_not_a_snapshot() -> None:
    with pytest.raises(
        TypeError, match=r"^validate_snapshot: snapshot must be a ContextSnapshot; got dict$"
    ):
        validate_snapshot({})  # type: ignore[arg-type]


def test_the_same_findings_as_the_reference(reference: ModuleType) -> None:
    """Where the reference's extensions check does not misfire (it rejects None)."""
    from stageflow.context import ContextSnapshot as TheirSnapshot
    from stageflow.context.conversation import Conversation as TheirConversation
    from stageflow.context.identity import RunIdentity as TheirIdentity
    from stageflow.context.types import Message as TheirMessage
    from stageflow.testing import validate_snapshot as theirs

    def findings(result: Any) -> list[tuple[str, str]]:
        return [(e.field, e.message) for e in [*result.errors, *result.warnings]]

    their_snapshot: Any = TheirSnapshot(
        run_id=TheirIdentity(pipeline_run_id=RUN),
        conversation=TheirConversation(messages=[TheirMessage(role="", content="x")]),
        topology=None,
        execution_mode="m",
        extensions={},
    )
    our_snapshot: ContextSnapshot[Any] = ContextSnapshot(
        run_id=RunIdentity(pipeline_run_id=RUN),
        conversation=Conversation(messages=[Message(role="", content="x")]),
        topology=None,
        execution_mode="m",
        extensions={},
    )
    for kwargs in ({}, {"strict": True}, {"require_user_id": True, "require_org_id": True}):
        assert findings(validate_snapshot(our_snapshot, **kwargs)) == findings(
            theirs(their_snapshot, **kwargs)
        )
