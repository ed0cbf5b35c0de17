"""Cancel a run at every checkpoint and check what must hold after each.

:func:`explore_cancellation` runs ``run_fn`` once to number its checkpoints (the
schedule points of the tasks the run starts, counted by a trio Instrument), then
reruns it once per checkpoint, cancelling it right after that one, and once per
virtual-time deadline of interest. After every run it checks the invariants:
each is a named function of the :class:`RunRecord` that returns ``None`` when it
holds and a sentence saying what broke otherwise (:func:`invariant` makes one).

The runs share one trio run (the test's), so they are cheap on a virtual clock
(``MockClock(autojump_threshold=0)``, pytest-trio's ``autojump_clock``): stage
sleeps, timeouts and backoffs pass instantly and every rerun sees the same
times. trio's scheduler picks the order of a batch of runnable tasks at random;
the explorer seeds that choice before every run, so a run is reproducible from
its seed and checkpoint index.
"""

from __future__ import annotations

import contextvars
import inspect
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import attrs
import trio
import trio.testing
from trio_util import periodic, run_and_cancelling

from stageflow_trio._args import check_callable, check_int, check_number, check_seconds, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._groups import unwrapping_groups
from stageflow_trio.events.sink import BackpressureAwareEventSink
from stageflow_trio.lowlevel import checkpoint_budget
from stageflow_trio.testing._builders import RecordingEventSink
from stageflow_trio.testing.orphans import TaskWatcher
from stageflow_trio.utils import FrozenDict

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

__all__ = [
    "CANCELLED",
    "DEFAULT_HANG_TIMEOUT",
    "DEFAULT_INVARIANTS",
    "RETURNED",
    "ExplorationReport",
    "Invariant",
    "RunRecord",
    "cleanups_ran_once",
    "current_run",
    "explore_cancellation",
    "interrupted_stages_end_cancelled",
    "invariant",
    "no_orphans",
    "outcome_is_documented",
    "queued_events_accounted",
    "stages_terminated",
    "tracked_cleanup",
]

RETURNED = "returned"
"""The outcome of a run whose ``run_fn`` returned."""
CANCELLED = "cancelled"
"""The outcome of a run that ended with the explorer's ``trio.Cancelled``."""

DEFAULT_HANG_TIMEOUT = 3600.0
"""How long (trio clock seconds) :func:`explore_cancellation` lets a run go on by default."""

_TERMINAL = ("completed", "failed", "cancelled", "skipped")

_current: contextvars.ContextVar[RunRecord | None] = contextvars.ContextVar(
    "stageflow_trio_exploration_run", default=None
)


class _TaskNotingSink(RecordingEventSink):
    """A RecordingEventSink that also notes which task emitted each event.

    The engines emit ``stage.X.started`` from the task that runs stage X, so this
    tells which stage a task was running when the explorer cancelled the run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[trio.lowlevel.Task | None] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record the event and its task. A checkpoint; a call cancelled there records nothing."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self.try_emit(type=type, data=data)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record the event and its task."""
        super().try_emit(type=type, data=data)
        try:
            self.tasks.append(trio.lowlevel.current_task())
        except RuntimeError:  # emitted outside trio
            self.tasks.append(None)

    def clear(self) -> None:
        """Forget every recorded event."""
        super().clear()
        self.tasks.clear()


@attrs.define(eq=False)
class _WatchedQueue:
    sink: BackpressureAwareEventSink
    downstream: RecordingEventSink
    emitted: int
    undelivered: int
    delivered: int


