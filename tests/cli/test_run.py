"""``stageflow-trio run`` in this process: the three views, exit statuses, bad input."""

from __future__ import annotations

import io
import json
import re
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.cli.main import main
from stageflow_trio.cli.run import (
    EXIT_INTERRUPTED,
    EXIT_TIMEOUT,
    LiveView,
    PlainView,
    RunOptions,
    RunRecorder,
    run_graph,
)
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline

from .sources import CANCELLING, FAILING, RAISES_ON_IMPORT, SIMPLE, write


class Terminal(io.StringIO):
    """What the live view sees as a terminal."""

    def isatty(self) -> bool:
        return True


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plain_lines_when_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "simple.py", SIMPLE)
    code, out, err = run_cli(["run", str(path), "--input", "hello"], capsys)
    assert (code, err) == (0, "")
    events = [line.split()[1] for line in out.splitlines() if re.match(r"^\s+\d+\.\d{3}s  ", line)]
    # b and c start in either order (they are released together).
    assert events[:2] == ["stage.a.started", "stage.a.completed"]
    assert events[-1] == "pipeline_completed"
    assert sorted(events[2:-1]) == [
        "stage.b.completed",
        "stage.b.started",
        "stage.c.skipped",
        "stage.c.started",
    ]
    assert 'b: {"length": 5}' in out.splitlines()
    assert out.splitlines()[-1].startswith("3/3 stages; completed in ")


def test_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "simple.py", SIMPLE)
    request = uuid.UUID(int=7)
    code, out, _ = run_cli(
        [
            "run",
            str(path),
            "--json",
            "--input",
            "hey",
            "--request-id",
            str(request),
            "--topology",
            "topo",
            "--execution-mode",
            "practice",
        ],
        capsys,
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    *events, last = lines
    assert {e["event"] for e in events} >= {
        "stage.a.started",
        "stage.b.completed",
        "pipeline_completed",
    }
    started = next(e for e in events if e["event"] == "stage.a.started")
    assert started["data"]["request_id"] == str(request)
    assert started["data"]["topology"] == "topo"
    assert started["data"]["execution_mode"] == "practice"
    result = last["result"]
    assert result["status"] == "completed"
    assert result["exit_status"] == 0
    assert result["error"] is None
    assert result["outputs"]["a"] == {
        "status": "ok",
        "data": {"text": "HEY"},
        "error": None,
        "duration_ms": 0,
    }
    assert result["outputs"]["c"]["status"] == "skip"


def test_events_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "simple.py", SIMPLE)
    log = tmp_path / "events.jsonl"
    code, _, _ = run_cli(["run", str(path), "--events", str(log)], capsys)
    assert code == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 7
    assert all(set(r) == {"event", "t", "data"} for r in records)
    assert records[-1]["event"] == "pipeline_completed"
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)


def test_exit_status_of_a_failed_and_a_cancelled_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["run", str(write(tmp_path, "f.py", FAILING))], capsys)
    assert code == 1
    assert "stage.boom.failed  duration_ms=0 error=provider down" in out
    assert out.splitlines()[-1].startswith("1/1 stages; failed after ")
    assert out.splitlines()[-1].endswith("s: Stage 'boom' failed: provider down")
    code, out, _ = run_cli(["run", str(write(tmp_path, "c.py", CANCELLING)), "--json"], capsys)
    assert code == 3
    result = json.loads(out.splitlines()[-1])["result"]
    assert result["status"] == "cancelled"
    assert result["error"] == "Pipeline cancelled by stage 'stop': nothing to do"


def test_timeout_runs_under_a_deadline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The stage waits for ever, so the (short, real) deadline always passes: no race.
    source = SIMPLE.replace(
        "return StageOutput.ok(length=",
        "await trio.sleep_forever()\n    return StageOutput.ok(length=",
    )
    code, out, _ = run_cli(
        ["run", str(write(tmp_path, "slow.py", source)), "--timeout", "0.01", "--json"], capsys
    )
    assert code == EXIT_TIMEOUT
    result = json.loads(out.splitlines()[-1])["result"]
    assert result["status"] == "timed out"
    assert result["error"] == "the deadline of 0.01s passed"
    assert list(result["outputs"]) == []
    assert "stage.b.cancelled" in out


def test_live_view_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    path = write(tmp_path, "simple.py", SIMPLE.replace("pipeline = (", "pipeline = (\n    "))
    assert main(["run", str(path), "--input", "hi"]) == 0
    text = screen.getvalue()
    assert "\x1b[" in text  # redrawn in place
    assert "[########################] 3/3 stages" in text
    assert text.splitlines()[-1].startswith("completed in ")
    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    assert main(["run", str(path), "--plain"]) == 0
    assert "\x1b[" not in screen.getvalue()


async def test_the_live_view_lines(autojump_clock: trio.abc.Clock) -> None:
    """What the live block says mid-run: done/total, bar, running clocks, retries, failures."""
    view = LiveView(Terminal(), "demo")
    recorder = RunRecorder(["a", "b", "c", "d"], view)
    recorder.try_emit(type="stage.a.started", data=None)
    recorder.try_emit(type="stage.a.completed", data={"duration_ms": 12})
    recorder.try_emit(type="stage.b.started", data={})
    recorder.try_emit(type="stage.b.failed", data={"duration_ms": 3, "error": "bad"})
    recorder.try_emit(type="stage.b.started", data={})
    recorder.try_emit(type="stage.zz.started", data={})  # not a stage of this graph
    recorder.try_emit(type="stage.c.heartbeat", data={})  # not a lifecycle status
    recorder.try_emit(type="stage.retry_scheduled", data={})
    recorder.try_emit(type="stage.d.skipped", data={"reason": "off"})
    lines = view.lines(recorder)
    reset = "\x1b[0m"
    assert lines == [
        "demo  [############------------] 2/4 stages    0.00s",
        f"  \x1b[32mcompleted{reset} a     12ms",
        f"  \x1b[36mrunning  {reset} b    0.00s  (attempt 2)",
        f"  \x1b[2mpending  {reset} c",
        f"  \x1b[2mskipped  {reset} d  off",
    ]


