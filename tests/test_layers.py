"""Imports point down the layers (STYLE rule 1).

Every module of the package belongs to a layer, named by its first component:

0. values: ``_globals``, ``_errors``, ``errors``, ``_time``, ``_exports``, ``_lazy``, ``utils``,
   ``_budget``, ``lowlevel``
1. contexts and events: ``core``, ``context``, ``stages``, ``contracts``, ``extensions``,
   ``_serialization``, ``protocols``, ``events``, ``compression``, ``projector``, ``route``
2. the engine: ``_engine``
3. ``pipeline``, ``observability``, ``tools``, ``auth``
4. ``helpers``, ``testing``, ``api``, ``advanced``, ``stores``, ``agent`` (the agent runtime drives tools and reads
   the guardrails and provider responses of ``helpers``)
5. ``examples``, and the command line (``cli``, ``__main__``), which lists and runs them

and the package's ``__init__`` gathers them all, above every layer. A module may
import from its own layer and the layers below, never from one above.

Every import statement counts, wherever it is: at module level, inside a function
(a lazy import is still a dependency, only a hidden one) and inside an
``if TYPE_CHECKING:`` block too. No exemption is needed: where the engine has to
name an upper layer's object (a stage spec, a guard-retry policy, a wide-event
emitter) it spells out what it uses as a ``Protocol`` (``_engine/_plan.py``), and
the upper layer hands it the object.

The sources are read with ``ast``, not imported, so a lazy import is seen even if
no test reaches it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "stageflow_trio"
ROOT = Path(__file__).parents[1] / PACKAGE

LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "_globals",
            "_errors",
            "errors",
            "_time",
            "_exports",
            "_lazy",
            "utils",
            "_budget",
            "lowlevel",
            "_args",
            "_frozen",
            "_json",
            "_cross_run",
            "_groups",
        }
    ),
    frozenset(
        {
            "core",
            "context",
            "stages",
            "contracts",
            "extensions",
            "_serialization",
            "protocols",
            "events",
            "compression",
            "projector",
            "route",
        }
    ),
    frozenset({"_engine"}),
    frozenset({"pipeline", "observability", "tools", "auth"}),
    frozenset({"helpers", "testing", "agent", "api", "advanced", "stores", "websearch"}),
    # The command line lists and runs the examples, so it sits beside them.
    frozenset({"examples", "cli", "__main__"}),
)
TOP = len(LAYERS)  # the package's __init__


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer of ``module`` (a name inside the package).

    Raises:
        LookupError: its first component is in no layer.
    """
    parts = module.split(".")
    if parts == [PACKAGE]:
        return TOP
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    raise LookupError(f"{module} is in no layer; add {parts[1]!r} to LAYERS")


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package modules that ``node``, in ``module``, imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    if target.split(".")[0] != PACKAGE:
        return []
    # ``from package import submodule`` imports the submodule.
    found = [
        f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES
    ]
    return found or [target]


def upward_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """``"importer -> imported"`` for each import in ``source`` that points up a layer."""
    own = layer_of(module)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _imported(module, is_package, node):
                if layer_of(target) > own:
                    found.append(f"{module} (layer {own}) -> {target} (layer {layer_of(target)})")
    return found


def test_every_module_is_in_a_layer() -> None:
    unmapped = []
    for module in MODULES:
        try:
            layer_of(module)
        except LookupError as exc:
            unmapped.append(str(exc))
    assert unmapped == []


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    violations = [
        violation
        for module, path in MODULES.items()
        for violation in upward_imports(module, path.read_text(), path.name == "__init__.py")
    ]
    assert violations == []


@pytest.mark.parametrize(
    "source",
    [
        "from stageflow_trio.pipeline.interceptors import ErrorAction",
        "def f():\n    from stageflow_trio.observability import wide_events",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import stageflow_trio.testing",
        "from ..pipeline import dag",
    ],
    ids=["top-level", "in-function", "type-checking", "relative"],
)
def test_an_upward_import_is_reported(source: str) -> None:
    """The check itself can fail: each kind of import from the engine upwards is caught."""
    assert len(upward_imports("stageflow_trio._engine._x", source)) == 1


def test_imports_down_and_within_a_layer_are_allowed() -> None:
    source = (
        "from stageflow_trio._engine._scheduler import Topology\n"
        "from stageflow_trio.stages.result import StageResult\n"
        "from . import _token\n"
        "import stageflow_trio._time\n"
    )
    assert upward_imports("stageflow_trio._engine._x", source) == []
