"""Audit 18 (second pass): what tests/test_audit18_trio_integration.py left.

The legacy StageGraph and PipelineRunner/run_simple_pipeline under Ctrl-C and the
caller's cancellation at every step; SystemExit raised in a stage, in a sink's
downstream and in ``on_drop``; a KeyboardInterrupt reaching the library's other
shielded regions; sync work in threads calling back into the run; the cancellation
explorer and the SQLite stores in guest mode.
"""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import BackpressureAwareEventSink, get_event_sink
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.pipeline.interceptors import BaseInterceptor, get_default_interceptors
from stageflow_trio.stages import PipelineContext
from stageflow_trio.testing import create_test_stage_context, reset_globals
from tests.trio_setups import CancelAtStep, SigintAtStep, mock_clock, run_guest, run_under_sigint

RUN_ID = uuid.UUID("00000000-0000-4000-8000-0000000000b2")
KEY = "order-42"


class ListSink:
    """A downstream whose ``emit`` never checkpoints (what reaches it does not depend
    on where an outer cancel lands)."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append(type)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append(type)


# --------------------------------------------------------------------------- 1. legacy graph


class LegacyScenario:
    """A legacy StageGraph with the default interceptors (idempotency on: every stage
    claims ``[stage, KEY]``), a backpressure sink, and stages whose ``finally`` blocks
    are their cleanups."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cleanups: list[str] = []
        self.downstream = ListSink()
        self.sink: BackpressureAwareEventSink | None = None
        self.interceptors: list[BaseInterceptor] = get_default_interceptors()
        self.ctx: PipelineContext | None = None
        self.log: list[str] = []

    def stage(self, name: str, seconds: float) -> Callable[[PipelineContext], Awaitable[Any]]:
        async def run(ctx: PipelineContext) -> dict[str, Any]:
            self.started.append(name)
            try:
                await trio.sleep(seconds)
                return {name: True}
            finally:
                self.cleanups.append(name)

        return run

    def graph(self) -> StageGraph:
        return StageGraph(
            [
                StageSpec(name="a", runner=self.stage("a", 0.1)),
                StageSpec(name="b", runner=self.stage("b", 0.2), dependencies=("a",)),
                StageSpec(name="c", runner=self.stage("c", 0.3), dependencies=("a",)),
                StageSpec(name="d", runner=self.stage("d", 0.1), dependencies=("b", "c")),
            ],
            interceptors=self.interceptors,
        )

    async def run(self) -> None:
        async with BackpressureAwareEventSink(self.downstream) as sink:
            self.sink = sink
            self.ctx = PipelineContext.create(
                pipeline_run_id=RUN_ID, topology="legacy", event_sink=sink
            )
            self.ctx.data["idempotency_key"] = KEY
            results = await self.graph().run(self.ctx)
            assert sorted(results) == ["a", "b", "c", "d"]
        self.log.append("done")

    def check(self, where: str) -> None:
        # Each stage that started ran its cleanup once.
        assert sorted(self.cleanups) == sorted(self.started), where
        # No idempotency claim is left held (a duplicate would wait a lease for it).
        idem = self.interceptors[0]
        assert idem.name == "idempotency"
        for name in "abcd":
            assert not idem.in_flight(KEY, name), (where, name)  # type: ignore[attr-defined]
        # The sink was stopped by its block: every accepted event delivered or counted.
        sink = self.sink
        if sink is not None:
            assert not sink.is_running, where
            delivered = len(self.downstream.events)
            assert sink.metrics.emitted == delivered + sink.metrics.undelivered, where
            assert sink.queue_size == 0, where


def legacy_under_sigint(
    at: int | None, *, restrict: bool
) -> tuple[BaseException | None, LegacyScenario, SigintAtStep]:
    reset_globals()
    return run_under_sigint(LegacyScenario, at, restrict=restrict)


