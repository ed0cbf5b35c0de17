"""Turning trio's exception groups back into the single error the reference raised.

Under trio every nursery wraps what escapes it in a ``BaseExceptionGroup``, even a
single error. The reference (asyncio + ``gather``) raised the error itself, so every
public boundary of stageflow_trio (graph runs, the runner, ``StructuredTaskGroup``,
composite exporters) unwraps before the error reaches the user.

Which leaf is chosen (:func:`first_leaf`):

1. Only groups whose type is exactly ``BaseExceptionGroup`` or ``ExceptionGroup`` are
   looked into (that is what trio's nurseries raise). A user-defined group subclass is
   a leaf, so a deliberately raised custom group survives, provided it overrides
   ``derive()``: trio's cancel scopes rebuild a group crossing them with ``derive()``,
   and the inherited one returns a plain ``ExceptionGroup``, which is looked into.
2. The first leaf, depth first, that is neither an ``Exception`` nor ``trio.Cancelled``
   (``KeyboardInterrupt``, ``SystemExit``) wins: the user asked the process to stop,
   and that must not turn into some stage's ``ValueError``.
3. Otherwise the first ``Exception`` leaf.
4. Otherwise (every leaf is ``trio.Cancelled``) the first ``Cancelled``: cancellation
   is re-raised as cancellation, never swallowed and never converted, and the
   cancelled scope above catches it as usual.

The pattern at a boundary is one of::

    with unwrapping_groups():
        async with trio.open_nursery() as nursery:
            ...

    try:
        async with trio.open_nursery() as nursery:
            ...
    except BaseExceptionGroup as eg:
        unwrap_group(eg)  # never returns

and, where the caller has to look at the error first,
``leaf = first_leaf(eg)`` followed by ``unwrap_group(eg)``.

:func:`unwrap_group` re-raises the leaf object itself, so its type, message,
attributes and original traceback survive (the re-raise only adds frames). Its
``__context__`` is chosen so that nothing useful is lost and nothing is repeated: when
the group's other leaves are all ``Cancelled`` the leaf keeps its own ``__context__``
(the traceback reads exactly as if it had never been grouped); when the group holds
other real errors, the group becomes the leaf's ``__context__`` so they still show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import trio

if TYPE_CHECKING:
    from types import TracebackType

_PLAIN_GROUPS = (BaseExceptionGroup, ExceptionGroup)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The leaves of ``exc`` in depth-first order, looking only into plain groups."""
    if type(exc) not in _PLAIN_GROUPS:
        return [exc]
    assert isinstance(exc, BaseExceptionGroup)
    found: list[BaseException] = []
    for child in exc.exceptions:
        found.extend(_leaves(child))
    return found


def _pick(leaves: list[BaseException]) -> BaseException:
    first_exception: BaseException | None = None
    first_cancelled: BaseException | None = None
    for leaf in leaves:
        if isinstance(leaf, trio.Cancelled):
            if first_cancelled is None:
                first_cancelled = leaf
        elif not isinstance(leaf, Exception):
            return leaf
        elif first_exception is None:
            first_exception = leaf
    if first_exception is not None:
        return first_exception
    # A plain group always has at least one leaf, so one of the two is set.
    assert first_cancelled is not None
    return first_cancelled


def first_leaf(exc: BaseException) -> BaseException:
    """The one exception that should escape in place of ``exc``.

    Args:
        exc: Any exception; a plain (nested) exception group is searched by the rules in
            the module docstring, anything else is returned unchanged.

    Returns:
        The chosen leaf: a ``KeyboardInterrupt``-like leaf first, else the first
        ``Exception``, else the first ``trio.Cancelled``.
    """
    if type(exc) not in _PLAIN_GROUPS:
        return exc
    return _pick(_leaves(exc))


def unwrap_group(eg: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Re-raise the leaf :func:`first_leaf` picks from ``eg``; never returns.

    Call it inside ``except BaseExceptionGroup as eg:``. A group with only
    ``Cancelled`` leaves re-raises a ``Cancelled``.

    Raises:
        BaseException: The chosen leaf itself (same object), with ``__context__`` set as
            described in the module docstring.
    """
    leaves = _leaves(eg)
    leaf = _pick(leaves)
    others_cancelled = all(isinstance(o, trio.Cancelled) for o in leaves if o is not leaf)
    context = leaf.__context__ if others_cancelled else eg
    try:
        raise leaf
    finally:
        # ``raise`` inside an ``except`` block overwrites __context__ with the group
        # being handled; put back the one chosen above.
        leaf.__context__ = context
        del leaf, context, leaves, eg  # no reference cycle through this frame


class _Unwrapping:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, BaseExceptionGroup) and type(exc) in _PLAIN_GROUPS:
            unwrap_group(exc)


_UNWRAPPING = _Unwrapping()


def unwrapping_groups() -> _Unwrapping:
    """A context manager that replaces an escaping plain exception group by its leaf.

    Anything else (a single exception, a user-defined group subclass) passes through
    untouched. Not a checkpoint; usable around ``async with`` blocks.
    """
    return _UNWRAPPING
