"""Audit 17 mutation pass (the day's threads, CLI/examples output and garbage fixes).

Each test here kills a mutant of code changed in audit 17 that the other tests let
survive: a lock or check dropped from ``install_once``, ``CrossRunEvent`` waking a
waiter of this run through the run's queue, a ``RunFinishedError`` not suppressed,
the first output error overwritten by a later one, a colour switch read wrongly. The
docstring of each test names the behaviour it pins.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import threading
from collections.abc import Generator, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio import _globals
from stageflow_trio._cross_run import CrossRunEvent
from stageflow_trio._globals import install_once
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
from stageflow_trio.pipeline import Pipeline
from tests.cli.sources import SIMPLE, write

# --- _cross_run.py: CrossRunEvent ----------------------------------------------------


def _mock_run(fn: Any, *args: Any) -> Any:
    return trio.run(fn, *args, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_cross_run_event_is_set_only_once_set() -> None:
    """is_set() is False until set(), then True; a second set() changes nothing."""
    event = CrossRunEvent()
    assert not event.is_set()
    event.set()
    assert event.is_set()
    event.set()
    assert event.is_set()
    with trio.fail_after(1):
        await event.wait()  # set already: returns


async def test_cross_run_event_wakes_every_waiter_of_one_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Several tasks of one run wait on it: set() wakes each (one trio.Event for the run)."""
    event = CrossRunEvent()
    woken: list[int] = []

    async def waiter(index: int) -> None:
        await event.wait()
        woken.append(index)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for index in range(3):
                nursery.start_soon(waiter, index)
            await trio.testing.wait_all_tasks_blocked()
            event.set()
    assert sorted(woken) == [0, 1, 2]


async def test_a_waiter_of_this_run_is_runnable_as_set_returns() -> None:
    """Within one run set() is trio.Event.set(): the waiter is rescheduled at once,
    not later through the run's run_sync_soon queue (an extra trip through the
    scheduler, and an order unlike trio.Event's)."""
    event = CrossRunEvent()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(event.wait)
        await trio.testing.wait_all_tasks_blocked()
        assert trio.lowlevel.current_statistics().tasks_runnable == 0
        event.set()
        assert trio.lowlevel.current_statistics().tasks_runnable == 1


async def test_set_between_waits_look_and_its_registration_does_not_strand_the_waiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Another thread sets the flag after wait() found it clear, before wait() registers
    its run: the registration (under the lock) sees the flag and wait() returns."""

    class SetMeanwhile(CrossRunEvent):
        __slots__ = ()

        def _waiter(self, token: trio.lowlevel.TrioToken) -> trio.Event | None:
            self.set()  # "another thread", between wait()'s look and the lock
            return super()._waiter(token)

    with trio.fail_after(10):
        await SetMeanwhile().wait()


async def test_set_lets_go_of_the_runs_that_waited(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """set() hands the waiting runs their wake-up and forgets them: no token of a
    finished run (nor its event) is kept by an event that lives as long as its request."""
    event = CrossRunEvent()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(event.wait)
        await trio.testing.wait_all_tasks_blocked()
        assert len(event._waiters) == 1
        event.set()
    assert event._waiters == {}


def test_set_outside_any_run_after_the_waiting_run_finished() -> None:
    """A run waited, gave up (timed out) and ended; set() later, outside any run (no
    current token: RuntimeError), skips the finished run (RunFinishedError) quietly."""
    event = CrossRunEvent()

    async def give_up() -> bool:
        with trio.move_on_after(1):
            await event.wait()
        return event.is_set()

    assert _mock_run(give_up) is False
    event.set()  # neither RuntimeError (no run here) nor RunFinishedError (its run)
    assert event.is_set()


def test_set_from_another_run_after_the_waiting_run_finished() -> None:
    """The same, set() from another run: the finished run is skipped, the rest goes on."""
    event = CrossRunEvent()

    async def give_up() -> None:
        with trio.move_on_after(1):
            await event.wait()

    async def decide() -> bool:
        event.set()
        await event.wait()
        return event.is_set()

    _mock_run(give_up)
    assert _mock_run(decide) is True


# --- _globals.py: install_once -------------------------------------------------------


class _Namespace(dict[str, Any]):
    """A module's globals that note whether install_once held its lock at each access."""

    def __init__(self) -> None:
        super().__init__()
        self.locked: list[bool] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.locked.append(_globals._install_lock.locked())
        return super().get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.locked.append(_globals._install_lock.locked())
        super().__setitem__(key, value)


