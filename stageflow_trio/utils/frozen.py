"""Read-only dict and list types for sharing data without copies.

:class:`FrozenDict` and :class:`FrozenList` are subclasses of ``dict`` and
``list`` with every mutating method blocked. Being real dicts and lists is the
point: code written against plain containers keeps working unchanged
(``frozen == {"a": 1}``, ``json.dumps(frozen)``, ``dict(frozen)``,
``isinstance(frozen, dict)``), while any attempt to change one raises
``TypeError``. The freeze is shallow: values that are themselves mutable stay
mutable (the library freezes the containers it owns one level at a time).

Reading is as fast as a plain dict or list because no read method is
overridden. Note that ``dict.__setitem__(frozen, k, v)`` called on the base
class directly still bypasses the guard, and so does ``frozen.__init__(data)``
called again on an empty instance (on a non-empty one it raises); that is
deliberate sabotage, not use (a metaclass could close the second at the cost of
every construction, and was judged not worth it).
"""

from __future__ import annotations

from copy import deepcopy
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["FrozenDict", "FrozenList"]

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

_dict_init = dict.__init__
_dict_new = dict.__new__
_dict_update = dict.update
_list_init = list.__init__
_list_new = list.__new__
_dict_setitem = dict.__setitem__
_list_append = list.append


def _text_of_item(item: tuple[Any, Any]) -> str:
    # The key's own text, as str() gives it for a plain str: a str subclass
    # (an Enum mixin) may print otherwise, but it is equal to its text.
    return str.__str__(item[0])


def _refuse(kind: str, operation: str) -> NoReturn:
    copy_hint = (
        "dict(value) or value.to_dict()"
        if kind == "FrozenDict"
        else "list(value) or value.to_list()"
    )
    raise TypeError(
        f"{kind} is immutable: {operation} is not supported; make a mutable copy with {copy_hint}"
    )


