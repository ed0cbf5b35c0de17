"""Audit 18 (third pass): Ctrl-C and SystemExit where the first two passes did not look.

A KeyboardInterrupt delivered at every step (trio hands it to the main task at its next
checkpoint, shielded scopes included) of: approvals (in memory and SQLite), the v2 tool
executor's approval and undo, the SQLite stores and their idempotency claims, the
task group over a ChunkQueue, the analytics exporters, the CLI's ``run_graph`` and
``run_simple_pipeline`` cancelled by the caller's scope. Each run has a virtual-time
watchdog (a hang fails the test) and a task ledger (nothing the call started outlives it).
"""

from __future__ import annotations

import io
import signal
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import set_event_sink
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.testing import reset_globals
from stageflow_trio.tools.adapters import DictContextAdapter
from stageflow_trio.tools.approval import ApprovalService, ApprovalStatus
from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput, UndoMetadata
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor, ToolExecutorConfig
from stageflow_trio.tools.undo import UndoStore
from tests.trio_setups import SigintAtStep, mock_clock

ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaa18")
WATCHDOG_SECONDS = 10_000.0
# SQLite runs its statements in threads: on a virtual clock trio would jump to the next
# deadline while one runs, so those runs use the real clock and a short bound.
REAL_WATCHDOG_SECONDS = 5.0


class own_nursery:
    """The test's own nursery; a one-leaf group (the test's, not the library's) unwrapped."""

    def __init__(self) -> None:
        self._manager = trio.open_nursery()

    async def __aenter__(self) -> trio.Nursery:
        return await self._manager.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool:
        try:
            return bool(await self._manager.__aexit__(*exc_info))
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1 and not isinstance(
                group.exceptions[0], BaseExceptionGroup
            ):
                raise group.exceptions[0] from None
            raise


@attrs.define
class Outcome:
    error: BaseException | None
    hung: bool
    leftover: list[str]
    sent: bool
    steps: int
    handler: object


def run_once(
    body: Callable[[], Awaitable[object]],
    at: int | None,
    *,
    restrict: bool = True,
    real_time: bool = False,
) -> Outcome:
    """``trio.run`` of ``body`` with SIGINT before step ``at``; what happened."""
    instrument = SigintAtStep(at)
    hung: list[bool] = []
    leftover: list[str] = []

    async def main() -> None:
        before = set(instrument.alive)
        with trio.CancelScope() as guard:

            async def watchdog() -> None:
                await trio.sleep(REAL_WATCHDOG_SECONDS if real_time else WATCHDOG_SECONDS)
                hung.append(True)
                guard.cancel()

            trio.lowlevel.spawn_system_task(watchdog)
            try:
                await body()
            finally:
                me = trio.lowlevel.current_task()
                leftover.extend(
                    t.name for t in instrument.alive - before - {me} if "watchdog" not in t.name
                )

    error: BaseException | None = None
    try:
        trio.run(
            main,
            clock=None if real_time else mock_clock(),
            instruments=[instrument],
            restrict_keyboard_interrupt_to_checkpoints=restrict,
        )
    except BaseException as exc:  # inspected by the caller
        error = exc
    return Outcome(
        error, bool(hung), leftover, instrument.sent, instrument.steps, instrument.handler
    )


def sweep(
    make: Callable[[], tuple[Callable[[], Awaitable[object]], Callable[[Outcome, str], None]]],
    *,
    restrict: bool = True,
    minimum: int = 5,
    real_time: bool = False,
) -> int:
    """Runs ``make()``'s body once uninterrupted, then with SIGINT before each step;
    checks every run (bare KeyboardInterrupt or none, no hang, no task left), then
    calls the scenario's own check. Returns how many runs were interrupted."""
    reset_globals()
    body, check = make()
    clean = run_once(body, None, restrict=restrict, real_time=real_time)
    assert clean.error is None, repr(clean.error)
    check(clean, "uninterrupted")
    sent = 0
    for at in range(clean.steps + 2):
        reset_globals()
        body, check = make()
        got = run_once(body, at, restrict=restrict, real_time=real_time)
        if not got.sent:
            continue
        sent += 1
        where = f"SIGINT before step {at} of {clean.steps}"
        assert not got.hung, where
        assert got.error is None or type(got.error) is KeyboardInterrupt, (where, repr(got.error))
        assert got.leftover == [], (where, got.leftover)
        check(got, where)
    assert sent >= minimum, sent
    return sent


