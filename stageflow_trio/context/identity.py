"""RunIdentity: the ids that identify and correlate one pipeline run."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import parse_uuid, utc_now
from stageflow_trio.context._codec import _new, _path, _set, _slot_setters
from stageflow_trio.context._parse import (
    _SAFE_UNKNOWN,
    _UUID,
    _check_mapping,
    _datetime_or_none,
    _fromisoformat,
    _iso_text,
    _no_id,
    _parse_uuid,
    _set_uuid_int,
    _set_uuid_safe,
    _uuid_or_none,
    _uuid_text,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["RunIdentity"]


@frozen_compat
@attrs.frozen
class RunIdentity:
    """The correlation ids of one pipeline run; every field is optional.

    Attributes:
        pipeline_run_id: This execution of the pipeline.
        request_id: The HTTP/WebSocket request that started it.
        session_id: The user's session.
        user_id: The user who asked.
        org_id: The organization (tenant).
        interaction_id: The interaction within the session.
        created_at: When the identity was made (timezone-aware UTC by default).

    Ids given as UUID strings are parsed; a malformed one raises ``ValueError``
    naming the field, any other type ``TypeError``; a ``created_at`` that is not a
    datetime raises ``TypeError``.
    """

    pipeline_run_id: uuid.UUID | None = None
    request_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None
    interaction_id: uuid.UUID | None = None
    created_at: datetime = attrs.field(factory=utc_now)
    # The to_dict() form once computed; before that, possibly a tuple holding
    # the texts the fields were parsed from, to be checked on first use.
    _serialized: dict[str, str | None] | tuple[Any, ...] | None = attrs.field(
        default=None, init=False, repr=False, eq=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        # The ids' converter, in one place (it needs each field's name for its errors).
        for key in _ID_KEYS:
            value = getattr(self, key)
            if value is not None and type(value) is not uuid.UUID:
                _set(self, key, parse_uuid(value, key))
        created_at = self.created_at
        if type(created_at) is not datetime and not isinstance(created_at, datetime):
            # It would fail later, in to_dict (AttributeError: no isoformat).
            raise TypeError(
                f"RunIdentity: created_at must be a datetime, got {type(created_at).__name__}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: each id as a UUID string or None, ``created_at`` ISO 8601."""
        serialized = self._serialized
        if type(serialized) is not dict:
            serialized = _serialize(self)
        return serialized.copy()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunIdentity:
        """Build an identity from :meth:`to_dict` output.

        Missing or empty ids become None; a missing ``created_at`` becomes now.

        Raises:
            ValueError: An id is not a valid UUID string, or ``created_at`` is not ISO 8601
                (the message names the field).
            TypeError: ``data`` is not a mapping, or a value has the wrong type.
        """
        return _run_identity_from_dict(data, None)

    def with_pipeline_run_id(self, pipeline_run_id: uuid.UUID) -> RunIdentity:
        """A copy with ``pipeline_run_id`` replaced."""
        return attrs.evolve(self, pipeline_run_id=pipeline_run_id)


_ID_KEYS = (
    "pipeline_run_id",
    "request_id",
    "session_id",
    "user_id",
    "org_id",
    "interaction_id",
)
_ID_KEYS_AND_SETTERS = tuple(zip(_ID_KEYS, _slot_setters(RunIdentity, *_ID_KEYS), strict=True))
_set_created_at, _set_serialized = _slot_setters(RunIdentity, "created_at", "_serialized")


_NO_TEXTS = (None,) * 7


