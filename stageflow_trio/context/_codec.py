"""Private serialization helpers shared by the context package's ``to_dict`` / ``from_dict``.

Deep freezing of JSON-like containers and the matching thaw, fast id and
timestamp parsing with error messages that name the path, and direct slot
construction for objects whose fields ``from_dict`` has already checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from typing import Any, NoReturn

from stageflow_trio._time import parse_uuid
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

# Values that need no freezing or thawing: they are immutable leaves.
_ATOMS: frozenset[type] = frozenset(
    {str, int, float, bool, type(None), bytes, uuid.UUID, datetime, date, time}
)

# FrozenDict/FrozenList run a Python-level __init__ (re-initialization guard,
# error translation). The containers built here are fresh and their input is
# known good, so they are filled through the base class directly, which is
# 30-40% cheaper; freezing is a large part of what from_dict does.
_new_dict = dict.__new__
_fill_dict = dict.update
_new_list = list.__new__
_fill_list = list.extend
_new = object.__new__
_set = object.__setattr__

_EMPTY_DICT: FrozenDict[Any, Any] = FrozenDict()
_EMPTY_LIST: FrozenList[Any] = FrozenList()


def _is_mapping(value: object) -> bool:
    """``isinstance(value, Mapping)``, with the C-level dict check first (5x faster for dicts)."""
    return isinstance(value, dict) or isinstance(value, Mapping)  # noqa: SIM101


def _freeze(value: Any) -> Any:
    """Deep-freeze a JSON-like value: mappings become FrozenDicts, lists and tuples FrozenLists.

    Other objects are kept as given (they are not containers this package owns).
    """
    if isinstance(value, dict):
        return _freeze_mapping(value)
    if isinstance(value, (list, tuple)):
        return _freeze_list(value)
    if type(value) in _ATOMS or not isinstance(value, Mapping):
        return value
    return _freeze_mapping(value)


def _deeply_frozen(items: Iterable[Any]) -> bool:
    """Whether every item is a leaf or a FrozenDict/FrozenList that is itself deeply frozen.

    Such containers are shared instead of copied: nothing reachable from them
    can change. (to_dict hands out the snapshot's own frozen containers, so a
    round trip through from_dict copies nothing.)
    """
    for item in items:
        kind = type(item)
        if kind in _ATOMS:
            continue
        if kind is FrozenDict:
            if not _deeply_frozen(item.values()):
                return False
        elif kind is not FrozenList or not _deeply_frozen(item):
            return False
    return True


def _freeze_mapping(value: Mapping[Any, Any] | None, name: str = "value") -> FrozenDict[Any, Any]:
    """A deep-frozen copy of a mapping (``None`` means empty); shared if already deep-frozen.

    Raises:
        TypeError: ``value`` is not a mapping (the message names it ``name``).
    """
    result: FrozenDict[Any, Any]
    if type(value) is FrozenDict:
        if _deeply_frozen(value.values()):
            return value
    elif not (isinstance(value, dict) or isinstance(value, Mapping)):  # noqa: SIM101
        if value is None:
            return _EMPTY_DICT
        raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
    else:
        for item in value.values():
            if type(item) not in _ATOMS:
                break
        else:
            if not value:
                return _EMPTY_DICT
            result = _new_dict(FrozenDict)
            _fill_dict(result, value)
            return result
    result = _new_dict(FrozenDict)
    _fill_dict(result, {k: (v if type(v) in _ATOMS else _freeze(v)) for k, v in value.items()})
    return result


def _freeze_list(value: Iterable[Any] | None, name: str = "value") -> FrozenList[Any]:
    """A deep-frozen copy of a list (``None`` means empty); shared if already deep-frozen.

    Raises:
        TypeError: ``value`` is a string, bytes, a mapping or not iterable (the
            message names it ``name``).
    """
    result: FrozenList[Any]
    if type(value) is FrozenList:
        if _deeply_frozen(value):
            return value
    elif value is None:
        return _EMPTY_LIST
    else:
        if not isinstance(value, (list, tuple)):
            if isinstance(value, (str, bytes)) or _is_mapping(value):
                raise TypeError(f"{name} must be a list, got {type(value).__name__}")
            try:
                value = list(value)
            except TypeError:
                raise TypeError(f"{name} must be a list, got {type(value).__name__}") from None
        for item in value:
            if type(item) not in _ATOMS:
                break
        else:
            if not value:
                return _EMPTY_LIST
            result = _new_list(FrozenList)
            _fill_list(result, value)
            return result
    result = _new_list(FrozenList)
    _fill_list(result, [v if type(v) in _ATOMS else _freeze(v) for v in value])
    return result


# attrs converters of the container fields: named functions (the attrs mypy
# plugin takes the __init__ parameter types from them) that name their field.


def _metadata_field(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return _freeze_mapping(value, "metadata")


def _preferences_field(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return _freeze_mapping(value, "preferences")


def _goals_field(value: Iterable[str] | None) -> FrozenList[str]:
    return _freeze_list(value, "goals")


def _recent_topics_field(value: Iterable[str] | None) -> FrozenList[str]:
    return _freeze_list(value, "recent_topics")


def _key_facts_field(value: Iterable[str] | None) -> FrozenList[str]:
    return _freeze_list(value, "key_facts")


def _blocks_field(value: Iterable[Mapping[str, Any]] | None) -> FrozenList[FrozenDict[str, Any]]:
    return _freeze_list(value, "blocks")


def _web_results_field(
    value: Iterable[Mapping[str, Any]] | None,
) -> FrozenList[FrozenDict[str, Any]]:
    return _freeze_list(value, "web_results")


def _slot_setters(cls: type, *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot descriptors' setters of an attrs class, for building it field by field.

    ``from_dict`` builds objects from values it has already parsed and frozen;
    setting the slots directly skips the generated ``__init__`` and its
    converters, which would only redo that work (about 2x faster).
    """
    return tuple(cls.__dict__[name].__set__ for name in names)


# --- ids and timestamps ------------------------------------------------------

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
