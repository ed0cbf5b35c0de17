"""Conversation, Message and RoutingDecision (stageflow_trio.context.types)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given

from stageflow_trio.context import conversation as conversation_module
from stageflow_trio.context import types as types_module
from stageflow_trio.context.conversation import Conversation
from stageflow_trio.context.types import Message, RoutingDecision
from tests.fakes import import_reference

from .strategies import conversations, messages, routing_decisions

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _to_reference(conversation: Conversation) -> Any:
    """The same conversation built with stageflow's classes (plain containers)."""
    reference = import_reference()
    ref_conversation, ref_types = reference.context.conversation, reference.context.types
    routing = conversation.routing_decision
    return ref_conversation.Conversation(
        messages=[
            ref_types.Message(
                role=m.role,
                content=m.content,
                timestamp=m.timestamp,
                metadata=json.loads(json.dumps(m.metadata)),
            )
            for m in conversation.messages
        ],
        routing_decision=None
        if routing is None
        else ref_types.RoutingDecision(
            agent_id=routing.agent_id,
            pipeline_name=routing.pipeline_name,
            topology=routing.topology,
            reason=routing.reason,
        ),
    )


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref_conversation = reference.context.conversation
    assert conversation_module.__all__ == ref_conversation.__all__
    assert set(types_module.__all__) == {"Message", "RoutingDecision"}


def test_to_dict_shape() -> None:
    conversation = Conversation(
        messages=[Message(role="user", content="hi", timestamp=WHEN, metadata={"n": 1})],
        routing_decision=RoutingDecision(agent_id="coach", pipeline_name="p", topology="t"),
    )
    assert conversation.to_dict() == {
        "messages": [
            {
                "role": "user",
                "content": "hi",
                "timestamp": "2026-01-02T03:04:05.678901+00:00",
                "metadata": {"n": 1},
            }
        ],
        "routing_decision": {
            "agent_id": "coach",
            "pipeline_name": "p",
            "topology": "t",
            "reason": None,
        },
    }


@given(conversations)
def test_from_dict_inverts_to_dict(conversation: Conversation) -> None:
    assert Conversation.from_dict(conversation.to_dict()) == conversation


@given(conversations)
def test_from_dict_inverts_to_dict_through_json(conversation: Conversation) -> None:
    data = json.loads(json.dumps(conversation.to_dict()))
    restored = Conversation.from_dict(data)
    assert restored == conversation
    assert restored.to_dict() == conversation.to_dict()


@given(messages)
def test_message_from_dict_inverts_to_dict(message: Message) -> None:
    assert Message.from_dict(json.loads(json.dumps(message.to_dict()))) == message


@given(routing_decisions)
def test_routing_decision_from_dict_inverts_to_dict(routing: RoutingDecision) -> None:
    assert RoutingDecision.from_dict(routing.to_dict()) == routing


@given(conversations)
def test_matches_stageflow(reference: ModuleType, conversation: Conversation) -> None:
    ref_conversation = reference.context.conversation
    converted = _to_reference(conversation)
    assert conversation.to_dict() == converted.to_dict()
    theirs = ref_conversation.Conversation.from_dict(conversation.to_dict())
    assert Conversation.from_dict(converted.to_dict()).to_dict() == theirs.to_dict()


def test_properties_find_the_last_message_of_each_role() -> None:
    first_user = Message(role="user", content="1")
    assistant = Message(role="assistant", content="2")
    last_user = Message(role="user", content="3")
    conversation = Conversation(messages=[first_user, assistant, last_user])
    assert conversation.last_user_message is last_user
    assert conversation.last_assistant_message is assistant
    assert conversation.message_count == 3
    empty = Conversation()
    assert empty.last_user_message is None
    assert empty.last_assistant_message is None
    assert empty.message_count == 0


def test_with_message_appends_to_a_new_conversation() -> None:
    routing = RoutingDecision(agent_id="a", pipeline_name="p", topology="t")
    conversation = Conversation(
        messages=[Message(role="user", content="1")], routing_decision=routing
    )
    reply = Message(role="assistant", content="2")
    longer = conversation.with_message(reply)
    assert [m.content for m in longer.messages] == ["1", "2"]
    assert longer.routing_decision is routing
    assert [m.content for m in conversation.messages] == ["1"]


