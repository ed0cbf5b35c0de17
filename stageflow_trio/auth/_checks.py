"""Field checks shared by the auth values (context, tenant) and interceptors."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from stageflow_trio._args import type_of


def to_uuid(owner: str, param: str, value: object) -> UUID:
    """``value`` as a UUID: a UUID, or a string holding one.

    Raises:
        TypeError: ``value`` is neither.
        ValueError: a string that is not a UUID.
    """
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            raise ValueError(f"{owner}: {param} must be a UUID string; got {value!r}") from None
    raise TypeError(f"{owner}: {param} must be a UUID or a UUID string; got {type_of(value)}")


def to_optional_uuid(owner: str, param: str, value: object) -> UUID | None:
    """:func:`to_uuid`, passing None through."""
    return None if value is None else to_uuid(owner, param, value)


def to_str_tuple(owner: str, param: str, value: object) -> tuple[str, ...]:
    """An iterable of str (a str itself is refused: it would become its letters) as a tuple.

    Raises:
        TypeError: ``value`` is a str, not iterable, or holds something else than str.
    """
    if isinstance(value, tuple) and all(type(item) is str for item in value):
        return value
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{owner}: {param} must be an iterable of str; got {type_of(value)}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{owner}: {param} must hold only str; got {type_of(item)}")
    return items
