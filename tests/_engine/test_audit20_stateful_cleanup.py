"""Model-based tests of CleanupRegistry.run_all, bare and at the end of a graph run (audit 20).

Each drawn scenario registers callbacks whose behaviour is drawn too (register another,
unregister one, sleep, then return / raise / interrupt), runs ``run_all`` (possibly in an
already-cancelled scope, or as the shielded end of a ``UnifiedStageGraph`` run) on a
virtual clock, and checks the outcome against a plain model of the documented rules.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio._engine._cleanup import CleanupRegistry
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import UnifiedStageGraph
from tests.pipeline.graph_helpers import spec, stage_ctx
from tests.trio_setups import TaskLedger

EPS = 1e-9
SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Behaviour:
    """What one callback does: ``pre`` at its start, then sleeps ``sleep``, then ``end``."""

    pre: str  # "none" | "register" | "unregister"
    target: int  # for "unregister": the index of the callback to unregister
    child: Behaviour | None  # for "register"
    sleep: float
    end: str  # "return" | "raise" | "interrupt"


SLEEPS = st.sampled_from([0.0, 0.004, 0.01, 0.1, 0.3, 1.0, 4.0, math.inf])


def behaviours(depth: int = 1, interrupts: bool = True) -> st.SearchStrategy[Behaviour]:
    ends = ["return", "raise", "interrupt"] if interrupts else ["return", "raise"]
    pres = ["none", "unregister"] + (["register"] if depth > 0 else [])
    return st.builds(
        Behaviour,
        pre=st.sampled_from(pres),
        target=st.integers(0, 7),
        child=behaviours(depth - 1, interrupts) if depth > 0 else st.none(),
        sleep=SLEEPS,
        end=st.sampled_from(ends),
    )


class Boom(Exception):
    pass


@dataclass
class World:
    """The callbacks made so far, what happened to them, and the model stack."""

    register: Callable[[Callable[[], Awaitable[None]], str], None]
    unregister: Callable[[Callable[[], Awaitable[None]]], bool]
    callbacks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    behaviour: list[Behaviour] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    times: dict[str, tuple[float, float]] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    stack: list[str] = field(default_factory=list)  # model: pending names, LIFO
    late: set[str] = field(default_factory=set)
    running: bool = False

    def make(self, behaviour: Behaviour) -> None:
        """Make a callback for ``behaviour`` and register it (the model too)."""
        name = f"cb{len(self.callbacks)}"

        async def callback() -> None:
            self.started.append(name)
            start = trio.current_time()
            # The model pops it too (and the late ones above it, skipped for lack of time).
            while self.stack and self.stack[-1] != name:
                self.stack.pop()
            if self.stack:
                self.stack.pop()
            try:
                if behaviour.pre == "register":
                    assert behaviour.child is not None
                    self.make(behaviour.child)
                elif behaviour.pre == "unregister":
                    self.drop(behaviour.target)
                await trio.sleep(behaviour.sleep)
                self.finished.add(name)
                if behaviour.end in ("raise", "interrupt"):
                    raise self.errors[name]
            finally:
                self.times[name] = (start, trio.current_time())

        self.callbacks.append(callback)
        self.behaviour.append(behaviour)
        if behaviour.end == "raise":
            self.errors[name] = Boom(name)
        elif behaviour.end == "interrupt":
            self.errors[name] = KeyboardInterrupt(name)
        if self.running:
            self.late.add(name)
        self.stack.append(name)
        self.register(callback, name)

    def drop(self, index: int) -> None:
        """Unregister callback ``index`` (if made) and check the answer against the model."""
        if index >= len(self.callbacks):
            return
        name = f"cb{index}"
        expected = name in self.stack
        if expected:
            self.stack.remove(name)
        assert self.unregister(self.callbacks[index]) is expected


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelno, record.getMessage()))


def check(world: World, present: int, timeout: float, records: Records) -> list[str]:
    """Check what ran against the model; return the names skipped for lack of time."""
    share = max(timeout / present, 0.01) if present else 0.0
    # Replay the model: LIFO over the stack, each started callback's own registrations
    # and unregistrations applied as it starts.
    stack = list(world.stack_at_start)  # type: ignore[attr-defined]
    started = iter(world.started)
    skipped: list[str] = []
    replay: list[str] = []
    while stack:
        name = stack.pop()
        if name not in world.times:
            # Not started: only a late callback, once the time is spent.
            assert name in world.late, name
            skipped.append(name)
            continue
        assert next(started) == name
        replay.append(name)
        index = int(name[2:])
        behaviour = world.behaviour[index]
        if behaviour.pre == "register":
            stack.append(f"cb{index_of_child(world, name)}")
        elif behaviour.pre == "unregister" and f"cb{behaviour.target}" in stack:
            stack.remove(f"cb{behaviour.target}")
    assert next(started, None) is None  # none ran twice or out of the model
    assert replay == world.started
    for name in world.started:
        start, end = world.times[name]
        assert end - start <= share + EPS, (name, end - start, share)
    if world.started:
        first = world.times[world.started[0]][0]
        last = max(end for _, end in world.times.values())
        assert last - first <= max(timeout, 0.01 * present) + EPS
    for name in skipped:
        assert (logging.WARNING, f"Cleanup timed out before it ran: {name}") in records.messages
    for name in world.started:
        behaviour = world.behaviour[int(name[2:])]
        if name not in world.finished:
            assert (logging.WARNING, f"Cleanup timed out: {name}") in records.messages
        elif behaviour.end == "raise":
            assert (logging.ERROR, f"Cleanup failed: {name}") in records.messages
    return skipped


def index_of_child(world: World, name: str) -> int:
    return world.children[name]  # type: ignore[attr-defined,no-any-return]


def run_scenario(
    build: Callable[[World], Awaitable[None]],
    make_world: Callable[[], World],
) -> tuple[World, BaseException | None]:
    ledger = TaskLedger()
    records = Records()
    logger = logging.getLogger("stageflow_trio.cancellation")
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    world = make_world()
    world.records = records  # type: ignore[attr-defined]
    outcome: BaseException | None = None
    try:

        async def main() -> None:
            before = set(ledger.alive)
            try:
                await build(world)
            finally:
                assert set(ledger.alive) <= before | {trio.lowlevel.current_task()}

        trio.run(
            main,
            clock=trio.testing.MockClock(autojump_threshold=0),
            instruments=[ledger],
        )
    except BaseException as exc:
        outcome = exc
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    return world, outcome


def track_children(world: World) -> None:
    """Record which callback registered which (for the replay in check)."""
    world.children = {}  # type: ignore[attr-defined]
    make = world.make

    def make_tracked(behaviour: Behaviour) -> None:
        parent = world.started[-1] if world.running and world.started else None
        index = len(world.callbacks)
        make(behaviour)
        if parent is not None:
            world.children[parent] = index  # type: ignore[attr-defined]

    world.make = make_tracked  # type: ignore[method-assign]


TIMEOUTS = st.sampled_from([0.0, 0.005, 0.02, 0.5, 1.0, 2.5, 10.0, math.inf])


@SETTINGS
@given(
    originals=st.lists(behaviours(), max_size=6),
    drops=st.lists(st.integers(0, 7), max_size=3),
    timeout=TIMEOUTS,
    cancelled=st.booleans(),
)
def test_run_all_matches_the_model(
    originals: list[Behaviour], drops: list[int], timeout: float, cancelled: bool
) -> None:
    if timeout == math.inf:
        originals = [no_infinite_sleep(b) for b in originals]
    registry = CleanupRegistry()
    result: dict[str, object] = {}

    def make_world() -> World:
        world = World(
            register=lambda cb, name: registry.register(cb, name=name),
            unregister=registry.unregister,
        )
        track_children(world)
        return world

    async def build(world: World) -> None:
        for behaviour in originals:
            world.make(behaviour)
        for index in drops:
            world.drop(index)
        world.stack_at_start = list(world.stack)  # type: ignore[attr-defined]
        result["present"] = registry.pending_count
        assert registry.pending_count == len(world.stack)
        world.running = True
        start = trio.current_time()
        with trio.CancelScope() as scope:
            if cancelled:
                scope.cancel()
            try:
                result["report"] = await registry.run_all(timeout=timeout)
            finally:
                result["elapsed"] = trio.current_time() - start
                assert registry.pending_count == 0
        result["cancel_caught"] = scope.cancelled_caught

    world, outcome = run_scenario(build, make_world)
    present = result["present"]
    assert isinstance(present, int)
    skipped = check(world, present, timeout, world.records)  # type: ignore[attr-defined]
    elapsed = result["elapsed"]
    assert isinstance(elapsed, float)
    assert elapsed <= max(timeout, 0.01 * present) + EPS
    interrupts = [
        n
        for n in world.started
        if n in world.finished and world.behaviour[int(n[2:])].end == "interrupt"
    ]
    if interrupts:
        # The first interrupt, raised only after every other callback had its turn.
        assert outcome is world.errors[interrupts[0]]
        return
    assert outcome is None
    assert result["cancel_caught"] is cancelled  # the closing checkpoint, even with none
    if cancelled:
        return  # run_all raised Cancelled: no report to check
    report: tuple[list[str], list[tuple[str, BaseException]]] = result["report"]  # type: ignore[assignment]
    completed, failed = report
    expected_completed = [
        n
        for n in world.started
        if n in world.finished and world.behaviour[int(n[2:])].end == "return"
    ]
    assert completed == expected_completed
    failed_names = [name for name, _ in failed]
    assert sorted(failed_names + completed) == sorted(world.started + skipped)
    for name, exc in failed:
        if name in skipped:
            assert type(exc) is TimeoutError
            assert str(exc) == f"Cleanup timed out before it ran: {name}"
        elif name not in world.finished:
            assert type(exc) is TimeoutError
            assert str(exc) == f"Cleanup timed out: {name}"
        else:
            assert exc is world.errors[name]
    if timeout == math.inf:
        assert skipped == []


def no_infinite_sleep(behaviour: Behaviour) -> Behaviour:
    child = behaviour.child and no_infinite_sleep(behaviour.child)
    sleep = 7.0 if behaviour.sleep == math.inf else behaviour.sleep
    return Behaviour(behaviour.pre, behaviour.target, child, sleep, behaviour.end)


@SETTINGS
@given(
    originals=st.lists(behaviours(interrupts=False), max_size=5),
    timeout=st.sampled_from([0.0, 0.02, 0.5, 1.0, 3.0]),
    ending=st.sampled_from(["return", "fail", "cancel"]),
)
def test_a_graph_run_ends_with_the_model_cleanup(
    originals: list[Behaviour], timeout: float, ending: str
) -> None:
    def make_world() -> World:
        holder: dict[str, StageContext] = {}

        def register(cb: Callable[[], Awaitable[None]], name: str) -> None:
            holder["ctx"].register_cleanup(cb, name=name)

        def unregister(cb: Callable[[], Awaitable[None]]) -> bool:
            registry = holder["ctx"].cleanup_registry
            assert isinstance(registry, CleanupRegistry)
            return registry.unregister(cb)

        world = World(register=register, unregister=unregister)
        world.holder = holder  # type: ignore[attr-defined]
        track_children(world)
        return world

    async def build(world: World) -> None:
        async def stage(ctx: StageContext) -> StageOutput:
            world.holder["ctx"] = ctx  # type: ignore[attr-defined]
            for behaviour in originals:
                world.make(behaviour)
            world.stack_at_start = list(world.stack)  # type: ignore[attr-defined]
            world.present = len(world.stack)  # type: ignore[attr-defined]
            world.running = True
            await trio.sleep(1)
            if ending == "fail":
                raise Boom("stage")
            if ending == "cancel":
                await trio.sleep_forever()
            return StageOutput.ok()

        graph = UnifiedStageGraph([spec("s", stage)], cleanup_timeout=timeout)
        with trio.move_on_after(5) as scope:
            try:
                await graph.run(stage_ctx())
            except Exception as exc:
                world.failure = exc  # type: ignore[attr-defined]
        assert scope.cancelled_caught is (ending == "cancel")
        registry = world.holder["ctx"].cleanup_registry  # type: ignore[attr-defined]
        assert registry is not None
        assert registry.pending_count == 0

    world, outcome = run_scenario(build, make_world)
    assert outcome is None
    if ending == "fail":
        assert isinstance(world.failure, Exception)  # type: ignore[attr-defined]
    check(world, world.present, timeout, world.records)  # type: ignore[attr-defined]
    if world.started:
        # Cleanup starts when the run ends: at 1 s, or at the 5 s deadline.
        assert world.times[world.started[0]][0] == (5.0 if ending == "cancel" else 1.0)


def test_late_callbacks_do_not_eat_the_shares_of_callbacks_still_to_run() -> None:
    # Regression (audit 20): a callback registered during run_all was limited only by
    # the whole budget minus what had been spent, so it could use the shares of the
    # callbacks registered before run_all that had not run yet; those still got their
    # full share, and run_all took 1.49 s of a 1 s timeout.
    registry = CleanupRegistry()
    ends: list[tuple[str, float]] = []

    async def hang(label: str) -> None:
        try:
            await trio.sleep_forever()
        finally:
            ends.append((label, trio.current_time()))

    async def first() -> None:
        await hang("first")

    async def grandchild() -> None:
        await hang("grandchild")

    async def child() -> None:
        registry.register(grandchild)
        await hang("child")

    async def second() -> None:
        registry.register(child)

    async def main() -> tuple[float, list[tuple[str, Exception]]]:
        registry.register(first)
        registry.register(second)
        start = trio.current_time()
        _, failed = await registry.run_all(timeout=1.0)
        return trio.current_time() - start, failed

    elapsed, failed = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert elapsed <= 1.0
    # first still gets its whole share; the late ones share only what second left.
    assert ends[-1][0] == "first"
    assert [name for name, _ in failed] == ["child", "grandchild", "first"]
    assert str(failed[1][1]) == "Cleanup timed out before it ran: grandchild"
