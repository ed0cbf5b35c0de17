"""Audit 18: stageflow_trio inside the trio set-ups real applications use.

Guest mode (``trio.lowlevel.start_guest_run`` hosted by an asyncio loop), trio
Instruments watching the tasks the library starts, KeyboardInterrupt delivered
mid-run (also with ``restrict_keyboard_interrupt_to_checkpoints=True``), context
variables across stages and the tasks the library starts on a caller's behalf,
pytest-trio's fixtures and clocks, and the library's calls inside a caller's own
nurseries and cancel scopes.
"""

from __future__ import annotations

import contextvars
import signal
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import BackpressureAwareEventSink
from stageflow_trio.helpers.mocks import MockLLMProvider
from stageflow_trio.helpers.streaming import ChunkQueue
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.cancellation import StructuredTaskGroup
from stageflow_trio.pipeline.interceptors import get_default_interceptors
from stageflow_trio.pipeline.subpipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.stages import PipelineContext
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context, reset_globals
from tests.trio_setups import (
    HOST_CANCELLED,
    CancelAtStep,
    SigintAtStep,
    mock_clock,
    run_guest,
    run_under_sigint,
)

RUN_ID = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
CORRELATION = uuid.UUID("00000000-0000-4000-8000-0000000000c1")


# --------------------------------------------------------------------------- helpers