@pytest.mark.parametrize("restrict", [True, False])
def test_legacy_graph_ctrl_c_at_every_step(restrict: bool) -> None:
    assert threading.current_thread() is threading.main_thread()
    error, scenario, counted = legacy_under_sigint(None, restrict=restrict)
    assert error is None
    assert scenario.log == ["done"]
    scenario.check("uninterrupted")
    assert scenario.downstream.events[-1] == "pipeline_completed"
    sent = 0
    for at in range(counted.steps):
        error, scenario, instrument = legacy_under_sigint(at, restrict=restrict)
        if not instrument.sent:
            continue
        sent += 1
        where = f"SIGINT before step {at} of {counted.steps}"
        assert type(error) is KeyboardInterrupt, (where, repr(error))
        scenario.check(where)
        if scenario.started and scenario.log != ["done"]:
            # A run interrupted while its stages ran ends with pipeline_failed
            # ("<external>"), delivered or counted by the sink's stop.
            sink = scenario.sink
            assert sink is not None
            if sink.metrics.undelivered == 0 and scenario.ctx is not None:
                assert scenario.downstream.events[-1] in {
                    "pipeline_failed",
                    "pipeline_completed",
                }, where
    assert sent > 15


def test_legacy_graph_cancelled_by_the_callers_scope_at_every_step() -> None:
    def once(at: int | None) -> tuple[str, LegacyScenario, CancelAtStep]:
        reset_globals()
        scenario = LegacyScenario()
        instrument = CancelAtStep(at)

        async def main() -> str:
            with trio.CancelScope() as scope:
                instrument.scope = scope
                await scenario.run()
                return "returned"
            return "cancelled"

        return trio.run(main, clock=mock_clock(), instruments=[instrument]), scenario, instrument

    escaped, scenario, counted = once(None)
    assert escaped == "returned"
    sent = 0
    for at in range(counted.steps):
        escaped, scenario, instrument = once(at)
        if not instrument.sent:
            continue
        sent += 1
        where = f"cancel before step {at} of {counted.steps}"
        assert escaped in {"returned", "cancelled"}, where
        scenario.check(where)
        sink = scenario.sink
        if sink is not None:
            # The shielded drain delivers everything, even when cancelled.
            assert sink.metrics.undelivered == 0, where
            if escaped == "cancelled" and scenario.started:
                assert scenario.downstream.events[-1] in {
                    "pipeline_cancelled",
                    "pipeline_completed",
                }, where
    assert sent > 15


# --------------------------------------------------------------------------- 1b. the runner


def runner_pipeline(started: list[str], cleanups: list[str]) -> Pipeline:
    async def stage(ctx: StageContext) -> StageOutput:
        name = ctx.stage_name
        started.append(name)

        async def cleanup() -> None:
            cleanups.append(name)

        ctx.register_cleanup(cleanup, name=name)
        await trio.sleep(0.1)
        return StageOutput.ok(done=name)

    return (
        Pipeline(name="runner")
        .with_stage("a", stage, StageKind.TRANSFORM)
        .with_stage("b", stage, StageKind.WORK, dependencies=("a",))
        .with_stage("c", stage, StageKind.WORK, dependencies=("a",))
    )


def runner_under_sigint(
    at: int | None, *, restrict: bool, simple: bool
) -> tuple[Any, list[str], list[str], list[bool], SigintAtStep]:
    from stageflow_trio.helpers.run_utils import PipelineRunner, run_simple_pipeline

    reset_globals()
    started: list[str] = []
    cleanups: list[str] = []
    restored: list[bool] = []
    instrument = SigintAtStep(at)

    async def main() -> None:
        try:
            if simple:
                result = await run_simple_pipeline(runner_pipeline(started, cleanups), "hi")
            else:
                runner = PipelineRunner(verbose=False, enable_memory_tracker=True)
                result = await runner.run(runner_pipeline(started, cleanups), input_text="hi")
            assert result.success
        finally:
            # The run's ObservableEventSink is no longer the global sink.
            restored.append(type(get_event_sink()).__name__ != "ObservableEventSink")

    error: BaseException | None = None
    try:
        trio.run(
            main,
            clock=mock_clock(),
            instruments=[instrument],
            restrict_keyboard_interrupt_to_checkpoints=restrict,
        )
    except BaseException as exc:  # inspected by the caller
        error = exc
    return error, started, cleanups, restored, instrument


@pytest.mark.parametrize("simple", [False, True], ids=["PipelineRunner", "run_simple_pipeline"])
@pytest.mark.parametrize("restrict", [True, False])
def test_runner_ctrl_c_at_every_step(restrict: bool, simple: bool) -> None:
    error, started, cleanups, restored, counted = runner_under_sigint(
        None, restrict=restrict, simple=simple
    )
    assert error is None
    assert sorted(cleanups) == ["a", "b", "c"]
    sent = 0
    for at in range(counted.steps):
        error, started, cleanups, restored, instrument = runner_under_sigint(
            at, restrict=restrict, simple=simple
        )
        if not instrument.sent:
            continue
        sent += 1
        where = f"SIGINT before step {at} of {counted.steps}"
        # Never turned into a failed RunResult, never wrapped.
        assert type(error) is KeyboardInterrupt, (where, repr(error))
        assert sorted(cleanups) == sorted(started), where
        assert restored in ([True], []), where
    assert sent > 8


