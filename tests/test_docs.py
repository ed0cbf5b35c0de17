"""The runnable guides: every Python block of these docs runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
RUNNABLE = ["testing.md"]


def _blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), flags=re.DOTALL)


@pytest.mark.parametrize(
    ("name", "index"),
    [(name, i) for name in RUNNABLE for i in range(len(_blocks(name)))],
)
def test_doc_block_runs(name: str, index: int) -> None:
    exec(compile(_blocks(name)[index], f"docs/{name}", "exec"), {"__name__": "__doc__"})


def test_testing_guide_has_its_four_examples() -> None:
    assert len(_blocks("testing.md")) == 4
