"""Argument checks for public constructors and calls outside the graphs.

Each raises a TypeError or ValueError of the form ``"Owner: param must be
<rule>; got <what>"`` at the call, instead of letting a wrong value fail later
in a run, a flush or a background task. They run once per constructor or
registration; a caller on a hot path tests the common type with ``type(x) is``
first and calls in here only when that fails.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


def type_of(value: object) -> str:
    """The name of ``value``'s type, as the messages show it."""
    return type(value).__name__


def error_text(exc: BaseException) -> str:
    """``str(exc)`` for a message or a log record; a placeholder if ``__str__`` raises.

    A failure being reported must not turn into another one while it is described
    (an exception whose ``__str__`` raises would otherwise escape the handler).
    """
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - any error of __str__ gets the placeholder
        return unprintable(exc)


def causes(exc: BaseException, limit: int) -> Iterator[BaseException]:
    """``exc``, then what it was raised from (``raise ... from``: ``__cause__``), and so on.

    At most ``limit`` exceptions, each once (a cycle ends the walk). Never the exception
    one was raised while handling (``__context__``): that is not its cause.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < limit:
        seen.add(id(current))
        yield current
        current = current.__cause__


def unprintable(exc: BaseException) -> str:
    """The placeholder :func:`error_text` gives for ``exc`` when its ``__str__`` raises."""
    return f"<{type(exc).__name__} (str() failed)>"


def unfit_for_float(value: float) -> str | None:
    """``"an int of N bits"`` if ``value`` is an int too large for a float, else None.

    Such an int makes ``float()`` and every ``math`` test raise OverflowError, an
    error naming nothing; the checks say this instead (not the value's repr: an
    int of more than 4,300 digits has none).
    """
    if type(value) is not float and isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return f"an int of {value.bit_length()} bits"
    return None


def check_flag(owner: str, param: str, value: object) -> None:
    """Raise TypeError unless ``value`` is a bool (a truthy string is a typo, not a yes)."""
    if type(value) is not bool:
        raise TypeError(f"{owner}: {param} must be a bool; got {type_of(value)}")


def check_int(owner: str, param: str, value: object, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) at least ``minimum``.

    Raises:
        TypeError: ``value`` is not an int.
        ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {param} must be an int; got {type_of(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {param} must be at least {minimum}; got {value!r}")
    return value


def check_number(
    owner: str, param: str, value: object, *, minimum: float | None = None, above: bool = False
) -> float:
    """Return ``value`` if it is a finite int or float (not a bool) within bounds.

    ``minimum`` is inclusive, or exclusive with ``above=True``.

    Raises:
        TypeError: ``value`` is not an int or float.
        ValueError: ``value`` is NaN, infinite, an int too large for a float, or
            out of bounds.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}: {param} must be a number; got {type_of(value)}")
    if (size := unfit_for_float(value)) is not None:
        raise _too_large(owner, param, size)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {param} must be a finite number; got {value!r}")
    if minimum is not None and (value <= minimum if above else value < minimum):
        rule = f"> {minimum}" if above else f">= {minimum}"
        raise ValueError(f"{owner}: {param} must be {rule}; got {value!r}")
    return value


def check_str(owner: str, param: str, value: object, *, optional: bool = False) -> None:
    """Raise TypeError unless ``value`` is a str (a subclass too), or None with ``optional=True``."""
    if optional and value is None:
        return
    if not isinstance(value, str):
        rule = "a str or None" if optional else "a str"
        raise TypeError(f"{owner}: {param} must be {rule}; got {type_of(value)}")


def check_callable(owner: str, param: str, value: object, *, optional: bool = False) -> None:
    """Raise TypeError unless ``value`` is callable (or None, with ``optional=True``)."""
    if optional and value is None:
        return
    if not callable(value):
        rule = "a callable or None" if optional else "a callable"
        raise TypeError(f"{owner}: {param} must be {rule}; got {type_of(value)}")


def is_async_callable(value: object) -> bool:
    """Whether calling ``value`` gives a coroutine: an async function, or an object with one as ``__call__``."""
    return inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(
        getattr(value, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def check_plain_callable(
    owner: str, param: str, value: object, *, optional: bool = False, subject: str = "it is"
) -> None:
    """Raise TypeError unless ``value`` is callable (or None, with ``optional=True``) and not async.

    For callbacks the library calls and never awaits: an async function's body
    would never run (its coroutine is dropped with only a RuntimeWarning), so it
    is refused at the call. ``subject`` completes "(<subject> called, not awaited)".
    """
    check_callable(owner, param, value, optional=optional)
    if is_async_callable(value):
        raise TypeError(
            f"{owner}: {param} must be a plain function ({subject} called, not awaited); "
            "got an async function"
        )


def check_seconds(owner: str, param: str, value: object) -> float:
    """Return ``value`` if it is a duration: an int or float >= 0, ``math.inf`` included.

    Raises:
        TypeError: ``value`` is not an int or float (or is a bool).
        ValueError: ``value`` is NaN, negative or an int too large for a float.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}: {param} must be a number; got {type_of(value)}")
    if (size := unfit_for_float(value)) is not None:  # (math.inf means no limit)
        raise _too_large(owner, param, size)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{owner}: {param} must be >= 0; got {value!r}")
    return value


def _too_large(owner: str, param: str, size: str) -> ValueError:
    return ValueError(
        f"{owner}: {param} must be a number a float can hold (at most about 1.8e308); got {size}"
    )