def _serialize(identity: RunIdentity) -> dict[str, Any]:
    """Fill ``identity``'s to_dict() cache and return it.

    UUID ``str()`` and aware ``isoformat()`` dominate the cost of serializing
    an identity; the texts it was parsed from stand in for them when they are
    already in that exact form.

    The cache is read once, here: another thread serializing the same identity
    (a snapshot parsed once, run in several threads) may have filled it since
    the caller looked, and its dict is then the answer (it is not the texts).
    """
    cached = identity._serialized
    if type(cached) is dict:
        return cached
    texts: tuple[Any, ...] = cached or _NO_TEXTS  # type: ignore[assignment]
    pipeline_run_id = identity.pipeline_run_id
    request_id = identity.request_id
    session_id = identity.session_id
    user_id = identity.user_id
    org_id = identity.org_id
    interaction_id = identity.interaction_id
    serialized = {
        "pipeline_run_id": None
        if pipeline_run_id is None
        else _uuid_text(pipeline_run_id, texts[0]),
        "request_id": None if request_id is None else _uuid_text(request_id, texts[1]),
        "session_id": None if session_id is None else _uuid_text(session_id, texts[2]),
        "user_id": None if user_id is None else _uuid_text(user_id, texts[3]),
        "org_id": None if org_id is None else _uuid_text(org_id, texts[4]),
        "interaction_id": None if interaction_id is None else _uuid_text(interaction_id, texts[5]),
        "created_at": _iso_text(identity.created_at, texts[6]),
    }
    _set(identity, "_serialized", serialized)
    return serialized


def id_texts(identity: RunIdentity) -> Mapping[str, Any]:
    """``identity.to_dict()`` without the copy: the cached dict itself. Read it, never change it.

    The graphs' events carry the run's ids as strings; a snapshot run many times
    (or a child run of one) makes them once.
    """
    serialized = identity._serialized
    if type(serialized) is not dict:
        serialized = _serialize(identity)
    return serialized


def _run_identity_from_dict(data: Any, where: str | None, key: str | None = None) -> RunIdentity:
    """Parse a serialized identity; errors name ``where.key.<field>`` (or the bare field)."""
    if not isinstance(data, dict):
        _check_mapping(data, _path(where, key))
    get = data.get
    identity: RunIdentity = _new(RunIdentity)
    texts = []
    for id_key, set_slot in _ID_KEYS_AND_SETTERS:
        value = get(id_key)
        texts.append(value)
        if not value:
            if value is not None:
                _no_id(value, id_key, where, key)  # "" is no id; [] or 0 is an error
            set_slot(identity, None)
            continue
        # _parse_uuid()'s fast path, inlined: six ids per identity.
        if type(value) is str:
            hex_digits = value.replace("-", "")
            if len(hex_digits) == 32:
                try:
                    number = int(hex_digits, 16)
                except ValueError:
                    pass
                else:
                    parsed = _new(_UUID)
                    _set_uuid_int(parsed, number)
                    _set_uuid_safe(parsed, _SAFE_UNKNOWN)
                    set_slot(identity, parsed)
                    continue
        set_slot(identity, _parse_uuid(value, id_key, where, key))
    text = get("created_at")
    if text and type(text) is str:
        try:
            created_at = _fromisoformat(text)
        except ValueError:
            _datetime_or_none(text, "created_at", _path(where, key))  # raises, naming the path
            raise
    else:  # None or "" means now; a datetime is kept; anything else is an error
        created_at = _datetime_or_none(text, "created_at", _path(where, key)) or utc_now()
    texts.append(text)
    _set_created_at(identity, created_at)
    _set_serialized(identity, tuple(texts))  # checked on first to_dict(), if any
    return identity


def _run_identity_from_flat(data: Mapping[str, Any]) -> RunIdentity:
    """The identity spelled by a legacy flat snapshot: its six ids, created now."""
    get = data.get
    return RunIdentity(
        _uuid_or_none(get("pipeline_run_id"), "pipeline_run_id"),
        _uuid_or_none(get("request_id"), "request_id"),
        _uuid_or_none(get("session_id"), "session_id"),
        _uuid_or_none(get("user_id"), "user_id"),
        _uuid_or_none(get("org_id"), "org_id"),
        _uuid_or_none(get("interaction_id"), "interaction_id"),
    )
