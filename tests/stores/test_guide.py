"""docs/deployment.md: each Python block runs as written, on the real clock
(the Sentinel block against the session's sentinel).

The blocks open SQLite stores, whose statements run in worker threads: an
autojump clock would jump past their timeouts while a thread works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from tests.doc_blocks import DOCS, python_blocks

from .conftest import _command

GUIDE = "deployment.md"
BLOCKS = python_blocks(DOCS / GUIDE)


def test_the_guide_keeps_its_examples() -> None:
    assert len(BLOCKS) == 4


def test_the_worker_block_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[0], f"docs/{GUIDE}", "exec"), {"__name__": "__main__"})
    assert (tmp_path / "stores.db").exists()


def test_the_log_records_block_runs() -> None:
    exec(compile(BLOCKS[1], f"docs/{GUIDE}", "exec"), {"__name__": "__main__"})


def test_the_sentinel_block_runs(redis_sentinel: str, redis_url: str) -> None:
    # The block's sentinel address, pointed at the session's sentinel (service "stageflow").
    location = redis_sentinel.removeprefix("redis+sentinel://").split("/")[0]
    host, port = location.split(":")
    block = BLOCKS[2].replace('TCPLocation("10.0.0.5", 26379)', f'TCPLocation("{host}", {port})')
    assert block != BLOCKS[2]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(block, f"docs/{GUIDE}", "exec"), namespace)
    trio.run(namespace["serve"])
    # The stores opened on the primary the sentinel names: its key layout is there.
    assert b"stageflow:schema" in _command(redis_url, "KEYS", "*")


def test_the_shutdown_block_runs() -> None:
    # The block runs on a virtual clock of its own, and sends itself SIGTERM (caught by
    # its trio.open_signal_receiver: the test runs in the main thread).
    exec(compile(BLOCKS[3], f"docs/{GUIDE}", "exec"), {"__name__": "__main__"})
