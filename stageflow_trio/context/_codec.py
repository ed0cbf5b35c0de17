"""Private serialization helpers shared by the context package's ``to_dict`` / ``from_dict``.

Deep freezing of JSON-like containers and the matching thaw, and direct slot
construction for objects whose fields ``from_dict`` has already checked. Ids,
timestamps and error paths are in :mod:`stageflow_trio.context._parse`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from typing import Any

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