class ListSink:
    """A downstream whose ``emit`` never checkpoints: a delivery cannot be cut, so
    what reaches it does not depend on where an outer cancel lands (a
    RecordingEventSink's delivery in progress at an outer cancel is cut and counted
    in ``metrics.undelivered``, as docs/events.md says)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


class Scenario:
    """A realistic run: default interceptors, a backpressure sink with its worker, an
    LLM stream, a subpipeline, a task group over a ChunkQueue, cleanups.

    ``hold`` makes the last stage wait forever (for cancellation tests).
    """

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.log: list[str] = []
        self.cleanups: list[str] = []
        self.registered: list[str] = []
        self.downstream = ListSink()
        self.spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
        self.sink: BackpressureAwareEventSink | None = None
        self.on_hold: Callable[[], object] | None = None

    def cleanup(self, name: str) -> Callable[[], Awaitable[None]]:
        self.registered.append(name)

        async def run() -> None:
            self.cleanups.append(name)

        return run

    async def ask(self, ctx: StageContext) -> StageOutput:
        ctx.register_cleanup(self.cleanup("ask"), name="ask")
        provider = MockLLMProvider(responses=["trio runs as a guest"], latency_ms=50)
        chunks = [chunk async for chunk in provider.stream("hello", chunk_size=5)]
        return StageOutput.ok(text="".join(chunks), chunks=len(chunks))

    async def child(self, ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(0.1)
        return {"child_topology": ctx.topology}

    async def spawn(self, ctx: StageContext) -> StageOutput:
        ctx.register_cleanup(self.cleanup("spawn"), name="spawn")
        parent = ctx.as_pipeline_context()
        result = await self.spawner.spawn("child", parent, CORRELATION, "spawn", self.child)
        return StageOutput.ok(success=result.success, child=dict(result.data or {}))

    async def stream(self, ctx: StageContext) -> StageOutput:
        ctx.register_cleanup(self.cleanup("stream"), name="stream")
        queue: ChunkQueue[int] = ChunkQueue(max_size=2)
        got: list[int] = []

        async def produce() -> None:
            for i in range(6):
                await queue.put(i)
                await trio.sleep(0.01)
            await queue.close()

        async def consume() -> None:
            async for item in queue:
                got.append(item)

        async with StructuredTaskGroup() as tg:
            tg.create_task(produce)
            tg.create_task(consume)
        return StageOutput.ok(got=got)

    async def join(self, ctx: StageContext) -> StageOutput:
        ctx.register_cleanup(self.cleanup("join"), name="join")
        if self.hold:
            self.log.append("join waiting")
            if self.on_hold is not None:
                self.on_hold()
            await trio.sleep_forever()
        text = ctx.inputs.get_from("ask", "text")
        return StageOutput.ok(summary=f"{text} / {ctx.inputs.get_from('stream', 'got')}")

    def graph(self) -> Any:
        return (
            Pipeline(name="audit18")
            .with_stage("ask", self.ask, StageKind.TRANSFORM)
            .with_stage("spawn", self.spawn, StageKind.WORK, dependencies=("ask",))
            .with_stage("stream", self.stream, StageKind.WORK, dependencies=("ask",))
            .with_stage(
                "join", self.join, StageKind.TRANSFORM, dependencies=("ask", "spawn", "stream")
            )
            .build(interceptors=get_default_interceptors())
        )

    async def run(self) -> dict[str, Any]:
        async with BackpressureAwareEventSink(self.downstream, max_queue_size=1000) as sink:
            self.sink = sink
            ctx = create_test_stage_context(event_sink=sink, pipeline_run_id=RUN_ID)
            results = await self.graph().run(ctx)
        self.log.append("done")
        return {name: dict(out.data) for name, out in sorted(results.items())}

    def summary(self) -> dict[str, Any]:
        sink = self.sink
        return {
            # Stages that become ready together start in trio's (random) batch order.
            "events": sorted(self.downstream.types()),
            "last": self.downstream.types()[-2:],
            "cleanups": sorted(self.cleanups),
            "log": self.log,
            "metrics": None if sink is None else (sink.metrics.emitted, sink.metrics.dropped),
        }


# --------------------------------------------------------------------------- 1. guest mode


def test_guest_mode_realistic_run_equals_trio_run() -> None:
    reset_globals()
    plain = Scenario()
    expected = trio.run(plain.run, clock=mock_clock())
    reset_globals()
    guest = Scenario()
    got = run_guest(guest.run, clock=mock_clock()).unwrap()
    assert got == expected
    assert guest.summary() == plain.summary()
    assert expected["join"]["summary"] == "trio runs as a guest / [0, 1, 2, 3, 4, 5]"
    assert expected["spawn"]["child"] == {"child_topology": "test"}
    assert plain.summary()["last"] == ["stage.join.completed", "pipeline_completed"]


def test_guest_mode_cancelled_from_the_host_ends_as_a_cancelled_trio_run() -> None:
    reset_globals()
    plain = Scenario(hold=True)

    async def plain_main() -> str:
        held = trio.Event()
        plain.on_hold = held.set
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_when_held() -> None:
                    await held.wait()
                    scope.cancel()

                nursery.start_soon(cancel_when_held)
                await plain.run()
        assert scope.cancelled_caught
        return HOST_CANCELLED

    assert trio.run(plain_main, clock=mock_clock()) == HOST_CANCELLED
    reset_globals()
    guest = Scenario(hold=True)

    def cancel_when_held(cancel: Callable[[], None]) -> None:
        # The host's cancel, called the moment the stage holds: a host that polled
        # for it raced the MockClock, which jumped to the stage's 30 s timeout as
        # soon as every guest task was blocked (a CI run saw stage.join.failed).
        guest.on_hold = cancel

    got = run_guest(guest.run, clock=mock_clock(), give_cancel=cancel_when_held)
    assert got.unwrap() == HOST_CANCELLED
    assert guest.summary() == plain.summary()
    summary = guest.summary()
    assert summary["cleanups"] == ["ask", "join", "spawn", "stream"]
    assert summary["last"] == ["stage.join.cancelled", "pipeline_cancelled"]
    assert summary["metrics"] == (len(summary["events"]), 0)


# --------------------------------------------------------------------------- 3. KeyboardInterrupt


def run_with_sigint(
    at: int | None, *, restrict: bool
) -> tuple[BaseException | None, Scenario, SigintAtStep]:
    reset_globals()
    return run_under_sigint(Scenario, at, restrict=restrict)


@pytest.mark.parametrize("restrict", [True, False])
def test_ctrl_c_at_every_step_of_a_realistic_run(restrict: bool) -> None:
    assert threading.current_thread() is threading.main_thread()
    error, _, counted = run_with_sigint(None, restrict=restrict)
    assert error is None
    steps = counted.steps
    assert steps > 20
    sent = 0
    for at in range(steps):
        error, scenario, instrument = run_with_sigint(at, restrict=restrict)
        if not instrument.sent:  # the budget's 1 ms trigger made this run shorter
            assert error is None
            continue
        sent += 1
        where = f"SIGINT before step {at} of {steps}"
        # The KeyboardInterrupt itself reaches the caller: not wrapped, not swallowed.
        assert type(error) is KeyboardInterrupt, (where, repr(error))
        # Each cleanup a stage registered ran once.
        assert sorted(scenario.cleanups) == sorted(scenario.registered), where
        # The sink was stopped by its block: every accepted event delivered or counted.
        sink = scenario.sink
        if sink is not None:
            assert not sink.is_running, where
            delivered = len(scenario.downstream.events)
            assert sink.metrics.emitted == delivered + sink.metrics.undelivered, where
            assert sink.metrics.undelivered == 0, where
    assert sent > 20


# --------------------------------------------------------------------------- 6. caller's scopes


async def runner_scenario(scenario: Scenario) -> dict[str, Any]:
    from stageflow_trio.helpers.run_utils import PipelineRunner

    runner = PipelineRunner(verbose=False)
    async with BackpressureAwareEventSink(scenario.downstream) as sink:
        scenario.sink = sink
        result = await runner.run(scenario.graph(), pipeline_run_id=RUN_ID)
    assert result.success, result.error
    scenario.log.append("done")
    return {"stages": sorted(result.stages)}


def run_in_caller_scope(
    body: Callable[[Scenario], Awaitable[Any]], at: int | None, kind: str
) -> tuple[str, Scenario, CancelAtStep]:
    """Runs ``body`` inside the caller's own nursery and scope; what escaped."""
    reset_globals()
    scenario = Scenario()
    instrument = CancelAtStep(at, deadline=kind == "fail_after")

    async def main() -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 0.001)  # a sibling in the caller's nursery
            if kind == "fail_after":
                try:
                    with trio.fail_after(3600) as scope:
                        instrument.scope = scope
                        await body(scenario)
                except trio.TooSlowError:
                    return "too slow"
                return "returned"
            if kind == "shielded":
                with trio.CancelScope() as outer:
                    instrument.scope = outer
                    with trio.CancelScope(shield=True):
                        await body(scenario)
                    await trio.lowlevel.checkpoint()
                    return "returned"
                return "cancelled after the shield"
            with trio.CancelScope() as scope:
                instrument.scope = scope
                await body(scenario)
                return "returned"
            assert scope.cancelled_caught
            return "cancelled"

    escaped = trio.run(main, clock=mock_clock(), instruments=[instrument])
    return escaped, scenario, instrument


