"""``stageflow-trio timeline``: a run's events as a self-contained HTML page.

The page holds one SVG: a row per stage, and in it a bar per attempt (from
``stage.NAME.started`` to the stage's next terminal event), coloured by how the
attempt ended. A stage skipped without starting gets a thin bar at the moment of
the skip. Guard retries show as several bars on the retried stage's row, numbered;
``guard_retry.*`` events are ticks on the time axis. Hovering a bar shows its
events' payloads (an SVG ``<title>``). Nothing is loaded from elsewhere.

The input is JSON lines as ``run --events FILE`` or ``run --json`` write them:
``{"event": type, "t": seconds, "data": {...}}`` (other lines are ignored).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from stageflow_trio._frozen import frozen_compat

__all__ = ["Attempt", "attempts_from_events", "read_events", "render_timeline"]

COLOURS = {
    "completed": "#2e9d48",
    "failed": "#d73a3a",
    "cancelled": "#e0a000",
    "skipped": "#9aa0a6",
    "running": "#4a7fd6",  # started, never ended (the log was cut short)
}
_TERMINAL = frozenset({"completed", "failed", "cancelled", "skipped"})


@frozen_compat
@attrs.frozen
class Attempt:
    """One execution of a stage: when it started and ended, and how (a bar).

    Attributes:
        stage: The stage's name.
        number: 1 for the first attempt, 2 for the first retry, ...
        start: Seconds since the run started.
        end: Seconds since the run started (``start`` for a skip without a start).
        status: ``completed``, ``failed``, ``cancelled``, ``skipped`` or ``running``.
        payload: The attempt's events' data, for the hover text.
    """

    stage: str
    number: int
    start: float
    end: float
    status: str
    payload: tuple[Mapping[str, Any], ...]


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """The event records of a JSON-lines file (lines without ``"event"`` are skipped).

    Raises:
        OSError: the file cannot be read.
        ValueError: the file is not UTF-8, or a line is not JSON or has a ``"t"`` that
            is not a finite number (the message names its line number).
    """
    records = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {number}: not JSON ({exc.msg})") from None
        if isinstance(record, dict) and isinstance(record.get("event"), str):
            t = record.get("t", 0.0)
            # A bool is an int to Python, and NaN or infinity would place a bar nowhere.
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                raise ValueError(
                    f'{path}, line {number}: "t" must be a finite number of seconds; got {t!r}'
                )
            records.append(record)
    return records


def _stage_event(event: str) -> tuple[str, str] | None:
    if not event.startswith("stage."):
        return None
    name, _, status = event[len("stage.") :].rpartition(".")
    if not name or status not in _TERMINAL | {"started"}:
        return None
    return name, status


def attempts_from_events(records: Iterable[Mapping[str, Any]]) -> list[Attempt]:
    """Pair each stage's ``started`` event with its next terminal event, in start order."""
    attempts: list[Attempt] = []
    open_: dict[str, tuple[int, float, Mapping[str, Any]]] = {}
    numbers: dict[str, int] = {}
    last = 0.0
    for record in records:
        t = float(record.get("t", last))
        last = max(last, t)
        parsed = _stage_event(record["event"])
        if parsed is None:
            continue
        name, status = parsed
        data = record.get("data") or {}
        if status == "started":
            numbers[name] = numbers.get(name, 0) + 1
            open_[name] = (len(attempts), t, data)
            attempts.append(Attempt(name, numbers[name], t, t, "running", (data,)))
        elif name in open_:
            index, start, started_data = open_.pop(name)
            attempts[index] = Attempt(name, numbers[name], start, t, status, (started_data, data))
        else:  # skipped (or ended) without a start of its own
            numbers[name] = numbers.get(name, 0) + 1
            attempts.append(Attempt(name, numbers[name], t, t, status, (data,)))
    # An attempt still open when the log ends runs to the last event's time.
    return [
        attrs.evolve(attempt, end=last) if attempt.status == "running" else attempt
        for attempt in attempts
    ]


def _markers(records: Iterable[Mapping[str, Any]]) -> list[tuple[float, str]]:
    return [
        (float(record.get("t", 0.0)), record["event"])
        for record in records
        if record["event"].startswith("guard_retry.")
    ]


def render_timeline(records: Sequence[Mapping[str, Any]], *, title: str = "stageflow run") -> str:
    """The HTML page for ``records`` (see the module docstring)."""
    attempts = attempts_from_events(records)
    stages = list(dict.fromkeys(attempt.stage for attempt in attempts))
    end = max([attempt.end for attempt in attempts] + [float(r.get("t", 0)) for r in records])
    span = end if end > 0 else 1.0
    label_width, plot_width, row, top = 180, 760, 28, 30
    height = top + row * len(stages) + 30
    width = label_width + plot_width + 20

    def x(t: float) -> float:
        return round(label_width + plot_width * t / span, 2)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
    ]
    for index, stage in enumerate(stages):
        y = top + row * index
        parts.append(
            f'<text class="stage-label" x="{label_width - 8}" y="{y + 17}"'
            f' text-anchor="end">{html.escape(stage)}</text>'
        )
    for attempt in attempts:
        y = top + row * stages.index(attempt.stage)
        left = x(attempt.start)
        bar = max(x(attempt.end) - left, 2.0)  # a skip (no duration) still shows
        # As written: ensure_ascii showed "café" as "caf\\u00e9" in the hover text.
        hover = json.dumps(list(attempt.payload), indent=1, default=str, ensure_ascii=False)
        parts.append(
            f'<rect class="attempt" data-stage="{html.escape(attempt.stage)}"'
            f' data-attempt="{attempt.number}" data-status="{attempt.status}"'
            f' x="{left}" y="{y + 4}" width="{round(bar, 2)}" height="{row - 8}"'
            f' fill="{COLOURS[attempt.status]}" rx="3">'
            f"<title>{html.escape(attempt.stage)} attempt {attempt.number}:"
            f" {attempt.status}, {attempt.start:.3f}s to {attempt.end:.3f}s\n"
            f"{html.escape(hover)}</title></rect>"
        )
        if attempt.number > 1:
            parts.append(
                f'<text class="attempt-number" x="{left + 3}" y="{y + 17}"'
                f' fill="#fff">#{attempt.number}</text>'
            )
    axis = top + row * len(stages) + 6
    parts.append(
        f'<line x1="{label_width}" y1="{axis}" x2="{label_width + plot_width}" y2="{axis}"'
        ' stroke="#555"/>'
    )
    parts.append(f'<text x="{label_width}" y="{axis + 16}">0s</text>')
    parts.append(
        f'<text x="{label_width + plot_width}" y="{axis + 16}" text-anchor="end">{end:.3f}s</text>'
    )
    for t, event in _markers(records):
        parts.append(
            f'<line class="marker" x1="{x(t)}" y1="{top - 6}" x2="{x(t)}" y2="{axis}"'
            f' stroke="#888" stroke-dasharray="2 3"><title>{html.escape(event)}'
            f" at {t:.3f}s</title></line>"
        )
    parts.append("</svg>")
    legend = " ".join(
        f'<span style="background:{colour}">{status}</span>' for status, colour in COLOURS.items()
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:1em}"
        ".legend span{color:#fff;padding:2px 6px;margin-right:4px;border-radius:3px}"
        "rect.attempt:hover{stroke:#000;stroke-width:1.5}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{len(attempts)} stage attempts, {len(stages)} stages, {end:.3f}s.</p>"
        f'<p class="legend">{legend}</p>' + "".join(parts) + "</body></html>\n"
    )
