"""The one cattrs converter the package serializes with.

UUIDs become strings, datetimes ISO strings (``isoformat()``), enums their
values. Public ``to_dict`` / ``from_dict`` methods are thin calls into it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import cattrs

__all__ = ["converter"]

converter = cattrs.Converter()


def _unstructure_uuid(value: uuid.UUID) -> str:
    return str(value)


def _structure_uuid(value: Any, _: type) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__}")
    return uuid.UUID(value)


def _unstructure_datetime(value: datetime) -> str:
    return value.isoformat()


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    return datetime.fromisoformat(value)


converter.register_unstructure_hook(uuid.UUID, _unstructure_uuid)
converter.register_structure_hook(uuid.UUID, _structure_uuid)
converter.register_unstructure_hook(datetime, _unstructure_datetime)
converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, enum.Enum),
    lambda e: e.value,
)
