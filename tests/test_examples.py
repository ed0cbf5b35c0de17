"""Every example runs, as a module inside trio and from the command line (``python -m``)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import trio

from stageflow_trio.examples import list_examples, run_example

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "stageflow_trio" / "examples"


def load(name: str) -> ModuleType:
    return importlib.import_module(f"stageflow_trio.examples.{name}")


def test_the_examples_are_listed() -> None:
    assert list_examples() == ["cancellation", "guard_retry", "quickstart", "streaming"]
    assert list_examples() == sorted(
        p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")
    )


def test_listing_and_usage_from_the_command_line() -> None:
    command = [sys.executable, "-m", "stageflow_trio.examples"]
    listed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert listed.stdout.split() == list_examples()
    wrong = subprocess.run([*command, "nope"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2
    assert wrong.stderr == (
        "usage: python -m stageflow_trio.examples [cancellation|guard_retry|quickstart|streaming]\n"
    )


def test_run_example_names_an_unknown_example() -> None:
    with pytest.raises(ValueError, match=r"^run_example: unknown example 'nope'; choose one of "):
        run_example("nope")


def test_run_example_runs_it(capsys: pytest.CaptureFixture[str]) -> None:
    run_example("guard_retry")
    assert capsys.readouterr().out.strip()


async def test_quickstart_runs_every_stage(autojump_clock: trio.abc.Clock) -> None:
    results = await load("quickstart").main()
    assert list(results) == ["guard", "profile", "memory", "compose", "save"]
    assert results["compose"].data["reply"] == (
        "Hello Ada! Last time: engines. You said: tell me about trio"
    )
    assert results["save"].data == {"saved": True, "length": 59}


@pytest.mark.parametrize("name", list_examples())
def test_example_runs_from_the_command_line(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stageflow_trio.examples", name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


async def test_cancellation_example_shows_each_scenario(autojump_clock: trio.abc.Clock) -> None:
    log = await load("cancellation").main()
    text = "\n".join(log)
    assert "[t= 1.50s] lookup: cancelled" in text
    assert "run raised UnifiedStageExecutionError: Stage 'call' failed: upstream refused" in text
    assert "run raised UnifiedPipelineCancelled('caller hung up'); kept ['fetch']" in text
    assert text.count("cleanup: connection released") == 1
    assert log[-1].endswith("deadline reached: cancelled_caught=True")


async def test_guard_retry_example_recovers_on_the_third_draft() -> None:
    out = await load("guard_retry").main()
    assert out["drafts"] == 3
    assert out["results"]["publish"].data == {"published": "This answer is finally long enough."}
    assert [t for t in out["events"] if t.startswith("guard_retry.")] == [
        "guard_retry.attempt",
        "guard_retry.scheduled",
        "guard_retry.attempt",
        "guard_retry.scheduled",
        "guard_retry.recovered",
    ]


def test_readme_python_blocks_run() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in readme.split("```python\n")[1:]]
    assert blocks
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        graph = namespace["graph"]
        assert type(graph).__name__ == "UnifiedStageGraph"


async def test_streaming_example_shows_waiting_and_dropping(
    autojump_clock: trio.abc.Clock,
) -> None:
    out = await load("streaming").main()
    waiting, dropping = out["waiting"], out["dropping"]
    # Waiting for room loses nothing but finishes late: 50 chunks at 30 ms each.
    assert waiting == {
        "heard": 50,
        "last_heard": 49,
        "finished_at": 1.5,
        "dropped": 0,
        "blocked_puts": 19,
    }
    # Dropping the oldest loses chunks but finishes sooner: each is heard or counted as dropped.
    assert dropping["heard"] + dropping["dropped"] == 50
    assert dropping["dropped"] > 0
    assert dropping["last_heard"] == 49
    assert dropping["blocked_puts"] == 0
    assert dropping["finished_at"] < waiting["finished_at"]
    assert out["events"] == {
        "stream.producer_blocked": 19,
        "stream.chunk_dropped": dropping["dropped"],
        "stream.throttle_started": 2,
        "stream.queue_closed": 2,
    }
    assert out["sink_dropped"] == 0


def test_the_command_line_entry_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """The same three answers as from a shell, in this process (so coverage sees them)."""
    from stageflow_trio.examples.__main__ import main

    assert main([]) == 0
    assert capsys.readouterr().out.split() == list_examples()
    assert main(["nope"]) == 2
    assert main(["guard_retry", "quickstart"]) == 2
    usage = (
        "usage: python -m stageflow_trio.examples [cancellation|guard_retry|quickstart|streaming]\n"
    )
    assert capsys.readouterr().err == usage * 2
    assert main(["guard_retry"]) == 0
    assert capsys.readouterr().out.strip()
