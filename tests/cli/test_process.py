"""The command as a process: a pseudo-terminal, a pipe, Ctrl-C (SIGINT) mid-run, entry points."""

from __future__ import annotations

import importlib
import io
import json
import os
import pty
import runpy
import select
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stageflow_trio.cli.main import main

from .sources import SIMPLE, WAITING, write

ROOT = Path(__file__).resolve().parents[2]
# This checkout's package first, whatever the venv's editable install points at.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
COMMAND = [sys.executable, "-m", "stageflow_trio"]


def test_run_under_a_pseudo_terminal_draws_the_live_view(tmp_path: Path) -> None:
    path = write(tmp_path, "simple.py", SIMPLE)
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [*COMMAND, "run", str(path), "--input", "hi"],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        os.close(follower)
        chunks = []
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            assert ready, "no output from the command within 60 s"
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the follower side closed: the process is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
        assert process.stderr is not None
        assert process.stderr.read() == b""
        process.stderr.close()
    finally:
        os.close(leader)
    screen = b"".join(chunks).decode()
    assert "\x1b[32mcompleted" in screen  # coloured statuses
    assert "\x1b[J" in screen  # redrawn in place
    assert "[########################] 3/3 stages" in screen
    assert screen.splitlines()[-1].startswith("completed in ")