@attrs.define(eq=False)
class RunRecord:
    """What one run of an exploration did; invariants read it.

    Attributes:
        label: ``"the uncancelled run"``, ``"checkpoint 3"`` or ``"deadline +0.5"``.
        checkpoint: The index of the checkpoint the run was cancelled after
            (``None`` for the uncancelled run; for a deadline run, the last
            checkpoint passed before the deadline, -1 if none).
        deadline: For a deadline run, the deadline's offset from the run's start.
        seed: The scheduler seed of the run.
        sink: A recording event sink, new for each run: pass it to the contexts
            ``run_fn`` builds (``current_run().sink``) so the event invariants see
            what the run emitted.
        outcome: :data:`RETURNED`, :data:`CANCELLED` or the class name of the
            exception ``run_fn`` raised.
        error: That exception, if any.
        result: What ``run_fn`` returned, if it did.
        interrupted: Names of the tasks that received the explorer's
            ``trio.Cancelled``, in the order they received it: a task blocked
            when the run was cancelled receives it at once, a runnable one at its
            next unshielded checkpoint.
        interrupted_stages: The stages those tasks were running when they
            received it (each engine emits ``stage.X.started`` from the task that
            runs X).
        interrupted_events: For each of those stages, how many events ``sink``
            held when its task received ``trio.Cancelled``.
        events_at_cancel: How many events ``sink`` held when the run was cancelled.
        checkpoints: How many checkpoints the run passed.
        orphans: Names of tasks the run started that were alive when it ended.
        cleanups: For each name given to :func:`tracked_cleanup`, how many times
            it was registered and how many times it ran.
        baseline: The uncancelled run's record (``None`` on that run itself).
        times: When the run passed each checkpoint: seconds on the trio clock since it started.
    """

    label: str
    checkpoint: int | None
    deadline: float | None
    seed: int
    sink: RecordingEventSink = attrs.field(factory=_TaskNotingSink)
    outcome: str = ""
    error: Exception | None = None
    result: Any = None
    interrupted: list[str] = attrs.field(factory=list)
    interrupted_stages: list[str] = attrs.field(factory=list)
    interrupted_events: dict[str, int] = attrs.field(factory=dict)
    events_at_cancel: int | None = None
    checkpoints: int = 0
    orphans: list[str] = attrs.field(factory=list)
    cleanups: dict[str, list[int]] = attrs.field(factory=dict)
    baseline: RunRecord | None = None
    times: list[float] = attrs.field(factory=list)
    # The aliases are attrs' own (no underscore), spelled out for pyright, which keeps it.
    _queues: list[_WatchedQueue] = attrs.field(factory=list, alias="queues")
    _hang: str | None = attrs.field(default=None, alias="hang")

    @property
    def cancelled(self) -> bool:
        """Whether the explorer cancelled this run."""
        return self.events_at_cancel is not None

    def stages_running_at_cancel(self) -> list[str]:
        """Stages with a ``stage.X.started`` event and no terminal event when the run was cancelled."""
        if self.events_at_cancel is None:
            return []
        return _unfinished(self.sink.events[: self.events_at_cancel])

    def watch_queue(self, sink: BackpressureAwareEventSink, downstream: RecordingEventSink) -> None:
        """Check, after the run, that events queued in ``sink`` were delivered or dropped.

        ``downstream`` is the sink ``sink`` delivers to. Counting starts now: the
        :func:`queued_events_accounted` invariant then requires every event
        ``sink`` accepted from here on to be in ``downstream`` or counted in
        ``sink.metrics.undelivered``, and the queue to be empty.
        """
        metrics = sink.metrics
        self._queues.append(
            _WatchedQueue(
                sink, downstream, metrics.emitted, metrics.undelivered, len(downstream.events)
            )
        )


def current_run() -> RunRecord:
    """The record of the exploration run in progress (from ``run_fn`` or its tasks).

    Raises:
        RuntimeError: no exploration run is in progress.
    """
    record = _current.get()
    if record is None:
        raise RuntimeError("current_run() was called outside an explore_cancellation run")
    return record


def tracked_cleanup(
    callback: Callable[[], Awaitable[Any]], *, name: str
) -> Callable[[], Awaitable[Any]]:
    """Wrap a cleanup callback so that the exploration counts its registration and runs.

    Call it where the callback is registered (``graph.register_cleanup(
    tracked_cleanup(release, name="conn"), name="conn")``): the
    :func:`cleanups_ran_once` invariant then requires each registration to run
    exactly once. Outside an exploration run the wrapper only calls ``callback``.
    """
    check_callable("tracked_cleanup", "callback", callback)
    if not isinstance(name, str):
        raise TypeError(f"tracked_cleanup: name must be a str; got {type(name).__name__}")
    record = _current.get()
    if record is not None:
        record.cleanups.setdefault(name, [0, 0])[0] += 1

    async def cleanup() -> Any:
        if record is not None:
            record.cleanups[name][1] += 1
        called = callback()
        if not inspect.isawaitable(called):
            raise TypeError(
                "tracked_cleanup: callback must return an awaitable (be an async function);"
                f" {_name(callback)}() returned {type_of(called)}"
            )
        return await called

    cleanup.__name__ = getattr(callback, "__name__", "cleanup")
    return cleanup


