"""The runnable guides: every Python block of the docs runs as written.

Guides whose blocks are run next to the tests of what they describe are listed in
``RUN_ELSEWHERE``; every other guide's blocks run here. A test pins that no guide
with Python blocks is left out.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.doc_blocks import DOCS, python_blocks, run_in_virtual_time

ROOT = DOCS.parent
RUNNABLE = [
    "agent.md",
    "analytics.md",
    "cli.md",
    "concepts.md",
    "context.md",
    "contracts.md",
    "duplex.md",
    "engine.md",
    "getting_started.md",
    "runner.md",
    "helpers.md",
    "migration.md",
    "streaming.md",
    "subpipelines.md",
    "testing.md",
    "tools.md",
    "tracing.md",
    "tools_execution.md",
    "websearch.md",
]
RUN_ELSEWHERE = {
    "auth.md": "tests/auth/test_guide.py",
    "builders.md": "tests/pipeline/test_pipeline.py",
    "cancellation.md": "tests/pipeline/test_cleanup_helpers.py",
    "deployment.md": "tests/stores/test_guide.py",
    "events.md": "tests/events/test_sink.py",
    "interceptors.md": "tests/pipeline/test_interceptors_builtin.py",
}


def _blocks(name: str) -> list[str]:
    return python_blocks(DOCS / name)


@pytest.mark.parametrize(
    ("name", "index"),
    [(name, i) for name in RUNNABLE for i in range(len(_blocks(name)))],
)
def test_doc_block_runs(
    name: str,
    index: int,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each block runs in virtual time (``trio.run`` gets an autojump clock unless it
    has one), in a temporary directory (the analytics guide writes a file). A block
    checks what it shows with its own asserts; the few without one are checked here."""
    monkeypatch.chdir(tmp_path)
    run_in_virtual_time(_blocks(name)[index], f"docs/{name}", monkeypatch)
    check = CHECKED_HERE.get((name, index))
    if check is not None:
        check(tmp_path, capsys.readouterr().out)


def _analytics_wrote_both_events(directory: Path, out: str) -> None:
    lines = (directory / "out" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert [(e["event_type"], e["stage_name"], e["data"]) for e in events] == [
        ("stage.completed", "llm", {}),
        ("stage.started", "llm", {"stage": "llm"}),
    ]


def _streaming_consumed_every_chunk_in_order(directory: Path, out: str) -> None:
    # 160 16-bit mono samples at 16 kHz: 10 ms each.
    assert out.splitlines() == [f"{i} 10.0" for i in range(10)]


def _testing_names_an_importable_plugin(directory: Path, out: str) -> None:
    namespace: dict[str, Any] = {}
    exec(_blocks("testing.md")[4], namespace)
    for plugin in namespace["pytest_plugins"]:
        assert hasattr(importlib.import_module(plugin), "reset_stageflow_globals")


# Blocks without an assert of their own, and what shows they did what the guide says.
CHECKED_HERE: dict[tuple[str, int], Callable[[Path, str], None]] = {
    ("analytics.md", 0): _analytics_wrote_both_events,
    ("streaming.md", 0): _streaming_consumed_every_chunk_in_order,
    ("testing.md", 4): _testing_names_an_importable_plugin,
}


def test_every_doc_block_asserts_or_is_checked_here() -> None:
    unchecked = [
        (name, i)
        for name in RUNNABLE
        for i, block in enumerate(_blocks(name))
        if not re.search(r"^\s*assert\b", block, flags=re.MULTILINE)
        and (name, i) not in CHECKED_HERE
    ]
    assert unchecked == []
    assert all("assert" not in _blocks(name)[i] for name, i in CHECKED_HERE)


def test_every_guide_with_python_blocks_is_run() -> None:
    with_blocks = {path.name for path in DOCS.glob("*.md") if _blocks(path.name)}
    assert with_blocks == set(RUNNABLE) | set(RUN_ELSEWHERE)
    for name, test_file in RUN_ELSEWHERE.items():
        assert f'"{name}"' in (ROOT / test_file).read_text(), (name, test_file)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("testing.md", 8),
        ("engine.md", 2),
        ("context.md", 10),
        ("duplex.md", 3),
        ("runner.md", 7),
        ("analytics.md", 1),
        ("streaming.md", 3),
        ("agent.md", 7),
        ("subpipelines.md", 6),
        ("tools.md", 3),
        ("tracing.md", 6),
        ("helpers.md", 7),
        ("concepts.md", 2),
        ("migration.md", 4),
    ],
)
def test_guides_keep_their_examples(name: str, count: int) -> None:
    assert len(_blocks(name)) == count


# Blocks marked ```python reference show stageflow 0.9.1's asyncio code next to the port
# (the migration guide); they run against the installed reference, under asyncio.
REFERENCE_SIDE = {"migration.md": 4}


def _reference_blocks(name: str) -> list[str]:
    text = (DOCS / name).read_text(encoding="utf-8")
    return re.findall(r"```python reference\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.parametrize(
    ("name", "index"),
    [(name, i) for name, count in REFERENCE_SIDE.items() for i in range(count)],
)
def test_reference_side_block_runs_on_stageflow(
    name: str, index: int, reference: ModuleType
) -> None:
    """Each reference block runs as written on stageflow 0.9.1 (its own ``asyncio.run``)."""
    assert reference.__name__ == "stageflow"
    code = _reference_blocks(name)[index]
    exec(compile(code, f"docs/{name} (reference)", "exec"), {"__name__": "__doc__"})


def test_reference_blocks_are_counted_and_only_where_expected() -> None:
    found = {path.name: len(_reference_blocks(path.name)) for path in DOCS.glob("*.md")}
    assert {name: count for name, count in found.items() if count} == REFERENCE_SIDE


# Blocks that read the trio clock but are meant for the real one: getting_started's
# timeouts block waits its 90 s as a script (its text says so) and asserts only ">=".
REAL_CLOCK_BLOCKS = {("getting_started.md", 7)}


@pytest.mark.parametrize(
    ("name", "index"),
    [(name, i) for name in RUNNABLE for i in range(len(_blocks(name)))],
)
def test_doc_block_that_reads_the_clock_passes_its_own(name: str, index: int) -> None:
    """A reader runs a block as it is, without the test's injected clock: a block
    that asserts ``trio.current_time()`` must pass the virtual clock it assumes
    (on the real clock the time starts at a random offset and sleeps are inexact)."""
    block = _blocks(name)[index]
    if "trio.current_time()" not in block or (name, index) in REAL_CLOCK_BLOCKS:
        return
    calls = re.findall(r"^trio\.run\((.*)\)", block, flags=re.MULTILINE)
    assert all("clock=" in call or "MockClock" in call for call in calls), (name, index, calls)
