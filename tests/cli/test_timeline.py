"""``stageflow-trio timeline``: attempts from events, the HTML page, and the page in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stageflow_trio.cli.main import main
from stageflow_trio.cli.timeline import attempts_from_events, read_events, render_timeline


def rec(event: str, t: float, **data: Any) -> dict[str, Any]:
    return {"event": event, "t": t, "data": data}


RECORDS = [
    rec("stage.draft.started", 0.0),
    rec("stage.draft.completed", 0.5, duration_ms=500),
    rec("stage.guard.started", 0.5),
    rec("stage.guard.failed", 0.6, error="too short"),
    rec("guard_retry.scheduled", 0.6, attempt=1),
    rec("stage.draft.started", 0.6),
    rec("stage.draft.completed", 1.0),
    rec("stage.extra.skipped", 1.0, reason="off"),
    rec("stage.guard.started", 1.0),
    rec("stage.guard.completed", 1.2),
    rec("stage.publish.started", 1.2),
    rec("stage.retry_scheduled", 1.3),  # the retry interceptor's event: not a lifecycle one
    rec("pipeline_failed", 1.5),
]


def test_attempts_pair_starts_with_ends() -> None:
    assert [
        (a.stage, a.number, a.start, a.end, a.status) for a in attempts_from_events(RECORDS)
    ] == [
        ("draft", 1, 0.0, 0.5, "completed"),
        ("guard", 1, 0.5, 0.6, "failed"),
        ("draft", 2, 0.6, 1.0, "completed"),
        ("extra", 1, 1.0, 1.0, "skipped"),
        ("guard", 2, 1.0, 1.2, "completed"),
        ("publish", 1, 1.2, 1.5, "running"),  # never ended: runs to the last event
    ]
    first = attempts_from_events(RECORDS)[1]
    assert first.payload == ({}, {"error": "too short"})


def test_the_page_has_a_bar_per_attempt() -> None:
    page = render_timeline(RECORDS, title="demo <run>")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>demo &lt;run&gt;</title>" in page
    bars = re.findall(
        r'<rect class="attempt" data-stage="(\w+)" data-attempt="(\d)" data-status="(\w+)"', page
    )
    assert bars == [
        ("draft", "1", "completed"),
        ("guard", "1", "failed"),
        ("draft", "2", "completed"),
        ("extra", "1", "skipped"),
        ("guard", "2", "completed"),
        ("publish", "1", "running"),
    ]
    assert page.count('class="marker"') == 1
    assert "#2</text>" in page  # retries are numbered
    assert "&quot;error&quot;: &quot;too short&quot;" in page  # the hover payload
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    assert render_timeline([rec("stage.a.skipped", 0.0)]).count('class="attempt"') == 1


def test_read_events(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"event": "x", "t": 0}\n\n{"result": {}}\n[1]\n')
    assert read_events(path) == [{"event": "x", "t": 0}]
    path.write_text('{"event": "x", "t": 0}\nnot json\n')
    with pytest.raises(ValueError, match=r"^.*e\.jsonl, line 2: not JSON \(Expecting value\)$"):
        read_events(path)


def known_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, int]:
    """The guard-retry example through the CLI: draft x3, guard x3, publish x1."""
    events = tmp_path / "run.jsonl"
    assert (
        main(["run", "stageflow_trio.examples.guard_retry:build_graph", "--events", str(events)])
        == 0
    )
    capsys.readouterr()
    return events, 7


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, attempts = known_run(tmp_path, capsys)
    assert main(["timeline", str(events)]) == 0
    page = tmp_path / "run.html"
    assert capsys.readouterr().out == f"wrote {page}\n"
    assert page.read_text().count('<rect class="attempt"') == attempts
    other = tmp_path / "other.html"
    assert main(["timeline", str(events), "-o", str(other)]) == 0
    assert other.read_text() == page.read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read {d}/e.jsonl: No such file or directory"),
        ("", "{d}/e.jsonl holds no events (write some with run --events FILE)"),
        ("oops\n", "{d}/e.jsonl, line 1: not JSON (Expecting value)"),
    ],
)
def test_the_command_on_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "e.jsonl").write_text(content)
    assert main(["timeline", str(tmp_path / "e.jsonl")]) == 2
    assert (
        capsys.readouterr().err == f"stageflow-trio timeline: error: {message.format(d=tmp_path)}\n"
    )


def test_the_command_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "e.jsonl").write_text(json.dumps(rec("stage.a.started", 0)) + "\n")
    code = main(["timeline", str(tmp_path / "e.jsonl"), "-o", str(tmp_path / "no" / "x.html")])
    assert code == 2
    assert capsys.readouterr().err == (
        f"stageflow-trio timeline: error: cannot write {tmp_path}/no/x.html: No such file or directory\n"
    )


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found is not None:
            return found
    pytest.skip(
        "no chromium binary on PATH (Debian: apt-get install -y chromium; .ci/run installs it)"
    )


def test_the_page_in_headless_chromium(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Chromium parses the page into one SVG bar per stage attempt of a known run."""
    browser = chromium()
    events, attempts = known_run(tmp_path, capsys)
    page = tmp_path / "run.html"
    assert main(["timeline", str(events), "-o", str(page)]) == 0
    dumped = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dumped.returncode == 0, dumped.stderr
    dom = dumped.stdout
    # The serialized DOM, as the browser built it (an unparsable SVG would not be there).
    bars = re.findall(r'<rect class="attempt" data-stage="(\w+)" data-attempt="(\d)"', dom)
    assert len(bars) == attempts
    assert sorted(bars) == [
        ("draft", "1"),
        ("draft", "2"),
        ("draft", "3"),
        ("guard", "1"),
        ("guard", "2"),
        ("guard", "3"),
        ("publish", "1"),
    ]
    assert "<svg" in dom
    assert "7 stage attempts, 3 stages" in dom
