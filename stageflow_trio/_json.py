"""JSON text for values :func:`json.dumps` cannot take as they are.

The command line writes stage data as JSON lines and the agent hands tool results to
the model as JSON; both must write *something* for an application's odd data rather
than fail. :func:`jsonable` is the one conversion both use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["jsonable"]

_MAX_DEPTH = 100


def jsonable(value: object, *, str_keys: bool = False) -> object:
    """``value`` with only what :func:`json.dumps` takes.

    Mappings, lists and tuples are rebuilt; a key that is not a str, number, bool or
    None becomes its JSON text (with ``str_keys``, every non-str key does, as JSON
    writes it, so that ``sort_keys`` can compare them); any other value its
    ``str()``; a container met again inside itself ``"<cycle>"``; nesting deeper
    than 100 ``"<nested too deep>"``; an int too long to print ``"<int of N bits>"``.
    """
    return _jsonable(value, set(), 0, str_keys)


def _json_key(key: object, str_keys: bool) -> object:
    """A key as JSON writes it: a str as it is; a number, bool or null as it is (or, with
    ``str_keys``, as its JSON text); anything else as its JSON text."""
    if isinstance(key, str) or (
        not str_keys and (key is None or isinstance(key, (int, float, bool)))
    ):
        return key
    return json.dumps(key, ensure_ascii=False)


def _jsonable(value: object, seen: set[int], depth: int, str_keys: bool) -> object:
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        try:
            json.dumps(value)
        except ValueError:  # more digits than sys.get_int_max_str_digits()
            return f"<int of {value.bit_length()} bits>"
        return value
    if not isinstance(value, (Mapping, list, tuple)):
        return str(value)
    if id(value) in seen:
        return "<cycle>"
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    seen.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {
                _json_key(_jsonable(key, seen, depth + 1, str_keys), str_keys): _jsonable(
                    item, seen, depth + 1, str_keys
                )
                for key, item in value.items()
            }
        return [_jsonable(item, seen, depth + 1, str_keys) for item in value]
    finally:
        seen.discard(id(value))
