"""WSMessageProjector: shape an outbound websocket message and stamp its correlation ids.

:meth:`WSMessageProjector.project` takes a message dict (``type``, ``payload``,
``metadata``), finds its request and run ids (in the message metadata, the
payload, or the payload's metadata, in snake or camel case, else the caller's
context, else fresh UUIDs), validates it and returns
``{"type", "payload", "metadata": {"pipeline_run_id", "request_id", "org_id"}}``
with None values left out. The payload types are frozen attrs classes with
pydantic-style ``model_validate`` / ``model_dump``. As pydantic's ``model_dump``
would, the result holds plain data: ``type`` an exact str (a str-mixin enum
member gives its value), containers in the payload copied, dataclass instances
turned into dicts of their fields and pydantic models into their own dump.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import sys
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from stageflow_trio._args import error_text
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import uuid4

__all__ = [
    "ProjectorService",
    "WSMessageProjector",
    "WSMetadata",
    "WSOutboundMessage",
    "WSStatusUpdatePayload",
    "_coerce_uuid_str",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.ws_projector")


def _coerce_uuid_str(value: Any) -> str | None:
    """``value`` as a canonical UUID string, or None when it is None or not a UUID."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except Exception:  # noqa: BLE001 - anything that is not a UUID counts as absent
        return None


def _text(owner: str, name: str, value: object) -> str:
    # pydantic's lax str: a str, or UTF-8 bytes. A str subclass (a str-mixin enum
    # member) becomes an exact str of its characters, as pydantic makes it: str()
    # of the member would be its name ("Kind.STATUS"), not its value.
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                f"{owner}: {name} must be a str; got {type(value).__name__} not valid as UTF-8"
            ) from None
    raise ValueError(f"{owner}: {name} must be a str; got {type(value).__name__}")


def _fields(owner: str, data: object) -> Mapping[str, Any]:
    # ValueError, not TypeError, for every validation failure: callers written
    # against the reference catch pydantic's ValidationError, a ValueError.
    if not isinstance(data, Mapping):
        raise ValueError(f"{owner}: expected a mapping; got {type(data).__name__}")  # noqa: TRY004
    return data


def _required(owner: str, data: Mapping[str, Any], name: str) -> Any:
    if name not in data:
        raise ValueError(f"{owner}: {name} is required")
    return data[name]


def _pydantic_model(value: object) -> bool:
    # pydantic is never imported here: a model exists only if its author imported it.
    module = sys.modules.get("pydantic")
    base = getattr(module, "BaseModel", None) if module is not None else None
    return base is not None and isinstance(value, base)


# The containers pydantic's ``model_dump`` rebuilds inside an ``Any`` field: a
# dict (an OrderedDict stays one), list, tuple, set, frozenset and deque.
_CONTAINERS = (dict, list, tuple, set, frozenset, collections.deque)


def _plain(value: Any, exclude_none: bool = False, inside: set[int] | None = None) -> Any:
    # What pydantic's model_dump does to an ``Any`` field: containers are rebuilt,
    # a dataclass instance becomes a dict of its fields and a pydantic model its own
    # model_dump (with the same exclude_none), so the result is plain data; a
    # container met again inside itself is kept as is (so a cycle ends in the
    # original object, not in a RecursionError).
    if not isinstance(value, _CONTAINERS):
        if hasattr(type(value), "__dataclass_fields__"):
            pass  # an instance (a dataclass class's own type has no fields)
        elif _pydantic_model(value):
            return value.model_dump(exclude_none=exclude_none)
        else:
            return value
    inside = set() if inside is None else inside
    if id(value) in inside:
        return value
    inside.add(id(value))
    try:
        if isinstance(value, dict):
            items = {key: _plain(item, exclude_none, inside) for key, item in value.items()}
            return (
                collections.OrderedDict(items)
                if isinstance(value, collections.OrderedDict)
                else items
            )
        if isinstance(value, list):
            return [_plain(item, exclude_none, inside) for item in value]
        if isinstance(value, tuple):
            return tuple(_plain(item, exclude_none, inside) for item in value)
        if isinstance(value, set):
            return {_plain(item, exclude_none, inside) for item in value}
        if isinstance(value, frozenset):
            return frozenset(_plain(item, exclude_none, inside) for item in value)
        if isinstance(value, collections.deque):
            return collections.deque(
                (_plain(item, exclude_none, inside) for item in value), maxlen=value.maxlen
            )
        return {
            field.name: _plain(getattr(value, field.name), exclude_none, inside)
            for field in dataclasses.fields(value)
        }
    finally:
        inside.discard(id(value))


