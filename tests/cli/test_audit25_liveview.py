"""Audit 25: the live view fitted to a real terminal's size.

The view moved up as many rows as it had drawn lines: a line wider than the terminal
(a long error, a wide title) took two rows or more, and a block taller than the
screen scrolled its top away, so every redraw left copies of the block's first rows
behind. A stage's own ``print`` was overwritten by the next redraw, with the same
copies. These tests read the output through a small terminal model (wrapping at its
width, scrolling at its height into a scrollback).
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import unicodedata
from pathlib import Path

import pytest
import trio

from stageflow_trio.cli._library_logs import library_records
from stageflow_trio.cli._text import cut_to_width
from stageflow_trio.cli.main import main
from stageflow_trio.cli.run import LiveView, RunOptions, RunRecorder, run_graph
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline

from .sources import HEADER, write

# ---------------------------------------------------------------------------------------
# A terminal of a given size: an output the view asks for its size, and a model of the
# screen its bytes draw.


class SizedTerminal(io.StringIO):
    """A terminal's output whose size (``columns``, ``lines``) the test sets, and changes."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__()
        self.size = os.terminal_size((columns, lines))

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return -id(self)  # never a real descriptor: the patched get_terminal_size knows it


@pytest.fixture(autouse=True)
def _sized_terminals(monkeypatch: pytest.MonkeyPatch) -> None:
    terminals: dict[int, SizedTerminal] = {}
    real = os.get_terminal_size
    original_init = SizedTerminal.__init__

    def init(self: SizedTerminal, columns: int, lines: int) -> None:
        original_init(self, columns, lines)
        terminals[self.fileno()] = self

    def get_terminal_size(fd: int = 1) -> os.terminal_size:
        if fd in terminals:
            return terminals[fd].size
        return real(fd)

    monkeypatch.setattr(SizedTerminal, "__init__", init)
    monkeypatch.setattr(os, "get_terminal_size", get_terminal_size)


_TOKEN = re.compile(r"\x1b\[(\d*)([A-Za-z])|\r|\n|[^\x1b\r\n]")


