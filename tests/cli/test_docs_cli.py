"""The ``sh`` blocks of docs/cli.md run as written, each line through the command's ``main``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from stageflow_trio.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "cli.md"


def command_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_guide_has_commands() -> None:
    assert len(command_lines()) == 12


@pytest.mark.parametrize("line", command_lines())
def test_each_command_runs(
    line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command, _, comment = line.partition("#")
    expected = int(comment.split()[-1]) if comment else 0
    argv = shlex.split(command)
    assert argv[0] == "stageflow-trio"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    # The timeline line reads what the run line before it wrote.
    if argv[1] == "timeline":
        assert main(["run", "stageflow_trio.examples.guard_retry", "--events", "run.jsonl"]) == 0
    assert main(argv[1:]) == expected, capsys.readouterr()