@pytest.mark.parametrize("kind", ["cancel", "fail_after", "shielded"])
@pytest.mark.parametrize("body", [Scenario.run, runner_scenario], ids=["graph", "runner"])
def test_cancelled_by_the_callers_scope_at_every_step(
    kind: str, body: Callable[[Scenario], Awaitable[Any]]
) -> None:
    escaped, _, counted = run_in_caller_scope(body, None, kind)
    assert escaped == "returned"
    sent = 0
    for at in range(counted.steps):
        escaped, scenario, instrument = run_in_caller_scope(body, at, kind)
        where = f"{kind} before step {at} of {counted.steps}"
        if not instrument.sent:
            continue
        sent += 1
        # Never an ExceptionGroup: trio.run would have raised it.
        expected = {
            "cancel": {"cancelled", "returned"},
            "fail_after": {"too slow", "returned"},
            "shielded": {"cancelled after the shield", "returned"},
        }[kind]
        assert escaped in expected, where
        if kind == "shielded":  # the shield kept the outer cancel out of the run
            assert scenario.log[-1] == "done", where
        assert sorted(scenario.cleanups) == sorted(scenario.registered), where
        sink = scenario.sink
        if sink is not None:
            assert not sink.is_running, where
            assert sink.metrics.undelivered == 0, where
            assert sink.metrics.emitted == len(scenario.downstream.events), where
    assert sent > 10


# --------------------------------------------------------------------------- 2. Instruments


