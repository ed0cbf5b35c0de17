"""docs/auth.md: each Python block runs as written (in virtual time).

The block with real tokens needs PyJWT and cryptography (the ``test`` extra installs them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.doc_blocks import DOCS, python_blocks, run_in_virtual_time

GUIDE = "auth.md"
BLOCKS = python_blocks(DOCS / GUIDE)


def test_the_guide_keeps_its_examples() -> None:
    assert len(BLOCKS) == 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_guide_block_runs(index: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    block = BLOCKS[index]
    if "import jwt\n" in block and importlib.util.find_spec("jwt") is None:
        pytest.skip("PyJWT is not installed (pip install -e '.[test]')")
    monkeypatch.chdir(tmp_path)
    assert run_in_virtual_time(block, f"docs/{GUIDE}", monkeypatch) == (0 if index == 2 else 1)