@frozen_compat
@attrs.frozen
class Invariant:
    """A named check of a :class:`RunRecord`: ``check`` returns ``None`` or what broke."""

    name: str
    check: Callable[[RunRecord], str | None]


def invariant(name: str) -> Callable[[Callable[[RunRecord], str | None]], Invariant]:
    """Decorator: turn ``def check(run: RunRecord) -> str | None`` into an :class:`Invariant`."""
    if not isinstance(name, str) or not name:  # type: ignore[redundant-expr]
        raise TypeError(f"invariant: name must be a non-empty str; got {name!r}")

    def make(check: Callable[[RunRecord], str | None]) -> Invariant:
        check_callable("invariant", "check", check)
        return Invariant(name, check)

    return make


@invariant("outcome is documented")
def outcome_is_documented(run: RunRecord) -> str | None:
    """A cancelled run ends in ``trio.Cancelled``, or as the uncancelled run ended.

    It may end as the uncancelled run did (returning, or raising the same
    exception class: an error beats a concurrent cancellation in trio) unless a
    task received ``trio.Cancelled``; then returning means something swallowed it.
    """
    baseline = run.baseline
    if baseline is None or not run.cancelled or run.outcome == CANCELLED:
        return None
    if run.outcome == baseline.outcome and (run.outcome != RETURNED or not run.interrupted):
        return None
    if run.outcome == RETURNED:
        tasks = ", ".join(repr(name) for name in run.interrupted)
        return (
            f"task(s) {tasks} received trio.Cancelled but the run returned normally:"
            " something swallowed the cancellation (documented: trio.Cancelled propagates)"
        )
    return (
        f"the run raised {run.outcome} ({run.error}); documented: trio.Cancelled"
        f" propagates, or the run ends as the uncancelled one did ({baseline.outcome})"
    )


@invariant("an interrupted stage ends cancelled")
def interrupted_stages_end_cancelled(run: RunRecord) -> str | None:
    """A stage whose task received ``trio.Cancelled`` reports ``stage.X.cancelled``.

    Reporting ``completed`` means the stage swallowed the cancellation (a later
    checkpoint of the engine usually re-raises it, so the run's outcome alone
    would not show it); ``failed`` means it replaced it with an error. Only
    events after the task received it count: a runnable stage may finish before
    its next checkpoint, and then it never saw the cancellation.
    """
    if run.events_at_cancel is None:
        return None
    for stage in run.interrupted_stages:
        start = run.interrupted_events.get(stage, run.events_at_cancel)
        for event_type, _ in run.sink.events[start:]:
            name, status = _stage_event(event_type)
            if name != stage or status not in _TERMINAL:
                continue
            if status == "completed":
                return (
                    f"stage {stage!r} received trio.Cancelled when the run was cancelled"
                    f" and then reported stage.{stage}.completed: it swallowed the cancellation"
                )
            if status == "failed":
                return (
                    f"stage {stage!r} received trio.Cancelled when the run was cancelled"
                    f" and then reported stage.{stage}.failed: it replaced the cancellation"
                    " with an error"
                )
            break
    return None


@invariant("cleanup ran exactly once")
def cleanups_ran_once(run: RunRecord) -> str | None:
    """Every registration made through :func:`tracked_cleanup` ran exactly once."""
    wrong = [
        f"{name!r} registered {registered} time(s) ran {ran} time(s)"
        for name, (registered, ran) in run.cleanups.items()
        if registered != ran
    ]
    return "cleanup " + "; ".join(wrong) if wrong else None


@invariant("no orphan tasks")
def no_orphans(run: RunRecord) -> str | None:
    """No task the run started is alive once ``run_fn`` has returned or raised."""
    if not run.orphans:
        return None
    names = ", ".join(repr(name) for name in run.orphans)
    return f"task(s) {names} outlived the run"