def _cells(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


class Screen:
    """What a VT100-like terminal shows (as xterm or tmux): a grid and a scrollback.

    Writing past the last column wraps (on the next character: a line exactly as wide
    as the screen does not take a second row); a line feed on the last row scrolls the
    top row into the scrollback; ``ESC[nF`` moves up (never above the top row);
    ``ESC[J`` clears below, and from the top-left corner pushes the screen into the
    scrollback first, as tmux's ``scroll-on-clear`` does; ``ESC[2K`` clears the row.
    A line feed is a carriage return too (a terminal's ONLCR).
    """

    def __init__(self, columns: int, lines: int) -> None:
        self.columns, self.lines = columns, lines
        self.grid = [self._blank() for _ in range(lines)]
        self.scrollback: list[str] = []
        self.row = self.column = 0

    def _blank(self) -> list[str]:
        return [" "] * self.columns

    def _line_feed(self) -> None:
        self.column = 0
        if self.row == self.lines - 1:
            self.scrollback.append(self._text(self.grid.pop(0)))
            self.grid.append(self._blank())
        else:
            self.row += 1

    @staticmethod
    def _text(cells: list[str]) -> str:
        return "".join(cells).rstrip()

    def feed(self, data: str) -> None:
        for match in _TOKEN.finditer(data):
            token = match.group()
            if token == "\n":
                self._line_feed()
            elif token == "\r":
                self.column = 0
            elif match.group(2) is not None:
                count, command = int(match.group(1) or 1), match.group(2)
                if command == "F":
                    self.row, self.column = max(self.row - count, 0), 0
                elif command == "J":
                    if self.row == 0 and self.column == 0:
                        self.scrollback.extend(self._text(row) for row in self.grid)
                    self.grid[self.row][self.column :] = [" "] * (self.columns - self.column)
                    for row in range(self.row + 1, self.lines):
                        self.grid[row] = self._blank()
                elif command == "K" and match.group(1) == "2":
                    self.grid[self.row] = self._blank()
                elif command != "m":
                    raise AssertionError(f"the model does not know {token!r}")
            else:
                width = _cells(token)
                if self.column + width > self.columns:
                    self._line_feed()
                self.grid[self.row][self.column] = token
                if width == 2:
                    self.grid[self.row][self.column + 1] = ""
                self.column += width

    def text(self) -> list[str]:
        """The scrollback, then the screen, without the blank rows at the end."""
        rows = self.scrollback + [self._text(row) for row in self.grid]
        while rows and not rows[-1]:
            rows.pop()
        return rows


def _screen_of(terminal: SizedTerminal) -> list[str]:
    screen = Screen(terminal.size.columns, terminal.size.lines)
    screen.feed("$ stageflow-trio run\n")  # the shell's line above the block
    screen.feed(terminal.getvalue())
    return screen.text()


# ---------------------------------------------------------------------------------------
# Cutting a line to a width.


def test_cut_to_width_counts_display_columns() -> None:
    assert cut_to_width("abcdef", 6) == ("abcdef", 6)
    assert cut_to_width("abcdefg", 6) == ("abcde…", 6)
    assert cut_to_width("abcdefg", 6, "...") == ("abc...", 6)
    # Wide East Asian characters take two columns; a combining accent none.
    assert cut_to_width("日本語", 6) == ("日本語", 6)
    assert cut_to_width("日本語です", 6) == ("日本…", 5)
    assert cut_to_width("e\u0301" * 4, 4) == ("e\u0301" * 4, 4)
    # Colour escapes take none; a cut line resets the colour.
    red = "\x1b[31mfailed\x1b[0m boom"
    assert cut_to_width(red, 11) == (red, 11)
    assert cut_to_width(red, 8) == ("\x1b[31mfailed\x1b[0m …\x1b[0m", 8)
    assert cut_to_width("\x1b[31mfailed\x1b[0m", 4) == ("\x1b[31mfai…\x1b[0m", 4)
    assert cut_to_width("abc", 0) == ("", 0)


# ---------------------------------------------------------------------------------------
# The view fitted to the size.


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[\d*[A-Za-z]", "", text)


def _width(line: str) -> int:
    return sum(_cells(char) for char in _plain(line))


def _last_block(terminal: SizedTerminal) -> list[str]:
    return _last_block_of(terminal.getvalue())


async def test_lines_are_cut_to_the_width_and_the_title_keeps_its_counts(
    autojump_clock: trio.abc.Clock,
) -> None:
    terminal = SizedTerminal(60, 20)
    view = LiveView(terminal, "a pipeline with a title far too long to fit")
    recorder = RunRecorder(["検索ステージ" * 5, "b"], view)
    recorder.try_emit(type="stage.b.started", data=None)
    recorder.try_emit(type="stage.b.failed", data={"duration_ms": 3, "error": "x" * 200})
    view.redraw(recorder)
    block = _last_block(terminal)
    assert len(block) == 3
    assert all(_width(line) <= 60 for line in block)
    title, first, second = (_plain(line) for line in block)
    assert title == "a pipeline …  [############------------] 1/2 stages    0.00s"
    # 12 columns, then 23 of the 30 wide characters, then the ellipsis: 59 columns.
    assert first == "  pending   " + ("検索ステージ" * 5)[:23] + "…"
    assert second.startswith("  failed    b      3ms  xxx")
    assert second.endswith("x…")
    # The colours of a cut line are reset.
    assert _last_block(terminal)[2].endswith("…\x1b[0m")
    # What a test reads is the whole block, uncut.
    assert view.lines(recorder)[2].endswith("x" * 200)


class AsciiTerminal(SizedTerminal):
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "ascii"


async def test_an_ascii_terminal_gets_three_dots(autojump_clock: trio.abc.Clock) -> None:
    """``…`` written where ASCII is all there is would be ``\\u2026``, 6 columns."""
    terminal = AsciiTerminal(20, 10)
    view = LiveView(terminal, "p", colour=False)
    recorder = RunRecorder(["a" * 30], view)
    view.redraw(recorder)
    assert _last_block(terminal)[1] == "  pending   aaaaa..."


async def test_a_block_taller_than_the_screen_keeps_the_running_and_failed_first(
    autojump_clock: trio.abc.Clock,
) -> None:
    terminal = SizedTerminal(60, 8)
    view = LiveView(terminal, "tall", colour=False)
    names = [f"s{i:02d}" for i in range(30)]
    recorder = RunRecorder(names, view)
    for name in names[:10]:
        recorder.try_emit(type=f"stage.{name}.started", data=None)
        recorder.try_emit(type=f"stage.{name}.completed", data={"duration_ms": 1})
    recorder.try_emit(type="stage.s20.started", data=None)
    recorder.try_emit(type="stage.s25.started", data=None)
    recorder.try_emit(type="stage.s25.failed", data={"duration_ms": 2, "error": "bad"})
    view.redraw(recorder)
    block = _last_block(terminal)
    assert len(block) == 7  # the screen's rows but one, for the cursor's row
    assert block[0].startswith("tall  [")
    assert [line.split()[:2] for line in block[1:6]] == [
        ["completed", "s00"],
        ["completed", "s01"],
        ["completed", "s02"],
        ["running", "s20"],
        ["failed", "s25"],
    ]
    assert block[6] == "  ... 25 more (7 completed, 18 pending)"
    # Tiny screens: the title alone, or the title and the count.
    terminal.size = os.terminal_size((60, 2))
    view.redraw(recorder)
    assert [line.split()[0] for line in _last_block(terminal)] == ["tall"]
    terminal.size = os.terminal_size((60, 3))
    view.redraw(recorder)
    assert (
        _last_block(terminal)[1] == "  ... 30 more (1 running, 1 failed, 10 completed, 18 pendin…"
    )


async def test_without_a_size_the_block_is_written_whole(autojump_clock: trio.abc.Clock) -> None:
    """An output with no terminal size (a StringIO, a closed file): drawn uncut, as before."""
    screen = io.StringIO()
    view = LiveView(screen, "t" * 300)
    recorder = RunRecorder([f"s{i}" for i in range(100)], view)
    view.redraw(recorder)
    view.redraw(recorder)
    assert screen.getvalue().count("\x1b[101F") == 1
    assert _last_block_of(screen.getvalue()) == view.lines(recorder)


def _last_block_of(text: str) -> list[str]:
    """The lines of the last drawing (after the last move up, if any)."""
    start = text.rfind("F\x1b[2K") + 1
    return [line.removeprefix("\x1b[2K") for line in text[start:].split("\n")[:-1]]


async def test_a_narrowed_terminal_is_moved_up_by_its_rewrapped_rows(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Made narrower, a terminal rewraps the lines it shows (tmux, VTE, iTerm2, kitty)."""
    terminal = SizedTerminal(80, 20)
    view = LiveView(terminal, "p", colour=False)
    recorder = RunRecorder(["a", "b"], view)
    recorder.try_emit(type="stage.a.started", data=None)
    recorder.try_emit(type="stage.a.failed", data={"duration_ms": 1, "error": "e" * 100})
    view.redraw(recorder)  # the title (50 columns), a (80 columns, cut), b (13 columns)
    terminal.size = os.terminal_size((40, 20))
    view.redraw(recorder)
    view.redraw(recorder)
    # Drawn by the first event, then over 3 lines at 80 columns, over 2 + 2 + 1 rows
    # once at 40 columns, then over the 3 lines cut to 40.
    assert re.findall(r"\x1b\[(\d+)F", terminal.getvalue()) == ["3", "5", "3"]
    assert all(_width(line) <= 40 for line in _last_block(terminal))


# ---------------------------------------------------------------------------------------
# Whole runs through the terminal model: one block at the end, no copies left behind.


async def _run(terminal: SizedTerminal, pipeline: Pipeline, title: str) -> int:
    view = LiveView(terminal, title)
    return await run_graph(pipeline.build(), RunOptions(), view, title=title, handle_sigint=False)


async def test_a_long_error_leaves_no_copies(autojump_clock: trio.abc.Clock) -> None:
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(10)
        return StageOutput.ok()

    async def boom(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        raise RuntimeError("provider down: " + "x" * 200)

    pipeline = (
        Pipeline(name="longerr")
        .with_stage("boom", boom, StageKind.WORK)
        .with_stage("slow", slow, StageKind.WORK)
    )
    terminal = SizedTerminal(60, 15)
    assert await _run(terminal, pipeline, "longerr") == 1
    rows = _screen_of(terminal)
    assert sum(row.startswith("longerr  [") for row in rows) == 1
    assert rows[0] == "$ stageflow-trio run"
    assert rows[1].startswith("longerr  [########################] 2/2 stages")
    assert rows[2].startswith("  failed    boom   1000ms  provider down: xxx")
    assert rows[3].startswith("  cancelled slow   1000ms")
    # The outcome, printed once below the block, wraps as any printed line does.
    outcome = "failed after 1.000s: Stage 'boom' failed: provider down: " + "x" * 200
    assert "".join(rows[4:]) == outcome


async def test_more_stages_than_rows_leave_no_copies(autojump_clock: trio.abc.Clock) -> None:
    def stage(seconds: float):  # type: ignore[no-untyped-def]
        async def run(ctx: StageContext) -> StageOutput:
            await trio.sleep(seconds)
            return StageOutput.ok()

        return run

    pipeline = Pipeline(name="many")
    for i in range(40):
        pipeline = pipeline.with_stage(f"stage_{i:02d}", stage(0.1 * i), StageKind.WORK)
    terminal = SizedTerminal(60, 15)
    assert await _run(terminal, pipeline, "many") == 0
    rows = _screen_of(terminal)
    assert sum(row.startswith("many  [") for row in rows) == 1
    assert rows[0] == "$ stageflow-trio run"
    assert rows[1].startswith("many  [########################] 40/40 stages")
    assert rows[14] == "  ... 28 more (28 completed)"
    assert rows[15:] == [*(f"stage_{i:02d}: {{}}" for i in range(40)), "completed in 3.900s"]


async def test_a_stage_that_prints_is_shown_above_the_block(autojump_clock: trio.abc.Clock) -> None:
    async def talk(ctx: StageContext) -> StageOutput:
        for i in range(3):
            await trio.sleep(0.35)
            print(f"stage says {i}")
        print("no line end yet", end="")
        return StageOutput.ok()

    terminal = SizedTerminal(60, 15)
    view = LiveView(terminal, "talk")
    graph = Pipeline(name="talk").with_stage("talk", talk, StageKind.WORK).build()
    before = sys.stdout
    real = io.StringIO()
    sys.stdout = real
    try:
        with view.showing_prints():
            assert sys.stdout is not real
            code = await run_graph(graph, RunOptions(), view, title="talk", handle_sigint=False)
    finally:
        sys.stdout = before
    assert code == 0
    # The printed text and the view share the terminal: merge them as written.
    assert real.getvalue() == "stage says 0\nstage says 1\nstage says 2\nno line end yet"
    terminal_text = terminal.getvalue()
    assert terminal_text.count("\x1b[2F\x1b[J") == 3  # the block moved out of the way 3 times


async def test_printing_above_the_block_through_the_model(autojump_clock: trio.abc.Clock) -> None:
    """The same, with the prints and the view written to one terminal."""
    terminal = SizedTerminal(40, 10)
    view = LiveView(terminal, "talk", colour=False)
    recorder = RunRecorder(["a"], view)
    recorder.try_emit(type="stage.a.started", data=None)
    view.write_above("hello\n", terminal)
    await trio.sleep(1)
    view.redraw(recorder)
    view.write_above("world\nagain\n", terminal)
    view.redraw(recorder)
    rows = _screen_of(terminal)
    assert rows == [
        "$ stageflow-trio run",
        "hello",
        "world",
        "again",
        "talk  [------------------------] 0/1 st…",
        "  running   a    1.00s",
    ]


PRINTING = (
    HEADER
    + """
async def talk(ctx):
    print("stage says hello")
    print("and goodbye", end="")
    print()
    return StageOutput.ok(said=2)

pipeline = Pipeline(name="talk").with_stage("talk", talk, StageKind.WORK)
"""
)


def test_the_command_shows_a_stages_prints_above_the_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the next redraw moved up over the printed lines, erasing them, and left a
    copy of the block's first lines above."""
    terminal = SizedTerminal(60, 15)
    monkeypatch.setattr("sys.stdout", terminal)
    assert main(["run", str(write(tmp_path, "talk.py", PRINTING))]) == 0
    assert sys.stdout is terminal
    rows = _screen_of(terminal)
    assert rows[:3] == ["$ stageflow-trio run", "stage says hello", "and goodbye"]
    assert rows[3].startswith("talk  [########################] 1/1 stages")
    assert rows[4].startswith("  completed talk")
    assert rows[5:] == ['talk: {"said": 2}', rows[6]]
    assert rows[6].startswith("completed in ")


def test_debug_records_follow_sys_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--debug`'s handler writes to sys.stderr as it is at each record, so the live view's
    stand-in (above the block) gets them. Before: the stream as it was when made."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # no process configuration
    with library_records(True):
        later = io.StringIO()
        monkeypatch.setattr("sys.stderr", later)
        logging.getLogger("stageflow_trio.dag").error("stage boom failed")
    assert later.getvalue() == "ERROR stageflow_trio.dag: stage boom failed\n"
