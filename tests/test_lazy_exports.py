"""Packages whose names load on first use (``stageflow_trio._lazy``).

The ``if TYPE_CHECKING:`` imports (what type checkers and readers see) and the
table handed to ``lazy_exports`` (what runs) are written twice; these tests hold
them together, and check that a bare import stays light.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import stageflow_trio
from stageflow_trio._lazy import lazy_exports
from tests.fakes import python_output

PACKAGE_DIR = Path(stageflow_trio.__file__).parent


def _lazy_modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if "lazy_exports(" in path.read_text() and path.name != "_lazy.py":
            parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


LAZY = _lazy_modules()


def test_the_facades_that_load_lazily() -> None:
    assert {
        "stageflow_trio",
        "stageflow_trio.core",
        "stageflow_trio.context",
        "stageflow_trio.contracts",
        "stageflow_trio.events",
        "stageflow_trio.observability",
        "stageflow_trio.pipeline",
        "stageflow_trio.stages",
    } <= set(LAZY)


def _type_checking_imports(module_name: str) -> dict[str, tuple[str, str]]:
    module = importlib.import_module(module_name)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text())
    found: dict[str, tuple[str, str]] = {}
    is_package = hasattr(module, "__path__")
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    source = "." * statement.level + (statement.module or "")
                    target = importlib.util.resolve_name(source, module.__package__)
                    for alias in statement.names:
                        # A plain module imports names for its annotations there too:
                        # only ``import X as X`` (an explicit re-export) is one of its names.
                        if is_package or alias.asname == alias.name:
                            found[alias.asname or alias.name] = (target, alias.name)
    return found


@pytest.mark.parametrize("module_name", LAZY)
def test_the_table_matches_the_type_checking_imports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    declared = _type_checking_imports(module_name)
    assert declared, "the names must be imported under `if TYPE_CHECKING:` for type checkers"
    for name, (source, attribute) in declared.items():
        value = getattr(module, name)
        assert value is getattr(importlib.import_module(source), attribute), name
    lazy_names = {name for name in module.__dir__() if name not in vars(module)}
    assert lazy_names <= set(declared) | {
        info.name
        for info in pkgutil.iter_modules(module.__path__ if hasattr(module, "__path__") else [])
    }


@pytest.mark.parametrize("module_name", LAZY)
def test_every_name_in_all_resolves(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is not None or name in vars(module)
        assert name in dir(module)


@pytest.mark.parametrize(
    ("module_name", "name"),
    [("stageflow_trio.core", "stage_metadata"), ("stageflow_trio.contracts", "registry")],
)
def test_an_export_named_like_its_submodule_keeps_its_value(module_name: str, name: str) -> None:
    # Importing a submodule binds it to the package attribute of its name; a lazily
    # loaded export of the same name would then be the module. Such names load at once.
    code = (
        f"import types, {module_name} as package, {module_name}.{name}; "
        f"print(isinstance(package.{name}, types.ModuleType))"
    )
    out = python_output(code)
    assert out.strip() == "False"


def test_every_export_named_like_a_submodule_loads_at_once() -> None:
    # Each such name must be in its package's eager= list: a fresh interpreter shows
    # it bound by the package import alone, before anything else is touched.
    code = (
        "import importlib, pkgutil, sys\n"
        f"for name in {LAZY!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    paths = getattr(module, '__path__', [])\n"
        "    subs = {info.name for info in pkgutil.iter_modules(paths)}\n"
        "    for export in sorted(subs & set(module.__all__)):\n"
        "        print(name, export, export in vars(module))\n"
    )
    out = python_output(code)
    lines = out.split("\n")[:-1]
    assert lines == [
        "stageflow_trio.contracts registry True",
        "stageflow_trio.core stage_metadata True",
    ]


def test_the_package_loads_from_a_zip_archive(tmp_path: Path) -> None:
    # zipapps (shiv, pex, python -m zipapp) import from an archive: nothing may list
    # the package's directory at import time.
    archive = tmp_path / "app.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in PACKAGE_DIR.rglob("*.py"):
            zipped.write(path, path.relative_to(PACKAGE_DIR.parent).as_posix())
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import stageflow_trio.core as core; "
        "from stageflow_trio import Pipeline, StageOutput; "
        "print(core.__file__.startswith(sys.argv[1]), core.stage_metadata.__name__, "
        "Pipeline.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(archive)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["True", "stage_metadata", "Pipeline"]


@pytest.mark.parametrize("module_name", LAZY)
def test_no_export_is_a_module(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert not isinstance(getattr(module, name), type(sys)), name


def test_a_bare_import_loads_no_subpackage() -> None:
    code = (
        "import sys, stageflow_trio; "
        "print(sorted(m for m in sys.modules if m.startswith('stageflow_trio.')), "
        "'trio' in sys.modules, 'attrs' in sys.modules)"
    )
    out = python_output(code)
    # _globals: the provider seam of StageInputs.tool_registry, which imports nothing.
    expected = "['stageflow_trio._exports', 'stageflow_trio._globals', 'stageflow_trio._lazy']"
    assert out.strip() == f"{expected} False False"


def test_a_name_loads_only_its_own_modules() -> None:
    code = (
        "import sys; from stageflow_trio import Pipeline, StageOutput; "
        "print(sorted(m for m in sys.modules if m.startswith('stageflow_trio.')))"
    )
    out = python_output(code)
    for heavy in ("tools", "helpers", "projector", "testing", "stores", "agent", "tracing"):
        assert f"stageflow_trio.{heavy}" not in out, heavy
    # Loaded when first needed: a queueing sink, a validation error, a wide event.
    modules = set(ast.literal_eval(out))
    for later in ("events._backpressure", "contracts", "observability.wide_events"):
        assert f"stageflow_trio.{later}" not in modules, later


def test_what_loads_later_still_works_and_keeps_its_public_module() -> None:
    code = """