def test_containers_are_immutable() -> None:
    message = Message(role="user", content="hi", metadata={"tags": ["a"], "n": {"k": 1}})
    conversation = Conversation(messages=[message])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        conversation.messages = []  # type: ignore[misc,assignment]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.content = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: 'append'"):
        conversation.messages.append(message)
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        message.metadata["x"] = 1
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: 'append'"):
        message.metadata["tags"].append("b")
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        message.metadata["n"]["k"] = 2


def test_constructor_copies_its_containers() -> None:
    metadata = {"tags": ["a"]}
    history = [Message(role="user", content="hi", metadata=metadata)]
    conversation = Conversation(messages=history)
    metadata["tags"].append("b")
    history.append(Message(role="user", content="later"))
    assert conversation.message_count == 1
    assert conversation.messages[0].metadata == {"tags": ["a"]}


def test_from_dict_does_not_share_the_input() -> None:
    data = {"messages": [{"role": "user", "content": "hi", "metadata": {"tags": ["a"]}}]}
    conversation = Conversation.from_dict(data)
    data["messages"][0]["metadata"]["tags"].append("b")  # type: ignore[index]
    data["messages"].append({"role": "user", "content": "later"})
    assert conversation.message_count == 1
    assert conversation.messages[0].metadata == {"tags": ["a"]}


def test_to_dict_containers_do_not_reach_the_conversation() -> None:
    conversation = Conversation(messages=[Message(role="user", content="hi")])
    data = conversation.to_dict()
    data["messages"].append({"role": "user", "content": "injected"})
    data["messages"][0]["content"] = "changed"
    assert conversation.to_dict()["messages"] == [
        {"role": "user", "content": "hi", "timestamp": None, "metadata": {}}
    ]


def test_missing_message_keys_name_the_path() -> None:
    with pytest.raises(ValueError, match=r"^messages\[1\] is missing the required key 'content'$"):
        Conversation.from_dict({"messages": [{"role": "user", "content": "a"}, {"role": "user"}]})
    with pytest.raises(ValueError, match=r"^data is missing the required key 'role'$"):
        Message.from_dict({"content": "a"})


def test_bad_message_shapes_name_the_path() -> None:
    with pytest.raises(TypeError, match=r"^messages\[0\] must be a mapping, got str$"):
        Conversation.from_dict({"messages": ["hi"]})
    with pytest.raises(TypeError, match=r"^messages must be a list, got str$"):
        Conversation.from_dict({"messages": "hi"})
    with pytest.raises(TypeError, match=r"^messages\[0\]\.metadata must be a mapping, got list$"):
        Conversation.from_dict({"messages": [{"role": "u", "content": "c", "metadata": [1]}]})
    with pytest.raises(
        ValueError, match=r"^messages\[0\]\.timestamp must be an ISO 8601 string, got 'noon'$"
    ):
        Conversation.from_dict({"messages": [{"role": "u", "content": "c", "timestamp": "noon"}]})


def test_missing_routing_keys_name_the_path() -> None:
    with pytest.raises(
        ValueError, match=r"^routing_decision is missing the required key 'pipeline_name'$"
    ):
        Conversation.from_dict({"routing_decision": {"agent_id": "a", "topology": "t"}})
    with pytest.raises(ValueError, match=r"^data is missing the required key 'topology'$"):
        RoutingDecision.from_dict({"agent_id": "a", "pipeline_name": "p"})


def test_constructor_rejects_non_container_fields() -> None:
    with pytest.raises(TypeError, match=r"^metadata must be a mapping, got list$"):
        Message(role="user", content="hi", metadata=[1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^messages must be a list, got str$"):
        Conversation(messages="hi")  # type: ignore[arg-type]


def test_from_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(TypeError, match=r"^data must be a mapping, got int$"):
        Conversation.from_dict(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^data must be a mapping, got NoneType$"):
        Message.from_dict(None)  # type: ignore[arg-type]