def test_install_once_looks_and_installs_under_its_lock() -> None:
    """The look (is one there?) and the install are one step under the process-wide
    lock: two threads that both found none cannot both install (each its own)."""
    namespace = _Namespace()
    first = object()
    assert install_once(namespace, "_thing", first) is first
    assert namespace["_thing"] is first
    assert namespace.locked == [True, True]
    assert not _globals._install_lock.locked()
    assert install_once(namespace, "_thing", object()) is first
    assert namespace.locked == [True, True, True]


def test_install_once_keeps_the_instance_already_installed() -> None:
    """A later candidate is dropped: the one installed first is returned and stays."""
    installed, late = object(), object()
    namespace: MutableMapping[str, Any] = {"_thing": installed}
    assert install_once(namespace, "_thing", late) is installed
    assert namespace == {"_thing": installed}
    namespace["_thing"] = None  # reset_globals' "none yet"
    assert install_once(namespace, "_thing", late) is late
    assert namespace == {"_thing": late}


def test_install_once_from_many_threads_installs_one() -> None:
    """Threads racing past the fast path all get the first candidate installed."""
    namespace: dict[str, Any] = {}
    start = threading.Barrier(8)
    got: list[object] = []
    guard = threading.Lock()

    def body() -> None:
        candidate = object()
        start.wait(30)
        result = install_once(namespace, "_thing", candidate)
        with guard:
            got.append(result)

    threads = [threading.Thread(target=body) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(got) == 8
    assert all(result is namespace["_thing"] for result in got)


# --- _serialization.py: the per-thread set of hooks being built ------------------------


def test_a_collection_hook_built_again_still_refuses_a_string() -> None:
    """Once a hook is built its type leaves the "being built" set: building it again
    (cache_result=False; a converter copy) gets this factory's hook again, not cattrs's
    own, which would iterate a string into a list of characters."""
    from stageflow_trio._serialization import _building, converter

    for _ in range(2):
        hook = converter.get_structure_hook(list[int], cache_result=False)
        with pytest.raises(TypeError, match="expected a list, got str"):
            hook("12", list[int])
        assert hook([1, 2], list[int]) == [1, 2]
    assert list[int] not in _building()


# --- pipeline.py: the run_stage cache's eviction ---------------------------------------


def test_evicting_from_a_cache_another_thread_emptied(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oldest entry is gone, and the cache empty, by the time this thread looks
    (StopIteration from next(iter(...))): nothing to do, no error."""
    from stageflow_trio.pipeline import pipeline as pipeline_module

    cache: dict[Any, Any] = {}
    monkeypatch.setattr(pipeline_module, "_ONE_STAGE_PIPELINES", cache)
    pipeline_module._evict_oldest_one_stage_pipeline()
    assert cache == {}


def test_evicting_from_a_cache_another_thread_changes_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cache changes size while this thread reads its oldest key (RuntimeError
    from the iterator): another thread is evicting too, so nothing more to do."""
    from stageflow_trio.pipeline import pipeline as pipeline_module

    class ChangingMeanwhile(dict[Any, Any]):
        def __iter__(self) -> Iterator[Any]:
            raise RuntimeError("dictionary changed size during iteration")

    cache = ChangingMeanwhile(a=1)
    monkeypatch.setattr(pipeline_module, "_ONE_STAGE_PIPELINES", cache)
    pipeline_module._evict_oldest_one_stage_pipeline()
    assert cache == {"a": 1}


# --- context/identity.py: _serialize reads the cache once ---------------------------------


def test_serialize_answers_with_the_dict_another_thread_cached() -> None:
    """The cache was filled (by another thread) since the caller looked: that very dict
    is the answer, not a second one replacing it."""
    import uuid

    from stageflow_trio.context.identity import RunIdentity, _serialize, id_texts

    identity = RunIdentity.from_dict(RunIdentity(pipeline_run_id=uuid.uuid4()).to_dict())
    filled = id_texts(identity)
    assert _serialize(identity) is filled
    assert id_texts(identity) is filled


# --- cli/main.py: the command's stdout, help and --debug ----------------------------------


class _Buffered(io.StringIO):
    """A block-buffered stdout: writes are kept, and ``fail`` is raised by the flush that
    would send them (the reader went away, or the disk is full, only now)."""

    def __init__(self, fail: OSError) -> None:
        super().__init__()
        self.fail = fail
        self.pending = False

    def write(self, text: str) -> int:
        self.pending = self.pending or bool(text)
        return super().write(text)

    def flush(self) -> None:
        if self.pending:
            raise self.fail


def test_the_commands_output_is_flushed_before_main_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() flushes the command's output itself: a full disk met only by that flush is
    the one-line error and status 2 (not an OSError traceback, nor status 0 and a
    failure at the interpreter's exit), and a reader gone by then is 141, quietly."""
    path = write(tmp_path, "simple.py", SIMPLE)
    monkeypatch.setattr(sys, "stdout", _Buffered(OSError(28, "No space left on device")))
    assert main(["graph", str(path)]) == 2
    assert capsys.readouterr().err == (
        "stageflow-trio graph: error: cannot write the output: No space left on device\n"
    )
    monkeypatch.setattr(sys, "stdout", _Buffered(BrokenPipeError(32, "Broken pipe")))
    assert main(["graph", str(path)]) == 141
    assert capsys.readouterr().err == ""


def test_debug_shows_the_traceback_of_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --debug a full disk is the traceback (OutputError, from the write's
    OSError), then the one line; without it, the one line only."""

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    path = write(tmp_path, "simple.py", SIMPLE)
    monkeypatch.setattr(sys, "stdout", Full())
    assert main(["graph", str(path), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "OutputError" in err
    assert err.endswith(
        "stageflow-trio graph: error: cannot write the output: No space left on device\n"
    )
    assert main(["graph", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "x.py"],
        ["graph", "x.py"],
        ["lint", "x.py"],
        ["timeline", "events.jsonl"],
        ["examples"],
        ["examples", "run", "quickstart"],
    ],
)
def test_debug_after_each_command(argv: list[str]) -> None:
    """--debug is taken after every command and subcommand, and before the command
    still (the subcommand's own --debug must not reset it to False)."""
    parser = _parser()
    assert parser.parse_args([*argv, "--debug"]).debug is True
    assert parser.parse_args(["--debug", *argv]).debug is True
    assert parser.parse_args(argv).debug is False


def test_the_help_names_the_default_run_id_and_the_examples() -> None:
    """``run --help`` says a fresh pipeline_run_id is made; ``examples run --help``
    lists the examples' names."""
    parser = _parser()
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    run_help = " ".join(commands.choices["run"].format_help().split())
    assert "the snapshot's pipeline_run_id (default: a fresh one)" in run_help
    assert "the snapshot's request_id" in run_help
    assert "request_id (default" not in run_help
    examples = commands.choices["examples"]
    actions = next(
        action for action in examples._actions if isinstance(action, argparse._SubParsersAction)
    )
    example_help = " ".join(actions.choices["run"].format_help().split())
    assert f"one of: {', '.join(list_examples())}" in example_help


def test_an_empty_no_color_leaves_the_colours_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_COLOR turns the colours off only when set and not empty (no-color.org)."""
    path = write(tmp_path, "simple.py", SIMPLE)
    monkeypatch.setenv("TERM", "xterm")
    for value, coloured in (("", True), ("1", False)):
        monkeypatch.setenv("NO_COLOR", value)
        screen = _Terminal()
        monkeypatch.setattr(sys, "stdout", screen)
        assert main(["run", str(path), "--input", "hi"]) == 0
        assert ("\x1b[32mcompleted" in screen.getvalue()) is coloured
        assert "\x1b[J" in screen.getvalue()


# --- cli/run.py: the view's output errors and the live view's throttle -------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_the_first_output_error_is_kept_and_the_view_not_told_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Once the view's output failed, later events are not shown (no error per event),
    and OutputError's cause is that first error, not the tick's later one."""
    errors: list[OSError] = []

    class FullView(PlainView):
        def event(self, recorder: RunRecorder, record: Mapping[str, Any]) -> None:
            errors.append(OSError(28, f"No space left on device ({len(errors)})"))
            raise errors[-1]

        async def tick(self, recorder: RunRecorder) -> None:
            await trio.sleep(0.5)  # after the first event's error
            errors.append(OSError(28, "No space left on device (tick)"))
            raise errors[-1]

    async def step(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok()

    graph = (
        Pipeline()
        .with_stage("a", step, StageKind.WORK)
        .with_stage("b", step, StageKind.WORK, dependencies=("a",))
        .build()
    )
    with pytest.raises(OutputError) as caught:
        await run_graph(graph, RunOptions(), FullView(io.StringIO()), handle_sigint=False)
    assert len(errors) == 2  # the first event's, the tick's
    assert caught.value.__cause__ is errors[0]


async def test_the_live_view_redraws_for_events_50_ms_apart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An event 50 ms of trio's clock after the last drawing is drawn (the interval is
    50 ms: a run is redrawn up to 20 times a second on events); one 49 ms after is not."""
    screen = _Terminal()
    view = LiveView(screen, "demo")
    recorder = RunRecorder(["a"], view)
    recorder.try_emit(type="stage.a.started", data=None)
    drawn = len(screen.getvalue())
    await trio.sleep(0.049)
    recorder.try_emit(type="x", data=None)
    assert len(screen.getvalue()) == drawn
    await trio.sleep(0.002)
    recorder.try_emit(type="x", data=None)
    assert len(screen.getvalue()) > drawn


def test_a_blank_target_is_named_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target of blanks (an unset shell variable in quotes, padded) is "empty" too."""
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "  "]) == 2
    assert capsys.readouterr().err == (
        "stageflow-trio graph: error: the target is empty:"
        " give path/file.py[:NAME] or module:NAME\n"
    )


# --- examples/__init__.py: the guarded stdout ---------------------------------------------


class _FullCounting(io.StringIO):
    """A stdout on a full disk (no descriptor to point at /dev/null): every write and
    flush fails; each attempt is noted."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[str] = []
        self.failures: list[OSError] = []

    def _fail(self, what: str) -> OSError:
        self.attempts.append(what)
        self.failures.append(OSError(28, "No space left on device"))
        return self.failures[-1]

    def write(self, text: str) -> int:
        raise self._fail("write")

    def flush(self) -> None:
        raise self._fail("flush")


def test_an_example_on_a_full_disk_writes_once_and_tells_the_first_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the first failed write the guard writes (and flushes) nothing more, even
    where stdout could not be pointed at /dev/null; OutputError's cause is that error."""
    full = _FullCounting()
    monkeypatch.setattr(sys, "stdout", full)
    with pytest.raises(OutputError) as caught:
        run_example("quickstart")
    assert full.attempts == ["write"]
    assert caught.value.__cause__ is full.failures[0]
    assert sys.stdout is full


def test_the_guard_leaves_a_stdout_the_block_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard puts the original stdout back only over its own: a block that set
    sys.stdout itself (and did not restore it) keeps its choice."""
    from stageflow_trio.examples import _stdout_guard

    original, chosen = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", original)
    with _stdout_guard():
        assert sys.stdout is not original
        print("guarded")
        sys.stdout = chosen
    assert sys.stdout is chosen
    assert original.getvalue() == "guarded\n"


class _Unwritable(io.StringIO):
    """A stdout on descriptor ``fd`` whose every write fails with ``error``."""

    def __init__(self, fd: int, error: OSError) -> None:
        super().__init__()
        self.fd = fd
        self.error = error

    def write(self, text: str) -> int:
        raise self.error

    def fileno(self) -> int:
        return self.fd


@pytest.mark.parametrize(
    ("error", "raised"),
    [(BrokenPipeError(32, "Broken pipe"), BrokenPipeError), (OSError(28, "full"), OutputError)],
)
def test_run_example_points_a_failed_stdout_at_devnull(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: OSError,
    raised: type[OSError],
) -> None:
    """run_example, called from code, tells its caller (who exits as it likes) with
    stdout's descriptor already on /dev/null: the interpreter's flush at exit cannot
    fail again ("Exception ignored ...", status 120)."""
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        monkeypatch.setattr(sys, "stdout", _Unwritable(fd, error))
        with pytest.raises(raised):
            run_example("quickstart")
        assert os.fstat(fd).st_rdev == os.stat(os.devnull).st_rdev
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "error", [BrokenPipeError(32, "Broken pipe"), OutputError(0)], ids=["pipe", "full"]
)
def test_an_example_run_by_run_example_tells_the_caller_not_exits(
    monkeypatch: pytest.MonkeyPatch, error: OSError
) -> None:
    """An example's ``_run_main`` inside run_example (stdout guarded already) hands a
    broken pipe or an output error raised by the run to run_example's caller instead
    of ending the process (sys.exit) from a library call."""
    from stageflow_trio.examples import _run_main, _stdout_guard

    async def fails() -> None:
        await trio.lowlevel.checkpoint()
        raise error

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    with pytest.raises(type(error)) as caught, _stdout_guard():
        _run_main(fails)
    assert caught.value is error


def _two_steps() -> Any:
    async def step(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok()

    return (
        Pipeline()
        .with_stage("a", step, StageKind.WORK)
        .with_stage("b", step, StageKind.WORK, dependencies=("a",))
        .build()
    )


class _ShownView(PlainView):
    """A plain view that notes the events it is told of and whether finish() ran."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.shown: list[str] = []
        self.finished = False

    def event(self, recorder: RunRecorder, record: Mapping[str, Any]) -> None:
        self.shown.append(record["event"])

    def finish(self, recorder: RunRecorder, outcome: Mapping[str, Any]) -> None:
        self.finished = True


async def test_a_tick_whose_output_fails_stops_the_view(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The view's tick fails (a full disk): no later event is shown, finish() is not
    called, and the run ends in OutputError (the run's status 0, the tick's error)."""
    failure = OSError(28, "No space left on device")

    class TickFails(_ShownView):
        async def tick(self, recorder: RunRecorder) -> None:
            await trio.sleep(0.5)  # "a" is running
            raise failure

    view = TickFails()
    with pytest.raises(OutputError) as caught:
        await run_graph(_two_steps(), RunOptions(), view, handle_sigint=False)
    assert caught.value.exit_status == 0
    assert caught.value.__cause__ is failure
    assert not view.finished
    assert not any(".b." in name or "completed" in name for name in view.shown), view.shown


async def test_finish_on_a_full_disk_is_an_output_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Only the final summary fails to be written: still OutputError (with the run's
    status), not a run that seems to have been shown."""
    failure = OSError(28, "No space left on device")

    class FinishFails(_ShownView):
        def finish(self, recorder: RunRecorder, outcome: Mapping[str, Any]) -> None:
            raise failure

    with pytest.raises(OutputError) as caught:
        await run_graph(_two_steps(), RunOptions(), FinishFails(), handle_sigint=False)
    assert caught.value.exit_status == 0
    assert caught.value.__cause__ is failure


async def test_finish_whose_reader_went_away_is_a_broken_pipe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The reader goes away while the summary is written: BrokenPipeError (the command
    ends quietly, 141), not OutputError (a "cannot write" line and status 2)."""
    failure = BrokenPipeError(32, "Broken pipe")

    class FinishGone(_ShownView):
        def finish(self, recorder: RunRecorder, outcome: Mapping[str, Any]) -> None:
            raise failure

    with pytest.raises(BrokenPipeError) as caught:
        await run_graph(_two_steps(), RunOptions(), FinishGone(), handle_sigint=False)
    assert caught.value is failure


async def test_an_output_error_is_told_before_an_events_file_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Both the view's output and the --events file failed: OutputError is raised (the
    output is what the command reports first), with the run's status."""

    class FullFile(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    class EventFails(_ShownView):
        def event(self, recorder: RunRecorder, record: Mapping[str, Any]) -> None:
            raise OSError(28, "No space left on device")

    with pytest.raises(OutputError) as caught:
        await run_graph(
            _two_steps(), RunOptions(), EventFails(), handle_sigint=False, events_file=FullFile()
        )
    assert caught.value.exit_status == 0


def test_an_examples_clock_is_the_runs_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_run_main(main, clock=...)`` runs ``main`` on that clock (the deadline,
    many_runs and tool_approval examples run on a MockClock: seconds of virtual time)."""
    from stageflow_trio.examples import _run_main

    clock = trio.testing.MockClock(autojump_threshold=0)
    seen: list[object] = []

    async def example() -> None:
        await trio.lowlevel.checkpoint()
        seen.append(trio.lowlevel.current_clock())

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    _run_main(example, clock=clock)
    assert seen == [clock]


# --- _engine/_scheduler.py: run_in_context.throw leaves no cycle --------------------------


class _Trap:
    def __await__(self) -> Generator[str, None, None]:
        yield "trap"


async def _awaits_a_trap() -> None:
    await _Trap()


def _throw_through_run_in_context() -> None:
    """What trio does to a task blocked in run_in_context when it throws in (an
    unrecognized yield's TypeError): the throw is delegated to run_in_context.throw."""
    import contextvars

    from stageflow_trio._engine._scheduler import run_in_context

    async def outer() -> None:
        await run_in_context(contextvars.copy_context(), _awaits_a_trap())

    coro = outer()
    assert coro.send(None) == "trap"
    try:
        coro.throw(LookupError("thrown in"))
    except LookupError:
        pass
    else:  # pragma: no cover - the throw is not caught on its way out
        raise AssertionError("the throw did not come out")


def test_a_throw_through_run_in_context_leaves_no_cyclic_garbage() -> None:
    """The exception a throw raises has run_in_context.throw's frame in its traceback:
    the frame lets go of it (and of typ, val, tb), so nothing waits for the collector."""
    import gc

    for _ in range(3):
        _throw_through_run_in_context()
    gc.collect()
    gc.disable()
    try:
        for _ in range(8):
            _throw_through_run_in_context()
        assert gc.collect() == 0
    finally:
        gc.enable()
