"""Conversation: the message history of a run and the router's decision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping  # noqa: TC003 - signatures are resolved at runtime
from typing import Any

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.context._codec import (
    _freeze_list,
    _new,
    _slot_setters,
)
from stageflow_trio.context._parse import (
    _absent,
    _check_mapping,
    _mapping_or_none,
    _optional_instance,
    _optional_str,
    _parsed_list,
)
from stageflow_trio.context.types import (
    Message,
    RoutingDecision,
    _message_from_dict,
    _routing_from_dict,
)
from stageflow_trio.utils.frozen import FrozenList

__all__ = ["Conversation"]


def _messages_field(value: Iterable[Message] | None) -> FrozenList[Message]:
    """attrs converter: the history as an immutable list (``None`` means empty).

    The items are not checked: ``testing.validate_snapshot`` reports a
    non-Message entry, as stageflow's does (see docs/context.md).
    """
    return _freeze_list(value, "messages")


@frozen_compat
@attrs.frozen
class Conversation:
    """The conversation bundle of a snapshot.

    A snapshot whose ``conversation`` is None is not conversational at all; an
    empty ``Conversation()`` is a conversation with no messages yet.

    Attributes:
        messages: The history, oldest first.
        routing_decision: The router's choice, if routing happened.

    Raises:
        TypeError: On construction, ``messages`` is not a list, or
            ``routing_decision`` is not a
            :class:`~stageflow_trio.context.types.RoutingDecision` or None.
    """

    messages: FrozenList[Message] = attrs.field(factory=FrozenList, converter=_messages_field)
    routing_decision: RoutingDecision | None = None

    def __attrs_post_init__(self) -> None:
        # from_dict builds conversations itself and skips __init__; a wrong type
        # here used to fail later, in to_dict (AttributeError).
        _optional_instance(self.routing_decision, "routing_decision", RoutingDecision)

    @property
    def last_user_message(self) -> Message | None:
        """The most recent message whose role is ``"user"``, if any."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message
        return None

    @property
    def last_assistant_message(self) -> Message | None:
        """The most recent message whose role is ``"assistant"``, if any."""
        for message in reversed(self.messages):
            if message.role == "assistant":
                return message
        return None

    @property
    def message_count(self) -> int:
        """How many messages the history holds."""
        return len(self.messages)

    def with_message(self, message: Message) -> Conversation:
        """A new conversation with ``message`` appended to the history."""
        return attrs.evolve(self, messages=[*self.messages, message])

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ``messages`` (a list of message dicts) and ``routing_decision``."""
        routing = self.routing_decision
        return {
            "messages": [m.to_dict() for m in self.messages],
            "routing_decision": None if routing is None else routing.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Conversation:
        """Build a conversation from :meth:`to_dict` output.

        Raises:
            ValueError: A message or the routing decision lacks a required key, or a
                timestamp is not ISO 8601 (the message names the path).
            TypeError: ``data`` or one of its parts has the wrong type.
        """
        return _conversation_from_dict(data, None)


_set_conversation_slots = _slot_setters(Conversation, "messages", "routing_decision")


def _make_conversation(
    messages: FrozenList[Message], routing_decision: RoutingDecision | None
) -> Conversation:
    set_messages, set_routing_decision = _set_conversation_slots
    conversation: Conversation = _new(Conversation)
    set_messages(conversation, messages)
    set_routing_decision(conversation, routing_decision)
    return conversation


def _conversation_from_dict(data: Any, where: str | None) -> Conversation:
    if not isinstance(data, dict):
        _check_mapping(data, where)
    get = data.get
    routing = get("routing_decision")
    return _make_conversation(
        _parsed_list(get("messages"), "messages", where, _message_from_dict),
        _routing_from_dict(routing, where, "routing_decision")
        if routing
        else _absent(routing, "routing_decision", where),
    )


def _conversation_from_flat(get: Any) -> Conversation | None:
    """The conversation spelled out in the flat keys, or None if there is none."""
    messages = _parsed_list(get("messages"), "messages", None, _message_from_dict)
    routing_data = _mapping_or_none(get("routing_decision"), "routing_decision")
    routing = None
    if routing_data:
        # The flat shape is lenient: missing routing keys become None, as in stageflow.
        fields: list[Any] = [
            _optional_str(routing_data.get(key), key, "routing_decision")
            for key in ("agent_id", "pipeline_name", "topology", "reason")
        ]
        routing = RoutingDecision(*fields)
    if not messages and routing is None:
        return None
    return _make_conversation(messages, routing)