class TaskLedger(trio.abc.Instrument):
    """Every task spawned and exited, with the task that was running when it spawned."""

    def __init__(self) -> None:
        self.alive: set[trio.lowlevel.Task] = set()
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.alive.add(task)
        self.spawned += 1

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.alive.discard(task)


class MemoryExporter:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.closed = False

    async def export(self, event: Any) -> None:
        await trio.lowlevel.checkpoint()
        self.events.append(event)

    async def export_batch(self, events: list[Any]) -> None:
        await trio.lowlevel.checkpoint()
        self.events.extend(events)

    async def flush(self) -> None:
        await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()
        self.closed = True


async def test_no_task_outlives_the_call_that_started_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from stageflow_trio.helpers.analytics import AnalyticsEvent, AnalyticsSink, BufferedExporter
    from stageflow_trio.helpers.run_utils import PipelineRunner
    from stageflow_trio.helpers.streaming import RealtimeStageBus
    from stageflow_trio.tools.approval import ApprovalService

    ledger = TaskLedger()
    trio.lowlevel.add_instrument(ledger)
    try:
        before = set(ledger.alive)
        spawned = ledger.spawned
        checked: list[str] = []

        def leftovers(what: str) -> None:
            nonlocal spawned
            assert ledger.alive == before, (what, [t.name for t in ledger.alive - before])
            assert ledger.spawned > spawned or what in {"approval", "llm stream"}, what
            spawned = ledger.spawned
            checked.append(what)

        await Scenario().run()
        leftovers("graph, sink, spawner, task group, chunk queue")

        scenario = Scenario()
        result = await PipelineRunner(verbose=False).run(scenario.graph(), pipeline_run_id=RUN_ID)
        assert result.success
        leftovers("runner")

        sink = BackpressureAwareEventSink(ListSink())
        async with trio.open_nursery() as nursery:
            await sink.start(nursery)
            sink.try_emit(type="a", data=None)
            await sink.stop()
            assert not sink.is_running
            # The worker has exited already: the nursery's block waits for nothing.
            assert ledger.alive - before <= {trio.lowlevel.current_task()}
        leftovers("sink worker in a user nursery")

        spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
        parent = create_test_stage_context(pipeline_run_id=RUN_ID).as_pipeline_context()
        done: list[str] = []

        async def child(ctx: PipelineContext) -> None:
            await trio.sleep(1)
            done.append("child")

        async with trio.open_nursery() as nursery:
            child_id = await spawner.spawn_detached(
                "bg", parent, CORRELATION, "s", child, nursery=nursery
            )
            assert child_id is not None
        assert done == ["child"]
        leftovers("spawn_detached")

        async with BufferedExporter(MemoryExporter(), batch_size=2) as exporter:
            await exporter.export(AnalyticsEvent(event_type="x"))
            async with AnalyticsSink(exporter) as analytics:
                analytics.try_emit(type="stage.started", data={"stage": "s"})
        leftovers("analytics")

        service = ApprovalService()
        request = await service.request_approval(uuid.uuid4(), "tool")
        with pytest.raises(TimeoutError):
            await service.await_decision(request.id, timeout_seconds=1)
        leftovers("approval")

        async with RealtimeStageBus() as bus:
            async with trio.open_nursery() as nursery:

                async def listen() -> None:
                    async for _ in bus.subscribe("tokens"):
                        break

                nursery.start_soon(listen)
                await trio.testing.wait_all_tasks_blocked()
                await bus.publish("tokens", "hi")
        leftovers("realtime bus")

        provider = MockLLMProvider(responses=["a long answer"], latency_ms=5)
        async with provider.stream("hello", chunk_size=1) as stream:
            async for _ in stream:
                break
        leftovers("llm stream")
        assert len(checked) == 8
    finally:
        trio.lowlevel.remove_instrument(ledger)


# --------------------------------------------------------------------------- 4. contextvars

TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("audit18_tenant", default="unset")


