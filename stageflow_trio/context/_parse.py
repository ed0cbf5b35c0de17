"""Reading and writing the scalars of a serialized context: ids, timestamps, paths.

Fast id and timestamp parsing (the same results as ``uuid.UUID`` and
``datetime.fromisoformat``), the cached canonical texts ``to_dict`` reuses, and
the checks whose error messages name the path of the bad value.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NoReturn

from stageflow_trio._time import parse_uuid
from stageflow_trio.context._codec import _is_mapping, _new, _slot_setters

_UUID = uuid.UUID
# uuid.UUID is slotted and blocks __setattr__; its own __init__ sets these two
# slots through object.__setattr__, which is what the descriptors below do.
_set_uuid_int, _set_uuid_safe = _slot_setters(_UUID, "int", "is_safe")
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
_fromisoformat = datetime.fromisoformat


def _name(key: str, where: str | None) -> str:
    """The path of ``key`` inside ``where``, for error messages."""
    return key if where is None else f"{where}.{key}"


def _path(where: str | None, key: str | int | None) -> str | None:
    """The path of ``key`` (a field name or a list index) inside ``where``, for error messages.

    Parsers take their parent's path and their key, and only join them when
    they have an error to report: formatting every path up front costs ~3% of
    a snapshot's from_dict.
    """
    if key is None:
        return where
    if type(key) is int:
        return f"{where}[{key}]"
    return key if where is None else f"{where}.{key}"  # type: ignore[return-value]


def _parse_uuid(value: Any, key: str, where: str | None = None) -> uuid.UUID:
    """Parse a serialized id (not None, not empty); errors name ``where.key``.

    The same result as ``uuid.UUID(value)`` (which also just drops the hyphens
    and reads 32 hex digits), about twice as fast; braces, ``urn:uuid:`` and
    errors are left to ``uuid.UUID`` through ``parse_uuid``.
    """
    if type(value) is str:
        hex_digits = value.replace("-", "")
        if len(hex_digits) == 32:
            try:
                number = int(hex_digits, 16)
            except ValueError:
                pass
            else:
                result = _new(_UUID)
                _set_uuid_int(result, number)
                _set_uuid_safe(result, _SAFE_UNKNOWN)
                return result
    parsed = parse_uuid(value, _name(key, where))
    assert parsed is not None  # value is not None
    return parsed


def _uuid_or_none(value: Any, key: str, where: str | None = None) -> uuid.UUID | None:
    """Parse a serialized id: falsy means None, else a UUID (errors name ``where.key``)."""
    if not value:
        return None
    return _parse_uuid(value, key, where)


def _uuid_text(value: uuid.UUID, candidate: object) -> str:
    """``str(value)``, or ``candidate`` (the text it was parsed from) if that is the same string.

    The check costs about half of ``str()``.
    """
    if (
        type(candidate) is str
        and len(candidate) == 36
        and candidate[8:24:5] == "----"  # the characters at 8, 13, 18 and 23
        and "%032x" % value.int == candidate.replace("-", "")  # noqa: UP031 - fastest spelling
    ):
        return candidate
    return str(value)


def _iso_text(value: datetime, candidate: object) -> str:
    """``value.isoformat()``, or ``candidate`` (the text it was parsed from) if that is the same."""
    if _iso_is_canonical(candidate, value):
        return candidate  # type: ignore[return-value]
    return value.isoformat()


def _iso_is_canonical(text: Any, parsed: datetime) -> bool:
    """Whether ``parsed.isoformat() == text``, decided from the shape of ``text``.

    ``isoformat()`` costs ~0.6 us on an aware datetime, so a timestamp read in
    its canonical form keeps that form for serializing again. Recognized:
    ``YYYY-MM-DDTHH:MM:SS[.ffffff][+00:00]`` (``text`` already parsed to
    ``parsed``); anything else answers False, which only costs a later
    ``isoformat()`` call.
    """
    if type(text) is not str:
        return False
    size = len(text)
    # text[4:17:3] is the characters at 4, 7, 10, 13 and 16: it rules out the
    # week-date, ordinal and basic forms that fromisoformat() also accepts (its
    # parser has already checked the digits).
    if size == 32:  # what utc_now().isoformat() gives
        return (
            text[26:] == "+00:00"
            and text[19] == "."
            and text[4:17:3] == "--T::"
            and parsed.microsecond != 0  # isoformat() drops an all-zero fraction
        )
    if size == 25:
        return text[19:] == "+00:00" and text[4:17:3] == "--T::"
    if size == 26:
        return (
            parsed.tzinfo is None
            and text[19] == "."
            and text[4:17:3] == "--T::"
            and parsed.microsecond != 0
        )
    if size == 19:
        return parsed.tzinfo is None and text[4:17:3] == "--T::"
    return False


def _datetime_or_none(value: Any, key: str, where: str | None = None) -> datetime | None:
    """Parse a serialized timestamp: falsy means None, else ``datetime.fromisoformat``."""
    if not value:
        return None
    if type(value) is str:
        try:
            return _fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{_name(key, where)} must be an ISO 8601 string, got {value!r}"
            ) from None
    if isinstance(value, datetime):
        return value
    raise TypeError(
        f"{_name(key, where)} must be an ISO 8601 string or None, got {type(value).__name__}"
    )


# --- shape checks (called on the slow path, or once per document) -----------


def _list_or_empty(value: Any, key: str, where: str | None = None) -> Iterable[Any]:
    """A serialized list field: None means empty; a mapping, a string or a scalar is an error."""
    if isinstance(value, list) or value is None:
        return value or ()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{_name(key, where)} must be a list, got {type(value).__name__}")
    return value


def _mapping_or_none(value: Any, key: str, where: str | None = None) -> Mapping[Any, Any] | None:
    """A serialized mapping field, checked: a mapping or None, else a TypeError naming it."""
    if value is None or _is_mapping(value):
        return value  # type: ignore[no-any-return]
    raise TypeError(f"{_name(key, where)} must be a mapping, got {type(value).__name__}")


def _check_mapping(data: Any, where: str | None) -> Mapping[str, Any]:
    """``data`` itself, or a TypeError naming ``where`` (or ``data``) when it is not a mapping."""
    if _is_mapping(data):
        return data  # type: ignore[no-any-return]
    raise TypeError(f"{where or 'data'} must be a mapping, got {type(data).__name__}")


def _missing_key(exc: KeyError, where: str | None) -> NoReturn:
    raise ValueError(f"{where or 'data'} is missing the required key {exc.args[0]!r}") from None
