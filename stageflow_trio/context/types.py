"""The message and routing values a :class:`~stageflow_trio.context.Conversation` holds."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.context._codec import (
    _freeze_mapping,
    _metadata_field,
    _new,
    _path,
    _set,
    _slot_setters,
)
from stageflow_trio.context._parse import (
    _check_mapping,
    _datetime_or_none,
    _fromisoformat,
    _iso_text,
    _missing_key,
    _optional_str,
    _required_str,
)
from stageflow_trio.utils.frozen import FrozenDict

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Message", "RoutingDecision"]


@frozen_compat
@attrs.frozen
class Message:
    """One message of a conversation.

    Attributes:
        role: Who spoke: ``"user"``, ``"assistant"`` or ``"system"``.
        content: The message text.
        timestamp: When it was said, if known.
        metadata: Free-form data, deep-frozen.

    Raises:
        TypeError: On construction, ``role`` or ``content`` is not a str,
            ``timestamp`` not a datetime or None, or ``metadata`` not a mapping
            (or it holds an unhashable value).
        ValueError: ``metadata`` nests too deep or contains itself.
    """

    role: str
    content: str
    timestamp: datetime | None = None
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_metadata_field)
    # isoformat() of timestamp once computed; before that, possibly a 1-tuple
    # holding the text it was parsed from, to be checked on first use.
    _timestamp_iso: str | tuple[str] | None = attrs.field(
        default=None, init=False, repr=False, eq=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        # from_dict's checks and messages (from_dict itself skips __init__).
        if type(self.role) is not str:
            _required_str(self.role, "role")
        if type(self.content) is not str:
            _required_str(self.content, "content")
        timestamp = self.timestamp
        if timestamp is not None and not isinstance(timestamp, datetime):
            raise TypeError(f"timestamp must be a datetime or None, got {type(timestamp).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ``role``, ``content``, ``timestamp`` (ISO or None), ``metadata``.

        ``metadata`` is the message's own read-only FrozenDict (stageflow hands
        out its own dict there too); copy it before changing it.
        """
        timestamp = self._timestamp_iso
        if type(timestamp) is not str:
            timestamp = _timestamp_text(self)
        return {
            "role": self.role,
            "content": self.content,
            "timestamp": timestamp,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """Build a message from :meth:`to_dict` output.

        Raises:
            ValueError: ``role`` or ``content`` is missing, the timestamp is not ISO
                8601, or ``metadata`` nests too deep or contains itself.
            TypeError: ``data`` or ``metadata`` is not a mapping, or ``role`` or
                ``content`` is not a str.
        """
        return _message_from_dict(data, None)


def _timestamp_text(message: Message) -> str | None:
    """Fill ``message``'s timestamp-text cache and return it."""
    timestamp = message.timestamp
    if timestamp is None:
        return None
    cached = message._timestamp_iso
    text = _iso_text(timestamp, cached[0] if cached is not None else None)
    _set(message, "_timestamp_iso", text)
    return text


(
    _set_message_role,
    _set_message_content,
    _set_message_timestamp,
    _set_message_metadata,
    _set_message_timestamp_iso,
) = _slot_setters(Message, "role", "content", "timestamp", "metadata", "_timestamp_iso")


def _message_from_dict(data: Any, where: str | None, index: int | None = None) -> Message:
    """Parse a serialized message; errors name ``where[index]`` (or ``where``)."""
    try:
        role = data["role"]
        content = data["content"]
        get = data.get
    except KeyError as exc:
        _missing_key(exc, _path(where, index))
    except (TypeError, AttributeError):
        # Not a mapping (a str, a list, None, ...): say so, naming the path.
        _check_mapping(data, _path(where, index))
        raise
    if type(role) is not str:
        role = _required_str(role, "role", where, index)
    if type(content) is not str:
        content = _required_str(content, "content", where, index)
    text = get("timestamp")
    iso = None
    if not text:
        # None or "" is no timestamp; another falsy value ([], 0) is an error.
        timestamp = (
            None if text is None else _datetime_or_none(text, "timestamp", _path(where, index))
        )
    elif type(text) is str:
        try:
            timestamp = _fromisoformat(text)
        except ValueError:
            _datetime_or_none(text, "timestamp", _path(where, index))  # raises, naming the path
            raise
        iso = (text,)  # checked on first to_dict(), if any
    else:
        timestamp = _datetime_or_none(text, "timestamp", _path(where, index))
    metadata = _freeze_mapping(get("metadata"), "metadata", where, index)
    message: Message = _new(Message)
    _set_message_role(message, role)
    _set_message_content(message, content)
    _set_message_timestamp(message, timestamp)
    _set_message_metadata(message, metadata)
    _set_message_timestamp_iso(message, iso)
    return message


@frozen_compat
@attrs.frozen
class RoutingDecision:
    """Which agent, pipeline and topology the router chose, and why.

    Attributes:
        agent_id: The chosen agent.
        pipeline_name: The chosen pipeline.
        topology: The chosen topology.
        reason: Why, if the router said.

    Raises:
        TypeError: On construction, a field is neither a str nor None (None is
            accepted where ``from_dict`` keeps it: the snapshot's flat legacy
            shape turns missing routing keys into None).
    """

    agent_id: str
    pipeline_name: str
    topology: str
    reason: str | None = None

    def __attrs_post_init__(self) -> None:
        for key in ("agent_id", "pipeline_name", "topology", "reason"):
            value = getattr(self, key)
            if type(value) is not str and value is not None:
                _optional_str(value, key)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ``agent_id``, ``pipeline_name``, ``topology``, ``reason``."""
        return {
            "agent_id": self.agent_id,
            "pipeline_name": self.pipeline_name,
            "topology": self.topology,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingDecision:
        """Build a routing decision from :meth:`to_dict` output.

        Raises:
            ValueError: ``agent_id``, ``pipeline_name`` or ``topology`` is missing.
            TypeError: ``data`` is not a mapping, or a field is neither a str nor
                None. A present ``None`` is kept, as the reference keeps it: the
                snapshot's flat legacy shape turns missing routing keys into None, and
                the decision it builds must read back from its own ``to_dict``.
        """
        return _routing_from_dict(data, None)


(
    _set_routing_agent_id,
    _set_routing_pipeline_name,
    _set_routing_topology,
    _set_routing_reason,
) = _slot_setters(RoutingDecision, "agent_id", "pipeline_name", "topology", "reason")


def _routing_from_dict(data: Any, where: str | None, key: str | None = None) -> RoutingDecision:
    """Parse a serialized routing decision; errors name ``where.key`` (or ``where``)."""
    if not isinstance(data, dict):
        _check_mapping(data, _path(where, key))
    try:
        agent_id = data["agent_id"]
        pipeline_name = data["pipeline_name"]
        topology = data["topology"]
    except KeyError as exc:
        _missing_key(exc, _path(where, key))
    reason = data.get("reason")
    if agent_id is not None and type(agent_id) is not str:
        agent_id = _required_str(agent_id, "agent_id", where, key)
    if pipeline_name is not None and type(pipeline_name) is not str:
        pipeline_name = _required_str(pipeline_name, "pipeline_name", where, key)
    if topology is not None and type(topology) is not str:
        topology = _required_str(topology, "topology", where, key)
    if reason is not None and type(reason) is not str:
        reason = _optional_str(reason, "reason", where, key)
    routing: RoutingDecision = _new(RoutingDecision)
    _set_routing_agent_id(routing, agent_id)
    _set_routing_pipeline_name(routing, pipeline_name)
    _set_routing_topology(routing, topology)
    _set_routing_reason(routing, reason)
    return routing