# --------------------------------------------------------------------------- 2. SystemExit


def exit_pipeline(cleanups: list[str]) -> Pipeline:
    async def slow(ctx: StageContext) -> StageOutput:
        async def cleanup() -> None:
            cleanups.append("slow")

        ctx.register_cleanup(cleanup, name="slow")
        await trio.sleep(10)
        return StageOutput.ok()

    async def exits(ctx: StageContext) -> StageOutput:
        async def cleanup() -> None:
            cleanups.append("exits")

        ctx.register_cleanup(cleanup, name="exits")
        await trio.sleep(1)
        raise SystemExit(3)

    return (
        Pipeline(name="exit")
        .with_stage("slow", slow, StageKind.WORK)
        .with_stage("exits", exits, StageKind.WORK)
    )


@pytest.mark.parametrize("how", ["unified", "legacy", "runner"])
def test_system_exit_in_a_stage_reaches_the_caller_itself(how: str) -> None:
    from stageflow_trio.helpers.run_utils import PipelineRunner

    reset_globals()
    cleanups: list[str] = []
    downstream = ListSink()
    sinks: list[BackpressureAwareEventSink] = []
    legacy_finally: list[str] = []

    async def legacy_slow(ctx: PipelineContext) -> None:
        try:
            await trio.sleep(10)
        finally:
            legacy_finally.append("slow")

    async def legacy_exits(ctx: PipelineContext) -> None:
        await trio.sleep(1)
        raise SystemExit(3)

    async def main() -> None:
        async with BackpressureAwareEventSink(downstream) as sink:
            sinks.append(sink)
            if how == "unified":
                graph = exit_pipeline(cleanups).build(interceptors=get_default_interceptors())
                await graph.run(create_test_stage_context(event_sink=sink))
            elif how == "legacy":
                legacy = StageGraph(
                    [
                        StageSpec(name="slow", runner=legacy_slow),
                        StageSpec(name="exits", runner=legacy_exits),
                    ]
                )
                await legacy.run(PipelineContext.create(event_sink=sink))
            else:
                await PipelineRunner(verbose=False).run(exit_pipeline(cleanups))

    with pytest.raises(SystemExit) as caught:
        trio.run(main, clock=mock_clock())
    assert type(caught.value) is SystemExit
    assert caught.value.code == 3
    if how == "legacy":
        assert legacy_finally == ["slow"]
    else:
        assert sorted(cleanups) == ["exits", "slow"]
    sink = sinks[0]
    assert not sink.is_running
    assert sink.metrics.emitted == len(downstream.events) + sink.metrics.undelivered
    if how != "runner":
        assert sink.metrics.undelivered == 0
        assert downstream.events[-1] == "pipeline_failed"


class Raising:
    """A downstream whose ``emit`` raises ``exc`` for the event named ``at``."""

    def __init__(self, exc: BaseException, at: str = "x") -> None:
        self.exc = exc
        self.at = at
        self.got: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()
        if type == self.at:
            raise self.exc
        self.got.append(type)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.got.append(type)


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_process_exit_in_the_downstream_reaches_the_async_with_caller_unwrapped(
    exc_type: type[BaseException],
) -> None:
    """SystemExit (or a Ctrl-C landing in the downstream's code, unrestricted) raised by
    the worker's delivery: the caller of ``async with sink:`` gets it itself. Before the
    fix the sink's own nursery wrapped it in a BaseExceptionGroup."""
    reset_globals()
    downstream = Raising(exc_type())
    sink = BackpressureAwareEventSink(downstream)
    body: list[str] = []

    async def main() -> None:
        async with sink:
            for event in ("a", "x", "b"):
                sink.try_emit(type=event, data=None)
            try:
                await trio.sleep(1)
            except trio.Cancelled:
                body.append("body cancelled")  # the worker's death cancels the body
                raise

    with pytest.raises(BaseException) as caught:  # noqa: PT011 - the type is the point
        trio.run(main, clock=mock_clock())
    assert type(caught.value) is exc_type, repr(caught.value)
    assert body == ["body cancelled"]
    assert not sink.is_running
    # "x" was cut in the downstream and counted; "a" and "b" delivered.
    assert sink.metrics.emitted == 3
    assert sink.metrics.undelivered == 1
    assert len(downstream.got) + sink.metrics.undelivered == 3
    assert sink.queue_size == 0


