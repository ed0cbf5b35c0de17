"""The README's and the guides' Python blocks type-check under the project's strict mypy.

A user copies them into typed code; a block that needs a cast or an ignore to pass says
so in the block itself (its ``# type: ignore[code]`` lines are what mypy must reject).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doc_blocks import DOCS, python_blocks

ROOT = DOCS.parent


def _write_blocks(folder: Path) -> list[Path]:
    written = []
    for guide in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for index, block in enumerate(python_blocks(guide)):
            path = folder / f"{guide.stem.lower()}_{index}.py"
            path.write_text(block, encoding="utf-8")
            written.append(path)
    return written


def test_every_python_block_type_checks(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]'; CI installs it)")
    blocks = _write_blocks(tmp_path)
    assert len(blocks) >= 38  # README and every guide with blocks; grows with the docs
    # From the repository root, with its configuration (strict, warn-unused-ignores):
    # mypy finds this checkout's stageflow_trio, and reuses the repository's cache.
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.stdout.splitlines()[-1:] == [
        f"Success: no issues found in {len(blocks)} source files"
    ], checked.stdout + checked.stderr