@frozen_compat
@attrs.frozen(kw_only=True)
class WSMetadata:
    """The correlation ids of an outbound message."""

    pipeline_run_id: str
    request_id: str
    org_id: str | None = None

    @classmethod
    def model_validate(cls, data: object) -> WSMetadata:
        """Build from a mapping (extra keys ignored).

        Raises:
            ValueError: not a mapping, a required key missing, or a value not a str.
        """
        fields = _fields("WSMetadata", data)
        org_id = fields.get("org_id")
        return cls(
            pipeline_run_id=_text(
                "WSMetadata", "pipeline_run_id", _required("WSMetadata", fields, "pipeline_run_id")
            ),
            request_id=_text(
                "WSMetadata", "request_id", _required("WSMetadata", fields, "request_id")
            ),
            org_id=None if org_id is None else _text("WSMetadata", "org_id", org_id),
        )

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The fields as a dict (without the None ones if ``exclude_none``)."""
        data: dict[str, Any] = {
            "pipeline_run_id": self.pipeline_run_id,
            "request_id": self.request_id,
        }
        if self.org_id is not None or not exclude_none:
            data["org_id"] = self.org_id
        return data


@frozen_compat
@attrs.frozen(kw_only=True)
class WSOutboundMessage:
    """An outbound websocket message: a type, any payload, and its metadata."""

    type: str
    payload: Any | None = None
    metadata: WSMetadata

    @classmethod
    def model_validate(cls, data: object) -> WSOutboundMessage:
        """Build from a mapping (extra keys ignored; ``metadata`` a mapping or a WSMetadata).

        Raises:
            ValueError: as :meth:`WSMetadata.model_validate`, for ``type`` and ``metadata``.
        """
        fields = _fields("WSOutboundMessage", data)
        metadata = _required("WSOutboundMessage", fields, "metadata")
        return cls(
            type=_text("WSOutboundMessage", "type", _required("WSOutboundMessage", fields, "type")),
            payload=fields.get("payload"),
            metadata=metadata
            if isinstance(metadata, WSMetadata)
            else WSMetadata.model_validate(metadata),
        )

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The message as a dict; containers in the payload are copied, dataclasses and pydantic models dumped."""
        data: dict[str, Any] = {"type": self.type}
        if self.payload is not None or not exclude_none:
            data["payload"] = _plain(self.payload, exclude_none)
        data["metadata"] = self.metadata.model_dump(exclude_none=exclude_none)
        return data


@frozen_compat
@attrs.frozen(kw_only=True)
class WSStatusUpdatePayload:
    """The payload of a ``status.update`` message."""

    service: str
    status: str
    metadata: dict[str, Any] | None = None

    @classmethod
    def model_validate(cls, data: object) -> WSStatusUpdatePayload:
        """Build from a mapping (extra keys ignored).

        Raises:
            ValueError: a missing or non-str ``service``/``status``, a
                ``metadata`` that is neither a mapping nor None, or one with a
                key that is not a str (UTF-8 bytes keys are decoded, as pydantic does).
        """
        owner = "WSStatusUpdatePayload"
        fields = _fields(owner, data)
        metadata = fields.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValueError(
                f"{owner}: metadata must be a mapping or None; got {type(metadata).__name__}"
            )
        return cls(
            service=_text(owner, "service", _required(owner, fields, "service")),
            status=_text(owner, "status", _required(owner, fields, "status")),
            metadata=None
            if metadata is None
            else {_text(owner, "metadata key", key): value for key, value in metadata.items()},
        )

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The fields as a dict (without the None ones if ``exclude_none``)."""
        data: dict[str, Any] = {"service": self.service, "status": self.status}
        if self.metadata is not None or not exclude_none:
            data["metadata"] = _plain(self.metadata, exclude_none)
        return data


def _first_uuid(
    metadata: object, payload: dict[str, Any] | None, snake: str, camel: str, fallback: Any
) -> str:
    inner = payload.get("metadata") if payload is not None else None
    candidates = (
        metadata.get(snake) if isinstance(metadata, dict) else None,
        payload.get(snake) if payload else None,
        payload.get(camel) if payload else None,
        inner.get(snake) if isinstance(inner, dict) else None,
        inner.get(camel) if isinstance(inner, dict) else None,
        fallback,
    )
    for candidate in candidates:
        found = _coerce_uuid_str(candidate)
        if found:
            return found
    return str(uuid4())


class WSMessageProjector:
    """Projects outbound websocket messages (see the module docstring)."""

    def project(
        self,
        message: dict[str, Any],
        *,
        connection_org_id: Any | None,
        context_request_id: Any | None,
        context_pipeline_run_id: Any | None,
    ) -> dict[str, Any]:
        """The validated message with its correlation ids.

        ``request_id`` and ``pipeline_run_id`` are the first valid UUID among:
        ``message["metadata"]``, the payload (snake then camel case), the
        payload's ``metadata`` (same), the ``context_*`` argument; else a new
        UUID4. ``org_id`` is ``connection_org_id`` if it is a UUID. A
        ``status.update`` message's payload must be a WSStatusUpdatePayload mapping.

        Raises:
            TypeError: ``message`` is not a mapping.
            ValueError: ``"status.update payload must be an object"``, or the
                message or a status payload does not validate (logged as
                ``WS projector validation failed`` for the message).
        """
        if not isinstance(message, Mapping):
            raise TypeError(
                f"WSMessageProjector.project: message must be a mapping; got {type(message).__name__}"
            )
        msg_type = message.get("type")
        payload = message.get("payload")
        metadata = message.get("metadata")
        payload_dict = payload if isinstance(payload, dict) else None

        # The request id first, as the reference draws its fallback UUIDs in that order.
        request_id = _first_uuid(
            metadata, payload_dict, "request_id", "requestId", context_request_id
        )
        run_id = _first_uuid(
            metadata, payload_dict, "pipeline_run_id", "pipelineRunId", context_pipeline_run_id
        )
        projected = dict(message)
        projected["metadata"] = {"pipeline_run_id": run_id, "request_id": request_id}
        org_id = _coerce_uuid_str(connection_org_id)
        if org_id:
            projected["metadata"]["org_id"] = org_id

        if msg_type == "status.update":
            if not isinstance(payload, dict):
                raise ValueError("status.update payload must be an object")
            WSStatusUpdatePayload.model_validate(payload)

        try:
            validated = WSOutboundMessage.model_validate(projected)
        except ValueError as exc:
            logger.error(  # noqa: TRY400 - the reference logs the message, not a traceback
                "WS projector validation failed",
                extra={
                    "service": "ws_projector",
                    "message_type": msg_type,
                    "error": error_text(exc),
                },
            )
            raise
        return validated.model_dump(exclude_none=True)


ProjectorService = WSMessageProjector
"""The projector's former name."""
