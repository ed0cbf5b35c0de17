"""The ``stageflow-trio`` command: ``run``, ``graph``, ``lint``, ``timeline``, ``examples``.

Every problem with the input (no such file, an attribute that is not a pipeline, a
pipeline file that raises on import, an unknown format) is one line on stderr and a
non-zero exit status; ``--debug`` adds the traceback. Exit statuses: 0 success; 1 a
stage failed, or ``lint`` found errors (as the reference's linter); 2 bad input; 3 a
stage cancelled the run; 124 ``--timeout`` passed; 130 interrupted (Ctrl-C); 141 the
reader of the output went away (``| head``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
import traceback
import uuid
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

import trio

from stageflow_trio.cli._library_logs import library_records
from stageflow_trio.cli.graph import FORMATS, render_graph
from stageflow_trio.cli.lint import DependencyLintResult, IssueSeverity, lint_file
from stageflow_trio.cli.run import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EventsFileError,
    JsonView,
    LiveView,
    OutputError,
    PlainView,
    RunOptions,
    View,
    run_graph,
)
from stageflow_trio.cli.targets import TargetError, build_target, load_target
from stageflow_trio.cli.timeline import read_events, render_timeline
from stageflow_trio.examples import (
    EXIT_BROKEN_PIPE,
    _output_failed,
    _reader_gone,
    list_examples,
    run_example,
)
from stageflow_trio.pipeline import Pipeline

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from _typeshed import SupportsWrite

__all__ = ["EXIT_BAD_INPUT", "EXIT_BROKEN_PIPE", "PROG", "main"]

PROG = "stageflow-trio"
EXIT_BAD_INPUT = 2
_IDS = ("pipeline_run_id", "request_id", "session_id", "user_id", "org_id", "interaction_id")


class _BadInput(Exception):
    """A one-line message for the user; ``__cause__`` is what ``--debug`` shows."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (``PROG CMD: error: ...``), not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # argparse's own passes over an OSError: `--help > /dev/full` then exited 0.
        if message:
            (sys.stderr if file is None else file).write(message)


