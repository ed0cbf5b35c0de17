"""Every module of the reference exists here, and every name its ``__all__`` can import does too.

The walk covers every module of the installed stageflow-core 0.9.1. A reference module that itself
fails to import (``route``) only needs to exist here; a name its ``__all__``
lists but it cannot import (the top level's phantom names) may be absent.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

import pytest

from tests.fakes import import_reference

if TYPE_CHECKING:
    from types import ModuleType


def _reference_modules() -> list[str]:
    reference = import_reference()
    names = ["stageflow"]

    def broken(name: str) -> None:
        # walk_packages could not import a package to look inside it (route).
        names.append(name)

    for info in pkgutil.walk_packages(reference.__path__, "stageflow.", onerror=broken):
        names.append(info.name)
    return sorted(set(names))


REFERENCE_MODULES = _reference_modules()


def _ours(reference_name: str) -> str:
    return "stageflow_trio" + reference_name.removeprefix("stageflow")


def _import_reference_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None  # the reference's own module is broken (route)


def test_the_walk_sees_the_reference() -> None:
    assert {"stageflow", "stageflow.route", "stageflow.pipeline.dag", "stageflow.cli.lint"} <= set(
        REFERENCE_MODULES
    )
    assert "stageflow.websearch.run_utils" in REFERENCE_MODULES


@pytest.mark.parametrize("name", REFERENCE_MODULES)
def test_module_and_its_names_exist(name: str) -> None:
    ours = importlib.import_module(_ours(name))
    theirs = _import_reference_module(name)
    if theirs is None:
        return
    listed = getattr(theirs, "__all__", None)
    if listed is None:  # a module without __all__ exports the public names it defines
        listed = [
            n
            for n, value in vars(theirs).items()
            if not n.startswith("_") and getattr(value, "__module__", None) == name
        ]
    missing = [n for n in listed if hasattr(theirs, n) and not hasattr(ours, n)]
    assert missing == [], f"{_ours(name)} lacks {missing}"


def test_the_top_level_star_import_covers_the_reference() -> None:
    reference = import_reference()
    namespace: dict[str, object] = {}
    exec("from stageflow_trio import *", namespace)
    missing = [n for n in reference.__all__ if hasattr(reference, n) and n not in namespace]
    assert missing == []
