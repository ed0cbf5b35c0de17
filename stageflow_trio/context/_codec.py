"""Private serialization helpers shared by the context package's ``to_dict`` / ``from_dict``.

Deep freezing of free-form JSON-like containers (bounded in depth, so hostile
input gives a ValueError rather than a RecursionError), the paths that error
messages name, and direct slot construction for objects whose fields
``from_dict`` has already checked. Ids, timestamps and typed fields are read in
:mod:`stageflow_trio.context._parse`.
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

# How many dicts and lists a free-form value (metadata, preferences, blocks,
# web results, a mapping extension) may nest, its own included: deep enough for
# any real document, shallow enough that freezing (three frames a level) stays
# far from the interpreter's recursion limit. Documented in docs/context.md.
_MAX_DEPTH = 100

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


def _is_mapping(value: object) -> bool:
    """``isinstance(value, Mapping)``, with the C-level dict check first (5x faster for dicts)."""
    return isinstance(value, dict) or isinstance(value, Mapping)  # noqa: SIM101


class _TooDeep(Exception):
    """Raised by the recursive freezers past ``_MAX_DEPTH``; the entry points name the field."""


class _Unfreezable(_TooDeep):
    """Raised by the freezers for a leaf that cannot be frozen (a set, a bytearray).

    A subclass of _TooDeep so that every entry point's one ``except`` names the
    field for both; :func:`_nesting_error` tells them apart.
    """

    def __init__(self, leaf: object) -> None:
        super().__init__()
        self.leaf = leaf


def _nesting_error(value: object, name: str, exc: _TooDeep | None = None) -> TypeError | ValueError:
    """The error for a value the freezers gave up on.

    An unhashable leaf (``exc`` an _Unfreezable) is a TypeError naming its path
    (``metadata.tags[1]``); otherwise a reference cycle, or simply too deep, is
    a ValueError.
    """
    if isinstance(exc, _Unfreezable):
        leaf = exc.leaf
        del exc  # the leaf's path is searched below; no need to keep the traceback
        return TypeError(
            f"{_leaf_path(value, leaf, name)} must be a dict, a list or an immutable value "
            f"(free-form data is frozen and hashable), got {type(leaf).__name__}"
        )
    if _has_cycle(value):
        return ValueError(f"{name} contains a reference cycle")
    return ValueError(f"{name} nests deeper than {_MAX_DEPTH} levels")


def _leaf_path(root: object, leaf: object, name: str) -> str:
    """The path of ``leaf`` (found by identity) inside ``root``, named from ``name``.

    Only called on the error path. Iterative and cycle-safe; str keys are
    joined with dots, other keys and list indexes in brackets.
    """
    explored: set[int] = set()
    stack: list[tuple[object, str]] = [(root, name)]
    while stack:
        node, path = stack.pop()
        if node is leaf:
            return path
        if id(node) in explored:
            continue
        explored.add(id(node))
        if isinstance(node, (list, tuple)):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node))
        elif type(node) not in _ATOMS and isinstance(node, Mapping):
            stack.extend(
                (item, f"{path}.{key}" if type(key) is str else f"{path}[{key!r}]")
                for key, item in node.items()
            )
    return name


def _children(value: object) -> Iterable[Any] | None:
    """The items of a container the freezers descend into, or None for a leaf."""
    if type(value) in _ATOMS:
        return None
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, Mapping):
        return value.values()
    return None


def _has_cycle(root: object) -> bool:
    """Whether a container reachable from ``root`` contains itself.

    Only called on the error path. Iterative (the value may be thousands of
    levels deep) and linear in the number of containers: each is explored once.
    """
    on_path: set[int] = {id(root)}
    explored: set[int] = set()
    stack = [(root, iter(_children(root) or ()))]
    while stack:
        node, items = stack[-1]
        for item in items:
            children = _children(item)
            if children is None or id(item) in explored:
                continue
            if id(item) in on_path:
                return True
            on_path.add(id(item))
            stack.append((item, iter(children)))
            break
        else:
            stack.pop()
            on_path.discard(id(node))
            explored.add(id(node))
    return False


# The recursive freezers. ``depth`` is how many levels of containers the value
# may still hold, its own included; they raise _TooDeep past it.


def _freeze(value: Any, depth: int) -> Any:
    """Deep-freeze a JSON-like value: mappings become FrozenDicts, lists and tuples FrozenLists.

    Other hashable objects are kept as given (they are not containers this package
    owns); an unhashable one (a set, a bytearray) raises _Unfreezable.
    """
    if isinstance(value, dict):
        return _frozen_dict(value, depth)
    if isinstance(value, (list, tuple)):
        return _frozen_list(value, depth)
    # No check for an atom here: both callers keep atoms without calling this
    # (and one would be returned as it is below: hashable, not a Mapping).
    if isinstance(value, Mapping):
        return _frozen_dict(value, depth)
    if type(value).__hash__ is None:
        # A set, a bytearray: kept, it would make the snapshot unhashable, and it
        # is not JSON-like (to_dict could not be dumped). Refused, not converted.
        raise _Unfreezable(value)
    return value


def _deeply_frozen(items: Iterable[Any], depth: int) -> bool:
    """Whether every item is a leaf or a FrozenDict/FrozenList that is itself deeply frozen.

    Such containers are shared instead of copied: nothing reachable from them
    can change. (to_dict hands out the snapshot's own frozen containers, so a
    round trip through from_dict copies nothing.) ``depth`` bounds the items.
    """
    for item in items:
        kind = type(item)
        if kind in _ATOMS:
            continue
        if kind is FrozenDict:
            item = item.values()
        elif kind is not FrozenList:
            return False
        if depth <= 0:
            raise _TooDeep
        if not _deeply_frozen(item, depth - 1):
            return False
    return True


def _frozen_dict(value: Mapping[Any, Any], depth: int) -> FrozenDict[Any, Any]:
    """A deep-frozen copy of a mapping; the mapping itself if already deep-frozen."""
    if depth <= 0:
        raise _TooDeep
    depth -= 1
    if type(value) is FrozenDict:
        if _deeply_frozen(value.values(), depth):
            return value
    else:
        for item in value.values():
            if type(item) not in _ATOMS:
                break
        else:  # flat: no need to look at the items again
            result: FrozenDict[Any, Any] = _new_dict(FrozenDict)
            _fill_dict(result, value)
            return result
    return _dict_copy(value, depth)


def _dict_copy(value: Mapping[Any, Any], depth: int) -> FrozenDict[Any, Any]:
    """A FrozenDict of ``value``'s items, each frozen with ``depth`` levels left."""
    result: FrozenDict[Any, Any] = _new_dict(FrozenDict)
    _fill_dict(
        result, {k: (v if type(v) in _ATOMS else _freeze(v, depth)) for k, v in value.items()}
    )
    return result


