"""Audit 15 of the command line: what a user meets at its edges.

Stage data JSON cannot hold as it is, a stage raising KeyboardInterrupt or SystemExit,
a reader that goes away mid-run, an output encoding that lacks a stage's name, a
second Ctrl-C while a stage blocks, timeline files with bad times or written over
themselves, and ``python -m stageflow_trio.examples --help``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stageflow_trio.cli.main import main
from stageflow_trio.examples.__main__ import main as examples_main

from .sources import HEADER, write

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
COMMAND = [sys.executable, "-m", "stageflow_trio"]

ODD_DATA = (
    HEADER
    + """
async def a(ctx):
    loop = []
    loop.append(loop)
    return StageOutput.ok(by_pair={(1, 2): 3, None: 4}, loop=loop, big=10**5000)

pipeline = Pipeline(name="odd").with_stage("a", a, StageKind.TRANSFORM)
"""
)

RAISING = (
    HEADER
    + """
import sys

async def interrupt(ctx):
    raise KeyboardInterrupt

async def leave(ctx):
    sys.exit(0)

interrupting = Pipeline(name="i").with_stage("a", interrupt, StageKind.WORK)
exiting = Pipeline(name="e").with_stage("a", leave, StageKind.WORK)
"""
)

# `first` checkpoints; `second` would leave a file behind if it ran.
TWO_STEPS = (
    HEADER
    + """
from pathlib import Path

async def first(ctx):
    await trio.sleep(0)
    return StageOutput.ok()

async def second(ctx):
    Path(ctx.snapshot.input_text, "SECOND").write_text("ran")
    return StageOutput.ok()

pipeline = (
    Pipeline(name="two")
    .with_stage("first", first, StageKind.WORK)
    .with_stage("second", second, StageKind.WORK, dependencies=("first",))
)
"""
)

UNICODE = (
    HEADER
    + """
async def ok(ctx):
    return StageOutput.ok(msg="h\\u00e9llo")

pipeline = Pipeline(name="\\u30d1\\u30a4\\u30d7").with_stage(
    "\\u30b9\\u30c6\\u30fc\\u30b8", ok, StageKind.TRANSFORM
)
"""
)

# Blocks the trio thread (time.sleep) until it sees the run's Ctrl-C handler replaced,
# that is, until the first SIGINT has been handled; then blocks for good.
BLOCKING = (
    HEADER
    + """
import signal
import time

async def block(ctx):
    mine = signal.getsignal(signal.SIGINT)
    print("blocking", flush=True)
    until = time.monotonic() + 5
    while signal.getsignal(signal.SIGINT) is mine and time.monotonic() < until:
        time.sleep(0.01)
    print("first ctrl-c handled", flush=True)
    time.sleep(5)
    return StageOutput.ok()