# --------------------------------------------------------------------------- 1. approvals


def pending_statuses(service: ApprovalService) -> list[ApprovalStatus]:
    async def read() -> list[ApprovalStatus]:
        return [r.status for r in await service.get_pending_requests()]

    return trio.run(read)


@pytest.mark.parametrize("decided", [False, True], ids=["times out", "decided"])
def test_ctrl_c_at_every_step_of_an_approval_leaves_no_request_pending(decided: bool) -> None:
    """A waiter interrupted anywhere (the request, the wait, the timeout's EXPIRED close)
    leaves no PENDING request behind (nobody will read its decision). Before the fix a
    Ctrl-C landing on the shielded close after the timeout left it PENDING."""

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Outcome, str], None]]:
        service = ApprovalService()
        got: list[object] = []

        async def body() -> None:
            request = await service.request_approval(ACTION, "delete")
            async with own_nursery() as nursery:
                if decided:

                    async def decide() -> None:
                        await trio.sleep(0.5)
                        await service.record_decision(request.id, True)

                    nursery.start_soon(decide)
                try:
                    got.append(await service.await_decision(request.id, timeout_seconds=1))
                except TimeoutError:
                    got.append("timeout")

        def check(outcome: Outcome, where: str) -> None:
            assert pending_statuses(service) == [], where
            if outcome.error is None:
                assert len(got) == 1, where

        return body, check

    sweep(make)


# --------------------------------------------------------------------------- 2. tool executor


class Counter:
    """A tool whose action adds one and whose undo takes it away."""

    def __init__(self) -> None:
        self.value = 0

    async def add(self, tool_input: ToolInput) -> ToolOutput:
        self.value += 1
        return ToolOutput.ok(undo_metadata={"before": self.value - 1})

    async def undo(self, metadata: UndoMetadata) -> None:
        self.value -= 1


class CheckpointSink:
    def __init__(self) -> None:
        self.types: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()
        self.types.append(type)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.types.append(type)


@attrs.frozen
class Act:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


def exec_ctx() -> DictContextAdapter:
    return DictContextAdapter({"pipeline_run_id": None, "request_id": None, "execution_mode": None})


def stored(store: UndoStore) -> bool:
    async def read() -> bool:
        return await store.get(ACTION) is not None

    # On the clock the entry was stored with (its time to live is on trio's clock).
    return trio.run(read, clock=mock_clock())


class UndoableSetup:
    """A v2 executor with one undoable tool (``ADD``, on ``counter``), its undo store, its
    approval service (the tool asks for approval when ``approval``) and a checkpointing sink."""

    def __init__(self, *, emit: bool, approval: bool) -> None:
        self.counter, self.store, self.service = Counter(), UndoStore(), ApprovalService()
        self.sink = CheckpointSink()
        self.executor = AdvancedToolExecutor(
            ToolExecutorConfig(emit_events=emit),
            undo_store=self.store,
            approval_service=self.service,
        )
        self.executor.register(
            ToolDefinition(
                "add",
                "ADD",
                self.counter.add,
                undoable=True,
                undo_handler=self.counter.undo,
                requires_approval=approval,
            )
        )

    async def approve_when_asked(self) -> None:
        """Approve the first request as soon as there is one."""
        while True:
            pending = await self.service.get_pending_requests()
            if pending:
                await self.service.record_decision(pending[0].id, True)
                return
            await trio.sleep(0.1)


