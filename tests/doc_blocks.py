"""Reading and running the Python blocks of the guides in docs/ (shared by their tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

DOCS = Path(__file__).resolve().parent.parent / "docs"


def python_blocks(path: Path) -> list[str]:
    """The bodies of the ```python blocks of the guide at ``path``, in order."""
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


def run_in_virtual_time(code: str, filename: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """Execute a block with ``trio.run`` on an autojump clock (unless it passes its own).

    Returns:
        How many times the block called ``trio.run``.
    """
    real_run = trio.run
    runs: list[object] = []

    def virtual_run(fn: Any, *args: object, **kwargs: Any) -> object:
        runs.append(fn)
        kwargs.setdefault("clock", trio.testing.MockClock(autojump_threshold=0))
        return real_run(fn, *args, **kwargs)

    monkeypatch.setattr(trio, "run", virtual_run)
    exec(compile(code, filename, "exec"), {"__name__": "__doc__"})
    return len(runs)
