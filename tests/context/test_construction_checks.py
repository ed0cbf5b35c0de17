"""The context values check their fields at construction, as ``from_dict`` does.

A snapshot built with a field of the wrong type used to fail later, in ``to_dict``
(AttributeError) or when read back (``from_dict(s.to_dict())`` raising). Free-form
data holding an unhashable leaf (a set) made an unhashable "immutable" snapshot.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from stageflow_trio.context import (
    ContextSnapshot,
    Conversation,
    Enrichments,
    Message,
    ProfileEnrichment,
    RoutingDecision,
    RunIdentity,
)

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_id": "x"}, "run_id must be a RunIdentity, got str"),
        ({"run_id": None}, "run_id must be a RunIdentity, got NoneType"),
        (
            {"enrichments": {"profile": None}},
            "enrichments must be an Enrichments or None, got dict",
        ),
        (
            {"conversation": {"messages": []}},
            "conversation must be a Conversation or None, got dict",
        ),
        ({"input_text": 5}, "input_text must be a str or None, got int"),
        ({"topology": b"t"}, "topology must be a str or None, got bytes"),
        ({"execution_mode": 1.5}, "execution_mode must be a str or None, got float"),
        (
            {"input_audio_duration_ms": "5"},
            "input_audio_duration_ms must be an int or None, got str",
        ),
        (
            {"input_audio_duration_ms": True},
            "input_audio_duration_ms must be an int or None, got bool",
        ),
        ({"created_at": "2024-01-01"}, "created_at must be a datetime, got str"),
        ({"created_at": None}, "created_at must be a datetime, got NoneType"),
    ],
)
def test_snapshot_fields_are_checked_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=rf"^{message}$"):
        ContextSnapshot(**kwargs)


@pytest.mark.parametrize(
    ("key", "value"),
    [("input_text", 5), ("topology", 1), ("input_audio_duration_ms", "5")],
)
def test_construction_and_from_dict_give_the_same_message(key: str, value: Any) -> None:
    with pytest.raises(TypeError) as built:
        ContextSnapshot(**{key: value})
    with pytest.raises(TypeError) as read:
        ContextSnapshot.from_dict({key: value})
    assert str(built.value) == str(read.value)


def test_a_well_typed_snapshot_reads_back_from_its_dict() -> None:
    run_id = RunIdentity(pipeline_run_id=uuid.UUID(int=1), created_at=WHEN)
    snapshot: ContextSnapshot[Any] = ContextSnapshot(
        run_id=run_id,
        conversation=Conversation(
            messages=[Message(role="user", content="hi", timestamp=WHEN)],
            routing_decision=RoutingDecision(agent_id="a", pipeline_name="p", topology="t"),
        ),
        enrichments=Enrichments(profile=ProfileEnrichment(display_name="x")),
        input_text="hi",
        input_audio_duration_ms=5,
        created_at=WHEN,
        metadata={"tags": ["a"], "frozen": frozenset({1})},
    )
    assert ContextSnapshot.from_dict(snapshot.to_dict()) == snapshot
    hash(snapshot)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": None, "content": 5}, "role must be a str, got NoneType"),
        ({"role": "user", "content": 5}, "content must be a str, got int"),
        (
            {"role": "user", "content": "c", "timestamp": "2024-01-01"},
            "timestamp must be a datetime or None, got str",
        ),
        ({"role": "user", "content": "c", "metadata": [1]}, "metadata must be a mapping, got list"),
    ],
)
def test_message_fields_are_checked_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=rf"^{message}$"):
        Message(**kwargs)


# --- unhashable leaves in free-form data ------------------------------------------------

RULE = "must be a dict, a list or an immutable value (free-form data is frozen and hashable)"


@pytest.mark.parametrize(
    ("data", "path", "kind"),
    [
        ({"metadata": {"s": {1, 2}}}, "metadata.s", "set"),
        ({"metadata": {"s": bytearray(b"x")}}, "metadata.s", "bytearray"),
        ({"metadata": {"a": [1, {"b": ({2},)}]}}, "metadata.a[1].b[0]", "set"),
        ({"metadata": {1: [{3}]}}, "metadata[1][0]", "set"),
        ({"extensions_type": "dict", "extensions": {"s": {1}}}, "extensions.s", "set"),
        ({"profile": {"preferences": {"s": {1}}}}, "profile.preferences.s", "set"),
        (
            {"messages": [{"role": "u", "content": "c", "metadata": {"a": {1}}}]},
            "messages[0].metadata.a",
            "set",
        ),
        (
            {"documents": [{"document_id": "d", "blocks": [{"k": {1}}]}]},
            "documents[0].blocks[0].k",
            "set",
        ),
        ({"web_results": [{}, {"k": [{1}]}]}, "web_results[1].k[0]", "set"),
    ],
)
def test_from_dict_refuses_unhashable_leaves(data: dict[str, Any], path: str, kind: str) -> None:
    with pytest.raises(TypeError) as info:
        ContextSnapshot.from_dict(data)
    assert str(info.value) == f"{path} {RULE}, got {kind}"


def test_from_dict_names_the_whole_path_of_an_unhashable_leaf() -> None:
    with pytest.raises(TypeError, match=rf"^metadata\.a\[1\]\.b\[0\] {re.escape(RULE)}, got set$"):
        ContextSnapshot.from_dict({"metadata": {"a": [1, {"b": ({2},)}]}})


def test_constructors_refuse_unhashable_leaves_too() -> None:
    with pytest.raises(TypeError, match=r"^metadata\.s must be a dict, .*, got set$"):
        ContextSnapshot(metadata={"s": {1, 2}})
    with pytest.raises(TypeError, match=r"^metadata\.a must be a dict, .*, got set$"):
        Message(role="u", content="c", metadata={"a": {1}})


def test_hashable_leaves_are_kept_and_the_snapshot_hashes() -> None:
    marker = object()
    snapshot = ContextSnapshot.from_dict(
        {"metadata": {"f": frozenset({1}), "b": b"x", "o": marker, "t": (1, [2])}}
    )
    hash(snapshot)
    assert snapshot.metadata["f"] == frozenset({1})
    assert snapshot.metadata["o"] is marker
    assert snapshot.metadata["t"] == [1, [2]]