pipeline = Pipeline(name="blocking").with_stage("block", block, StageKind.WORK)
"""
)


def test_json_output_of_keys_cycles_and_huge_ints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stage data with a tuple key, a cycle and a 5000-digit int: written, not a crash.

    Before: the tuple key raised TypeError out of ``main`` (a traceback), the cycle
    and the int a ValueError reported as bad input (status 2) after the run.
    """
    path = write(tmp_path, "odd.py", ODD_DATA)
    assert main(["run", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    result = json.loads(out.splitlines()[-1])["result"]
    assert result["status"] == "completed"
    data = result["outputs"]["a"]["data"]
    assert data["by_pair"] == {"[1, 2]": 3, "null": 4}
    assert data["loop"] == ["<cycle>"]
    assert data["big"] == f"<int of {(10**5000).bit_length()} bits>"
    # The plain view's last stage output line too.
    assert main(["run", str(path), "--plain"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[-2].startswith('a: {"by_pair": {"[1, 2]": 3, "null": 4}')


@pytest.mark.parametrize(
    ("name", "code", "last"),
    [
        ("interrupting", 130, "0/1 stages; interrupted after "),
        ("exiting", 1, "0/1 stages; failed after "),
    ],
)
def test_a_stage_raising_keyboard_interrupt_or_system_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, code: int, last: str
) -> None:
    """Before: a BaseExceptionGroup out of ``main`` (a traceback, status 1)."""
    path = write(tmp_path, "raising.py", RAISING)
    assert main(["run", f"{path}:{name}"]) == code
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[-1].startswith(last)
    if name == "exiting":
        assert out.splitlines()[-1].endswith(": a stage raised SystemExit: 0")


def test_a_reader_gone_mid_run_stops_the_run_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``run X | head -1``: 141, the run cancelled, no log line per later event.

    Before: every later event logged ``Failed to emit ...: Broken pipe`` (thousands of
    stderr lines for a large pipeline) and the run went on to its end.
    """

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    path = write(tmp_path, "two.py", TWO_STEPS)
    monkeypatch.setattr(sys, "stdout", Gone())
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(path), "--input", str(tmp_path)]) == 141
    assert [r.getMessage() for r in caplog.records if "Failed to emit" in r.getMessage()] == []
    assert not (tmp_path / "SECOND").exists()


def test_an_output_encoding_without_the_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ASCII stdout: non-ASCII names are escaped. Before: UnicodeEncodeError, status 2."""
    path = write(tmp_path, "uni.py", UNICODE)
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["graph", str(path), "--format", "text"]) == 0
    assert main(["run", str(path)]) == 0
    assert capsys.readouterr().err == ""
    text = raw.getvalue().decode("ascii")
    assert text.startswith("\\u30d1\\u30a4\\u30d7: 1 stage\n")
    assert '\\u30b9\\u30c6\\u30fc\\u30b8: {"msg": "h\\xe9llo"}' in text


def test_a_second_ctrl_c_stops_a_blocked_stage(tmp_path: Path) -> None:
    """The first Ctrl-C cannot stop a stage that blocks the thread; the second does (130).

    Before: both were queued for a receiver that could not run; the stage ran to its
    end and the command exited 0.
    """
    path = write(tmp_path, "blocking.py", BLOCKING)
    process = subprocess.Popen(
        [*COMMAND, "run", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        # As from an interactive shell, whatever this test process inherited.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    try:
        seen = []
        for wanted in ("blocking", "first ctrl-c handled"):
            for line in process.stdout:
                seen.append(line)
                if line.strip() == wanted:
                    break
            else:
                pytest.fail(f"never saw {wanted!r}: {seen}")
            process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, (seen, rest, err)
    assert err == ""
    assert rest.splitlines()[-1].startswith("0/1 stages; interrupted after ")


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('{"event": "stage.a.started", "t": null}', "None"),
        ('{"event": "stage.a.started", "t": "soon"}', "'soon'"),
        ('{"event": "stage.a.started", "t": NaN}', "nan"),
        ('{"event": "stage.a.started", "t": 1e999}', "inf"),
        ('{"event": "stage.a.started", "t": true}', "True"),
    ],
)
def test_timeline_times_that_are_not_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, shown: str
) -> None:
    """Before: ``null`` was a TypeError traceback, ``"soon"`` a message without its line,
    and NaN, infinity and ``true`` drew a page with bars nowhere."""
    events = tmp_path / "run.jsonl"
    events.write_text('{"event": "stage.a.completed", "t": 0.5}\n' + line + "\n")
    assert main(["timeline", str(events)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"stageflow-trio timeline: error: {events}, line 2:"
        f' "t" must be a finite number of seconds; got {shown}\n'
    )
    assert not (tmp_path / "run.html").exists()


def test_timeline_of_a_file_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "run.jsonl"
    events.write_bytes(b"\xff\xfe{}\n")
    assert main(["timeline", str(events)]) == 2
    assert capsys.readouterr().err == (
        f"stageflow-trio timeline: error: {events}: not UTF-8 text (invalid start byte at byte 0)\n"
    )


@pytest.mark.parametrize("how", ["-o", "default", "link"])
def test_timeline_never_overwrites_its_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """Before: ``-o EVENTS``, or an events file named ``*.html``, was replaced by the page."""
    line = '{"event": "stage.a.started", "t": 0.0}\n'
    events = tmp_path / ("run.html" if how == "default" else "run.jsonl")
    events.write_text(line)
    argv = ["timeline", str(events)]
    if how == "-o":
        argv += ["-o", str(events)]
    elif how == "link":
        (tmp_path / "page.html").symlink_to(events)
        argv += ["-o", str(tmp_path / "page.html")]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "stageflow-trio timeline: error: the page would overwrite its events file"
        f" {events}: give -o FILE\n"
    )
    assert events.read_text() == line


def test_examples_main_help_and_a_reader_gone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m stageflow_trio.examples --help``: the usage on stdout, status 0.

    Before: the usage on stderr and status 2; ``... | head`` a BrokenPipeError traceback.
    """
    for flag in ("-h", "--help"):
        assert examples_main([flag]) == 0
        out, err = capsys.readouterr()
        assert (out.startswith("usage: python -m stageflow_trio.examples [cancellation|"), err) == (
            True,
            "",
        )
    assert examples_main(["--bogus"]) == 2
    assert capsys.readouterr().err.startswith("usage: ")

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", Gone())
    assert examples_main([]) == 141
