"""Shallow deltas between two dict-like payloads, and what they save.

- :func:`compute_delta` describes how to turn ``base`` into ``current``:
  ``{"set": {key: new value}, "remove": [key, ...]}``, each part present only
  when it is not empty.
- :func:`apply_delta` rebuilds ``current`` from ``base`` and that delta, so
  ``apply_delta(base, compute_delta(base, current)) == current``.
- :func:`compress` returns the delta with :class:`CompressionMetrics`: the UTF-8
  size of the JSON of ``current`` and of the delta.

The delta is shallow: a changed nested dict is sent whole under ``"set"``.

Example::

    delta = compute_delta({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4})
    assert delta == {"set": {"b": 3, "c": 4}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from itertools import filterfalse
from operator import contains
from typing import Any

import attrs

from stageflow_trio._args import type_of
from stageflow_trio._frozen import frozen_compat

__all__ = [
    "CompressionMetrics",
    "apply_delta",
    "compress",
    "compute_delta",
]


@frozen_compat
@attrs.frozen
class CompressionMetrics:
    """Sizes for judging a delta.

    Attributes:
        original_bytes: UTF-8 length of the JSON of the full payload.
        delta_bytes: UTF-8 length of the JSON of the delta.
    """

    original_bytes: int
    delta_bytes: int

    @property
    def reduction_bytes(self) -> int:
        """Bytes saved by sending the delta instead of the payload (never negative)."""
        return max(self.original_bytes - self.delta_bytes, 0)

    @property
    def ratio(self) -> float:
        """``delta_bytes / original_bytes``; 1.0 for an empty payload."""
        if self.original_bytes == 0:
            return 1.0
        return self.delta_bytes / self.original_bytes


def _check_mapping(owner: str, param: str, value: object) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{owner}: {param} must be a mapping; got {type_of(value)}")


# From this many keys in ``current`` on, compute_delta's passes run in C (below
# it, plain loops are faster: measured crossing at 48-64 keys).
_C_PASS_MIN = 48


def compute_delta(base: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The shallow delta that turns ``base`` into ``current``.

    ``"set"`` holds the keys of ``current`` that are new or whose value differs
    from ``base``'s, in ``current``'s order; ``"remove"`` the keys of ``base``
    missing from ``current``, in ``base``'s order. Empty parts are left out.

    Values are compared as ``dict.__eq__`` compares them: the same object in
    both is unchanged without a comparison, else ``base[key] == value`` decides.
    So the delta is empty exactly when ``base == current``.

    Raises:
        TypeError: ``base`` or ``current`` is not a mapping.
    """
    if type(base) is not dict:
        _check_mapping("compute_delta", "base", base)
    if type(current) is not dict:
        _check_mapping("compute_delta", "current", current)
    base_items = base.items()
    set_ops: dict[str, Any]
    remove_ops: list[str]
    if len(current) < _C_PASS_MIN:
        # Small payloads: plain loops (the C passes' set-up would cost more than
        # the keys). ``item in base_items`` is the same test as below.
        set_ops = {}
        for item in current.items():
            if item not in base_items:
                set_ops[item[0]] = item[1]
        remove_ops = []
        if len(base) > len(current) - len(set_ops):  # see below
            for key in base:
                if key not in current:
                    remove_ops.append(key)
    else:
        # ``(key, value) in base.items()`` is the test above (a missing key is
        # never compared with anything): run over current's items by
        # filterfalse, the whole pass stays in C. ``partial(contains, ...)``
        # calls the view's slot through a vectorcall (its ``__contains__`` is a
        # slot wrapper that packs an argument tuple per call): a quarter less
        # time. Both passes keep their payload's order.
        set_ops = dict(filterfalse(partial(contains, base_items), current.items()))
        # current is its unchanged keys plus set_ops, and the unchanged keys are
        # all in base: when they alone are as many as base's keys, none was removed.
        remove_ops = (
            list(filterfalse(current.__contains__, base))
            if len(base) > len(current) - len(set_ops)
            else []
        )
    delta: dict[str, Any] = {}
    if set_ops:
        delta["set"] = set_ops
    if remove_ops:
        delta["remove"] = remove_ops
    return delta


def apply_delta(base: Mapping[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``base`` without the ``"remove"`` keys, then with the ``"set"`` values.

    A removed key that ``base`` lacks is ignored; a missing, None or empty part
    does nothing. ``base`` is not changed.

    Raises:
        TypeError: ``base`` or ``delta`` is not a mapping, ``delta["set"]`` is not a
            mapping, or ``delta["remove"]`` is a string.
    """
    if type(base) is not dict:
        _check_mapping("apply_delta", "base", base)
    if type(delta) is not dict:
        _check_mapping("apply_delta", "delta", delta)
    result = dict(base)
    remove = delta.get("remove")
    if remove:
        if isinstance(remove, str):
            raise TypeError("apply_delta: delta['remove'] must be a list of keys; got str")
        pop = result.pop
        for key in remove:
            pop(key, None)
    set_ops = delta.get("set")
    if set_ops:
        if type(set_ops) is not dict:
            _check_mapping("apply_delta", "delta['set']", set_ops)
        result.update(set_ops)
    return result


def compress(
    base: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[dict[str, Any], CompressionMetrics]:
    """:func:`compute_delta` and the sizes of ``current`` and of the delta.

    Sizes are UTF-8 bytes of ``json.dumps(..., ensure_ascii=False)``. A payload
    that JSON cannot encode is measured after turning every value other than a
    dict, list, str, int, float, bool or None into its ``str()``, and every dict
    key other than a str, int, float, bool or None (a UUID, a tuple) into its ``str()``.

    Raises:
        TypeError: ``base`` or ``current`` is not a mapping.
    """
    delta = compute_delta(base, current)
    metrics = CompressionMetrics(
        original_bytes=_estimate_bytes(current),
        delta_bytes=_estimate_bytes(delta),
    )
    return delta, metrics


def _estimate_bytes(value: Any) -> int:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except TypeError:
        # Retried outside the handler: a failure of the retry is not chained to this one.
        text = None
    if text is None:
        text = json.dumps(_json_safe(value), ensure_ascii=False)
    return len(text.encode("utf-8"))


_JSON_KEY_TYPES = (str, int, float, bool)


def _json_safe(value: Any) -> Any:
    # The reference's fallback: a tuple (or any other container than dict and
    # list) becomes its str(). A dict key JSON cannot write (a UUID, a tuple)
    # becomes its str() too; the reference kept it, so a nested dict keyed by
    # UUIDs made compress() raise "keys must be str, int, float, bool or None".
    if isinstance(value, dict):
        return {
            key if key is None or isinstance(key, _JSON_KEY_TYPES) else str(key): _json_safe(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