@pytest.mark.parametrize("where", ["worker", "drain"])
def test_system_exit_in_on_drop_counts_each_event_once(where: str) -> None:
    """A downstream rejects "x"; ``on_drop`` then raises SystemExit. The event is
    counted (and passed to ``on_drop``) once. Before the fix it stayed in flight and
    was given up a second time by the stop: ``undelivered`` counted it twice and
    ``on_drop`` saw it twice (in a drain, instead of the next event)."""
    reset_globals()
    downstream = Raising(ValueError("rejected"))
    drops: list[str] = []

    def on_drop(event_type: str, data: dict[str, Any] | None) -> None:
        drops.append(event_type)
        if event_type == "x":
            raise SystemExit(4)

    sink = BackpressureAwareEventSink(downstream, on_drop=on_drop)

    async def main() -> None:
        if where == "worker":
            async with sink:
                for event in ("a", "x", "b"):
                    sink.try_emit(type=event, data=None)
                await trio.sleep(1)
        else:
            for event in ("a", "x", "b"):
                sink.try_emit(type=event, data=None)
            await sink.stop()

    with pytest.raises(BaseException) as caught:  # noqa: PT011 - the type is the point
        trio.run(main, clock=mock_clock())
    assert type(caught.value) is SystemExit or (
        # (the group is the other defect: see the test above)
        isinstance(caught.value, BaseExceptionGroup)
        and isinstance(caught.value.exceptions[0], SystemExit)
    ), repr(caught.value)
    assert sink.metrics.downstream_errors == 1
    assert drops.count("x") == 1, drops
    delivered = len(downstream.got)
    assert sink.metrics.emitted == 3
    assert delivered + sink.metrics.undelivered == 3, (downstream.got, sink.metrics.undelivered)
    assert sink.queue_size == 0


def test_ctrl_c_while_the_stop_wakes_an_idle_worker_counts_its_event() -> None:
    """An event handed straight to the parked worker, then Ctrl-C in the block's stop:
    the stop cuts the worker, which keeps the event in ``held`` as it exits. Before the
    fix it stayed there, neither delivered nor counted (found by the legacy graph's
    Ctrl-C-at-every-step test: its ``pipeline_completed``)."""
    reset_globals()
    downstream = ListSink()
    sink = BackpressureAwareEventSink(downstream)

    async def main() -> None:
        async with sink:
            await trio.testing.wait_all_tasks_blocked()  # the worker waits for events
            sink.try_emit(type="e", data=None)
            signal.raise_signal(signal.SIGINT)  # delivered at the stop's first wait

    with pytest.raises(KeyboardInterrupt):
        trio.run(main, clock=mock_clock(), restrict_keyboard_interrupt_to_checkpoints=True)
    assert not sink.is_running
    assert sink.metrics.emitted == 1
    assert len(downstream.events) + sink.metrics.undelivered == 1
    assert sink.queue_size == 0


# --------------------------------------------------------------------------- 4. threads


