"""Argument checks for the graphs' constructors and ``run()`` entries.

Wrong-typed options used to fail deep inside a run (an AttributeError from the
scheduler, a hang on a string token); these checks raise a TypeError or
ValueError that names the parameter and the rule at the call instead. The
``run()`` callers test the common case with ``type(x) is`` first and call in
here only when that fails, so the hot path pays one identity test per argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from stageflow_trio._engine._interceptors import BaseInterceptor
from stageflow_trio._engine._token import CancellationToken


def _qualname(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def type_name(value: object, like: type[Any]) -> str:
    """``type(value)``'s name, module-qualified when it is spelled like ``like``'s.

    Two public classes are called ``UnifiedStageSpec`` (the graph's and the
    Pipeline's); a message that says "must be UnifiedStageSpec, got
    UnifiedStageSpec" tells the reader nothing.
    """
    cls = type(value)
    if cls.__name__ == like.__name__ and cls is not like:
        return _qualname(cls)
    return cls.__name__


def expected_name(value: object, like: type[Any]) -> str:
    """``like``'s name, module-qualified when ``value``'s type shares it."""
    cls = type(value)
    if cls.__name__ == like.__name__ and cls is not like:
        return _qualname(like)
    return like.__name__


def check_instance(owner: str, param: str, value: object, cls: type[Any]) -> None:
    """Raise TypeError unless ``value`` is a ``cls``."""
    if not isinstance(value, cls):
        raise TypeError(
            f"{owner}: {param} must be a {expected_name(value, cls)}; got {type_name(value, cls)}"
        )


def check_optional(owner: str, param: str, value: object, cls: type[Any]) -> None:
    """Raise TypeError unless ``value`` is None or a ``cls``."""
    if value is not None and not isinstance(value, cls):
        raise TypeError(
            f"{owner}: {param} must be a {expected_name(value, cls)} or None; "
            f"got {type_name(value, cls)}"
        )


def check_specs(owner: str, specs: object) -> None:
    """Raise TypeError unless ``specs`` is an iterable of specs (not a lone str or spec)."""
    if isinstance(specs, str | bytes | dict) or not isinstance(specs, Iterable):
        raise TypeError(
            f"{owner}: specs must be an iterable of stage specs; got {type(specs).__name__}"
        )


def check_interceptors(owner: str, interceptors: object) -> None:
    """Raise TypeError unless ``interceptors`` is None or a sequence of interceptor instances.

    An instance is a BaseInterceptor or a duck-typed one (``name``, ``priority``,
    ``before()`` and ``after()``); a class is refused, whatever its attributes.
    """
    if interceptors is None:
        return
    if isinstance(interceptors, str | bytes) or not isinstance(interceptors, Sequence):
        raise TypeError(
            f"{owner}: interceptors must be a list of BaseInterceptor instances or None; "
            f"got {type(interceptors).__name__}"
        )
    for index, interceptor in enumerate(interceptors):
        if isinstance(interceptor, type):
            # A class has the attributes and the (unbound) hooks of an instance, so the duck
            # check would pass it, and then every hook would fail (logged and swallowed).
            raise TypeError(
                f"{owner}: interceptors[{index}] must be a BaseInterceptor instance; got the "
                f"class {interceptor.__name__} (pass {interceptor.__name__}())"
            )
        if not isinstance(interceptor, BaseInterceptor) and not _is_duck_interceptor(interceptor):
            raise TypeError(
                f"{owner}: interceptors[{index}] must be a BaseInterceptor (or have name, "
                f"priority, before() and after()); got {type(interceptor).__name__}"
            )


def _is_duck_interceptor(value: object) -> bool:
    # Never a class: check_interceptors refuses those first, with a message of their own.
    # The chain reads exactly these of every interceptor (on_error and on_abort only
    # when they exist and are needed), and duck-typed interceptors are supported.
    priority = getattr(value, "priority", None)
    return (
        isinstance(priority, int | float)
        and hasattr(value, "name")
        and callable(getattr(value, "before", None))
        and callable(getattr(value, "after", None))
    )


def check_cancel_token(owner: str, token: object) -> None:
    """Raise TypeError unless ``token`` is None or a CancellationToken."""
    check_optional(owner, "cancel_token", token, CancellationToken)