def test_run_piped_prints_plain_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "simple.py", SIMPLE)
    done = subprocess.run(
        [*COMMAND, "run", str(path), "--input", "hi"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "\x1b[" not in done.stdout
    assert done.stdout.splitlines()[0].endswith("s  stage.a.started")
    assert done.stdout.splitlines()[-1].startswith("3/3 stages; completed in ")


def test_ctrl_c_mid_run_cancels_cleanly(tmp_path: Path) -> None:
    """SIGINT once the stage is waiting: the cleanup runs, the events are written, exit 130.

    The stage waits for ever after registering its cleanup and emitting ``waiter.ready``;
    the signal is sent only once that line has been read, so there is no race.
    """
    path = write(tmp_path, "waiting.py", WAITING)
    events = tmp_path / "events.jsonl"
    process = subprocess.Popen(
        [*COMMAND, "run", str(path), "--input", str(tmp_path), "--events", str(events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert process.stdout is not None
    try:
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "waiter.ready" in line:
                break
        else:
            pytest.fail(f"the stage never got ready: {seen}")
        assert not (tmp_path / "CLEANED").exists()
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert err == ""
    assert "Traceback" not in rest
    assert (tmp_path / "CLEANED").read_text() == "cleanup ran"
    assert rest.splitlines()[-1].startswith("1/1 stages; interrupted after ")
    assert rest.splitlines()[-1].endswith(": interrupted (Ctrl-C)")
    written = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert written == [
        "stage.wait.started",
        "waiter.ready",
        "stage.wait.cancelled",
        "pipeline_cancelled",
    ]


def test_bad_input_is_one_line_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As a process: the status, the one line and nothing else, the traceback with --debug.
    argv = ["run", str(tmp_path / "absent.py")]
    message = f"stageflow-trio run: error: no such file: {tmp_path}/absent.py"
    done = subprocess.run([*COMMAND, *argv], capture_output=True, text=True, timeout=60, env=ENV)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message + "\n")
    debug = subprocess.run(
        [*COMMAND, "--debug", *argv], capture_output=True, text=True, timeout=60, env=ENV
    )
    assert debug.returncode == 2
    assert debug.stderr.startswith(message + "\n")
    assert "Traceback (most recent call last):" in debug.stderr
    # Every command's bad input ends in main's one handler, which the process only
    # passes to sys.exit: another command's is checked in process (two processes less).
    argv = ["graph", "os:path"]
    message = (
        "stageflow-trio graph: error: os:path is a module, not a Pipeline, a built graph,"
        " or a function returning one"
    )
    assert main(argv) == 2
    assert capsys.readouterr() == ("", message + "\n")
    assert main(["--debug", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message + "\n")
    assert "Traceback (most recent call last):" in err


def test_every_entry_point_is_the_same_command(capsys: pytest.CaptureFixture[str]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"stageflow-trio": "stageflow_trio.cli.main:main"}
    # `python -m stageflow_trio` is the process of the other tests here, and both
    # __main__ modules call main (test_the_main_modules_in_process): one fresh process of
    # the other module (its imports in that order) gives what main gives.
    assert main(["examples"]) == 0
    expected = capsys.readouterr().out
    done = subprocess.run(
        [sys.executable, "-m", "stageflow_trio.cli", "examples"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected


def test_importing_the_library_loads_no_command_line() -> None:
    """``import stageflow_trio`` imports neither the CLI nor argparse nor rich."""
    probe = (
        "import sys, stageflow_trio, stageflow_trio.pipeline, stageflow_trio.helpers;"
        " print(sorted(m for m in sys.modules if m in {'argparse', 'rich'}"
        " or m.startswith('stageflow_trio.cli')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=ENV
    )
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_examples_list_and_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["examples"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [
        "cancellation",
        "deadline",
        "flaky_retry",
        "guard_retry",
        "many_runs",
        "quickstart",
        "streaming",
        "subpipelines",
        "tool_approval",
        "voice_turn",
        "web_research",
    ]
    assert listed[5] == "quickstart     Quickstart: a five-stage pipeline run under trio."
    assert main(["examples", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == listed
    assert main(["examples", "run", "guard_retry"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1] == "published: This answer is finally long enough."
    )
    assert main(["examples", "run", "nope"]) == 2
    assert capsys.readouterr().err == (
        "stageflow-trio examples: error: no example named 'nope'; choose one of "
        "cancellation, deadline, flaky_retry, guard_retry, many_runs, quickstart, streaming,"
        " subpipelines, tool_approval, voice_turn, web_research\n"
    )


@pytest.mark.parametrize("module", ["stageflow_trio", "stageflow_trio.cli"])
def test_the_main_modules_in_process(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", [module, "examples"])
    # As on a fresh `python -m`: a test that imported the __main__ module before (one that
    # walks every module of the package) would make runpy warn.
    monkeypatch.delitem(sys.modules, f"{module}.__main__", raising=False)
    with pytest.raises(SystemExit) as exited:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("cancellation  ")
    # Imported, not run: it does nothing.
    assert importlib.import_module(f"{module}.__main__").main is main


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """``stageflow-trio graph X | head -1``: exit 141 (SIGPIPE), nothing on stderr.

    The drawing is larger than a pipe's buffer, so the command is still writing when the
    reader closes its end: the broken pipe cannot be missed.
    """
    source = (
        "from stageflow_trio.core import StageKind\n"
        "from stageflow_trio.pipeline import Pipeline\n"
        "from stageflow_trio.pipeline.pipeline import UnifiedStageSpec\n"
        "async def run(ctx): ...\n"
        "pipeline = Pipeline(stages={f'stage_{i:05d}_with_a_long_name': UnifiedStageSpec("
        "f'stage_{i:05d}_with_a_long_name', run, StageKind.WORK) for i in range(3000)})\n"
    )
    path = write(tmp_path, "big.py", source)
    with subprocess.Popen(
        [*COMMAND, "graph", str(path), "--format", "text"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline() == b"pipeline: 3000 stages\n"
        process.stdout.close()
        err = process.stderr.read()
        assert process.wait(timeout=60) == 141
    assert err == b""


def test_a_broken_pipe_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", Gone())
    assert main(["examples"]) == 141


def test_a_broken_pipe_points_stdout_at_devnull(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

        def fileno(self) -> int:
            return fd

    monkeypatch.setattr(sys, "stdout", Gone())
    try:
        assert main(["examples"]) == 141
        os.write(fd, b"after")  # now goes to /dev/null
        assert os.fstat(fd).st_rdev == os.stat(os.devnull).st_rdev
    finally:
        os.close(fd)
    assert target.read_bytes() == b""
