"""The package's one cattrs converter: typed structuring by annotations.

The reference's wire shapes are bespoke (the snapshot's 23 keys with legacy
flat copies, conditional keys, base64 audio), so the hot ``to_dict`` /
``from_dict`` methods are written by hand: measured, a hand-written
RunIdentity is about 2.5x faster than cattrs. The converter serves where the
shape is simply "the fields of a user's attrs class or dataclass":
:meth:`ExtensionBundle.from_dict <stageflow_trio.context.extensions.ExtensionBundle.from_dict>`
structures a bundle by its annotations, so nested classes, UUIDs, datetimes,
enums and tuples come back as their types.

Hooks: UUIDs to and from strings; datetimes to ISO strings and back from any
string ``datetime.fromisoformat`` accepts (``str(dt)`` included); enums to
their values. Unknown keys are errors (``forbid_extra_keys``), as they are for
a plain ``cls(**data)``.

Structuring never converts a value of the wrong type: cattrs's own hooks call
the annotated type (``bool("false")`` is True, ``str(None)`` is ``"None"``,
``int(5.7)`` is 5, ``bytes(3)`` is three zero bytes) and iterate whatever they
are given into a collection (``"abc"`` into ``["a", "b", "c"]``, a dict into
its keys). Here ``str``, ``bool`` and ``bytes`` fields take only their own
type, ``int`` an int that is not a bool, ``float`` an int or a float (not a
bool), and list, tuple and set fields an iterable that is not a string, bytes
or a mapping; anything else raises TypeError (a validation error naming the
field). The contract layer makes its own copies with pydantic's conversions.
"""

from __future__ import annotations

import enum
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import cattrs
from cattrs.cols import is_any_set, is_sequence

converter = cattrs.Converter(forbid_extra_keys=True)


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


def _exact(expected: type, accepted: tuple[type, ...], convert: Callable[[Any], Any]) -> Any:
    """A structure hook that takes ``accepted`` values (never a bool for a number) as they are."""

    def structure(value: Any, _: type) -> Any:
        if not isinstance(value, accepted) or (type(value) is bool and expected is not bool):
            raise TypeError(f"expected {expected.__name__}, got {type(value).__name__}")
        return convert(value)

    return structure


def _same(value: Any) -> Any:
    return value


for _kind, _accepted, _convert in (
    (str, (str,), _same),
    (int, (int,), _same),
    (float, (int, float), float),
    (bool, (bool,), _same),
    (bytes, (bytes, bytearray), bytes),
):
    converter.register_structure_hook(_kind, _exact(_kind, _accepted, _convert))


# The collection types whose hook this thread is building: while cattrs builds the
# hook of one of them (below), the factory steps aside for that exact type. Per
# thread: another thread asking for the same type meanwhile (two trio runs in two
# threads structuring their first bundle) must get this factory's hook, not
# cattrs's own, which iterates a string into a list (and which cattrs would cache).
_local = threading.local()


def _building() -> set[Any]:
    try:
        building: set[Any] = _local.building
    except AttributeError:
        building = _local.building = set()
    return building


def _is_collection(kind: Any) -> bool:
    return kind not in _building() and (is_sequence(kind) or is_any_set(kind) or _is_tuple(kind))


def _is_tuple(kind: Any) -> bool:
    return kind is tuple or getattr(kind, "__origin__", None) is tuple


def _collection_hook(kind: Any, conv: cattrs.Converter) -> Any:
    """cattrs's own hook for a list, tuple or set type, refusing strings, bytes and mappings."""
    building = _building()
    building.add(kind)
    try:
        inner = conv.get_structure_hook(kind, cache_result=False)
    finally:
        building.discard(kind)

    def structure(value: Any, target: Any) -> Any:
        if isinstance(value, (str, bytes, bytearray, Mapping)):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return inner(value, target)

    return structure


converter.register_structure_hook_factory(_is_collection, _collection_hook)
