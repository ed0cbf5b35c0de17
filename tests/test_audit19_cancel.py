"""Audit 19: cancellation and Ctrl-C where the earlier audits did not look.

The runner under the caller's own cancel scope; the agent under Ctrl-C; the SQLite
stores' background task (lease renewal, releases, purge) when the block that owns it is
cancelled at every step, or while its body finishes work under a shield;
``SubpipelineSpawner.spawn_detached`` cancelled during its start-up; the streaming
helpers with the consumer's scope cancelled mid-stream; the v2 tool executor's approval,
call and undo cancelled by the caller's scope. Virtual time throughout; the SQLite
statements run inline (patched ``trio.to_thread.run_sync``) so that the steps are the
same on every run. Ctrl-C is sent as tests/trio_setups.py sends it.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.agent import Agent, AgentStage
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import get_event_sink, set_event_sink
from stageflow_trio.helpers.run_utils import PipelineRunner, RunResult, run_simple_pipeline
from stageflow_trio.helpers.streaming import ChunkQueue, RealtimeStageBus
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.pipeline.interceptors import get_default_interceptors
from stageflow_trio.pipeline.subpipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.stages import PipelineContext
from stageflow_trio.stores import sqlite as sqlite_module
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context, reset_globals
from stageflow_trio.tools.registry import ToolRegistry
from tests.agent.fakes import ScriptedChat, SlowTool, answer
from tests.test_audit18_trio_integration_3 import (
    ACTION,
    Act,
    Outcome,
    UndoableSetup,
    exec_ctx,
    own_nursery,
    pending_statuses,
    sqlite_closed,
    sqlite_rows,
    stored,
    sweep,
)
from tests.trio_setups import CancelAtStep, SigintAtStep, inline_run_sync, mock_clock

WATCHDOG_SECONDS = 10_000.0


# --------------------------------------------------------------------------- harness


class Cancelled:
    """What one run under a cancelled caller's scope gave."""

    def __init__(self) -> None:
        self.value: object = None
        self.caught = False
        self.hung = False
        self.leftover: list[str] = []


def run_cancelled(
    body: Callable[[], Awaitable[object]], at: int | None
) -> tuple[Cancelled, CancelAtStep]:
    """``body`` in the caller's own scope, cancelled before step ``at``; a watchdog and
    a task ledger around it. Whatever ``trio.run`` raises propagates."""
    instrument = CancelAtStep(at)
    got = Cancelled()

    async def main() -> None:
        before = set(instrument.alive)
        with trio.CancelScope() as guard:

            async def watchdog() -> None:
                await trio.sleep(WATCHDOG_SECONDS)
                got.hung = True
                guard.cancel()

            trio.lowlevel.spawn_system_task(watchdog)
            with trio.CancelScope() as scope:
                instrument.scope = scope
                got.value = await body()
            got.caught = scope.cancelled_caught
        me = trio.lowlevel.current_task()
        got.leftover = [
            t.name for t in instrument.alive - before - {me} if "watchdog" not in t.name
        ]

    trio.run(main, clock=mock_clock(), instruments=[instrument])
    return got, instrument


def cancel_sweep(
    make: Callable[[], tuple[Callable[[], Awaitable[object]], Callable[[Cancelled, str], None]]],
    *,
    minimum: int = 5,
    stride: int = 1,
) -> int:
    """Runs ``make()``'s body uninterrupted, then cancelled before every ``stride``-th
    step; every run: no hang, no task left, nothing but the cancellation escapes
    (``trio.run`` would raise it), then the scenario's own check."""
    reset_globals()
    body, check = make()
    clean, counted = run_cancelled(body, None)
    assert not clean.hung
    assert not clean.caught
    check(clean, "uncancelled")
    sent = 0
    for at in range(0, counted.steps + 2, stride):
        reset_globals()
        body, check = make()
        got, instrument = run_cancelled(body, at)
        if not instrument.sent:
            continue
        sent += 1
        where = f"cancelled before step {at} of {counted.steps}"
        assert not got.hung, where
        assert got.leftover == [], (where, got.leftover)
        check(got, where)
    assert sent >= minimum, sent
    return sent


# --------------------------------------------------------------------------- 3. SQLite stores


