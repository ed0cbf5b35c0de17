"""Load a package's re-exported names on first use (PEP 562).

A package ``__init__`` that gathers many names lists them for type checkers
under ``if TYPE_CHECKING:`` and hands :func:`lazy_exports` the same table for
run time; ``tests/test_lazy_exports.py`` checks that the two agree. Importing
the package then costs nothing beyond the ``__init__`` itself, and importing
one of its modules does not load its siblings.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from ._exports import publish_one

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, table: Mapping[str, str], *, submodules: str = "", eager: str = ""
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose names load on first use.

    Args:
        package: The package's ``__name__``.
        table: Each module (relative to ``package``, or absolute) and the names,
            separated by spaces, that the package re-exports from it. A name
            written ``alias=name`` is re-exported under another name.
        submodules: Submodules, separated by spaces, reachable as attributes
            after a bare import of the package (``import stageflow_trio; stageflow_trio.pipeline``).
        eager: Names of the table, separated by spaces, that load at once: those
            that are also a submodule's name (``core.stage_metadata`` the function
            and ``core.stage_metadata`` the module). Importing the submodule later
            would otherwise bind the module to the package's attribute first.
            ``tests/test_lazy_exports.py`` checks that every such name is listed.

    A name whose object was defined in a private module is published under
    ``package`` when it loads, as :func:`~stageflow_trio._exports.publish` does
    for eager facades.
    """
    namespace = sys.modules[package].__dict__
    where: dict[str, tuple[str, str]] = {}
    for module, names in table.items():
        for entry in names.split():
            alias, _, name = entry.partition("=")
            where[alias] = (module, name or alias)
    lazy_submodules = frozenset(submodules.split())

    def __getattr__(name: str) -> Any:
        found = where.get(name)
        if found is not None:
            module, attribute = found
            value = getattr(importlib.import_module(module, package), attribute)
            publish_one(package, value)
        elif name in lazy_submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where, *lazy_submodules})

    for name in eager.split():
        __getattr__(name)
    return __getattr__, __dir__
