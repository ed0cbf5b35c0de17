"""``stageflow-trio run``: run a built graph once and show its progress.

Three views of the same events: :class:`LiveView` redraws a block of lines on a
terminal (stages done / total, a progress bar, what is running and for how long,
durations and failures); :class:`PlainView` prints one line per event when the
output is not a terminal; :class:`JsonView` writes every event, then the result,
as JSON lines. ``--events FILE`` writes the JSON event lines to a file as well.

The run is one nursery: the graph and the view's clock. The first Ctrl-C cancels
the run's :class:`~stageflow_trio.pipeline.CancellationToken`, so running stages are
interrupted, the run's cleanup callbacks run and the events so far are written; the
exit status is then 130. A second Ctrl-C is trio's KeyboardInterrupt, for a run that
does not stop (exit status 130 too). ``--timeout`` is a ``trio.move_on_after``
around the run (exit status 124, as ``timeout(1)``). When the reader of the view goes
away (``| head``), the run is cancelled and the command exits 141.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager, nullcontext
from typing import IO, Any, Protocol, TextIO

import attrs
import trio
from trio_util import periodic

from stageflow_trio._args import check_int, error_text
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._json import jsonable
from stageflow_trio.cli._text import cut_to_width, one_line
from stageflow_trio.context import ContextSnapshot, RunIdentity
from stageflow_trio.core import PipelineTimer, StageContext, StageOutput
from stageflow_trio.pipeline import (
    CancellationToken,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.stages import StageInputs

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "RECENT_RECORDS",
    "EventsFileError",
    "JsonView",
    "LiveView",
    "OutputError",
    "PlainView",
    "RunOptions",
    "RunRecorder",
    "View",
    "run_graph",
]

EXIT_OK = 0
EXIT_FAILED = 1  # a stage failed
EXIT_CANCELLED = 3  # a stage returned CANCEL
EXIT_TIMEOUT = 124  # as timeout(1)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C

_TERMINAL = frozenset({"completed", "failed", "cancelled", "skipped"})


class EventsFileError(OSError):
    """Writing the events file failed (a full disk): the run went on without it.

    Raised by :func:`run_graph` once the run is over and the view has shown it;
    ``__cause__`` is the first write error.

    Attributes:
        exit_status: The status the run itself ended with.
    """

    def __init__(self, exit_status: int) -> None:
        super().__init__(f"writing the events file failed; the run's exit status: {exit_status}")
        self.exit_status = exit_status

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.exit_status,), self.__dict__)


class OutputError(OSError):
    """Writing the output (stdout) failed other than by a broken pipe (a full disk).

    Raised by :func:`run_graph` once the run is over (it went on, showing nothing more);
    ``__cause__`` is the first write error. The command line says so in one line on
    stderr and exits 2, or with the run's own status if it did not complete.

    Attributes:
        exit_status: The status the run (or command) itself ended with.
        events_error: The first failed write to ``events_file`` too, if one failed
            (raised alone, that is :class:`EventsFileError`); None otherwise.
    """

    def __init__(self, exit_status: int, events_error: OSError | None = None) -> None:
        super().__init__(f"writing the output failed; the run's exit status: {exit_status}")
        self.exit_status = exit_status
        self.events_error = events_error

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.exit_status, self.events_error), self.__dict__)


def _json_line(record: Mapping[str, Any], *, ensure_ascii: bool = False) -> str:
    # default=str: event data may hold UUIDs, datetimes or an application's objects.
    try:
        return json.dumps(record, default=str, ensure_ascii=ensure_ascii)
    except (TypeError, ValueError, RecursionError):
        # A key JSON cannot hold (a tuple, say), a cycle, an int too long to print,
        # nesting too deep: write what can be written rather than fail the run.
        return json.dumps(jsonable(record), ensure_ascii=ensure_ascii)


def output_dict(output: StageOutput) -> dict[str, Any]:
    """A stage output as ``{status, data, error, duration_ms}`` for the JSON result."""
    return {
        "status": output.status.value,
        "data": dict(output.data),
        "error": output.error,
        "duration_ms": output.duration_ms,
    }


@frozen_compat
@attrs.frozen
class RunOptions:
    """What ``run`` was asked for, besides the pipeline.

    Attributes:
        input_text: The snapshot's ``input_text``.
        ids: ``{field: UUID}`` for the snapshot's RunIdentity (``request_id``, ...).
        topology: The snapshot's topology (the pipeline's name by default).
        execution_mode: The snapshot's execution mode.
        timeout: Seconds before the run is cancelled, or None.
    """

    input_text: str | None = None
    ids: Mapping[str, uuid.UUID] = attrs.field(factory=dict)
    topology: str | None = None
    execution_mode: str | None = None
    timeout: float | None = None


@attrs.define
class StageState:
    """What the views know of a stage: its status, attempts and last duration."""

    status: str = "pending"
    attempts: int = 0
    started_at: float | None = None
    duration_ms: int | None = None
    error: str | None = None


class View(Protocol):
    """How a run is shown: told of each event, then of the outcome."""

    def event(self, recorder: RunRecorder, record: Mapping[str, Any]) -> None:
        """Show one event (``{"type", "data"}``) as it happens."""
        ...

    async def tick(self, recorder: RunRecorder) -> None:
        """Refresh the view while the run goes on (a view with nothing to refresh waits forever)."""
        ...

    def finish(self, recorder: RunRecorder, outcome: Mapping[str, Any]) -> None:
        """Show how the run ended: its status and the last stages' outputs."""
        ...