async def test_sqlite_claims_worked_on_under_a_shield_keep_their_lease_after_the_block_is_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    """A graceful shutdown: the stores' block is cancelled while its body finishes a
    request under a shield, holding an idempotency claim for 100 s (the lease is 30 s).
    Before the fix the block's cancellation ended the background task at once: the
    lease was no longer renewed, so another worker was granted the key at t=50 and ran
    the stage a second time while the first still ran; and the release at t=100 (past
    the 5 s drain) was dropped. Now the other worker waits until the release."""
    monkeypatch.setattr(trio.to_thread, "run_sync", inline_run_sync)
    path = str(tmp_path / "stores.db")
    log: list[tuple[str, float]] = []
    clock = trio.current_time  # leases on the virtual clock

    async def shutting_down_worker() -> None:
        with trio.CancelScope() as outer:
            async with sqlite_module.open_sqlite_stores(
                path, clock=clock, claim_lease_seconds=30
            ) as stores:
                claim = await stores.idempotency.claim("k")
                assert isinstance(claim, IdempotencyClaim)
                log.append(("first claimed", trio.current_time()))
                outer.cancel()  # the shutdown begins
                with trio.CancelScope(shield=True):
                    try:
                        await trio.sleep(100)  # the request in flight finishes
                    finally:
                        stores.idempotency.release(claim)
                        log.append(("first released", trio.current_time()))
        assert outer.cancelled_caught

    async def other_worker() -> None:
        await trio.sleep(50)
        async with sqlite_module.open_sqlite_stores(
            path, clock=clock, claim_lease_seconds=30
        ) as stores:
            got = await stores.idempotency.claim("k")
            assert isinstance(got, IdempotencyClaim)
            log.append(("second claimed", trio.current_time()))
            stores.idempotency.release(got)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(shutting_down_worker)
        nursery.start_soon(other_worker)
    assert [name for name, _ in log] == ["first claimed", "first released", "second claimed"]
    assert log[2][1] >= 100
    assert sqlite_rows(Path(path), "SELECT key FROM idempotency_claims") == []


