"""Runnable examples, shipped inside the package.

``python -m stageflow_trio.examples`` lists them and ``python -m stageflow_trio.examples
NAME`` runs one; :func:`list_examples` and :func:`run_example` do the same from code.
Each example module has an async ``main()`` that returns what it printed or computed.

Each way of running one (``python -m stageflow_trio.examples.NAME``, ``python -m
stageflow_trio.examples NAME``, ``stageflow-trio examples run NAME``) ends quietly with
status 141, as the command line does, when the reader of its output goes away
(``| head -3``).
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import runpy
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO, cast

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from trio.abc import Clock

__all__ = ["list_examples", "run_example"]

EXIT_BROKEN_PIPE = 141
"""The exit status when the reader of the output went away: 128 + SIGPIPE, as a shell reports it."""


def list_examples() -> list[str]:
    """The examples' names (their module names in this package), sorted."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_") and not info.ispkg
    )


def run_example(name: str) -> None:
    """Run example ``name`` as ``python -m stageflow_trio.examples NAME`` does (prints).

    Runs its own ``trio.run``, so it must not be called from inside trio.

    Raises:
        ValueError: ``name`` is not one of :func:`list_examples`.
    """
    names = list_examples()
    if name not in names:
        raise ValueError(f"run_example: unknown example {name!r}; choose one of {names}")
    spec = importlib.util.find_spec(f"{__name__}.{name}")
    assert spec is not None
    assert spec.origin is not None
    # From its file, as a fresh __main__: run_module would warn when the example's
    # module is already imported (as it is after `import stageflow_trio.examples.X`).
    with _stdout_guard():
        runpy.run_path(spec.origin, run_name="__main__")


class _GuardedStdout:
    """``sys.stdout`` while an example runs: a write that fails is noted, not raised.

    The first ``BrokenPipeError`` (the reader went away) sets :attr:`gone`, the first
    other ``OSError`` (a full disk) :attr:`error`; either points stdout at /dev/null
    (:func:`_silence_stdout`), and that write and every later one then succeed (into
    nothing). Without this an example that prints from an event sink logged "Failed to
    emit ..." for every later event, and ended with a traceback.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False
        self.error: OSError | None = None

    def write(self, text: str) -> int:
        if not self.gone and self.error is None:
            try:
                return self.stream.write(text)
            except OSError as exc:
                self._lose(exc)
        return len(text)

    def flush(self) -> None:
        if not self.gone and self.error is None:
            try:
                self.stream.flush()
            except OSError as exc:
                self._lose(exc)

    def _lose(self, exc: OSError) -> None:
        if isinstance(exc, BrokenPipeError):
            self.gone = True
        else:
            self.error = exc
        _silence_stdout(self.stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def _stdout_guard() -> Iterator[None]:
    """Run the block with :class:`_GuardedStdout` as ``sys.stdout``, flushed at its end.

    Raises:
        BrokenPipeError: at the end of the block, if the reader went away during it
            (stdout then points at /dev/null); inside a guard already, the outer one
            raises it.
        OutputError: likewise, if writing failed otherwise (a full disk);
            :class:`stageflow_trio.cli.run.OutputError`, ``__cause__`` the first error.
    """
    stream = sys.stdout
    if isinstance(stream, _GuardedStdout):
        yield
        return
    guard = _GuardedStdout(stream)
    installed = cast("TextIO", guard)
    sys.stdout = installed
    try:
        yield
        guard.flush()  # a block-buffered pipe may only fail here
    finally:
        if sys.stdout is installed:
            sys.stdout = stream
    if guard.gone:
        raise BrokenPipeError("the reader of stdout went away")
    if guard.error is not None:
        from stageflow_trio.cli.run import (
            EXIT_OK,
            OutputError,
        )  # not at import: cli.run loads the CLI

        raise OutputError(EXIT_OK) from guard.error


def _reader_gone() -> int:
    """The reader of stdout went away: point stdout at /dev/null; :data:`EXIT_BROKEN_PIPE`.

    What the command line and the examples runner return then, so that the interpreter's
    flush at exit cannot fail again: the process ends quietly with status 141.
    """
    _silence_stdout(sys.stdout)
    return EXIT_BROKEN_PIPE


def _output_failed(prog: str, exc: OSError) -> int:
    """Writing stdout failed (a full disk): say so in one line on stderr; the exit status.

    ``exc`` is a :class:`stageflow_trio.cli.run.OutputError`: the status is its
    ``exit_status``, or 2 if the work itself succeeded. Stdout then points at /dev/null,
    so that the interpreter's flush at exit cannot fail again.
    """
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "strerror", None) is None:
        cause = cause.__cause__
    reason = cause.strerror if isinstance(cause, OSError) else str(exc)
    print(f"{prog}: error: cannot write the output: {reason}", file=sys.stderr)
    _silence_stdout(sys.stdout)
    status: int = getattr(exc, "exit_status", 0)
    return status or 2


def _run_main(main: Callable[[], Awaitable[object]], *, clock: Clock | None = None) -> None:
    """``trio.run(main, clock=clock)``, for an example's ``if __name__ == "__main__":``.

    Run as a script (``python -m stageflow_trio.examples.NAME | head -3``), a reader that
    goes away ends the process quietly with status 141; under :func:`run_example`, its
    caller is told (``BrokenPipeError``). Unless the process configured logging, the
    library's log records are not printed (an example that fails a stage on purpose
    would otherwise print its ERROR record and traceback).
    """
    # Not at import: these load the CLI.
    from stageflow_trio.cli._library_logs import library_records
    from stageflow_trio.cli.run import OutputError

    nested = isinstance(sys.stdout, _GuardedStdout)
    try:
        with _stdout_guard(), library_records(debug=False):
            trio.run(main, clock=clock)
    except BrokenPipeError:
        if nested:
            raise
        sys.exit(_reader_gone())
    except OutputError as exc:
        if nested:
            raise
        name = getattr(main, "__module__", "__main__")
        if name == "__main__":
            name = f"{__name__}.{os.path.splitext(os.path.basename(sys.argv[0]))[0]}"
        sys.exit(_output_failed(f"python -m {name}", exc))


def _silence_stdout(stream: TextIO | None = None) -> None:
    """Point ``stream``'s (stdout's) descriptor at /dev/null, so later writes cannot fail.

    For a reader that went away (``| head``): the examples runner and the command
    line then exit 141 quietly instead of with a second BrokenPipeError.
    """
    try:
        fd = (sys.stdout if stream is None else stream).fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