RECENT_RECORDS = 1000
"""How many of the latest events :func:`run_graph`'s recorder keeps in ``records``."""


class RunRecorder:
    """The run's event sink: keeps the events, the stages' states, and tells the view.

    Each event becomes ``{"event": type, "t": seconds since the run started (trio's
    clock), "data": data}``; ``events_file``, if given, gets it as a JSON line at once.
    A write to ``events_file`` that fails (``OSError``: a full disk) stops the
    writing, not the run nor the view: ``events_error`` holds that first error. A view
    whose output fails other than by a broken pipe (a full disk) is not told of later
    events: ``output_error`` holds that first error, and the run goes on.
    ``records`` keeps every event, or with ``max_records`` only the latest
    ``max_records`` of them (older ones are dropped, in batches, so that a run that goes
    on for days, a stream emitting an event per chunk, holds bounded memory; the
    events file still gets every event). :func:`run_graph` keeps the latest
    :data:`RECENT_RECORDS`.
    """

    def __init__(
        self,
        stages: list[str],
        view: View,
        events_file: IO[str] | None = None,
        *,
        on_output_gone: Callable[[], object] | None = None,
        max_records: int | None = None,
    ) -> None:
        if max_records is not None:
            check_int("RunRecorder", "max_records", max_records, minimum=0)
        self.stages: dict[str, StageState] = {name: StageState() for name in stages}
        self.records: list[dict[str, Any]] = []
        self.max_records = max_records
        self.events_error: OSError | None = None
        self.output_error: OSError | None = None
        self.view = view
        self.events_file = events_file
        self.started: float = trio.current_time()
        self.on_output_gone = on_output_gone
        #: The view's reader went away (a broken pipe): nothing more is shown.
        self.output_gone: bool = False

    def elapsed(self) -> float:
        """Seconds since the run started, on trio's clock."""
        return trio.current_time() - self.started

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:
        """Record an event. A checkpoint."""
        await trio.lowlevel.checkpoint()
        self.try_emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:
        """Record an event; not a checkpoint."""
        now = self.elapsed()
        record = {"event": type, "t": round(now, 6), "data": data}
        records = self.records
        records.append(record)
        limit = self.max_records
        if limit is not None and len(records) > 2 * limit:
            # Trimmed by half the list at a time: O(1) per event, amortized.
            del records[: len(records) - limit]
        self._update(type, data or {}, now)
        if self.events_file is not None and self.events_error is None:
            try:
                try:
                    self.events_file.write(_json_line(record) + "\n")
                except UnicodeEncodeError:
                    # A lone surrogate ("\ud800") in a name or in the data, or a
                    # character the file's encoding lacks: JSON's \u escapes hold
                    # it. (The error escaped, and the event was lost from the file
                    # and from the view.)
                    self.events_file.write(_json_line(record, ensure_ascii=True) + "\n")
            except OSError as exc:
                self.events_error = exc
        if self.output_gone or self.output_error is not None:
            return
        try:
            self.view.event(self, record)
        except BrokenPipeError:
            # `stageflow-trio run X | head -1`: stop showing, and stop the run (as
            # SIGPIPE would), instead of a logged failure for every later event.
            self.lose_output()
        except OSError as exc:
            # A full disk: stop showing (no logged failure per event); the run goes on.
            self.output_error = exc

    def lose_output(self) -> None:
        """The view's reader went away: show nothing more, call ``on_output_gone`` once."""
        if not self.output_gone:
            self.output_gone = True
            if self.on_output_gone is not None:
                self.on_output_gone()

    def _update(self, type: str, data: Mapping[str, Any], now: float) -> None:
        if not type.startswith("stage."):
            return
        name, _, status = type[len("stage.") :].rpartition(".")
        state = self.stages.get(name)
        if state is None:
            return
        if status == "started":
            state.status, state.started_at, state.error = "running", now, None
            state.attempts += 1
        elif status in _TERMINAL:
            state.status = status
            state.duration_ms = data.get("duration_ms")
            error = data.get("error", data.get("reason"))
            state.error = None if error is None else str(error)

    def counts(self) -> tuple[int, int]:
        """(stages finished, stages in all)."""
        done = sum(state.status in _TERMINAL for state in self.stages.values())
        return done, len(self.stages)


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = width * done // total if total else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def _outcome_line(outcome: Mapping[str, Any]) -> str:
    status = outcome["status"]
    seconds = f"{outcome['duration_s']:.3f}s"
    if status == "completed":
        return f"completed in {seconds}"
    return f"{status} after {seconds}: {outcome['error']}"