def test_sqlite_stores_owner_cancelled_at_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two graph runs holding claims past a lease renewal, a duplicate waiting on one
    key, then an approval; the owner's scope cancelled anywhere: the block ends, no
    claim row is left, no approval PENDING, every connection it opened is closed."""
    monkeypatch.setattr(trio.to_thread, "run_sync", inline_run_sync)
    opened: list[sqlite3.Connection] = []
    real_connect = sqlite_module._connect

    def recording_connect(path: str, setting: str) -> sqlite3.Connection:
        connection = real_connect(path, setting)
        opened.append(connection)
        return connection

    monkeypatch.setattr(sqlite_module, "_connect", recording_connect)
    counter = [0]

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Cancelled, str], None]]:
        counter[0] += 1
        path = tmp_path / f"s{counter[0]}.db"
        opened.clear()

        async def stage(ctx: PipelineContext) -> dict[str, Any]:
            await trio.sleep(15)  # past the first renewal (every lease / 3)
            return {"ok": True}

        async def body() -> str:
            # A 5 s poll (50 ms by default): the duplicate still polls (at 0, 5 and 10 s)
            # before the release wakes it, but the run has about 60 steps instead of
            # 650, 600 of them the same poll over and over; so every step gets its
            # cancellation (a stride of 11 before), at a tenth of the work.
            async with sqlite_module.open_sqlite_stores(
                str(path), claim_lease_seconds=30, poll_interval=5
            ) as stores:
                interceptors = get_default_interceptors(idempotency_store=stores.idempotency)
                async with trio.open_nursery() as nursery:
                    for key in ("k1", "k2", "k1"):
                        ctx = PipelineContext.create()
                        ctx.data["idempotency_key"] = key
                        graph = StageGraph(
                            [StageSpec(name="s", runner=stage)], interceptors=interceptors
                        )
                        nursery.start_soon(graph.run, ctx)
                service = stores.approval_service(default_timeout_seconds=5)
                request = await service.request_approval(ACTION, "delete")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(service.record_decision, request.id, True)
                    await service.await_decision(request.id)
            return "done"

        def check(got: Cancelled, where: str) -> None:
            assert opened, where
            assert all(sqlite_closed(connection) for connection in opened), where
            assert sqlite_rows(path, "SELECT key FROM idempotency_claims") == [], where
            pending = sqlite_rows(path, "SELECT id FROM approvals WHERE status = 'pending'")
            assert pending == [], where
            assert got.value == ("done" if not got.caught else None), where

        return body, check

    cancel_sweep(make, minimum=40, stride=1)


# --------------------------------------------------------------------------- 4. spawn_detached


def detached_start(
    at: int | None, *, how: str, emit_events: bool
) -> tuple[dict[str, Any], list[str], SubpipelineSpawner, int, bool]:
    """``spawn_detached`` into a service nursery outside the caller's scope, which is
    cancelled (or Ctrl-C sent) before step ``at``."""
    reset_globals()
    cancel = CancelAtStep(at if how == "cancel" else None)
    sigint = SigintAtStep(at if how == "sigint" else None)
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker(), emit_events=emit_events)
    sink = RecordingEventSink()
    ran: list[str] = []
    got: dict[str, Any] = {}

    async def child(ctx: PipelineContext) -> dict[str, Any]:
        ran.append("start")
        await trio.sleep(1)
        ran.append("end")
        return {}

    async def main() -> None:
        set_event_sink(sink)
        parent = PipelineContext.create(pipeline_run_id=uuid.uuid4())
        async with own_nursery() as service:  # the test's own: a one-leaf group unwrapped
            with trio.CancelScope() as scope:
                cancel.scope = scope
                got["id"] = await spawner.spawn_detached(
                    "child", parent, uuid.uuid4(), "stage", child, nursery=service
                )
            got["caught"] = scope.cancelled_caught

    try:
        trio.run(
            main,
            clock=mock_clock(),
            instruments=[cancel, sigint],
            restrict_keyboard_interrupt_to_checkpoints=True,
        )
    except KeyboardInterrupt:
        got["interrupted"] = True
    steps = max(cancel.steps, sigint.steps)
    return got, ran, spawner, steps, cancel.sent or sigint.sent


@pytest.mark.parametrize("emit_events", [False, True], ids=["quiet", "events"])
@pytest.mark.parametrize("how", ["cancel", "sigint"])
def test_spawn_detached_cancelled_during_start_up_never_calls_the_runner(
    how: str, emit_events: bool
) -> None:
    """``spawn_detached`` raising Cancelled (or the Ctrl-C) means the child was not
    handed to the nursery: it is unregistered, and its runner was never called. Before
    the fix a cancellation landing after the child's start-up had registered it (with
    no checkpoint of its own there: ``emit_events=False``, or a sink that does not
    checkpoint) left the task in ``start()``'s cancelled nursery, where it called the
    runner, which ran up to its first checkpoint for a spawn its caller saw fail."""
    clean, ran, _, steps, _ = detached_start(None, how=how, emit_events=emit_events)
    assert clean["id"] is not None
    assert ran == ["start", "end"]
    refused = 0
    for at in range(steps):
        got, ran, spawner, _, sent = detached_start(at, how=how, emit_events=emit_events)
        if not sent:
            continue
        where = f"{how} before step {at} of {steps}"
        assert spawner.running_children == frozenset(), where
        if "id" not in got:  # spawn_detached raised: nothing of the child ran
            refused += 1
            assert ran == [], (where, ran)
        elif not got.get("interrupted"):
            assert ran == ["start", "end"], (where, ran)
    assert refused >= 2


# --------------------------------------------------------------------------- 1. the runner


def runner_pipeline() -> Pipeline:
    async def stage(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.1)
        return StageOutput.ok(done=ctx.stage_name)

    return (
        Pipeline(name="runner")
        .with_stage("a", stage, StageKind.TRANSFORM)
        .with_stage("b", stage, StageKind.WORK, dependencies=("a",))
    )


class MarkerSink:
    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        pass


@pytest.mark.parametrize("simple", [False, True], ids=["PipelineRunner", "run_simple_pipeline"])
def test_runner_cancelled_by_the_callers_scope_never_returns_a_result(simple: bool) -> None:
    """Cancelled by the caller's scope anywhere, the runner raises the Cancelled (the
    scope catches it): never a ``RunResult`` (not ``cancelled=True``, which is for a
    stage's or token's cancellation, not a failure); the caller's global sink is back."""
    marker = MarkerSink()
    restored: list[bool] = []

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Cancelled, str], None]]:
        async def body() -> object:
            set_event_sink(marker)
            try:
                if simple:
                    return await run_simple_pipeline(runner_pipeline(), "hi")
                return await PipelineRunner(verbose=False).run(runner_pipeline(), input_text="hi")
            finally:
                restored.append(get_event_sink() is marker)

        def check(got: Cancelled, where: str) -> None:
            assert restored.pop() is True, where
            if got.caught:
                assert got.value is None, (where, got.value)
            else:
                result = got.value
                assert isinstance(result, RunResult), where
                assert result.success, where
                assert not result.cancelled, where

        return body, check

    cancel_sweep(make, minimum=8)


