"""Argument checks shared by the approval service, the undo store and the executors.

Each raises a TypeError of the form ``"Owner: param must be <rule>; got <type>"``
at the call (the style of :mod:`stageflow_trio._args`), so a wrong value fails
before a request is stored, a handler runs or an event goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from stageflow_trio._args import type_of

# What the v2 executor reads of a context (the ExecutionContext protocol's ids and mode).
_CONTEXT_ATTRIBUTES = ("pipeline_run_id", "request_id", "execution_mode")


def check_uuid(owner: str, param: str, value: object, *, optional: bool = False) -> None:
    """Raise TypeError unless ``value`` is a UUID (or None, with ``optional=True``)."""
    if isinstance(value, UUID) or (optional and value is None):
        return
    rule = "a UUID or None" if optional else "a UUID"
    raise TypeError(f"{owner}: {param} must be {rule}; got {type_of(value)}")


def check_str(owner: str, param: str, value: object, *, optional: bool = False) -> None:
    """Raise TypeError unless ``value`` is a str (or None, with ``optional=True``)."""
    if isinstance(value, str) or (optional and value is None):
        return
    rule = "a str or None" if optional else "a str"
    raise TypeError(f"{owner}: {param} must be {rule}; got {type_of(value)}")


def check_dict(owner: str, param: str, value: object, *, optional: bool = False) -> None:
    """Raise TypeError unless ``value`` is a dict (or None, with ``optional=True``).

    A dict, not any mapping: the durable stores write these values as JSON objects.
    """
    if isinstance(value, dict) or (optional and value is None):
        return
    rule = "a dict or None" if optional else "a dict"
    raise TypeError(f"{owner}: {param} must be {rule}; got {type_of(value)}")


def check_methods(
    owner: str, param: str, value: object, kind: str, methods: tuple[str, ...]
) -> None:
    """Raise TypeError unless ``value`` is None or has each of ``methods``.

    ``kind`` names the class a valid value usually is; a replacement need not
    subclass it (the process-wide setters take any such object).
    """
    if value is None or all(callable(getattr(value, name, None)) for name in methods):
        return
    names = ", ".join(methods[:-1]) + f" and {methods[-1]}"
    raise TypeError(
        f"{owner}: {param} must be {kind} or None (any object with {names} methods);"
        f" got {type_of(value)}"
    )


def check_execution_context(owner: str, ctx: object) -> None:
    """Raise TypeError unless ``ctx`` has the ids and the mode of an ExecutionContext.

    A plain dict is refused with a pointer to ``adapt_context``; ``pipeline_run_id``
    must read as a UUID or None (it goes into approval requests), and
    ``execution_mode`` as a str or None (it goes into every tool event, and it is
    what the tool is gated on). ``request_id`` is passed on as given, as in the
    reference (a str id works there too).
    """
    if isinstance(ctx, Mapping):
        raise TypeError(
            f"{owner}: ctx must be an ExecutionContext (wrap a dict with adapt_context());"
            f" got {type_of(ctx)}"
        )
    if not all(hasattr(ctx, name) for name in _CONTEXT_ATTRIBUTES):
        raise TypeError(
            f"{owner}: ctx must be an ExecutionContext (with pipeline_run_id, request_id"
            f" and execution_mode); got {type_of(ctx)}"
        )
    context: Any = ctx
    check_uuid(owner, "ctx.pipeline_run_id", context.pipeline_run_id, optional=True)
    check_str(owner, "ctx.execution_mode", context.execution_mode, optional=True)


def check_action(owner: str, action: object) -> None:
    """Raise TypeError unless ``action`` has a UUID ``id``, a str ``type`` and a mapping ``payload``."""
    if not all(hasattr(action, name) for name in ("id", "type", "payload")):
        raise TypeError(
            f"{owner}: action must be an Action (with id, type and payload); got {type_of(action)}"
        )
    act: Any = action
    check_uuid(owner, "action.id", act.id)
    check_str(owner, "action.type", act.type)
    if not isinstance(act.payload, Mapping):
        raise TypeError(f"{owner}: action.payload must be a mapping; got {type_of(act.payload)}")
