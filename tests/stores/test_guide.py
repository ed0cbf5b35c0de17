"""docs/deployment.md: each Python block runs as written, on the real clock.

The blocks open SQLite stores, whose statements run in worker threads: an
autojump clock would jump past their timeouts while a thread works.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doc_blocks import DOCS, python_blocks

GUIDE = "deployment.md"
BLOCKS = python_blocks(DOCS / GUIDE)


def test_the_guide_keeps_its_examples() -> None:
    assert len(BLOCKS) == 1


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_guide_block_runs(index: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"docs/{GUIDE}", "exec"), {"__name__": "__main__"})
    assert (tmp_path / "stores.db").exists()
