"""Audit 17 of the command line and the examples.

A reader that goes away (``| head``) from every way of running an example, and from a
block-buffered stdout; the live view's redraws bounded under a flood of events; and
what a newcomer met running each subcommand with wrong input.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import runpy
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio

from stageflow_trio.cli.main import _parser, main
from stageflow_trio.cli.run import (
    LiveView,
    OutputError,
    PlainView,
    RunOptions,
    RunRecorder,
    run_graph,
)
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.examples import list_examples, run_example
from stageflow_trio.examples.__main__ import main as examples_main
from stageflow_trio.pipeline import Pipeline

from .sources import FAILING, SIMPLE, write

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "stageflow_trio" / "examples"
PYTHON = sys.executable


def _env(*, unbuffered: bool) -> dict[str, str]:
    # The checkout's package first, whatever the venv's editable install points at.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = str(ROOT)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


class Gone(io.StringIO):
    """A stdout whose reader went away; its descriptor is ``fd`` (to see it silenced)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self.fd


@pytest.fixture
def gone_stdout(tmp_path: Path) -> Iterator[Gone]:
    """A Gone stream; a test sets it as ``sys.stdout`` in its body (pytest's capture
    puts its own back between a fixture's set-up and the test)."""
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        yield Gone(fd)
    finally:
        os.close(fd)


# 1. A reader that goes away, from every entry point.


