"""Reading the fields of a serialized context: ids, timestamps, text, typed lists, shapes.

Fast id and timestamp parsing (the same results as ``uuid.UUID`` and
``datetime.fromisoformat``), the cached canonical texts ``to_dict`` reuses, and
the checks whose error messages name the path of the bad value. Parsers test
the common case inline (``type(x) is str``) and call the ``_optional_*`` /
``_required_*`` functions here only when it fails; those accept subclasses
(a ``StrEnum`` is text) and raise a TypeError naming the path for anything else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from stageflow_trio._time import parse_uuid
from stageflow_trio.context._codec import (
    _EMPTY_LIST,
    _MAX_DEPTH,
    _deeply_frozen,
    _fill_list,
    _frozen_dict,
    _is_mapping,
    _name,
    _nesting_error,
    _new,
    _new_list,
    _path,
    _slot_setters,
    _TooDeep,
)
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

if TYPE_CHECKING:
    from collections.abc import Callable

_T = TypeVar("_T")

_UUID = uuid.UUID
# uuid.UUID is slotted and blocks __setattr__; its own __init__ sets these two
# slots through object.__setattr__, which is what the descriptors below do.
_set_uuid_int, _set_uuid_safe = _slot_setters(_UUID, "int", "is_safe")
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
_fromisoformat = datetime.fromisoformat


def _parse_uuid(value: Any, key: str, where: str | None = None, index: Any = None) -> uuid.UUID:
    """Parse a serialized id (not None, not empty); errors name ``where[index].key``.

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
    parsed = parse_uuid(value, _name(key, _path(where, index)))
    assert parsed is not None  # value is not None
    return parsed


def _uuid_or_none(
    value: Any, key: str, where: str | None = None, index: Any = None
) -> uuid.UUID | None:
    """Parse a serialized id: None or ``""`` means None, else a UUID (errors name ``where.key``)."""
    if not value:
        _no_id(value, key, where, index)
        return None
    return _parse_uuid(value, key, where, index)


def _no_id(value: Any, key: str, where: str | None, index: Any = None) -> None:
    """Check a falsy id: None and ``""`` mean "no id"; ``[]``, ``0`` or ``False`` are TypeErrors."""
    if value is not None and not isinstance(value, str):
        parse_uuid(value, _name(key, _path(where, index)))  # raises, naming the type


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
    """Parse a serialized timestamp: None or ``""`` means None, else ``datetime.fromisoformat``."""
    if not value and (value is None or isinstance(value, str)):
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


# --- typed fields (the slow paths; parsers check the common case inline) -----


def _optional_str(value: Any, key: str, where: str | None = None, index: Any = None) -> str | None:
    """A text field that may be None: ``value``, or a TypeError naming ``where[index].key``."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(
        f"{_name(key, _path(where, index))} must be a str or None, got {type(value).__name__}"
    )


def _required_str(value: Any, key: str, where: str | None = None, index: Any = None) -> str:
    """A text field that must be present: ``value``, or a TypeError naming ``where[index].key``."""
    if isinstance(value, str):
        return value
    raise TypeError(f"{_name(key, _path(where, index))} must be a str, got {type(value).__name__}")


def _optional_int(value: Any, key: str) -> int | None:
    """An integer field that may be None; ``True`` is not a duration."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"{key} must be an int or None, got {type(value).__name__}")


def _str_list(value: Any, key: str, where: str | None = None, index: Any = None) -> FrozenList[str]:
    """A serialized list of text (goals, topics, facts): checked and frozen; shared if already so.

    Raises:
        TypeError: ``value`` is not a list, or an item is not a str (the message
            names it, e.g. ``profile.goals[1]``).
    """
    kind = type(value)
    if kind is list or kind is FrozenList:
        for item in value:
            if type(item) is not str:
                break
        else:
            if kind is FrozenList:
                return value  # type: ignore[no-any-return]
            if not value:
                return _EMPTY_LIST
            result: FrozenList[str] = _new_list(FrozenList)
            _fill_list(result, value)
            return result
    elif value is None:
        return _EMPTY_LIST
    name = _name(key, _path(where, index))
    items = list(_list_or_empty(value, name))
    for position, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{position}] must be a str, got {type(item).__name__}")
    result = _new_list(FrozenList)
    _fill_list(result, items)
    return result