@invariant("every started stage has a terminal event")
def stages_terminated(run: RunRecord) -> str | None:
    """Every ``stage.X.started`` event in ``run.sink`` is followed by a terminal one.

    Terminal: ``stage.X.completed``, ``.failed``, ``.cancelled`` or ``.skipped``.
    """
    unfinished = _unfinished(run.sink.events)
    if not unfinished:
        return None
    names = ", ".join(repr(name) for name in unfinished)
    return f"stage(s) {names} emitted stage.*.started and no terminal event"


@invariant("queued events delivered or counted as dropped")
def queued_events_accounted(run: RunRecord) -> str | None:
    """Every event a watched queue accepted was delivered or counted as undelivered."""
    for queue in run._queues:
        metrics = queue.sink.metrics
        accepted = metrics.emitted - queue.emitted
        delivered = len(queue.downstream.events) - queue.delivered
        undelivered = metrics.undelivered - queue.undelivered
        pending = queue.sink.queue_size
        if accepted != delivered + undelivered or pending:
            return (
                f"the queue accepted {accepted} event(s), delivered {delivered}, counted"
                f" {undelivered} as undelivered and still holds {pending}: {accepted - delivered - undelivered} lost"
            )
    return None


DEFAULT_INVARIANTS: tuple[Invariant, ...] = (
    outcome_is_documented,
    interrupted_stages_end_cancelled,
    cleanups_ran_once,
    no_orphans,
    stages_terminated,
    queued_events_accounted,
)
"""What :func:`explore_cancellation` checks when not told otherwise."""


def _note_stages(record: RunRecord, received: Sequence[tuple[trio.lowlevel.Task, int]]) -> None:
    # ``received``: each interrupted task and how many events the sink held when
    # it received trio.Cancelled; its stage is the one it had started by then.
    noted: list[trio.lowlevel.Task | None] = getattr(record.sink, "tasks", [])
    for task, count in received:
        running: dict[str, trio.lowlevel.Task | None] = {}
        for (event_type, _), emitter in zip(record.sink.events[:count], noted, strict=False):
            stage, status = _stage_event(event_type)
            if status == "started":
                running[stage] = emitter
            elif status in _TERMINAL:
                running.pop(stage, None)
        for stage, emitter in running.items():
            if emitter is task and stage not in record.interrupted_events:
                record.interrupted_stages.append(stage)
                record.interrupted_events[stage] = count


def _stage_event(event_type: str) -> tuple[str, str]:
    if not event_type.startswith("stage."):
        return "", ""
    stage, _, status = event_type[len("stage.") :].rpartition(".")
    return stage, status


def _unfinished(events: Sequence[tuple[str, Any]]) -> list[str]:
    running: dict[str, int] = {}
    for event_type, _ in events:
        stage, status = _stage_event(event_type)
        if status == "started":
            running[stage] = running.get(stage, 0) + 1
        elif status in _TERMINAL and running.get(stage):
            running[stage] -= 1
    return [stage for stage, count in running.items() if count]


@frozen_compat
@attrs.frozen
class ExplorationReport:
    """What :func:`explore_cancellation` returns when every invariant held.

    Attributes:
        checkpoints: How many checkpoints the uncancelled run passed.
        explored: The checkpoint indices the explorer cancelled a run after.
        deadlines: The deadlines (offsets from the run's start) it tried.
        outcomes: How many runs ended each way, the uncancelled one included
            (read-only).
        seed: The scheduler seed every run used.
    """

    checkpoints: int
    explored: tuple[int, ...]
    deadlines: tuple[float, ...]
    outcomes: Mapping[str, int]
    seed: int

    @property
    def runs(self) -> int:
        """How many times ``run_fn`` was called."""
        return 1 + len(self.explored) + len(self.deadlines)


_STAND_IN = random.Random()

# Every run starts at a whole second in [2**20, 2**21) of virtual time: there every
# float has the same spacing (2**-32 s), so a run's times relative to its start,
# and with them the order of timers that are equal on paper (6 x 0.02 s against
# 4 x 0.03 s), come out the same in every run. Starting at other times, rounding
# differs from run to run and long runs of such timers stop retracing each other.
_ALIGNED_FROM = float(2**20)
_ALIGNED_UNTIL = float(2**21)


def _align_clock() -> None:
    clock = trio.lowlevel.current_clock()
    if not isinstance(clock, trio.testing.MockClock):
        return
    now = clock.current_time()
    target = max(float(math.ceil(now)), _ALIGNED_FROM)
    if target < _ALIGNED_UNTIL:
        clock.jump(target - now)