@pytest.mark.parametrize("approval", [False, True], ids=["plain", "approval"])
@pytest.mark.parametrize("emit", [False, True], ids=["quiet", "events"])
def test_ctrl_c_at_every_step_of_execute_then_undo_keeps_undo_data_with_the_change(
    approval: bool, emit: bool
) -> None:
    """The handler's change and its undo data go together: an action done has its data
    stored, an action undone has it deleted (else a second undo undoes it twice). Before
    the fix a Ctrl-C landing on the store's write (or delete) itself skipped it: the
    executor re-ran it, shielded, only for ``trio.Cancelled``."""

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Outcome, str], None]]:
        setup = UndoableSetup(emit=emit, approval=approval)
        phases: list[str] = []

        async def body() -> None:
            set_event_sink(setup.sink)
            async with own_nursery() as nursery:
                if approval:
                    nursery.start_soon(setup.approve_when_asked)
                await setup.executor.execute(Act(ACTION, "ADD", {}), exec_ctx())
            phases.append("done")
            assert await setup.executor.undo_action(ACTION, exec_ctx()) is True
            phases.append("undone")

        def check(outcome: Outcome, where: str) -> None:
            assert setup.counter.value in (0, 1), where
            assert stored(setup.store) is (setup.counter.value == 1), (
                where,
                setup.counter.value,
                phases,
            )
            assert pending_statuses(setup.service) == [], where

        return body, check

    sweep(make)


# --------------------------------------------------------------------------- 3. run_graph


@pytest.mark.parametrize("handle_sigint", [True, False])
def test_run_graph_ctrl_c_at_every_step(handle_sigint: bool) -> None:
    """With ``handle_sigint`` the Ctrl-C is the graceful stop (130, or 0 when it came
    after the graph ended), never an exception; without, it is 130 (raised in the graph
    run) or the KeyboardInterrupt itself; each stage's cleanup ran."""
    from stageflow_trio.cli.run import EXIT_INTERRUPTED, EXIT_OK, PlainView, RunOptions, run_graph

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Outcome, str], None]]:
        started: list[str] = []
        cleaned: list[str] = []
        codes: list[int] = []
        previous = signal.getsignal(signal.SIGINT)

        async def stage(ctx: StageContext) -> StageOutput:
            started.append(ctx.stage_name)

            async def cleanup() -> None:
                cleaned.append(ctx.stage_name)

            ctx.register_cleanup(cleanup, name=ctx.stage_name)
            await trio.sleep(0.1)
            return StageOutput.ok()

        graph = (
            Pipeline()
            .with_stage("a", stage, StageKind.TRANSFORM)
            .with_stage("b", stage, StageKind.WORK, dependencies=("a",))
            .with_stage("c", stage, StageKind.WORK, dependencies=("a",))
            .build()
        )

        async def body() -> None:
            codes.append(
                await run_graph(
                    graph, RunOptions(), PlainView(io.StringIO()), handle_sigint=handle_sigint
                )
            )

        def check(outcome: Outcome, where: str) -> None:
            assert signal.getsignal(signal.SIGINT) is previous, where
            assert sorted(cleaned) == sorted(started), where
            if getattr(outcome.handler, "__name__", "") == "on_sigint":  # run_graph's own
                # The first Ctrl-C never raises here; the status says what happened.
                assert outcome.error is None, where
            if outcome.error is None:
                assert len(codes) == 1, where
                assert codes[0] in (EXIT_OK, EXIT_INTERRUPTED), (where, codes)

        return body, check

    sweep(make)


# --------------------------------------------------------------------------- 4. task groups


