"""One frozen-instance error for attrs and dataclass callers alike.

The reference's value classes are frozen dataclasses, so code written against
it catches ``dataclasses.FrozenInstanceError``; ours are ``@attrs.frozen``,
whose ``__setattr__`` raises ``attrs.exceptions.FrozenInstanceError``. The two
are unrelated ``AttributeError`` subclasses. :func:`frozen_compat`, stacked on
top of ``@attrs.frozen``, swaps in a ``__setattr__``/``__delattr__`` that raise
:class:`FrozenInstanceError`, an instance of both.

Construction does not go through ``__setattr__`` (attrs' generated ``__init__``
assigns with ``object.__setattr__``), so this costs nothing when building values.

Usage::

    @frozen_compat
    @attrs.frozen
    class Point:
        x: int
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import attrs

_T = TypeVar("_T", bound=type[Any])

# What Python itself sets on an exception while raising it; attrs lets these
# through on frozen exception classes, and so do we.
_EXCEPTION_SLOTS = frozenset(
    {"__cause__", "__context__", "__traceback__", "__suppress_context__", "__notes__"}
)


class FrozenInstanceError(attrs.exceptions.FrozenInstanceError, dataclasses.FrozenInstanceError):
    """Assignment to, or deletion of, a field of a frozen value.

    Both ``attrs.exceptions.FrozenInstanceError`` and
    ``dataclasses.FrozenInstanceError`` (and so ``AttributeError``).
    """

    def __init__(self, msg: str = "can't set attribute") -> None:
        # Straight to AttributeError: attrs' own __init__ takes no message, and
        # str() reads the arguments given there (attrs 24 also shadows ``args`` with a
        # class attribute, so assigning ``self.args`` alone would print nothing).
        AttributeError.__init__(self, msg)
        self.msg = msg
        self.args = (msg,)


def _frozen_setattr(self: object, name: str, value: object) -> None:
    if isinstance(self, BaseException) and name in _EXCEPTION_SLOTS:
        BaseException.__setattr__(self, name, value)
        return
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    if isinstance(self, BaseException) and name == "__notes__":
        BaseException.__delattr__(self, name)
        return
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def frozen_compat(cls: _T) -> _T:
    """Make a frozen attrs class raise :class:`FrozenInstanceError` on assignment.

    Apply it above ``@attrs.frozen`` (it replaces the class's ``__setattr__``
    and ``__delattr__``, so on anything but a frozen class it would freeze it).

    Raises:
        TypeError: ``cls`` is not an attrs class.
    """
    is_attrs_class = attrs.has(cls)  # a variable: attrs.has would narrow cls's type
    if not is_attrs_class:
        raise TypeError(f"frozen_compat: cls must be an attrs class; got {cls!r}")
    type.__setattr__(cls, "__setattr__", _frozen_setattr)
    type.__setattr__(cls, "__delattr__", _frozen_delattr)
    return cls