class PlainView:
    """One line per event, for a pipe or a file; then the outputs of the last stages."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def event(self, recorder: RunRecorder, record: Mapping[str, Any]) -> None:
        """Show one event."""
        data = record["data"] or {}
        details = [
            f"{key}={data[key]}" for key in ("duration_ms", "error", "reason") if key in data
        ]
        line = f"{record['t']:9.3f}s  {record['event']}"
        if details:
            line += "  " + " ".join(details)
        print(one_line(line), file=self.out, flush=True)

    async def tick(self, recorder: RunRecorder) -> None:
        """Refresh the view (see :meth:`View.tick`)."""
        await trio.lowlevel.checkpoint()

    def finish(self, recorder: RunRecorder, outcome: Mapping[str, Any]) -> None:
        """Show how the run ended."""
        for name, output in outcome["final_outputs"].items():
            print(f"{name}: {_json_line(output['data'])}", file=self.out)
        done, total = recorder.counts()
        print(f"{done}/{total} stages; {_outcome_line(outcome)}", file=self.out, flush=True)


_SHOWN_FIRST = {"running": 0, "failed": 1, "cancelled": 2}


def _terminal_size(out: IO[str]) -> os.terminal_size | None:
    """The size of the terminal ``out`` writes to, read afresh (it may be resized), or None."""
    try:
        size = os.get_terminal_size(out.fileno())
    except (AttributeError, ValueError, OSError):  # not a file, closed, not a terminal
        return None
    # A pty nobody sized (0 x 0): nothing to fit to.
    return size if size.columns > 0 and size.lines > 0 else None


def _encodes(out: IO[str], text: str) -> bool:
    try:
        text.encode(getattr(out, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class _AboveTheBlock(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` while a :class:`LiveView` is drawn: see ``write_above``.

    Whole lines are written at once; a line not yet ended waits for its end (or for
    the run's end), so that the cursor is never left in the middle of a line when the
    block is redrawn. What it does not define (``buffer``) is the stream's own.
    """

    def __init__(self, view: LiveView, stream: TextIO) -> None:
        super().__init__()
        self._view = view
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        pending = self._pending + text
        lines, newline, self._pending = pending.rpartition("\n")
        if newline:
            self._view.write_above(lines + newline, self._stream)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def close_line(self) -> None:
        """Write what waits for its line's end (the run is over: no block to keep)."""
        if self._pending:
            text, self._pending = self._pending, ""
            self._stream.write(text)
            self._stream.flush()

    def isatty(self) -> bool:
        return _isatty(self._stream)

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._stream.errors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class LiveView:
    """A block of lines redrawn in place with ANSI escapes, on events and 10 times a second.

    An event redraws the block only if :attr:`MIN_INTERVAL` seconds of trio's clock have
    passed since the last drawing: a run emitting thousands of events a second is not
    slowed down by drawing each one (the next event after the interval, or the
    :attr:`REFRESH` tick, shows what the skipped ones changed), and :meth:`finish`
    always draws the final state.
    """

    REFRESH = 0.1
    MIN_INTERVAL = 0.05
    _COLOURS = {  # noqa: RUF012 - read-only table
        "completed": "\x1b[32m",
        "failed": "\x1b[31m",
        "cancelled": "\x1b[33m",
        "skipped": "\x1b[2m",
        "running": "\x1b[36m",
        "pending": "\x1b[2m",
    }
    _RESET = "\x1b[0m"

    def __init__(self, out: IO[str], title: str, *, colour: bool = True) -> None:
        self.out = out
        self.title = title
        #: Statuses in colour; off with ``colour=False`` (the command: ``NO_COLOR`` set).
        self.colour = colour
        #: The lines of the last drawing (the rows to move up over).
        self.drawn: int = 0
        # Their columns when the terminal's size was known (for a narrowed terminal).
        self._widths: list[int] | None = None
        # An output that cannot write "…" (ASCII) would write it as 6 columns.
        self._ellipsis = "…" if _encodes(out, "…") else "..."
        self._block = ""  # the last drawing, as written after the move up
        # A stage's thread may print (write_above) while trio's thread redraws.
        self._lock = threading.Lock()
        #: When the block was last drawn (trio's clock, as ``recorder.elapsed()``).
        self.drawn_at: float | None = None

    def lines(self, recorder: RunRecorder) -> list[str]:
        """The block as it stands (also what a test reads)."""
        done, total = recorder.counts()
        now = recorder.elapsed()
        lines = [
            f"{one_line(self.title)}  {_bar(done, total)} {done}/{total} stages  {now:6.2f}s",
        ]
        for name, state in recorder.stages.items():
            colour, reset = (self._COLOURS[state.status], self._RESET) if self.colour else ("", "")
            if state.status == "running":
                assert state.started_at is not None
                timing = f"{now - state.started_at:6.2f}s"
            elif state.duration_ms is not None:
                timing = f"{state.duration_ms:5d}ms"
            else:
                timing = ""
            parts = [f"  {colour}{state.status:<9}{reset} {one_line(name)}"]
            if timing:
                parts.append(timing)
            if state.attempts > 1:
                parts.append(f"(attempt {state.attempts})")
            if state.error is not None:
                parts.append(one_line(state.error))
            line = "  ".join(parts)
            lines.append(line)
        return lines

    def redraw(self, recorder: RunRecorder) -> None:
        """Move up over the last drawing and draw anew, fitted to the terminal's size.

        Each line is cleared as it is overwritten and what is left below is cleared
        last: a clear from the top-left corner (a block as tall as the screen) is
        taken by tmux, as by ``clear``, as a reason to push the whole screen into
        its scrollback, a copy of the block per redraw.
        """
        lines = self.lines(recorder)
        size = _terminal_size(self.out)
        widths: list[int] | None = None
        if size is not None:
            # The last row is the cursor's: a one-row terminal has no room for a block.
            lines = self._fit_height(lines, recorder, size.lines - 1)
            if lines:
                lines[0] = self._fit_title(lines[0], size.columns)
            fitted = [cut_to_width(line, size.columns, self._ellipsis) for line in lines]
            lines = [line for line, _ in fitted]
            widths = [width for _, width in fitted]
        block = "".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J"
        with self._lock:
            up = f"\x1b[{self._rows_to_top(size)}F" if self.drawn else ""
            if not (lines or self.drawn):
                block = ""  # nothing to draw, nor to clear
            self.out.write(up + block)
            self.out.flush()
            self.drawn = len(lines)
            self._widths = widths
            self._block = block
        self.drawn_at = recorder.elapsed()

    def write_above(self, text: str, stream: IO[str]) -> None:
        """Write ``text`` (whole lines) to ``stream`` above the block, then the block again.

        A line a stage prints while the block is drawn would otherwise be
        overwritten by the next redraw, and the block's first lines left behind
        (the redraw moves up only over the block's own rows). The block drawn again
        is the last drawing, as it was: the next tick brings it up to date.
        Called from any thread (a stage's worker thread prints too).
        """
        with self._lock:
            if not self.drawn:
                stream.write(text)
                stream.flush()
                return
            self.out.write(f"\x1b[{self._rows_to_top(_terminal_size(self.out))}F\x1b[J")
            self.out.flush()
            stream.write(text)
            stream.flush()
            self.out.write(self._block)
            self.out.flush()

    @contextmanager
    def showing_prints(self) -> Iterator[None]:
        """While in the block, ``sys.stdout`` and ``sys.stderr`` (a terminal) write above the block.

        What the stages print, and what logging writes through ``sys.stderr`` as it
        is then, goes to the same screen as the block (see :meth:`write_above`). A
        handler that took the stream before (``logging.basicConfig()`` at import),
        or a write to the file descriptor (a subprocess), is not seen.
        """
        saved = sys.stdout, sys.stderr
        if saved[0] is not None:
            sys.stdout = _AboveTheBlock(self, saved[0])
        if saved[1] is not None and _isatty(saved[1]):
            sys.stderr = _AboveTheBlock(self, saved[1])
        try:
            yield
        finally:
            proxies = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = saved
            for proxy in proxies:
                if isinstance(proxy, _AboveTheBlock):
                    proxy.close_line()

    def _fit_title(self, line: str, columns: int) -> str:
        # The counts and the clock say more than the end of a long title: the title
        # is cut first.
        name = one_line(self.title)
        rest = line[len(name) :]
        _, rest_width = cut_to_width(rest, columns)
        room = columns - rest_width
        if cut_to_width(line, columns)[0] == line or room < 2 * len(self._ellipsis):
            return line
        return cut_to_width(name, room, self._ellipsis)[0] + rest

    def _rows_to_top(self, size: os.terminal_size | None) -> int:
        # A terminal made narrower since the last drawing rewraps its lines (tmux,
        # VTE, iTerm2, kitty, Windows Terminal): a line as wide as the old width
        # now takes two rows or more.
        if size is None or self._widths is None:
            return self.drawn
        columns = max(size.columns, 1)
        return sum(max(1, -(-width // columns)) for width in self._widths)

    def _fit_height(self, lines: list[str], recorder: RunRecorder, rows: int) -> list[str]:
        """The title, then as many stages as fit in ``rows`` lines, then how many are not shown.

        A block taller than the screen cannot be redrawn in place (the cursor stops
        at the screen's top): the running, failed and cancelled stages are kept first,
        in the graph's order, and the line ``... N more (...)`` counts the others.
        """
        if len(lines) <= rows:
            return lines
        states = list(recorder.stages.values())
        room = rows - 2
        if room < 0:
            return lines[:rows]
        first = sorted(range(len(states)), key=lambda i: (_SHOWN_FIRST.get(states[i].status, 3), i))
        shown = sorted(first[:room])
        hidden: dict[str, int] = {}
        for index in first[room:]:
            status = states[index].status
            hidden[status] = hidden.get(status, 0) + 1
        counts = ", ".join(f"{count} {status}" for status, count in hidden.items())
        more = f"  ... {len(states) - room} more ({counts})"
        return [lines[0], *(lines[index + 1] for index in shown), more]

    def event(self, recorder: RunRecorder, record: Mapping[str, Any]) -> None:
        """Show one event: redraw, unless the block was drawn under :attr:`MIN_INTERVAL` ago."""
        if self.drawn_at is None or recorder.elapsed() - self.drawn_at >= self.MIN_INTERVAL:
            self.redraw(recorder)

    async def tick(self, recorder: RunRecorder) -> None:
        """Redraw now and every :attr:`REFRESH` seconds (start to start), for the running
        stages' clocks; never returns."""
        async with aclosing(periodic(self.REFRESH)) as ticks:
            async for _ in ticks:
                self.redraw(recorder)

    def finish(self, recorder: RunRecorder, outcome: Mapping[str, Any]) -> None:
        """Show how the run ended."""
        self.redraw(recorder)
        # The block is final: what is written next goes below it, never over it.
        self.drawn = 0
        for name, output in outcome["final_outputs"].items():
            print(f"{name}: {_json_line(output['data'])}", file=self.out)
        print(_outcome_line(outcome), file=self.out, flush=True)


class JsonView:
    """Every event as a JSON line as it happens, then ``{"result": ...}`` as the last line."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def event(self, recorder: RunRecorder, record: Mapping[str, Any]) -> None:
        """Show one event."""
        print(_json_line(record), file=self.out, flush=True)

    async def tick(self, recorder: RunRecorder) -> None:
        """Refresh the view (see :meth:`View.tick`)."""
        await trio.lowlevel.checkpoint()

    def finish(self, recorder: RunRecorder, outcome: Mapping[str, Any]) -> None:
        """Show how the run ended."""
        result = {key: value for key, value in outcome.items() if key != "final_outputs"}
        print(_json_line({"result": result}), file=self.out, flush=True)


def _context(graph_name: str, options: RunOptions, recorder: RunRecorder) -> StageContext:
    ids: dict[str, Any] = {"pipeline_run_id": uuid.uuid4(), **options.ids}
    snapshot: ContextSnapshot[Any] = ContextSnapshot(
        run_id=RunIdentity(**ids),
        input_text=options.input_text,
        topology=options.topology if options.topology is not None else graph_name,
        execution_mode=options.execution_mode,
    )
    return StageContext(
        snapshot=snapshot,
        inputs=StageInputs(snapshot=snapshot),
        stage_name=graph_name,
        timer=PipelineTimer(),
        event_sink=recorder,
    )


@contextmanager
def _sigint_cancels(token: CancellationToken, interrupted: list[bool]) -> Iterator[None]:
    """Turn the first Ctrl-C into a cancelled token (the run's own graceful stop).

    The handler puts back the one it replaced (trio's) as it runs, so a second Ctrl-C
    is trio's KeyboardInterrupt: it stops a run whose stages or cleanup do not return
    (a blocking call in a stage never lets the graceful stop begin).

    Off the main thread (a trio run per worker thread) it does nothing: only the
    main thread may set a signal handler (``signal.signal`` raises ValueError
    elsewhere), and SIGINT is delivered to the main thread anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # installed from C: Python's own stands in for it
        previous = signal.default_int_handler
    trio_token = trio.lowlevel.current_trio_token()

    def on_sigint(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGINT, previous)
        interrupted.append(True)
        # Safe from a signal handler; runs in the trio thread at its next chance.
        trio_token.run_sync_soon(token.cancel, "interrupted (Ctrl-C)")

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def _tick(view: View, recorder: RunRecorder) -> None:
    try:
        await view.tick(recorder)
    except BrokenPipeError:
        recorder.lose_output()
    except OSError as exc:
        if recorder.output_error is None:
            recorder.output_error = exc


def _final_stages(graph: UnifiedStageGraph) -> list[str]:
    """The stages nothing depends on: their outputs are the run's answer."""
    needed = {dep for spec in graph.stage_specs for dep in spec.dependencies}
    return [spec.name for spec in graph.stage_specs if spec.name not in needed]


async def run_graph(
    graph: UnifiedStageGraph,
    options: RunOptions,
    view: View,
    *,
    title: str = "pipeline",
    events_file: IO[str] | None = None,
    handle_sigint: bool = True,
) -> int:
    """Run ``graph`` once, showing it through ``view``; the exit status. A checkpoint.

    With ``handle_sigint`` (acted on in the main thread only; elsewhere it is
    ignored), the first SIGINT cancels the run
    gracefully instead of raising KeyboardInterrupt; a second one raises it.

    Raises:
        BrokenPipeError: the view's reader went away (the run was cancelled then).
        OutputError: writing the view's output failed otherwise (a full disk); the
            run went on, showing nothing more (``exit_status`` is the run's status).
        EventsFileError: a write to ``events_file`` failed; the run went on without
            it and the view showed it to the end (``exit_status`` is the run's status).
    """
    token = CancellationToken()
    recorder = RunRecorder(
        [spec.name for spec in graph.stage_specs],
        view,
        events_file,
        on_output_gone=lambda: token.cancel("the output's reader went away"),
        max_records=RECENT_RECORDS,
    )
    ctx = _context(title, options, recorder)
    interrupted: list[bool] = []
    results: dict[str, StageOutput] = {}
    status, error, code = "completed", None, EXIT_OK
    with _sigint_cancels(token, interrupted) if handle_sigint else nullcontext():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_tick, view, recorder)
            deadline = trio.move_on_after(options.timeout) if options.timeout is not None else None
            with deadline if deadline is not None else nullcontext():
                try:
                    results = await graph.run(ctx, cancel_token=token)
                except UnifiedStageExecutionError as exc:
                    status, error, code = "failed", str(exc), EXIT_FAILED
                except UnifiedPipelineCancelled as exc:
                    results = dict(exc.results)
                    if interrupted:
                        status, error, code = "interrupted", exc.reason, EXIT_INTERRUPTED
                    else:
                        status, error, code = "cancelled", str(exc), EXIT_CANCELLED
                except KeyboardInterrupt:
                    # Raised in a stage (a second Ctrl-C in blocking code): the
                    # engine has ended the run; show it as interrupted.
                    status, error, code = "interrupted", "KeyboardInterrupt", EXIT_INTERRUPTED
                except SystemExit as exc:
                    # sys.exit() in a stage is that stage failing, not the command's
                    # exit (sys.exit(0) would look like a completed run).
                    status, error = "failed", f"a stage raised SystemExit: {error_text(exc)}"
                    code = EXIT_FAILED
            if deadline is not None and deadline.cancelled_caught:
                status = "timed out"
                error = f"the deadline of {options.timeout:g}s passed"
                code = EXIT_TIMEOUT
            nursery.cancel_scope.cancel(reason="the run is over")
    if recorder.output_gone:
        # The reader of the view went away (`| head`): the run was cancelled at
        # once; nothing more can be shown. The command exits 141.
        raise BrokenPipeError("the output's reader went away")
    outputs = {name: output_dict(output) for name, output in results.items()}
    outcome = {
        "status": status,
        "exit_status": code,
        "error": error,
        "duration_s": round(recorder.elapsed(), 6),
        "outputs": outputs,
        "final_outputs": {name: outputs[name] for name in _final_stages(graph) if name in outputs},
    }
    if recorder.output_error is None:
        try:
            view.finish(recorder, outcome)
        except BrokenPipeError:
            raise
        except OSError as exc:
            recorder.output_error = exc
    if recorder.output_error is not None:
        raise OutputError(code, recorder.events_error) from recorder.output_error
    if recorder.events_error is not None:
        raise EventsFileError(code) from recorder.events_error
    return code