# --------------------------------------------------------------------------- 2. the agent


@pytest.mark.parametrize("via", ["Agent.run", "AgentStage"])
@pytest.mark.parametrize("restrict", [True, False])
def test_agent_ctrl_c_at_every_step(restrict: bool, via: str) -> None:
    """A Ctrl-C anywhere in an agent run (model calls, two tool calls, the turn after):
    a bare KeyboardInterrupt, each started tool's ``finally`` ran once, and an
    ``agent.tool.executed`` event exists exactly for each tool call that finished."""

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Outcome, str], None]]:
        first, second = SlowTool("a", 2), SlowTool("b", 4)
        registry = ToolRegistry()
        registry.register(first)
        registry.register(second)
        turn = json.dumps(
            {"tool_calls": [{"name": "a", "call_id": "1"}, {"name": "b", "call_id": "2"}]}
        )
        agent = Agent(
            llm_client=ScriptedChat(turn, answer("done"), delay=1), tool_registry=registry
        )
        sink = RecordingEventSink()

        async def body() -> None:
            if via == "Agent.run":
                ctx = create_test_stage_context(event_sink=sink)
                answered = await agent.run("go", stage_context=ctx)
                assert answered.response == "done"
            else:
                pipeline = Pipeline(name="agent").with_stage(
                    "agent", AgentStage(agent), StageKind.AGENT
                )
                result = await PipelineRunner(verbose=False).run(pipeline, input_text="go")
                assert result.success, result.error

        def check(got: Outcome, where: str) -> None:
            for tool in (first, second):
                assert tool.started == tool.cleanups, (where, tool.started, tool.cleanups)
            if via == "Agent.run":
                executed = [d["call_id"] for d in sink.of_type("agent.tool.executed") if d]
                finished = first.finished + second.finished
                assert executed == ["1", "2"][:finished], (where, executed)

        return body, check

    sweep(make, restrict=restrict, minimum=15)


# --------------------------------------------------------------------------- 5. streaming


class ConsumerCancelAtStep(CancelAtStep):
    """Cancels the consumer's own scope (the one in ``state["scope"]`` at that step)."""

    def __init__(self, at: int | None, state: dict[str, Any]) -> None:
        super().__init__(at)
        self.state = state

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.scope = self.state.get("scope")
        super().before_task_step(task)