def _seed_scheduler(seed: int) -> None:
    # trio picks the order of each batch of runnable tasks with this private
    # Random (hypothesis seeds it the same way, through register_random).
    # Without it (a future trio), seeding a stand-in changes nothing.
    getattr(trio._core._run, "_r", _STAND_IN).seed(seed)


async def _one_run(
    run_fn: Callable[[], Awaitable[Any]],
    record: RunRecord,
    watcher: TaskWatcher,
    cancel_at_step: int | None,
    cancel_at_time: float | None,
    hang_timeout: float = math.inf,
) -> None:
    """One run of ``run_fn``, watched by ``watcher`` (an installed instrument), into ``record``."""
    watcher.reset(trio.lowlevel.current_task())
    watcher.cancel_at_step = cancel_at_step
    watcher.on_cancel = lambda: setattr(record, "events_at_cancel", len(record.sink.events))
    received: list[tuple[trio.lowlevel.Task, int]] = []
    watcher.on_interrupt = lambda task: received.append((task, len(record.sink.events)))
    _align_clock()
    token = _current.set(record)
    try:
        # The hang watchdog is the explorer's task, outside the run's scope, and
        # blocked before the run starts: it never shares a batch with the run's
        # tasks, so the schedule (and the seed's effect) is the same as without it.
        try:
            async with trio.open_nursery() as guard:
                if hang_timeout != math.inf:
                    await guard.start(_watch_for_hang, watcher, record, hang_timeout)
                _seed_scheduler(record.seed)
                try:
                    scope = await _run_in_scope(run_fn, record, watcher, cancel_at_time)
                finally:
                    guard.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # Only the run can raise here (the watchdog just ends): not our nursery's group.
            if len(group.exceptions) != 1:
                raise
            error = group.exceptions[0]
            raise error from error.__cause__
        if scope.cancelled_caught:
            record.outcome = CANCELLED
    finally:
        _current.reset(token)
    record.checkpoints = watcher.steps
    record.interrupted = [task.name for task in watcher.interrupted]
    _note_stages(record, received)
    record.orphans = watcher.orphans()
    record.times = watcher.times
    if watcher.cancelled_at is not None:
        record.checkpoint = watcher.cancelled_at


async def _run_in_scope(
    run_fn: Callable[[], Awaitable[Any]],
    record: RunRecord,
    watcher: TaskWatcher,
    cancel_at_time: float | None,
) -> trio.CancelScope:
    # Every budgeted call a schedule point: the library's own schedule points
    # then depend on the run alone, not on how much real time has passed, and
    # the explorer can cancel at each of them.
    with checkpoint_budget(calls=1), trio.CancelScope() as scope:
        watcher.scope = scope
        if cancel_at_time is None:
            await _call(run_fn, record, watcher)
        else:
            # A task of the explorer's (spawned before the watcher is active, so
            # not counted) cancels at the deadline, as an expiring deadline would.
            deadline = trio.current_time() + cancel_at_time
            where = f"deadline +{cancel_at_time}"
            # Unwrapped: what escapes the run (a SystemExit, a KeyboardInterrupt) reaches
            # the caller bare, as from a run cancelled at a checkpoint, not in the group
            # the deadline task's nursery would put it in.
            with unwrapping_groups():
                async with run_and_cancelling(_cancel_at, watcher, deadline, where):
                    await _call(run_fn, record, watcher)
    return scope