class FrozenDict(dict[K, V]):
    """An immutable ``dict``: every read works, every write raises ``TypeError``.

    Args:
        data: A mapping or an iterable of key/value pairs to copy; ``None`` gives
            an empty FrozenDict.

    Raises:
        TypeError: ``data`` is neither a mapping nor an iterable of pairs, or
            any mutating method is called.
    """

    __slots__ = ()

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] | None = None) -> None:
        if data is None:
            return
        if self:
            # Calling __init__ again on a live instance would otherwise refill it.
            _refuse("FrozenDict", "re-initialization")
        try:
            _dict_init(self, data)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                "FrozenDict data must be a mapping or an iterable of key/value pairs, "
                f"got {type(data).__name__}"
            ) from exc

    @classmethod
    def fromkeys(cls, iterable: Iterable[Any], value: Any = None, /) -> FrozenDict[Any, Any]:
        """A FrozenDict mapping every key of ``iterable`` to ``value``."""
        return cls(dict.fromkeys(iterable, value))

    def __setitem__(self, key: K, value: V) -> NoReturn:
        _refuse("FrozenDict", "item assignment")

    def __delitem__(self, key: K) -> NoReturn:
        _refuse("FrozenDict", "item deletion")

    def __ior__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _refuse("FrozenDict", "'|='")

    def clear(self) -> NoReturn:
        _refuse("FrozenDict", "'clear'")

    def pop(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        _refuse("FrozenDict", "'pop'")

    def popitem(self) -> NoReturn:
        _refuse("FrozenDict", "'popitem'")

    def setdefault(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        _refuse("FrozenDict", "'setdefault'")

    def update(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        _refuse("FrozenDict", "'update'")

    def __hash__(self) -> int:  # type: ignore[override]
        # Order-independent like equality; unhashable values raise TypeError.
        # Text keys: the reference's hash, the items sorted by key. Any other
        # key: the hash of the set of items. (Sorting by str(key), as the
        # reference does for every key, breaks `a == b` implies
        # `hash(a) == hash(b)`: {1: x, "1": y} and {"1": y, 1: x} tie on "1"
        # and keep their own orders; 1 and True are equal keys that sort apart.)
        items = dict.items(self)
        for key in self:
            if not isinstance(key, str):
                return hash(frozenset(items))
        return hash(tuple(sorted(items, key=_text_of_item)))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"

    def __reduce__(self) -> tuple[type[FrozenDict[K, V]], tuple[dict[K, V]]]:
        # The default dict reduction refills the object item by item, which the
        # blocked __setitem__ refuses; rebuild from a plain dict instead.
        return (type(self), (dict(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict[K, V]:
        # Registered in the memo before its items are copied, as deepcopy does for a
        # dict: an item that refers back to this FrozenDict gets the copy itself
        # (the reduction, which copies the items first, made a second copy).
        result: FrozenDict[K, V] = _dict_new(type(self))
        memo[id(self)] = result
        for key, value in dict.items(self):
            _dict_setitem(result, deepcopy(key, memo), deepcopy(value, memo))
        return result

    def to_dict(self) -> dict[K, V]:
        """A mutable shallow copy as a plain ``dict``."""
        return dict(self)

    def copy(self) -> FrozenDict[K, V]:
        """A new FrozenDict with the same items."""
        return type(self)(self)


class FrozenList(list[T]):
    """An immutable ``list``: every read works, every write raises ``TypeError``.

    Slicing, ``+`` and ``*`` return plain (mutable) lists, as they do for any
    list subclass.

    Args:
        data: An iterable to copy; ``None`` gives an empty FrozenList.

    Raises:
        TypeError: ``data`` is not iterable, or any mutating method is called.
    """

    __slots__ = ()

    def __init__(self, data: Iterable[T] | None = None) -> None:
        if data is None:
            return
        if self:
            _refuse("FrozenList", "re-initialization")
        try:
            _list_init(self, data)
        except TypeError as exc:
            raise TypeError(
                f"FrozenList data must be an iterable, got {type(data).__name__}"
            ) from exc

    def __setitem__(self, *_args: Any) -> NoReturn:
        _refuse("FrozenList", "item assignment")

    def __delitem__(self, *_args: Any) -> NoReturn:
        _refuse("FrozenList", "item deletion")

    def __iadd__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _refuse("FrozenList", "'+='")

    def __imul__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _refuse("FrozenList", "'*='")

    def append(self, *_args: Any) -> NoReturn:
        _refuse("FrozenList", "'append'")

    def extend(self, *_args: Any) -> NoReturn:
        _refuse("FrozenList", "'extend'")

    def insert(self, *_args: Any) -> NoReturn:
        _refuse("FrozenList", "'insert'")

    def pop(self, *_args: Any) -> NoReturn:
        _refuse("FrozenList", "'pop'")

    def remove(self, *_args: Any) -> NoReturn:
        _refuse("FrozenList", "'remove'")

    def clear(self) -> NoReturn:
        _refuse("FrozenList", "'clear'")

    def sort(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        _refuse("FrozenList", "'sort'")

    def reverse(self) -> NoReturn:
        _refuse("FrozenList", "'reverse'")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"FrozenList({list.__repr__(self)})"

    def __reduce__(self) -> tuple[type[FrozenList[T]], tuple[list[T]]]:
        # The default list reduction refills via append/extend, which are blocked.
        return (type(self), (list(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList[T]:
        # As FrozenDict.__deepcopy__: in the memo before the items are copied.
        result: FrozenList[T] = _list_new(type(self))
        memo[id(self)] = result
        for value in self:
            _list_append(result, deepcopy(value, memo))
        return result

    def to_list(self) -> list[T]:
        """A mutable shallow copy as a plain ``list``."""
        return list(self)

    def copy(self) -> FrozenList[T]:
        """A new FrozenList with the same items."""
        return type(self)(self)


def _freeze_dict(data: Mapping[K, V]) -> FrozenDict[K, V]:
    """A FrozenDict copy of a mapping already known to be valid (library hot paths)."""
    frozen: FrozenDict[K, V] = _dict_new(FrozenDict)
    _dict_update(frozen, data)
    return frozen