def tenant_graph(seen: dict[str, str]) -> Any:
    def stage(name: str) -> Callable[[StageContext], Awaitable[StageOutput]]:
        async def run(ctx: StageContext) -> StageOutput:
            seen[name] = TENANT.get()
            TENANT.set(name)
            await trio.sleep(0.1 if name == "b" else 0.2)
            return StageOutput.ok()

        return run

    return (
        Pipeline()
        .with_stage("a", stage("a"), StageKind.TRANSFORM)
        .with_stage("b", stage("b"), StageKind.TRANSFORM, dependencies=("a",))
        .with_stage("c", stage("c"), StageKind.TRANSFORM, dependencies=("a",))
        .with_stage("d", stage("d"), StageKind.TRANSFORM, dependencies=("b", "c"))
        .build(interceptors=get_default_interceptors())
    )


async def test_context_variables_across_stages_and_the_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    TENANT.set("caller")
    seen: dict[str, str] = {}
    await tenant_graph(seen).run(create_test_stage_context())
    # The caller's value reaches the root; a stage's value reaches the stages it
    # releases (docs/parity.md, "Stage scheduling": the reference's stages all saw
    # "caller", each a task copied from the run's); d is released by c, the last
    # of its dependencies to finish. Nothing reaches the caller.
    assert seen == {"a": "caller", "b": "a", "c": "a", "d": "c"}
    assert TENANT.get() == "caller"

    # Tasks the library starts on the caller's behalf copy the context of the task
    # that asked (trio's rule, and asyncio.create_task's): the sink's worker, the
    # one that called start(); a detached child, the stage that spawned it.
    heard: list[str] = []

    class TenantSink:
        async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            heard.append(f"{type}:{TENANT.get()}")

        def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            heard.append(f"{type}:{TENANT.get()}")

    sink = BackpressureAwareEventSink(TenantSink())
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    child_saw: list[str] = []

    async def child(ctx: PipelineContext) -> None:
        child_saw.append(TENANT.get())

    async with trio.open_nursery() as nursery:
        TENANT.set("starter")
        await sink.start(nursery)
        TENANT.set("caller")

        async def spawning(ctx: StageContext) -> StageOutput:
            TENANT.set("spawning stage")
            await spawner.spawn_detached(
                "bg", ctx.as_pipeline_context(), CORRELATION, "s", child, nursery=nursery
            )
            return StageOutput.ok()

        graph = Pipeline().with_stage("s", spawning, StageKind.WORK).build()
        await graph.run(create_test_stage_context(event_sink=sink, pipeline_run_id=RUN_ID))
        # The worker is blocked waiting for events: wait_all_tasks_blocked sees it so.
        await trio.testing.wait_all_tasks_blocked()
        sink.try_emit(type="late", data=None)
        TENANT.set("stopper")
        await sink.stop()  # delivers what is left from this task, as the reference's does
        TENANT.set("caller")
    assert heard == [
        "stage.s.started:starter",
        "stage.s.completed:starter",
        "pipeline_completed:starter",
        "late:stopper",
    ]
    assert child_saw == ["spawning stage"]
    assert TENANT.get() == "caller"


# --------------------------------------------------------------------------- 5. pytest-trio


@pytest.fixture
async def global_sink() -> Any:
    """An async fixture (its own pytest-trio task) that sets the global sink."""
    from stageflow_trio.events import clear_event_sink, set_event_sink

    sink = RecordingEventSink()
    set_event_sink(sink)
    yield sink
    clear_event_sink()


@pytest.fixture
async def backpressure_sink(recording_sink: RecordingEventSink) -> Any:
    """A sink whose worker the fixture's task owns for the whole test."""
    async with BackpressureAwareEventSink(recording_sink) as sink:
        yield sink
    assert not sink.is_running


async def test_pytest_trio_fixtures_with_the_library(
    virtual_clock: trio.testing.MockClock,
    global_sink: RecordingEventSink,
    backpressure_sink: BackpressureAwareEventSink,
    recording_sink: RecordingEventSink,
    make_stage_context: Callable[..., StageContext],
) -> None:
    from stageflow_trio.events import emit_event, get_event_sink

    # A context variable an async fixture set is the test's (pytest-trio shares one
    # context between fixtures and the test).
    assert get_event_sink() is global_sink
    await emit_event(type="from.test", data=None)
    assert global_sink.types() == ["from.test"]

    seen: dict[str, str] = {}
    start = trio.current_time()
    ctx = make_stage_context(event_sink=backpressure_sink)
    await tenant_graph(seen).run(ctx)
    assert trio.current_time() - start == pytest.approx(0.6)  # virtual: a, c, d (0.2 s each)
    # The fixture's worker delivers while the test waits; wait_all_tasks_blocked
    # returns once it is parked again.
    await trio.testing.wait_all_tasks_blocked()
    assert recording_sink.types()[-1] == "pipeline_completed"
    assert backpressure_sink.queue_size == 0