@pytest.mark.parametrize("name", list_examples())
def test_each_example_as_a_script_ends_quietly_when_the_reader_goes_away(
    name: str,
    gone_stdout: Gone,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``python -m stageflow_trio.examples.NAME | head -3``: status 141, nothing logged.

    Before: a BrokenPipeError traceback (status 1), and for the examples printing from
    an event sink a "Failed to emit ..." warning for every later event.
    """
    monkeypatch.setattr(sys, "stdout", gone_stdout)
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as exited:
        runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    assert exited.value.code == 141
    # Only the engine's records of the stages an example fails on purpose (pytest's
    # handler on the root logger counts as configured logging, so they reach it).
    assert [r for r in caplog.records if r.name != "stageflow_trio.dag"] == []
    assert capsys.readouterr().err == ""
    assert os.fstat(gone_stdout.fd).st_rdev == os.stat(os.devnull).st_rdev
    assert sys.stdout is gone_stdout  # put back


def test_run_example_tells_its_caller_once_the_example_is_over(
    gone_stdout: Gone, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", gone_stdout)
    with caplog.at_level(logging.WARNING), pytest.raises(BrokenPipeError):
        run_example("quickstart")
    assert caplog.records == []
    assert sys.stdout is gone_stdout


def test_the_examples_runner_and_the_command_end_quietly_in_process(
    gone_stdout: Gone, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", gone_stdout)
    with caplog.at_level(logging.WARNING):
        assert examples_main(["quickstart"]) == 141
        assert examples_main(["--help"]) == 141
        assert main(["examples", "run", "tool_approval"]) == 141
    assert caplog.records == []


def _closed_pipe_runs(commands: list[tuple[list[str], bool]]) -> list[tuple[int, bytes]]:
    """Run each (command, unbuffered) with a stdout whose reader has gone: (status, stderr).

    Deterministic: the pipe's read end is closed before the processes start, so a first
    write to stdout (or the flush at the end) meets the broken pipe, however fast it is.
    """
    read, write = os.pipe()
    os.close(read)
    try:
        processes = [
            subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=write,
                stderr=subprocess.PIPE,
                env=_env(unbuffered=unbuffered),
            )
            for command, unbuffered in commands
        ]
    finally:
        os.close(write)
    results = []
    for process in processes:
        _, err = process.communicate(timeout=60)
        results.append((process.returncode, err))
    return results


def test_every_example_entry_point_ends_quietly_when_the_reader_goes_away() -> None:
    """Status 141 and nothing on stderr, as ``stageflow-trio graph X | head`` already had.

    Before: from ``python -m stageflow_trio.examples.NAME`` a traceback (status 1), after
    a "Failed to emit" line per event when unbuffered; block-buffered (the default on a
    pipe), "Exception ignored ... BrokenPipeError" and status 120 from every entry point,
    ``--help`` included. (Each example as a script: the in-process test above.)
    """
    commands = [
        ([PYTHON, "-m", "stageflow_trio.examples.quickstart"], True),
        ([PYTHON, "-m", "stageflow_trio.examples.quickstart"], False),
        ([PYTHON, "-m", "stageflow_trio.examples", "quickstart"], False),
        ([PYTHON, "-m", "stageflow_trio", "examples", "run", "quickstart"], False),
        ([PYTHON, "-m", "stageflow_trio", "run", "--help"], False),
    ]
    assert _closed_pipe_runs(commands) == [(141, b"")] * len(commands)


# 2. The live view under a flood of events.


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class CountingLiveView(LiveView):
    def __init__(self, out: Terminal, title: str) -> None:
        super().__init__(out, title)
        self.redraws: list[float] = []

    def redraw(self, recorder: RunRecorder) -> None:
        self.redraws.append(recorder.elapsed())
        super().redraw(recorder)


async def test_the_live_view_redraws_boundedly_and_draws_the_end(
    autojump_clock: trio.abc.Clock,
) -> None:
    """20,000 events over 2 s of virtual time: at most ~60 redraws (42), the last one final.

    Before: a redraw per event (20,000 and more), the bottleneck of a chatty run.
    """

    async def chatty(ctx: StageContext) -> StageOutput:
        for i in range(10_000):
            ctx.try_emit_event("chunk", {"i": i})
            if i % 10 == 9:
                await trio.sleep(0.001)
        return StageOutput.ok(chunks=10_000)

    graph = (
        Pipeline(name="chatty")
        .with_stage("one", chatty, StageKind.WORK)
        .with_stage("two", chatty, StageKind.WORK, dependencies=("one",))
        .build()
    )
    screen = Terminal()
    view = CountingLiveView(screen, "chatty")
    code = await run_graph(graph, RunOptions(), view, handle_sigint=False)
    assert code == 0
    elapsed = trio.current_time()
    assert elapsed >= 1.99
    # 20 a second from events and 10 from the clock's tick, plus the first and last.
    bound = elapsed * (1 / LiveView.MIN_INTERVAL + 1 / LiveView.REFRESH) + 3
    assert elapsed / LiveView.REFRESH <= len(view.redraws) <= bound
    assert view.redraws[-1] == pytest.approx(elapsed)  # the final state, at the end
    text = screen.getvalue()
    final_block = text.rsplit("\x1b[3F", 1)[1]  # the last move up over the 3 lines
    assert "[########################] 2/2 stages" in final_block
    assert "completed\x1b[0m one" in final_block
    assert "completed\x1b[0m two" in final_block
    assert text.splitlines()[-1].startswith("completed in ")
    assert 'two: {"chunks": 10000}' in text


async def test_an_event_after_a_quiet_spell_is_drawn_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Throttling skips redraws only within MIN_INTERVAL of the last one."""
    screen = Terminal()
    view = LiveView(screen, "demo")
    recorder = RunRecorder(["a"], view)
    recorder.try_emit(type="stage.a.started", data=None)
    drawn = screen.getvalue()
    assert "running" in drawn
    recorder.try_emit(type="stage.a.completed", data={"duration_ms": 1})
    assert screen.getvalue() == drawn  # within the interval: not drawn yet
    await trio.sleep(LiveView.MIN_INTERVAL)
    recorder.try_emit(type="x", data=None)
    assert "completed" in screen.getvalue()[len(drawn) :]


# 3. What a newcomer met.


class _FullStdout(io.StringIO):
    """A stdout on a full disk: every write fails with ENOSPC."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def _full_disk_runs(commands: list[list[str]], *, unbuffered: bool) -> list[tuple[int, str]]:
    """Run each command with stdout on /dev/full (every write: ENOSPC): (status, stderr)."""
    with open(os.devnull, "rb") as nothing, open("/dev/full", "wb") as full:
        processes = [
            subprocess.Popen(
                command,
                stdin=nothing,
                stdout=full,
                stderr=subprocess.PIPE,
                env=_env(unbuffered=unbuffered),
            )
            for command in commands
        ]
    results = []
    for process in processes:
        _, err = process.communicate(timeout=60)
        results.append((process.returncode, err.decode()))
    return results


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_one_line_and_the_status(tmp_path: Path) -> None:
    """Before: a traceback (status 1 or 120), or a "Failed to emit" line per event.

    (Every command in process: the next test.)
    """
    failing = write(tmp_path, "failing.py", FAILING)
    reason = "error: cannot write the output: No space left on device\n"
    cases = [
        # The run goes on and keeps its own status, 1.
        ([PYTHON, "-m", "stageflow_trio", "run", str(failing)], 1, "stageflow-trio run"),
        (
            [PYTHON, "-m", "stageflow_trio.examples.quickstart"],
            2,
            "python -m stageflow_trio.examples.quickstart",
        ),
    ]
    results = _full_disk_runs([command for command, _, _ in cases], unbuffered=False)
    assert results == [(status, f"{prog}: {reason}") for _, status, prog in cases]


def test_a_full_disk_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", _FullStdout())
    path = write(tmp_path, "simple.py", SIMPLE)
    for argv in (["graph", str(path)], ["lint", str(path)], ["examples"]):
        assert main(argv) == 2
        assert capsys.readouterr().err == (
            f"stageflow-trio {argv[0]}: error: cannot write the output: No space left on device\n"
        )
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 2
    assert (
        capsys.readouterr().err
        == "stageflow-trio: error: cannot write the output: No space left on device\n"
    )
    assert examples_main([]) == 2
    assert main(["examples", "run", "quickstart"]) == 2
    assert capsys.readouterr().err.count("\n") == 2  # one line each, no "Failed to emit"


async def test_a_view_whose_output_fails_lets_the_run_finish(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The run goes on (as for a failing --events file); OutputError tells its status."""

    class FullView(PlainView):
        def event(self, recorder: RunRecorder, record: Mapping[str, Any]) -> None:
            raise OSError(28, "No space left on device")

    done: list[str] = []

    async def step(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        done.append(ctx.stage_name)
        return StageOutput.ok()

    graph = (
        Pipeline()
        .with_stage("a", step, StageKind.WORK)
        .with_stage("b", step, StageKind.WORK, dependencies=("a",))
        .build()
    )
    out = io.StringIO()
    with pytest.raises(OutputError) as caught:
        await run_graph(graph, RunOptions(), FullView(out), handle_sigint=False)
    assert caught.value.exit_status == 0
    assert isinstance(caught.value.__cause__, OSError)
    assert done == ["a", "b"]
    assert out.getvalue() == ""  # finish() was not called either


def test_a_directory_or_an_empty_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: ``no such file: DIR`` for a directory, ``names no file or module before ':'``
    for an empty target (which has no ':')."""
    folder = tmp_path / "pipelines.py"
    folder.mkdir()
    assert main(["run", str(folder)]) == 2
    assert capsys.readouterr().err == (
        f"stageflow-trio run: error: {folder} is a directory, not a Python file\n"
    )
    assert main(["graph", ""]) == 2
    assert capsys.readouterr().err == (
        "stageflow-trio graph: error: the target is empty:"
        " give path/file.py[:NAME] or module:NAME\n"
    )


def test_debug_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: ``stageflow-trio run x.py --debug`` was ``unrecognized arguments: --debug``."""
    assert main(["run", str(tmp_path / "nope.py"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stageflow-trio run: error: no such file: ")
    assert "Traceback" in err
    assert main(["run", str(tmp_path / "nope.py")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_every_option_has_help_and_is_documented() -> None:
    """Before: the six id options, ``graph --format`` and ``examples run NAME`` had none."""
    doc = (ROOT / "docs" / "cli.md").read_text()
    seen: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
                continue
            assert action.help, (parser.prog, action.dest)
            seen.update(o for o in action.option_strings if o.startswith("--"))

    walk(_parser())
    documented = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", doc))
    assert seen - {"--help"} <= documented
    assert documented <= seen


def test_no_color_and_a_dumb_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "simple.py", SIMPLE)
    monkeypatch.setenv("NO_COLOR", "1")
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    assert main(["run", str(path), "--input", "hi"]) == 0
    text = screen.getvalue()
    assert "\x1b[J" in text  # still redrawn in place
    assert "\x1b[32m" not in text
    assert "completed b" in text.replace("completed  b", "completed b")
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    assert main(["run", str(path), "--input", "hi"]) == 0
    assert "\x1b[" not in screen.getvalue()
    assert screen.getvalue().splitlines()[-1].startswith("3/3 stages; completed in ")


def test_a_target_path_with_a_colon_in_a_directory_is_a_path(tmp_path: Path) -> None:
    """The part after the last ':' is a NAME only when it is not a path: a drive
    (``C:\\app\\p.py``) or a directory named with a ':' leaves the whole target a file."""
    from stageflow_trio.cli.targets import TargetError, load_target

    folder = tmp_path / "team:a"
    folder.mkdir()
    source = folder / "flow.py"
    source.write_text(
        "from stageflow_trio.pipeline import Pipeline\n"
        "async def work(ctx):\n    return None\n"
        "pipeline = Pipeline('p').with_stage('work', work, 'work')\n",
        encoding="utf-8",
    )
    assert list(load_target(str(source)).stages) == ["work"]  # type: ignore[union-attr]
    assert list(load_target(f"{source}:pipeline").stages) == ["work"]  # type: ignore[union-attr]
    with pytest.raises(TargetError, match=r"no such file: C:\\app\\p\.py"):
        load_target("C:\\app\\p.py")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_for_both_the_output_and_the_events_file_says_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: only the output's line; the lost events file went unsaid."""

    monkeypatch.setattr(sys, "stdout", _FullStdout())
    path = write(tmp_path, "simple.py", SIMPLE)
    assert main(["run", str(path), "--events", "/dev/full"]) == 2
    assert capsys.readouterr().err == (
        "stageflow-trio run: error: --events: cannot write /dev/full: No space left on device\n"
        "stageflow-trio run: error: cannot write the output: No space left on device\n"
    )