async def test_the_live_view_ticks(autojump_clock: trio.abc.Clock) -> None:
    screen = Terminal()
    view = LiveView(screen, "demo")
    recorder = RunRecorder(["a"], view)
    recorder.try_emit(type="stage.a.started", data=None)
    with trio.move_on_after(0.35):
        await view.tick(recorder)
    # Drawn at 0, 0.1, 0.2 and 0.3 s after the event's drawing; each redraw moves up 2 lines.
    assert screen.getvalue().count("\x1b[2F") == 4
    plain = re.sub(r"\x1b\[\d*[A-Za-z]", "", screen.getvalue())
    assert plain.splitlines()[-1] == "  running   a    0.30s"


async def test_ctrl_c_cancels_the_run_cleanly(autojump_clock: trio.abc.Clock) -> None:
    """SIGINT mid-run: the token is cancelled, cleanup runs, the status is 130."""
    cleaned: list[float] = []

    async def wait(ctx: StageContext) -> StageOutput:
        async def cleanup() -> None:
            cleaned.append(trio.current_time())

        ctx.register_cleanup(cleanup)
        await trio.sleep(1)
        signal.raise_signal(signal.SIGINT)
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    graph = Pipeline().with_stage("wait", wait, StageKind.WORK).build()
    out = io.StringIO()
    code = await run_graph(graph, RunOptions(), PlainView(out))
    assert code == EXIT_INTERRUPTED
    assert cleaned == [1.0]
    text = out.getvalue()
    assert "stage.wait.cancelled" in text
    assert text.splitlines()[-1] == "1/1 stages; interrupted after 1.000s: interrupted (Ctrl-C)"


async def test_run_graph_with_a_deadline_in_virtual_time(autojump_clock: trio.abc.Clock) -> None:
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(10)
        return StageOutput.ok()

    graph = Pipeline().with_stage("slow", slow, StageKind.WORK).build()
    out = io.StringIO()
    started = trio.current_time()
    code = await run_graph(graph, RunOptions(timeout=2.5), PlainView(out), handle_sigint=False)
    assert code == EXIT_TIMEOUT
    assert trio.current_time() - started == 2.5
    assert out.getvalue().splitlines()[-1] == (
        "1/1 stages; timed out after 2.500s: the deadline of 2.5s passed"
    )


async def test_the_recorder_is_a_checkpointing_sink(autojump_clock: trio.abc.Clock) -> None:
    recorder = RunRecorder([], PlainView(io.StringIO()))
    with trio.testing.assert_checkpoints():
        await recorder.emit(type="x", data=None)
    assert recorder.records == [{"event": "x", "t": 0.0, "data": None}]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--request-id", "nope"], "--request-id: not a UUID: 'nope'"),
        (["--timeout", "0"], "--timeout: must be a positive number of seconds; got 0"),
        (
            ["--events", "/nonexistent-dir/e.jsonl"],
            "--events: cannot write /nonexistent-dir/e.jsonl: No such file or directory",
        ),
    ],
)
def test_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    path = write(tmp_path, "simple.py", SIMPLE)
    code, out, err = run_cli(["run", str(path), *argv], capsys)
    assert (code, out) == (2, "")
    assert err == f"stageflow-trio run: error: {message}\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: str(d / "absent.py"), "no such file: {d}/absent.py"),
        (
            lambda d: str(write(d, "n.py", "pipeline = 42\n")) + ":pipeline",
            "{d}/n.py:pipeline is a int, not a Pipeline, a built graph, or a function returning one",
        ),
        (
            lambda d: str(write(d, "r.py", RAISES_ON_IMPORT)),
            "importing {d}/r.py raised RuntimeError: database unreachable",
        ),
        (lambda d: "no_such_module_abc:pipeline", "no such file or module: no_such_module_abc"),
    ],
)
def test_bad_targets_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    code, out, err = run_cli(["run", make(tmp_path)], capsys)
    assert (code, out) == (2, "")
    assert err == f"stageflow-trio run: error: {message.format(d=tmp_path)}\n"
    code, _, err = run_cli(["--debug", "run", make(tmp_path)], capsys)
    assert code == 2
    assert err.startswith(f"stageflow-trio run: error: {message.format(d=tmp_path)}\n")
    assert "Traceback (most recent call last):" in err


def test_an_interrupt_while_loading_exits_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "k.py", "raise KeyboardInterrupt\n")
    code, _, err = run_cli(["run", str(path)], capsys)
    assert (code, err) == (130, "stageflow-trio run: interrupted\n")


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run"])
    assert exited.value.code == 2
    assert (
        capsys.readouterr().err
        == "stageflow-trio run: error: the following arguments are required: target\n"
    )
    with pytest.raises(SystemExit):
        main([])
    assert capsys.readouterr().err.count("\n") == 1