def _mapping_list(
    value: Any, key: str, where: str | None = None, index: Any = None
) -> FrozenList[FrozenDict[str, Any]]:
    """A serialized list of free-form mappings (blocks, web results): checked and deep-frozen.

    The list is the field's first level of nesting (see ``_MAX_DEPTH``).

    Raises:
        TypeError: ``value`` is not a list, or an item is not a mapping.
        ValueError: An item nests too deep or contains itself.
    """
    kind = type(value)
    try:
        if kind is FrozenList:
            # What to_dict hands out: shared as it is if every item is a deep-frozen FrozenDict.
            for item in value:
                if type(item) is not FrozenDict or not _deeply_frozen(
                    item.values(), _MAX_DEPTH - 2
                ):
                    break
            else:
                return value  # type: ignore[no-any-return]
        if kind is list or kind is FrozenList:
            for item in value:
                if not isinstance(item, dict):  # FrozenDict is a dict
                    break
            else:
                if not value:
                    return _EMPTY_LIST
                result: FrozenList[FrozenDict[str, Any]] = _new_list(FrozenList)
                _fill_list(result, [_frozen_dict(item, _MAX_DEPTH - 1) for item in value])
                return result
    except _TooDeep as exc:
        raise _nesting_error(value, _name(key, _path(where, index)), exc) from None
    if value is None:
        return _EMPTY_LIST
    name = _name(key, _path(where, index))
    items = list(_list_or_empty(value, name))
    for position, item in enumerate(items):
        if not _is_mapping(item):
            raise TypeError(f"{name}[{position}] must be a mapping, got {type(item).__name__}")
    try:
        result = _new_list(FrozenList)
        _fill_list(result, [_frozen_dict(item, _MAX_DEPTH - 1) for item in items])
    except _TooDeep as exc:
        raise _nesting_error(items, name, exc) from None
    return result


def _parsed_list(
    value: Any, key: str, where: str | None, parse: Callable[[Any, str, int], _T]
) -> FrozenList[_T]:
    """A serialized list of objects (messages, documents), each read by ``parse(item, path, index)``.

    Raises:
        TypeError: ``value`` is not a list (``""`` and ``{}`` included); ``parse``
            raises for an item, naming it (e.g. ``conversation.messages[1]``).
    """
    if not value:
        _list_or_empty(value, key, where)  # rejects e.g. "" or {}
        return _EMPTY_LIST
    prefix = _name(key, where)
    if not isinstance(value, list):
        value = _list_or_empty(value, key, where)
    result: FrozenList[_T] = _new_list(FrozenList)
    _fill_list(result, [parse(item, prefix, index) for index, item in enumerate(value)])
    return result


# --- attrs converters of the typed list fields ---------------------------------
# What a constructor is given is checked as from_dict checks what it reads, with
# the same messages, so that what a constructor builds serializes and reads back.


def _goals_field(value: Iterable[str] | None) -> FrozenList[str]:
    return _str_list(value, "goals")


def _recent_topics_field(value: Iterable[str] | None) -> FrozenList[str]:
    return _str_list(value, "recent_topics")


def _key_facts_field(value: Iterable[str] | None) -> FrozenList[str]:
    return _str_list(value, "key_facts")


def _blocks_field(value: Iterable[Mapping[str, Any]] | None) -> FrozenList[FrozenDict[str, Any]]:
    return _mapping_list(value, "blocks")


def _web_results_field(
    value: Iterable[Mapping[str, Any]] | None,
) -> FrozenList[FrozenDict[str, Any]]:
    return _mapping_list(value, "web_results")


def _instance_list(value: Any, key: str, cls: type[Any]) -> FrozenList[Any]:
    """A list field of ``cls`` instances (an Enrichments' documents), frozen.

    Shared if it already is a FrozenList; the instances themselves are immutable.

    Raises:
        TypeError: ``value`` is not a list (a str, a mapping, a scalar), or an
            item is not a ``cls`` (the message names it, e.g. ``documents[1]``).
    """
    kind = type(value)
    if kind is not list and kind is not FrozenList:
        if value is None:
            return _EMPTY_LIST
        value = list(_list_or_empty(value, key))
    for position, item in enumerate(value):
        if type(item) is not cls and not isinstance(item, cls):
            raise TypeError(
                f"{key}[{position}] must be a {cls.__name__}, got {type(item).__name__}"
            )
    if kind is FrozenList:
        return value  # type: ignore[no-any-return]
    if not value:
        return _EMPTY_LIST
    result: FrozenList[Any] = _new_list(FrozenList)
    _fill_list(result, value)
    return result


def _optional_instance(value: Any, key: str, cls: type[Any]) -> None:
    """Check a field that holds a ``cls`` or None (a profile, a routing decision)."""
    if value is not None and type(value) is not cls and not isinstance(value, cls):
        raise TypeError(f"{key} must be a {cls.__name__} or None, got {type(value).__name__}")


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


def _absent(value: Any, key: str, where: str | None = None) -> Any:  # always None
    """None, after checking a falsy value where a mapping may be: None or ``{}`` is absent, ``[]`` an error.

    Parsers write ``parse(value) if value else _absent(value, ...)``: no cost for a present value.
    """
    _mapping_or_none(value, key, where)
    return None


def _check_mapping(data: Any, where: str | None) -> Mapping[str, Any]:
    """``data`` itself, or a TypeError naming ``where`` (or ``data``) when it is not a mapping."""
    if _is_mapping(data):
        return data  # type: ignore[no-any-return]
    # `from None`: callers may check inside an `except` (after a failed lookup),
    # and the lookup's own error ("string indices must be integers") is noise.
    raise TypeError(f"{where or 'data'} must be a mapping, got {type(data).__name__}") from None


def _missing_key(exc: KeyError, where: str | None) -> NoReturn:
    raise ValueError(f"{where or 'data'} is missing the required key {exc.args[0]!r}") from None