def test_structured_task_group_over_a_chunk_queue_ctrl_c_at_every_step() -> None:
    from stageflow_trio.helpers.streaming import ChunkQueue
    from stageflow_trio.pipeline.cancellation import StructuredTaskGroup

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Outcome, str], None]]:
        cleanups: list[str] = []
        put: list[int] = []
        got: list[int] = []

        async def body() -> None:
            queue: ChunkQueue[int] = ChunkQueue(max_size=2)

            async def produce() -> None:
                for i in range(5):
                    await queue.put(i)
                    put.append(i)
                    await trio.sleep(0.01)
                await queue.close()

            async def consume() -> None:
                async for item in queue:
                    got.append(item)

            async def release() -> None:
                await trio.lowlevel.checkpoint()
                cleanups.append("release")

            async with StructuredTaskGroup() as tg:
                tg.cleanup_registry.register(release, name="release")
                tg.create_task(produce)
                tg.create_task(consume)

        def check(outcome: Outcome, where: str) -> None:
            assert got == put[: len(got)], where
            if outcome.error is None:
                assert got == [0, 1, 2, 3, 4], where
                assert cleanups == ["release"], where

        return body, check

    sweep(make)


# --------------------------------------------------------------------------- 5. analytics


def test_buffered_exporter_and_analytics_sink_ctrl_c_at_every_step() -> None:
    """Every event accepted is exported or still in the buffer (never half-exported
    twice); the exporter is closed by its block."""
    from stageflow_trio.helpers.analytics import AnalyticsEvent, AnalyticsSink, BufferedExporter

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Outcome, str], None]]:
        exported: list[str] = []
        closed: list[bool] = []

        class Memory:
            async def export(self, event: AnalyticsEvent) -> None:
                await trio.lowlevel.checkpoint()
                exported.append(event.event_type)

            async def export_batch(self, events: list[AnalyticsEvent]) -> None:
                await trio.lowlevel.checkpoint()
                exported.extend(e.event_type for e in events)

            async def flush(self) -> None:
                await trio.lowlevel.checkpoint()

            async def close(self) -> None:
                await trio.lowlevel.checkpoint()
                closed.append(True)

        async def body() -> None:
            async with BufferedExporter(Memory(), batch_size=2) as exporter:
                for i in range(3):
                    await exporter.export(AnalyticsEvent(event_type=f"e{i}"))
                async with AnalyticsSink(exporter) as analytics:
                    analytics.try_emit(type="stage.started", data={"stage": "s"})
                    await analytics.emit(type="stage.completed", data={"stage": "s"})

        def check(outcome: Outcome, where: str) -> None:
            assert len(exported) == len(set(exported)), (where, exported)
            if outcome.error is None:
                assert sorted(exported) == [
                    "e0",
                    "e1",
                    "e2",
                    "stage.completed",
                    "stage.started",
                ], where
                assert closed == [True], where

        return body, check

    sweep(make)


# --------------------------------------------------------------------------- 6. SQLite


def sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def sqlite_closed(connection: sqlite3.Connection) -> bool:
    """Whether ``connection`` has been closed (a statement on it raises then)."""
    try:
        connection.execute("select 1")
    except sqlite3.ProgrammingError:
        return True
    return False


class SigintWhenSpawned(trio.abc.Instrument):
    """Sends SIGINT as a task whose name holds ``name`` is spawned (in the run loop, so
    trio delivers the KeyboardInterrupt to the main task at its next checkpoint)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = False

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if not self.sent and self.name in task.name:
            self.sent = True
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_while_the_sqlite_store_starts_its_background_task_ends_the_block_at_once(
    tmp_path: Path,
) -> None:
    """A Ctrl-C reaching ``open_stores`` while the idempotency store's background task
    starts: the KeyboardInterrupt itself, at once, the file closed. Before the fix
    ``nursery.start``'s cancelled nursery kept the task (``started()`` does not move it
    then), its shielded drain waited 5 s for a release channel only the opener closes,
    and the opener then got trio's ``TrioInternalError`` ("Internal nursery should not
    have multiple tasks": the KeyboardInterrupt beside the task's group of Cancelled)."""
    import time

    from stageflow_trio.stores import open_stores

    path = tmp_path / "stores.db"
    entered: list[bool] = []
    instrument = SigintWhenSpawned("_serve")

    async def main() -> None:
        async with open_stores(f"sqlite:///{path}"):
            entered.append(True)

    started = time.monotonic()
    with pytest.raises(BaseException) as caught:  # noqa: PT011 - the type is the point
        trio.run(main, instruments=[instrument], restrict_keyboard_interrupt_to_checkpoints=True)
    elapsed = time.monotonic() - started
    assert instrument.sent
    assert type(caught.value) is KeyboardInterrupt, repr(caught.value)
    assert entered == []
    assert elapsed < 2.5, elapsed
    # The connection was closed: the file opens and is usable.
    assert sqlite_rows(path, "SELECT key FROM idempotency_claims") == []