from stageflow_trio import Pipeline
from stageflow_trio.events.sink import BackpressureAwareEventSink


async def noop(ctx):
    return None


try:
    Pipeline().with_stage("b", noop, "work", dependencies=("a",)).build()
except Exception as exc:
    error = exc
graph = Pipeline().with_stage("a", noop, "work").build(emit_pipeline_wide_event=True)
print(BackpressureAwareEventSink.__module__, error.error_info.code, type(graph._plan.emitter).__name__)
"""
    out = python_output(code)
    assert out.split() == [
        "stageflow_trio.events.sink",
        "CONTRACT-004-MISSING_DEP",
        "WideEventEmitter",
    ]


def test_subpackages_are_attributes_after_a_bare_import() -> None:
    code = "import stageflow_trio; print(stageflow_trio.pipeline.Pipeline.__name__)"
    out = python_output(code)
    assert out.strip() == "Pipeline"


def test_the_top_level_lists_every_public_submodule() -> None:
    # In a fresh interpreter nothing is imported yet, so dir() shows the submodules=
    # list itself: every public module of the package must be on it.
    out = python_output("import stageflow_trio; print(' '.join(dir(stageflow_trio)))")
    public = {
        info.name
        for info in pkgutil.iter_modules([str(PACKAGE_DIR)])
        if not info.name.startswith("_")
    }
    assert public <= set(out.split())


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'stageflow_trio' has no attribute 'Nope'"):
        getattr(stageflow_trio, "Nope")  # noqa: B009
    with pytest.raises(ImportError, match="cannot import name 'Nope'"):
        exec("from stageflow_trio.pipeline import Nope", {})


def test_type_checkers_see_no_module_getattr() -> None:
    # A visible __getattr__ would make mypy and pyright type a misspelt name as Any.
    for module_name in LAZY:
        module = importlib.import_module(module_name)
        assert module.__file__ is not None
        tree = ast.parse(Path(module.__file__).read_text())
        for node in tree.body:
            if isinstance(node, ast.If) and ast.unparse(node.test) == "not TYPE_CHECKING":
                continue
            assert "__getattr__" not in ast.unparse(node), module_name


def test_a_loaded_name_is_cached_and_published(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = type(sys)("stageflow_trio_fake_package")
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    getattr_, dir_ = lazy_exports(
        fake.__name__,
        {"stageflow_trio._engine._token": "Token=CancellationToken", "json": "dumps"},
        submodules="decoder",
    )
    token = getattr_("Token")
    assert token is importlib.import_module("stageflow_trio._engine._token").CancellationToken
    assert vars(fake)["Token"] is token  # cached: the next lookup does not call __getattr__
    assert getattr_("dumps").__module__ == "json"  # only private homes of ours are moved
    assert {"Token", "decoder", "dumps"} <= set(dir_())
    with pytest.raises(AttributeError, match="has no attribute 'loads'"):
        getattr_("loads")
