"""The voice-turn and tool-approval examples through ``stageflow-trio run``, in virtual time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.cli.main import main
from stageflow_trio.cli.targets import load_target
from stageflow_trio.examples.voice_turn import PHRASES
from stageflow_trio.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def virtual_trio_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's ``trio.run`` on an autojump clock: the examples' sleeps take no time."""
    real_run = trio.run

    def run(fn: Any, *args: object, **kwargs: Any) -> object:
        return real_run(fn, *args, clock=trio.testing.MockClock(autojump_threshold=0), **kwargs)

    monkeypatch.setattr(trio, "run", run)


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[list[str], Any]:
    assert main(["run", *argv, "--json"]) == 0
    *events, last = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [event["event"] for event in events], last["result"]


@pytest.mark.parametrize("name", ["voice_turn", "tool_approval"])
def test_the_examples_export_a_pipeline(name: str) -> None:
    for target in (f"stageflow_trio.examples.{name}", str(ROOT / "examples" / f"{name}.py")):
        pipeline = load_target(target)
        assert isinstance(pipeline, Pipeline)
        assert pipeline.name == name


@pytest.mark.usefixtures("virtual_trio_run")
def test_voice_turn_from_the_input_text(capsys: pytest.CaptureFixture[str]) -> None:
    events, result = run_json(["stageflow_trio.examples.voice_turn", "--input", PHRASES[1]], capsys)
    assert result["status"] == "completed"
    outputs = result["outputs"]
    # Without audio in the snapshot, the caller said the input text.
    assert outputs["respond"]["data"]["response"] == "It arrives on Wednesday. Anything else?"
    # Without a session there is no memory to write.
    assert outputs["remember"]["status"] == "skip"
    assert "stream.producer_blocked" in events
    assert "stage.fetch_memory.skipped" in events
    # Audio nobody said: the speech-to-text's fallback.
    _, result = run_json(["stageflow_trio.examples.voice_turn", "--input", "hmm"], capsys)
    assert result["outputs"]["respond"]["data"]["response"] == "Let me check."


@pytest.mark.usefixtures("virtual_trio_run")
def test_tool_approval_shows_the_tool_events(capsys: pytest.CaptureFixture[str]) -> None:
    events, result = run_json(["stageflow_trio.examples.tool_approval"], capsys)
    assert result["status"] == "completed"
    assert result["duration_s"] == 0.75
    assert [e for e in events if e.startswith(("tool.", "approval."))] == [
        "tool.invoked",
        "approval.requested",
        "approval.decided",
        "tool.started",
        "tool.completed",
        "tool.undone",
    ]
    assert result["outputs"]["undo"]["data"] == {"undone": True, "title": "Draft notes"}