def test_sqlite_stores_ctrl_c_at_every_step(tmp_path: Path) -> None:
    """Approvals and idempotency claims in a SQLite file under a Ctrl-C anywhere (real
    clock: statements run in threads, so the steps vary between runs): the block ends,
    no approval stays PENDING, no claim stays held, the KeyboardInterrupt is bare."""
    from stageflow_trio.pipeline.dag import StageGraph, StageSpec
    from stageflow_trio.pipeline.interceptors import get_default_interceptors
    from stageflow_trio.stages import PipelineContext
    from stageflow_trio.stores import open_stores

    counter = [0]

    def make() -> tuple[Callable[[], Awaitable[object]], Callable[[Outcome, str], None]]:
        counter[0] += 1
        path = tmp_path / f"s{counter[0]}.db"

        async def stage(ctx: PipelineContext) -> dict[str, Any]:
            await trio.lowlevel.checkpoint()
            return {"ok": True}

        async def body() -> None:
            async with open_stores(f"sqlite:///{path}") as stores:
                service = stores.approval_service(default_timeout_seconds=5)
                request = await service.request_approval(ACTION, "delete")
                async with own_nursery() as nursery:
                    nursery.start_soon(service.record_decision, request.id, True)
                    await service.await_decision(request.id)
                interceptors = get_default_interceptors(idempotency_store=stores.idempotency)
                ctx = PipelineContext.create()
                ctx.data["idempotency_key"] = "k"
                graph = StageGraph([StageSpec(name="s", runner=stage)], interceptors=interceptors)
                await graph.run(ctx)

        def check(outcome: Outcome, where: str) -> None:
            if not path.exists():
                return
            pending = sqlite_rows(path, "SELECT status FROM approvals WHERE status = 'pending'")
            assert pending == [], where
            assert sqlite_rows(path, "SELECT key FROM idempotency_claims") == [], where

        return body, check

    sweep(make, minimum=10, real_time=True)


@pytest.mark.parametrize("where", ["open", "close"])
async def test_a_ctrl_c_as_the_sqlite_thread_returns_leaves_no_connection_open(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # Python 3.13 warns of an unclosed sqlite3 connection, and the Ctrl-C sweep above
    # found two: the connection the opening thread handed back as the Ctrl-C arrived
    # (lost with its result), and the one whose shielded close the Ctrl-C cut before
    # the closing thread ran. A KeyboardInterrupt delivered as to_thread.run_sync
    # returns, here, stands in for both.
    import sqlite3

    from stageflow_trio.stores import sqlite as sqlite_module

    opened: list[sqlite3.Connection] = []
    real_connect = sqlite_module._connect

    def recording_connect(path: str, setting: str) -> sqlite3.Connection:
        connection = real_connect(path, setting)
        opened.append(connection)
        return connection

    real_run_sync = trio.to_thread.run_sync

    async def interrupted_run_sync(fn: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(fn, "__name__", "")
        if (where == "open" and name == "connect") or (where == "close" and name == "close"):
            if where == "open":
                await real_run_sync(fn, *args, **kwargs)  # the thread ran; its result is lost
            raise KeyboardInterrupt
        return await real_run_sync(fn, *args, **kwargs)

    monkeypatch.setattr(sqlite_module, "_connect", recording_connect)
    monkeypatch.setattr(trio.to_thread, "run_sync", interrupted_run_sync)
    with pytest.raises(KeyboardInterrupt):
        async with sqlite_module.open_sqlite_stores(str(tmp_path / "stores.db")):
            pass
    [connection] = opened
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("select 1")