class _Output:
    """A command's stdout: a write error other than a broken pipe (a full disk) becomes
    :class:`~stageflow_trio.cli.run.OutputError`, told apart from the commands' own
    OSErrors; a broken pipe stays a ``BrokenPipeError``."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(0) from exc

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(0) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


_DEBUG_HELP = "show tracebacks of errors, and the library's log records"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Run, draw, lint and trace stageflow_trio pipelines.")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run a pipeline once, with a live view")
    run.add_argument("target", help="path/file.py[:NAME] or module:NAME")
    run.add_argument("--input", dest="input_text", help="the snapshot's input_text")
    for field in _IDS:
        default = " (default: a fresh one)" if field == "pipeline_run_id" else ""
        run.add_argument(
            f"--{field.replace('_', '-')}",
            dest=field,
            metavar="UUID",
            help=f"the snapshot's {field}{default}",
        )
    run.add_argument("--topology", help="the snapshot's topology (default: the pipeline's name)")
    run.add_argument("--execution-mode", help="the snapshot's execution mode")
    run.add_argument("--timeout", type=float, metavar="S", help="cancel the run after S seconds")
    shown = run.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="write events and result as JSON lines")
    shown.add_argument(
        "--plain", action="store_true", help="one line per event, even on a terminal"
    )
    run.add_argument("--events", metavar="FILE", help="also write every event to FILE (JSON lines)")

    graph = commands.add_parser("graph", help="draw a pipeline's DAG")
    graph.add_argument("target", help="path/file.py[:NAME] or module:NAME")
    graph.add_argument(
        "--format", choices=FORMATS, default="mermaid", help="the drawing (default: mermaid)"
    )

    lint = commands.add_parser("lint", help="check a pipeline file's dependencies")
    lint.add_argument("file", help="Python file defining the pipeline(s)")
    lint.add_argument("--verbose", "-v", action="store_true", help="include info-level issues")
    lint.add_argument("--json", action="store_true", help="output JSON")
    lint.add_argument("--strict", action="store_true", help="treat warnings as errors")

    timeline = commands.add_parser("timeline", help="render a run's events as an HTML timeline")
    timeline.add_argument("events", help="a JSON-lines file from run --events or run --json")
    timeline.add_argument("-o", "--output", help="the HTML file (default: EVENTS with .html)")

    examples = commands.add_parser("examples", help="list the bundled examples, or run one")
    actions = examples.add_subparsers(dest="action", parser_class=_Parser)
    actions.add_parser("list", help="list them, one a line (the default)")
    example_run = actions.add_parser("run", help="run one")
    example_run.add_argument("name", help=f"one of: {', '.join(list_examples())}")
    for command in (run, graph, lint, timeline, examples, example_run):
        # Also after the command (`run x.py --debug`), where a newcomer puts it.
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
    return parser


def _run_options(args: argparse.Namespace) -> RunOptions:
    ids = {}
    for field in _IDS:
        value = getattr(args, field)
        if value is not None:
            try:
                ids[field] = uuid.UUID(value)
            except ValueError:
                option = "--" + field.replace("_", "-")
                raise _BadInput(f"{option}: not a UUID: {value!r}") from None
    if args.timeout is not None and not args.timeout > 0:
        raise _BadInput(f"--timeout: must be a positive number of seconds; got {args.timeout:g}")
    return RunOptions(
        input_text=args.input_text,
        ids=ids,
        topology=args.topology,
        execution_mode=args.execution_mode,
        timeout=args.timeout,
    )


def _title(target: object, fallback: str) -> str:
    return target.name if isinstance(target, Pipeline) else fallback


def _command_run(args: argparse.Namespace, out: IO[str]) -> int:
    options = _run_options(args)
    target = load_target(args.target)
    title = _title(target, args.target)
    graph = build_target(target, args.target)
    view: View
    if args.json:
        view = JsonView(out)
    elif out.isatty() and not args.plain and os.environ.get("TERM") != "dumb":
        # NO_COLOR (https://no-color.org): set and not empty, the statuses are not coloured.
        view = LiveView(out, title, colour=not os.environ.get("NO_COLOR"))
    else:
        view = PlainView(out)
    events_file = None
    if args.events is not None:
        try:
            events_file = open(args.events, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise _BadInput(f"--events: cannot write {args.events}: {exc.strerror}") from exc
    lost: OSError | None = None
    output_error: OutputError | None = None
    code = EXIT_OK
    try:
        showing = view.showing_prints() if isinstance(view, LiveView) else nullcontext()
        with _python_sigint(), showing:
            code = trio.run(
                partial(run_graph, graph, options, view, title=title, events_file=events_file)
            )
    except EventsFileError as exc:
        code = exc.exit_status
        lost = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    except OutputError as exc:
        # The output failed (said by main), and maybe the events file too (said here).
        output_error = exc
        lost = exc.events_error
    except BaseExceptionGroup as group:
        # A second Ctrl-C (trio's KeyboardInterrupt) met in a task of the run's
        # nursery arrives grouped: it is still an interrupt (status 130).
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from group
        raise
    finally:
        if events_file is not None:
            try:
                events_file.close()  # flushes: a full disk may only show here
            except OSError as exc:
                lost = lost or exc
    if lost is not None:
        # The run went on without the file; say so as for a path that cannot be
        # opened, keeping a failed run's own status.
        print(
            f"{PROG} run: error: --events: cannot write {args.events}: {lost.strerror or lost}",
            file=sys.stderr,
        )
        if args.debug:
            traceback.print_exception(lost, file=sys.stderr)
        if output_error is None:
            return EXIT_BAD_INPUT if code == EXIT_OK else code
    if output_error is not None:
        raise output_error
    return code


@contextmanager
def _python_sigint() -> Iterator[None]:
    """SIGINT handled by Python (KeyboardInterrupt) while the run goes on.

    A process started with SIGINT ignored (``cmd &`` in a script) would keep trio from
    installing its KeyboardInterrupt handler, which a second Ctrl-C during the run
    falls back to (see :func:`stageflow_trio.cli.run.run_graph`); the run's first
    Ctrl-C is honoured either way.
    """
    previous = signal.getsignal(signal.SIGINT)
    if callable(previous) or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def _command_graph(args: argparse.Namespace, out: IO[str]) -> int:
    target = load_target(args.target)
    # Checked as `run` checks it: a pipeline that does not build (no stages, a
    # missing dependency, a cycle) is bad input here too, not a drawing.
    build_target(target, args.target)
    print(render_graph(target, args.format, title=_title(target, args.target)), file=out)
    return 0


def _lint_json(
    result: DependencyLintResult, verbose: bool, contracts: Sequence[Mapping[str, str | None]]
) -> str:
    return json.dumps(
        {
            "valid": result.valid,
            "stage_count": result.stage_count,
            "dependency_count": result.dependency_count,
            "issues": [
                {
                    "stage_name": issue.stage_name,
                    "message": issue.message,
                    "severity": issue.severity.value,
                    "accessed_stage": issue.accessed_stage,
                    "suggestion": issue.suggestion,
                    "line_number": issue.line_number,
                }
                for issue in result.issues
                if verbose or issue.severity is not IssueSeverity.INFO
            ],
            "contract_errors": contracts,
        },
        indent=2,
    )


def _command_lint(args: argparse.Namespace, out: IO[str]) -> int:
    # The reference's statuses and messages: 1 for a missing or failing file.
    try:
        result, contracts = lint_file(args.file)
    except FileNotFoundError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        print(f"Error importing file: {exc}", file=sys.stderr)
        if args.debug:
            traceback.print_exception(exc, file=sys.stderr)
        return 1
    if args.strict and result.warnings:
        result.valid = False
    if args.json:
        print(_lint_json(result, args.verbose, [c.to_dict() for c in contracts]), file=out)
    else:
        if not args.verbose:
            result = DependencyLintResult(
                valid=result.valid,
                issues=[i for i in result.issues if i.severity is not IssueSeverity.INFO],
                stage_count=result.stage_count,
                dependency_count=result.dependency_count,
            )
        print(result, file=out)
        if contracts:
            print("\nContract errors (from build()):", file=out)
            for contract in contracts:
                print(f"  {contract}".replace("\n", "\n  "), file=out)
    return 0 if result.valid else 1


def _command_timeline(args: argparse.Namespace, out: IO[str]) -> int:
    source = Path(args.events)
    try:
        records = read_events(source)
    except OSError as exc:
        raise _BadInput(f"cannot read {args.events}: {exc.strerror}") from exc
    except ValueError as exc:
        raise _BadInput(str(exc)) from exc
    if not records:
        raise _BadInput(f"{args.events} holds no events (write some with run --events FILE)")
    target = Path(args.output) if args.output is not None else source.with_suffix(".html")
    if _same_file(source, target):
        # `timeline run.jsonl -o run.jsonl`, or `timeline run.html`: the page
        # would replace the events it is drawn from.
        raise _BadInput(f"the page would overwrite its events file {args.events}: give -o FILE")
    try:
        # A lone surrogate (a stage named "\ud800", a file name that is not UTF-8) as
        # a character reference, which a browser shows as U+FFFD: it stopped the write.
        target.write_text(
            render_timeline(records, title=source.name),
            encoding="utf-8",
            errors="xmlcharrefreplace",
        )
    except OSError as exc:
        raise _BadInput(f"cannot write {target}: {exc.strerror}") from exc
    print(f"wrote {target}", file=out)
    return 0


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False


def _summary(name: str) -> str:
    doc = importlib.import_module(f"stageflow_trio.examples.{name}").__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _command_examples(args: argparse.Namespace, out: IO[str]) -> int:
    names = list_examples()
    if args.action == "run":
        if args.name not in names:
            raise _BadInput(f"no example named {args.name!r}; choose one of {', '.join(names)}")
        run_example(args.name)
        return 0
    width = max(len(name) for name in names)
    for name in names:
        print(f"{name:<{width}}  {_summary(name)}", file=out)
    return 0


_COMMANDS = {
    "run": _command_run,
    "graph": _command_graph,
    "lint": _command_lint,
    "timeline": _command_timeline,
    "examples": _command_examples,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); the exit status.

    Usage errors exit through argparse (SystemExit with status 2).
    """
    try:
        try:
            args = _parser().parse_args(argv)
        finally:  # --help (SystemExit 0) is printed by now
            sys.stdout.flush()
    except BrokenPipeError:  # `stageflow-trio --help | head -1`
        raise SystemExit(_reader_gone()) from None
    except OSError as exc:  # `stageflow-trio --help > /dev/full`
        raise SystemExit(_output_failed(PROG, exc)) from None
    _escape_unencodable(sys.stdout)
    out = _Output(sys.stdout)
    try:
        with library_records(args.debug):
            code = _COMMANDS[args.command](args, cast("IO[str]", out))
        # Here, not at the interpreter's exit: a block-buffered pipe whose reader went
        # away, or a full disk, fails only now, and at exit that is "Exception ignored"
        # and status 120.
        out.flush()
    except OutputError as exc:
        # `stageflow-trio graph X > /dev/full`: one line, status 2 (or the run's own).
        if args.debug:
            traceback.print_exception(exc, file=sys.stderr)
        return _output_failed(f"{PROG} {args.command}", exc)
    except (_BadInput, TargetError, ValueError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        if args.debug:
            traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`stageflow-trio graph X | head -1`): stop quietly.
        return _reader_gone()
    return code


def _escape_unencodable(stream: IO[str]) -> None:
    """Write what ``stream``'s encoding lacks (a stage name in ASCII) as backslash escapes.

    Without this, a pipeline's non-ASCII name or output on a terminal or pipe whose
    encoding cannot hold it (``PYTHONIOENCODING=ascii``, a Windows code page) ended
    the command with ``UnicodeEncodeError``, after the run. Python's own choice
    under a C or POSIX locale (``C.UTF-8`` too), ``surrogateescape``, writes only
    the surrogates U+DC80-U+DCFF (as raw bytes): a lone ``"\\ud800"`` in a stage's
    output failed the same way, so that stream is escaped too.
    """
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None and getattr(stream, "errors", None) in (
        "strict",
        "surrogateescape",
    ):
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):  # a stream already written to by a decoder, closed
            return