def test_mock_clock_with_a_rate_drives_library_timeouts() -> None:
    """MockClock(rate=...) without autojump: virtual time runs faster than real time,
    and the library's timeouts and durations follow it (no wall clock)."""
    from stageflow_trio.tools.approval import ApprovalService

    async def main() -> tuple[float, int]:
        service = ApprovalService()
        request = await service.request_approval(uuid.uuid4(), "tool")
        start = trio.current_time()
        with pytest.raises(TimeoutError):
            await service.await_decision(request.id, timeout_seconds=60)
        waited = trio.current_time() - start

        async def slow(ctx: StageContext) -> StageOutput:
            await trio.sleep(30)
            return StageOutput.ok()

        graph = Pipeline().with_stage("slow", slow, StageKind.WORK).build()
        results = await graph.run(create_test_stage_context())
        duration = results["slow"].duration_ms
        assert duration is not None
        return waited, duration

    waited, duration = trio.run(main, clock=trio.testing.MockClock(rate=100_000))
    assert waited >= 60
    assert duration >= 30_000


class SlowSink:
    """A downstream taking one virtual second per event."""

    def __init__(self) -> None:
        self.got: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.sleep(1)
        self.got.append(type)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.got.append(type)


def ctrl_c_while_the_sink_stops(*, busy: bool) -> tuple[BaseException | None, SlowSink, Any, bool]:
    """Ctrl-C half a second into ``async with BackpressureAwareEventSink``'s exit.

    ``busy``: the worker is delivering when the block ends (stop waits for it);
    else the worker is idle and stop delivers from the block's own task.
    A watchdog (60 virtual seconds) cancels the block if it never ends.
    """
    reset_globals()
    downstream = SlowSink()
    sinks: list[BackpressureAwareEventSink] = []
    hung: list[bool] = []

    async def main() -> None:
        with trio.CancelScope() as guard:

            async def watchdog() -> None:
                await trio.sleep(60)
                hung.append(True)
                guard.cancel()

            async def ctrl_c() -> None:
                await trio.sleep(0.5)
                signal.raise_signal(signal.SIGINT)

            trio.lowlevel.spawn_system_task(watchdog)
            async with BackpressureAwareEventSink(downstream) as sink:
                sinks.append(sink)
                sink.try_emit(type="e0", data=None)
                if busy:
                    await trio.testing.wait_all_tasks_blocked()
                for i in range(1, 5):
                    sink.try_emit(type=f"e{i}", data=None)
                trio.lowlevel.spawn_system_task(ctrl_c)

    error: BaseException | None = None
    try:
        trio.run(main, clock=mock_clock(), restrict_keyboard_interrupt_to_checkpoints=True)
    except BaseException as exc:  # inspected by the caller
        error = exc
    return error, downstream, sinks[0], bool(hung)


@pytest.mark.parametrize("busy", [False, True], ids=["idle worker", "busy worker"])
def test_ctrl_c_during_the_sinks_drain_ends_it_and_counts_what_is_left(busy: bool) -> None:
    error, downstream, sink, hung = ctrl_c_while_the_sink_stops(busy=busy)
    # Before the fix: with a busy worker the block never ended (stop's flag was reset,
    # the worker went on and then waited for events forever); with an idle one the
    # event being delivered and the queue stayed in the sink, neither delivered nor
    # counted.
    assert not hung
    assert type(error) is KeyboardInterrupt
    assert not sink.is_running
    assert downstream.got == []  # the first delivery was cut at 0.5 s
    assert sink.metrics.emitted == 5
    assert sink.metrics.undelivered == 5
    assert sink.queue_size == 0