@pytest.mark.parametrize("abandon", [False, True])
def test_a_stage_thread_calling_back_into_a_cancelled_run(abandon: bool) -> None:
    """Sync work in a thread emits through the sink (``from_thread.run``) and through
    the context (``from_thread.run_sync``), then waits in the run; a sibling's failure
    cancels the stage mid-way. Nothing is lost or left running: with
    ``abandon_on_cancel=False`` the thread sees ``Cancelled`` in its call back and the
    stage returns its result (it completes without another checkpoint, as any stage
    may); abandoned, the stage is cancelled at once and the thread's later calls find
    the run gone or cancelled."""
    import functools

    reset_globals()
    downstream = ListSink()
    seen: list[str] = []
    finished = threading.Event()

    async def main() -> None:
        called_back = trio.Event()
        async with BackpressureAwareEventSink(downstream) as sink:

            async def worker(ctx: StageContext) -> StageOutput:
                def work() -> str:
                    try:
                        trio.from_thread.run(functools.partial(sink.emit, type="t1", data=None))
                        trio.from_thread.run_sync(
                            functools.partial(ctx.try_emit_event, type="t2", data={})
                        )
                        trio.from_thread.run_sync(called_back.set)
                        try:
                            trio.from_thread.run(trio.sleep_forever)
                        except (trio.Cancelled, trio.RunFinishedError) as exc:
                            seen.append(type(exc).__name__)
                        return "x"
                    finally:
                        finished.set()

                result = await trio.to_thread.run_sync(work, abandon_on_cancel=abandon)
                return StageOutput.ok(result=result)

            async def failer(ctx: StageContext) -> StageOutput:
                await called_back.wait()
                raise ValueError("boom")

            graph = (
                Pipeline()
                .with_stage("w", worker, StageKind.WORK)
                .with_stage("f", failer, StageKind.WORK)
                .build()
            )
            with pytest.raises(Exception, match="boom"):
                await graph.run(create_test_stage_context(event_sink=sink))

    trio.run(main, clock=mock_clock())
    assert finished.wait(10)  # the thread ends (abandoned: once the run is gone)
    events = downstream.events
    assert events[:2] == ["stage.w.started", "stage.f.started"] or events[:2] == [
        "stage.f.started",
        "stage.w.started",
    ]
    assert {"t1", "t2"} <= set(events)
    assert events[-1] == "pipeline_failed"
    assert ("stage.w.cancelled" in events) is abandon
    assert ("stage.w.completed" in events) is not abandon
    assert len(seen) == 1
    assert seen[0] in ({"Cancelled"} if not abandon else {"Cancelled", "RunFinishedError"})


# --------------------------------------------------------------------------- 5. guest mode


def test_explore_cancellation_in_guest_mode() -> None:
    from stageflow_trio.testing import current_run, explore_cancellation, tracked_cleanup

    async def release_hold() -> None:
        await trio.lowlevel.checkpoint()

    async def reserve(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.2)
        return StageOutput.ok(reserved=True)

    async def charge(ctx: StageContext) -> StageOutput:
        ctx.register_cleanup(tracked_cleanup(release_hold, name="hold"), name="hold")
        await trio.sleep(1.0)
        return StageOutput.ok(charged=True)

    checkout = (
        Pipeline(name="checkout")
        .with_stage("reserve", reserve, StageKind.WORK)
        .with_stage("charge", charge, StageKind.WORK, dependencies=("reserve",))
        .build()
    )

    async def run_checkout() -> dict[str, StageOutput]:
        return await checkout.run(create_test_stage_context(event_sink=current_run().sink))

    async def explore() -> Any:
        return await explore_cancellation(run_checkout)

    reset_globals()
    plain = trio.run(explore, clock=mock_clock())
    reset_globals()
    guest = run_guest(explore, clock=mock_clock()).unwrap()
    # As docs/testing.md's example says, in guest mode too.
    for report in (plain, guest):
        assert report.checkpoints == 6
        assert report.explored == (0, 1, 2, 3, 4, 5)
        assert report.deadlines == (0.1, 0.7)
        assert report.outcomes == {"returned": 4, "cancelled": 5}


def test_sqlite_stores_in_guest_mode(tmp_path: Path) -> None:
    from stageflow_trio.helpers.memory import MemoryConfig, MemoryEntry
    from stageflow_trio.stores import open_stores

    session = uuid.uuid4()
    url = f"sqlite:///{tmp_path / 'stores.db'}"

    async def main() -> tuple[list[str], bool]:
        async with open_stores(url) as stores:
            approvals = stores.approval_service(default_timeout_seconds=30)
            request = await approvals.request_approval(uuid.uuid4(), "delete_file")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(approvals.record_decision, request.id, True)
                decision = await approvals.await_decision(request.id)
            await stores.memory.write(
                MemoryEntry(id="1", session_id=session, role="user", content="hi")
            )
            fetched = await stores.memory.fetch(session, MemoryConfig())
            # A cancelled claim holds nothing.
            interceptors = get_default_interceptors(idempotency_store=stores.idempotency)
            assert interceptors[0].name == "idempotency"
            return [entry.content for entry in fetched], decision.granted

    reset_globals()
    assert run_guest(main).unwrap() == (["hi"], True)
    reset_globals()
    # The file persists across runs (and modes): a plain run reads the guest's write.

    async def read() -> list[str]:
        async with open_stores(url) as stores:
            return [e.content for e in await stores.memory.fetch(session, MemoryConfig())]

    assert trio.run(read) == ["hi"]