def stream_once(kind: str, drop: bool, at: int | None) -> tuple[dict[str, Any], CancelAtStep]:
    """A producer of 10 chunks and a consumer over a 2-chunk stream; the consumer's own
    scope cancelled before step ``at``, after which it closes the stream; the chunks
    left are drained at the end."""
    state: dict[str, Any] = {"accepted": [], "seen": [], "hung": False, "leftover": []}
    instrument = ConsumerCancelAtStep(at, state)

    async def main() -> None:
        queue: ChunkQueue[int] | None = None
        bus: RealtimeStageBus | None = None
        if kind == "ChunkQueue":
            queue = ChunkQueue(max_size=2, drop_on_overflow=drop)
        else:
            bus = RealtimeStageBus(default_max_size=2, default_drop_on_overflow=drop)

        async def put(item: int) -> bool:
            if queue is not None:
                return await queue.put(item)
            assert bus is not None
            return await bus.publish("c", item)

        async def close() -> None:
            if queue is not None:
                await queue.close()
            else:
                assert bus is not None
                await bus.close_all()

        async def producer() -> None:
            for item in range(10):
                if await put(item):
                    state["accepted"].append(item)
                await trio.sleep(0.01)
            await close()

        async def consumer() -> None:
            with trio.CancelScope() as scope:
                state["scope"] = scope
                stream: Any = queue if queue is not None else bus.subscribe("c")  # type: ignore[union-attr]
                async for item in stream:
                    state["seen"].append(item)
                    await trio.sleep(0.02)
            if scope.cancelled_caught:
                with trio.CancelScope(shield=True):
                    await close()

        before = set(instrument.alive)
        with trio.move_on_after(WATCHDOG_SECONDS) as guard:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(producer)
                nursery.start_soon(consumer)
        state["hung"] = guard.cancelled_caught
        me = trio.lowlevel.current_task()
        state["leftover"] = [t.name for t in instrument.alive - before - {me}]
        left: Any = queue if queue is not None else await bus.channel("c")  # type: ignore[union-attr]
        async for item in left:
            state["seen"].append(item)
        state["len"] = len(left)
        state["dropped"] = left.monitor.stats.dropped_items

    trio.run(main, clock=mock_clock(), instruments=[instrument])
    return state, instrument


@pytest.mark.parametrize("drop", [False, True], ids=["blocking", "drop_oldest"])
@pytest.mark.parametrize("kind", ["ChunkQueue", "RealtimeStageBus"])
def test_consumer_scope_cancelled_mid_stream_loses_no_chunk(kind: str, drop: bool) -> None:
    """A consumer whose own scope is cancelled anywhere, then closes the stream: the
    producer is unblocked (a put waiting for room returns False), nothing hangs or is
    left running, and every chunk accepted is consumed or still queued (or counted as
    dropped, with drop-oldest), in order; the queue's length ends at 0."""
    clean, counted = stream_once(kind, drop, None)
    assert clean["seen"] == list(range(10)) or drop
    sent = 0
    for at in range(counted.steps):
        state, instrument = stream_once(kind, drop, at)
        if not instrument.sent:
            continue
        sent += 1
        where = f"consumer cancelled before step {at} of {counted.steps}"
        assert not state["hung"], where
        assert state["leftover"] == [], where
        assert state["len"] == 0, where
        seen, accepted = state["seen"], state["accepted"]
        assert seen == sorted(seen), where
        assert set(seen) <= set(accepted), where
        if drop:
            assert len(accepted) - len(seen) <= state["dropped"], where
        else:
            assert seen == accepted, (where, seen, accepted)
    assert sent >= 20


# --------------------------------------------------------------------------- 6. tools executor


@pytest.mark.parametrize("approval", [False, True], ids=["plain", "approval"])
@pytest.mark.parametrize("emit", [False, True], ids=["quiet", "events"])
def test_executor_cancelled_by_the_callers_scope_keeps_undo_data_with_the_change(
    approval: bool, emit: bool
) -> None:
    """The v2 executor's approval wait, tool call, undo data write, undo and its data
    delete, cancelled by the caller's scope anywhere (audit 18 sent Ctrl-C only): the
    change and its undo data go together, and no approval request stays PENDING."""

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Cancelled, str], None]]:
        setup = UndoableSetup(emit=emit, approval=approval)

        async def body() -> str:
            set_event_sink(setup.sink)
            async with trio.open_nursery() as nursery:
                if approval:
                    nursery.start_soon(setup.approve_when_asked)
                await setup.executor.execute(Act(ACTION, "ADD", {}), exec_ctx())
            assert await setup.executor.undo_action(ACTION, exec_ctx()) is True
            return "undone"

        def check(got: Cancelled, where: str) -> None:
            assert setup.counter.value in (0, 1), where
            assert stored(setup.store) is (setup.counter.value == 1), (where, setup.counter.value)
            assert pending_statuses(setup.service) == [], where
            if not got.caught:
                assert (got.value, setup.counter.value) == ("undone", 0), where

        return body, check

    cancel_sweep(make, minimum=12)
