"""The installed package, as a user's type checker sees it from outside the repository."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A user's application: the README's stage, and a line mypy must reject. The ignore is
# the expected-error marker: were stageflow_trio untyped to mypy (not found, or Any),
# it would be unused, which --warn-unused-ignores reports.
APP = """
import trio
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline


class Greet:
    name = "greet"
    kind = StageKind.TRANSFORM

    async def execute(self, ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text=f"hello, {ctx.snapshot.input_text}")


graph = Pipeline().with_stage("greet", Greet, StageKind.TRANSFORM).build()
Pipeline().with_stage("greet", Greet, StageKind.TRANSFORM).build(interceptor=[])  # type: ignore[call-arg]
"""


def _import_hook_install() -> bool:
    """Whether this interpreter sees stageflow_trio through setuptools' editable import hook."""
    site = Path(sysconfig.get_paths()["purelib"])
    return any(site.glob("__editable___stageflow_trio*_finder.py"))


def test_mypy_outside_the_repository_checks_the_installed_package(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]'; CI installs it)")
    if _import_hook_install():
        pytest.skip(
            "stageflow_trio is installed through setuptools' editable import hook, which mypy "
            "cannot follow: reinstall it (pip install -e .) with the hatchling backend"
        )
    env = {k: v for k, v in os.environ.items() if k not in {"MYPYPATH", "PYTHONPATH"}}
    where = subprocess.run(
        [sys.executable, "-c", "import stageflow_trio; print(stageflow_trio.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if where.returncode != 0:
        pytest.skip(f"stageflow_trio is not installed in {sys.executable} (pip install -e .)")
    assert not Path(where.stdout.strip()).is_relative_to(tmp_path)
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--warn-unused-ignores",
            "--python-executable",
            sys.executable,
            "--cache-dir",
            str(tmp_path / "cache"),
            "app.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.stdout.splitlines()[-1:] == ["Success: no issues found in 1 source file"], (
        checked.stdout + checked.stderr
    )


def test_the_package_directory_holds_only_modules_and_the_typing_marker() -> None:
    """What the wheel ships: ``*.py`` and ``py.typed``, nothing a tool left behind
    (a patch's ``.orig`` / ``.rej``, an editor's backup)."""
    package = ROOT / "stageflow_trio"
    stray = sorted(
        str(path.relative_to(ROOT))
        for path in package.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".py"
        and path.name != "py.typed"
    )
    assert stray == []
