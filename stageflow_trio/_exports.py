"""Give the objects a gathering facade re-exports the facade's module name.

A public module that gathers names defined in private modules (the engine's
graph classes in :mod:`stageflow_trio.pipeline.dag`, the sinks in
:mod:`stageflow_trio.events.sink`) calls :func:`publish` once, at its end, so
that ``__module__`` (what reprs, tracebacks, pickle and documentation tools
show) is the path users import, as trio does for its own namespaces.

A class's string annotations are resolved against the module that defined it
before its ``__module__`` changes: ``typing.get_type_hints`` looks names up in
``sys.modules[cls.__module__]``, which after the move would be the facade.
"""

from __future__ import annotations

import inspect
import sys
import typing
from typing import Any


def _is_private(module_name: str) -> bool:
    return any(part.startswith("_") for part in module_name.split("."))


def publish(module_name: str) -> None:
    """Set ``__module__`` to ``module_name`` on every name in its ``__all__`` defined privately.

    Names the module loads on first use (``stageflow_trio._lazy``) are published
    when they load. Only objects whose ``__module__`` still names a private module of this
    package are changed, so the first public module that publishes an object
    (a submodule, imported by its package's ``__init__`` before the package
    publishes) is its home.
    """
    module = sys.modules[module_name]
    namespace = vars(module)
    for name in module.__all__:
        # A name the module loads on first use (stageflow_trio._lazy) is published then.
        if name in namespace:
            publish_one(module_name, namespace[name])


def publish_one(module_name: str, value: Any) -> None:
    """Set ``value.__module__`` to ``module_name`` if a private module defined it."""
    home = getattr(value, "__module__", None)
    if not (
        isinstance(home, str)
        and home.startswith("stageflow_trio.")
        and _is_private(home)
        and (isinstance(value, type) or callable(value))
    ):
        return
    if isinstance(value, type):
        _resolve_own_annotations(value)
    value.__module__ = module_name


def _resolve_own_annotations(cls: type[Any]) -> None:
    own = inspect.get_annotations(cls)
    if not own or not any(isinstance(hint, str) for hint in own.values()):
        return
    hints = typing.get_type_hints(cls, include_extras=True)
    cls.__annotations__ = {name: hints[name] for name in own}