async def _watch_for_hang(
    watcher: TaskWatcher,
    record: RunRecord,
    limit: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """End a run still going ``limit`` seconds after it started, or after it was cancelled.

    On a virtual clock a run blocked for good (an event nobody sets, a shielded
    wait that never ends) leaves the clock nothing to jump to but this task's
    deadline, so the hang is reported in virtual time instead of hanging the test.
    """
    due = trio.current_time() + limit
    task_status.started()
    while True:
        await trio.sleep_until(due)
        origin = watcher.cancelled_time if watcher.cancelled_time is not None else watcher.start
        due = max(due, origin + limit)
        if trio.current_time() >= due:
            break
    alive = [watcher.root, *watcher.alive]
    since = "it started" if watcher.cancelled_time is None else "it was cancelled"
    names = [task.name for task in alive]
    record._hang = f"the run had not ended {limit:g} s after {since}; tasks still running: {names}"
    scope = watcher.scope
    if scope is None:  # pragma: no cover - the watchdog starts after the scope is set
        return
    scope.cancel("explore_cancellation: hang")
    # A task blocked inside a shielded scope of the run cannot be cancelled: lift
    # those shields (trio's private cancel-status chain tells which scopes lie
    # between the task and the run's scope) so that the run ends; again every
    # ``limit`` seconds, for shields entered since, until the guard cancels this task.
    async with aclosing(periodic(limit)) as passes:
        async for _ in passes:
            shielded: list[str] = []
            for task in [watcher.root, *watcher.alive]:
                if _unshield(task, scope) and task.name not in shielded:
                    shielded.append(task.name)
            if shielded:
                record._hang += (
                    f"; blocked inside a shielded CancelScope: {shielded} (a shielded wait"
                    " that never ends; the explorer lifted the shield to end the run)"
                )


def _unshield(task: trio.lowlevel.Task, run_scope: trio.CancelScope) -> bool:
    inner: list[trio.CancelScope] = []
    status = getattr(task, "_cancel_status", None)
    while status is not None:
        scope = getattr(status, "_scope", None)
        if scope is run_scope:
            lifted = [each for each in inner if each.shield]
            for each in lifted:
                each.shield = False
            return bool(lifted)
        if isinstance(scope, trio.CancelScope):
            inner.append(scope)
        status = getattr(status, "_parent", None)
    return False  # not inside the run's scope (a task in an outer nursery): left alone


async def _call(
    run_fn: Callable[[], Awaitable[Any]], record: RunRecord, watcher: TaskWatcher
) -> None:
    watcher.start = trio.current_time()
    watcher.active = True
    misused = False
    try:
        called = run_fn()
        # On the uncancelled run, a result that cannot be awaited is a misuse,
        # said at the call; on a later one, the TypeError of awaiting it is an outcome.
        misused = record.baseline is None and not inspect.isawaitable(called)
        if not misused:
            record.result = await called
            record.outcome = RETURNED
    except Exception as exc:  # noqa: BLE001 - the outcome is what is checked
        record.outcome = type(exc).__name__
        record.error = exc
    finally:
        watcher.active = False
    if misused:
        raise TypeError(
            "explore_cancellation: run_fn must return an awaitable (be an async function);"
            f" {_name(run_fn)}() returned {type_of(called)}"
        )


def _name(run_fn: Callable[..., Any]) -> str:
    return getattr(run_fn, "__qualname__", repr(run_fn))


def _check_run_fn(run_fn: object) -> None:
    check_callable("explore_cancellation", "run_fn", run_fn)
    assert callable(run_fn)
    try:
        signature = inspect.signature(run_fn)
    except (TypeError, ValueError):  # some builtins have none: found out at the call
        return
    try:
        signature.bind()
    except TypeError:
        raise TypeError(
            "explore_cancellation: run_fn must be callable with no arguments;"
            f" got {_name(run_fn)}{signature}"
        ) from None


async def _cancel_at(watcher: TaskWatcher, deadline: float, where: str) -> None:
    await trio.sleep_until(deadline)
    watcher.cancel(where)


def _between(times: Sequence[float]) -> tuple[float, ...]:
    # Halfway between two moments at which the run's tasks ran: every task is
    # blocked then (asleep or waiting), which is what a deadline interrupts.
    moments = sorted({0.0, *times})
    return tuple(round((a + b) / 2, 9) for a, b in itertools.pairwise(moments))


def _spread(count: int, limit: int | None) -> list[int]:
    if limit is None or count <= limit:
        return list(range(count))
    if limit == 1:
        return [0]
    # Evenly spaced, first and last included, so a cap still reaches both ends.
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def _check_reached(run_fn: Callable[..., Any], record: RunRecord, total: int) -> None:
    # A run that ended before its checkpoint was never cancelled: without this,
    # every invariant would pass on it and the checkpoint would go unexplored.
    if record.cancelled:
        return
    name = _name(run_fn)
    raise AssertionError(
        f"explore_cancellation({name}): the run to cancel at checkpoint {record.checkpoint} ended"
        f" after {record.checkpoints} checkpoints; the uncancelled run passed {total}: run_fn must"
        " take the same path every time (run it on a virtual clock, and keep wall-clock time,"
        " randomness and state left by an earlier run out of its choices)"
    )


def _check(
    run_fn: Callable[..., Any],
    record: RunRecord,
    invariants: Sequence[Invariant],
    total: int,
) -> None:
    if record._hang is not None:
        _fail(run_fn, record, "the run ends", record._hang, total)
    for inv in invariants:
        try:
            broken = inv.check(record)
        except Exception as exc:
            exc.add_note(
                f"explore_cancellation({_name(run_fn)}): raised by invariant {inv.name!r}"
                f" checking {_where(record, total)}"
            )
            raise
        if broken is None:
            continue
        if not isinstance(broken, str):
            raise TypeError(
                f"explore_cancellation: invariant {inv.name!r} must return None (holds) or a"
                f" str (what broke); got {type_of(broken)}"
            )
        _fail(run_fn, record, inv.name, broken, total)


def _where(record: RunRecord, total: int) -> str:
    if record.deadline is not None:
        passed = 0 if record.checkpoint is None else record.checkpoint + 1
        return f"{record.label} (after {passed} of {total} checkpoints)"
    if record.checkpoint is not None:
        return f"checkpoint {record.checkpoint} of {total}"
    return record.label


def _fail(
    run_fn: Callable[..., Any], record: RunRecord, name: str, broken: str, total: int
) -> None:
    where = _where(record, total)
    if record.deadline is not None:
        again = f"at=[], deadlines=[{record.deadline}]"
    elif record.checkpoint is not None:
        again = f"at=[{record.checkpoint}], deadlines=()"
    else:
        again = "at=[], deadlines=()"
    stages = record.stages_running_at_cancel()
    running = f"; stages running at the cancel: {stages}" if stages else ""
    raise AssertionError(
        f"explore_cancellation({_name(run_fn)}): invariant {name!r} broke at {where}:"
        f" {broken}{running}. Rerun just this one:"
        f" explore_cancellation(run_fn, seed={record.seed}, {again})"
    ) from record.error


def _items(param: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"explore_cancellation: {param} must be an iterable; got {type_of(value)}")
    return tuple(value)


async def explore_cancellation(
    run_fn: Callable[[], Awaitable[Any]],
    *,
    invariants: Iterable[Invariant] = DEFAULT_INVARIANTS,
    deadlines: Iterable[float] | None = None,
    seed: int = 0,
    at: Iterable[int] | None = None,
    max_checkpoints: int | None = None,
    max_deadlines: int | None = None,
    hang_timeout: float = DEFAULT_HANG_TIMEOUT,
) -> ExplorationReport:
    """Cancel ``run_fn`` at each of its checkpoints in turn and check ``invariants``.

    ``run_fn`` is a zero-argument async function performing one complete run; it
    is called once uncancelled, to number the checkpoints, then once per explored
    checkpoint and deadline. Inside it (and in the tasks it starts),
    :func:`current_run` is the run's :class:`RunRecord`: pass ``current_run().sink``
    to the run's contexts and wrap cleanups with :func:`tracked_cleanup`.

    Call it from a trio task; on a virtual clock (``autojump_clock``) the runs'
    sleeps pass instantly. On a ``MockClock`` the explorer jumps the clock forward
    before each run, to the next whole second and at least to 2**20 s (about 12
    days): there float times round the same way in every run, so every run retraces
    the uncancelled one checkpoint for checkpoint. Deadlines the caller set around
    the exploration see that jump. Every run is under ``checkpoint_budget(calls=1)``, so
    the library's budgeted calls (between stages, ``OutputBag.write``,
    ``ChunkQueue.put``/``get``) are all schedule points, reached the same way in
    every run. A checkpoint is a schedule point of a task the run
    started (the caller's task included, while in ``run_fn``); the explorer
    cancels a :class:`trio.CancelScope` around ``run_fn`` right after it.

    Args:
        run_fn: Performs one run; called ``1 + explored`` times.
        invariants: Checked after every run (:data:`DEFAULT_INVARIANTS`).
        deadlines: Offsets from the run's start (trio clock seconds) at which to
            cancel a run too. Default: halfway between every two successive
            moments at which the uncancelled run's tasks ran (so every task is
            blocked at the deadline: a stage asleep, a queue waiting); ``()`` for
            none.
        seed: Seeds trio's scheduling before every run (reproduction).
        at: Explore only these checkpoint indices (default: all).
        max_checkpoints: Explore at most this many checkpoints, evenly spread
            over the run, first and last included (to bound a test's time).
        max_deadlines: The same for the deadlines.
        hang_timeout: Trio clock seconds a run may take, from its start or, once
            cancelled, from the cancel (default one hour; ``math.inf`` for no
            limit). A run still going then is a failure: the explorer cancels
            it, lifting any shield of the run's own scopes so that it ends, and
            reports the tasks still running. On a virtual clock a run blocked for
            good so ends in virtual time instead of hanging the test.

    Returns:
        An :class:`ExplorationReport` when every invariant held on every run.

    Raises:
        AssertionError: an invariant broke, or a run hung (see ``hang_timeout``);
            the message names the invariant, the run (checkpoint index or
            deadline), the stages running when it was cancelled, and the
            ``seed=``/``at=`` arguments that rerun just it. An exception raised
            by an invariant's check propagates with a note naming the invariant
            and the run.
        TypeError, ValueError: a bad argument (named): among them a ``run_fn``
            that needs arguments, or whose first (uncancelled) call returns
            something that cannot be awaited.
    """
    _check_run_fn(run_fn)
    checks = _items("invariants", invariants)
    for inv in checks:
        if not isinstance(inv, Invariant):
            raise TypeError(
                f"explore_cancellation: invariants must hold Invariant objects; got {type(inv).__name__}"
            )
    check_int("explore_cancellation", "seed", seed)
    if max_checkpoints is not None:
        check_int("explore_cancellation", "max_checkpoints", max_checkpoints, minimum=0)
    if max_deadlines is not None:
        check_int("explore_cancellation", "max_deadlines", max_deadlines, minimum=0)
    if check_seconds("explore_cancellation", "hang_timeout", hang_timeout) == 0:
        raise ValueError("explore_cancellation: hang_timeout must be > 0; got 0")

    requested = (
        None
        if deadlines is None
        else tuple(
            float(check_number("explore_cancellation", "deadlines", value, minimum=0))
            for value in _items("deadlines", deadlines)
        )
    )
    wanted = (
        None
        if at is None
        else [
            check_int("explore_cancellation", "at", index, minimum=0) for index in _items("at", at)
        ]
    )
    await trio.lowlevel.checkpoint()

    # One instrument for the whole exploration: installing one costs more than a run.
    watcher = TaskWatcher(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(watcher)
    try:
        baseline = RunRecord("the uncancelled run", None, None, seed)
        await _one_run(run_fn, baseline, watcher, None, None, hang_timeout)
        _check(run_fn, baseline, checks, baseline.checkpoints)
        total = baseline.checkpoints
        outcomes: Counter[str] = Counter([baseline.outcome])
        if wanted is None:
            indices = _spread(total, max_checkpoints)
        else:
            indices = wanted
            for index in indices:
                if index >= total:
                    raise ValueError(
                        f"explore_cancellation: at holds {index}; the run has {total} checkpoints"
                    )
        offsets = _between(baseline.times) if requested is None else requested
        offsets = tuple(offsets[i] for i in _spread(len(offsets), max_deadlines))

        for index in indices:
            record = RunRecord(f"checkpoint {index}", index, None, seed, baseline=baseline)
            await _one_run(run_fn, record, watcher, index, None, hang_timeout)
            _check(run_fn, record, (), total)
            _check_reached(run_fn, record, total)
            outcomes[record.outcome] += 1
            _check(run_fn, record, checks, total)
        for offset in offsets:
            record = RunRecord(f"deadline +{offset:g}", None, offset, seed, baseline=baseline)
            await _one_run(run_fn, record, watcher, None, offset, hang_timeout)
            outcomes[record.outcome] += 1
            _check(run_fn, record, checks, total)
    finally:
        trio.lowlevel.remove_instrument(watcher)
    return ExplorationReport(
        checkpoints=total,
        explored=tuple(indices),
        deadlines=offsets,
        outcomes=FrozenDict(outcomes),
        seed=seed,
    )