def _frozen_list(value: list[Any] | tuple[Any, ...], depth: int) -> FrozenList[Any]:
    """A deep-frozen copy of a list or tuple; the list itself if already a deep-frozen FrozenList."""
    if depth <= 0:
        raise _TooDeep
    depth -= 1
    if type(value) is FrozenList and _deeply_frozen(value, depth):
        return value
    result: FrozenList[Any] = _new_list(FrozenList)
    _fill_list(result, [v if type(v) in _ATOMS else _freeze(v, depth) for v in value])
    return result


# The entry points: a whole free-form field, whose errors name its path
# (``key`` inside ``where``, at ``index`` if given; formatted only on error).


def _freeze_mapping(
    value: Mapping[Any, Any] | None,
    key: str = "value",
    where: str | None = None,
    index: int | str | None = None,
) -> FrozenDict[Any, Any]:
    """A deep-frozen copy of a mapping field (``None`` means empty); shared if already deep-frozen.

    Raises:
        TypeError: ``value`` is not a mapping, or holds an unhashable leaf (a set).
        ValueError: It nests deeper than ``_MAX_DEPTH`` levels or contains itself.
    """
    if value is None:
        return _EMPTY_DICT
    kind = type(value)
    if kind is FrozenDict or kind is dict:
        # The common cases inline: a call less per message than _frozen_dict.
        for item in value.values():
            if type(item) not in _ATOMS:
                break
        else:  # flat
            if kind is FrozenDict:
                return value  # type: ignore[return-value]
            if not value:
                return _EMPTY_DICT
            result: FrozenDict[Any, Any] = _new_dict(FrozenDict)
            _fill_dict(result, value)
            return result
        try:
            if kind is FrozenDict and _deeply_frozen(value.values(), _MAX_DEPTH - 1):
                return value  # type: ignore[return-value]
            return _dict_copy(value, _MAX_DEPTH - 1)
        except _TooDeep as exc:
            raise _nesting_error(value, _name(key, _path(where, index)), exc) from None
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{_name(key, _path(where, index))} must be a mapping, got {type(value).__name__}"
        )
    try:
        return _frozen_dict(value, _MAX_DEPTH)
    except _TooDeep as exc:
        raise _nesting_error(value, _name(key, _path(where, index)), exc) from None


def _freeze_list(
    value: Iterable[Any] | None,
    key: str = "value",
    where: str | None = None,
    index: int | str | None = None,
) -> FrozenList[Any]:
    """A deep-frozen copy of a list field (``None`` means empty); shared if already deep-frozen.

    Raises:
        TypeError: ``value`` is a string, bytes, a mapping or not iterable, or
            holds an unhashable leaf (a set).
        ValueError: It nests deeper than ``_MAX_DEPTH`` levels or contains itself.
    """
    if not isinstance(value, (list, tuple)):  # FrozenList is a list
        if value is None:
            return _EMPTY_LIST
        name = _name(key, _path(where, index))
        if isinstance(value, (str, bytes)) or _is_mapping(value):
            raise TypeError(f"{name} must be a list, got {type(value).__name__}")
        try:
            value = list(value)
        except TypeError:
            raise TypeError(f"{name} must be a list, got {type(value).__name__}") from None
    elif not value:
        return _EMPTY_LIST
    try:
        return _frozen_list(value, _MAX_DEPTH)
    except _TooDeep as exc:
        raise _nesting_error(value, _name(key, _path(where, index)), exc) from None


# attrs converters of the container fields: named functions (the attrs mypy
# plugin takes the __init__ parameter types from them) that name their field.


def _metadata_field(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return _freeze_mapping(value, "metadata")


def _preferences_field(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return _freeze_mapping(value, "preferences")


# The converters of the typed list fields (goals, topics, facts, blocks, web
# results, documents) check their items as from_dict does; they live in _parse.


def _slot_setters(cls: type, *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot descriptors' setters of an attrs class, for building it field by field.

    ``from_dict`` builds objects from values it has already parsed and frozen;
    setting the slots directly skips the generated ``__init__`` and its
    converters, which would only redo that work (about 2x faster).
    """
    return tuple(cls.__dict__[name].__set__ for name in names)
