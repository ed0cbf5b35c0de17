"""Audit 19: a service that runs for days in one process.

Each subsystem is exercised many times in one trio run, and what it retains is
measured: internal dicts and indexes, the root task's children, open file
descriptors, rows a shared store keeps. A test asserts a bound (the state is
back to empty, or it holds what a short run holds), so that the growth fails it
if it comes back.

Found: the shared undo backends kept an entry for every undoable action ever
run (the executor reads undo data only to undo): the SQLite file a row, the
Redis index an id. The in-memory backend has swept them since audit 16.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import uuid
from contextlib import closing
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.events import BackpressureAwareEventSink, NoOpEventSink, set_event_sink
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
from stageflow_trio.pipeline.interceptors import get_default_interceptors
from stageflow_trio.pipeline.interceptors_hardening import (
    ContextSizeInterceptor,
    ImmutabilityInterceptor,
)
from stageflow_trio.pipeline.subpipeline import get_child_tracker, get_subpipeline_spawner
from stageflow_trio.stores import open_stores
from stageflow_trio.stores.sqlite import PURGE_INTERVAL_SECONDS, open_sqlite_stores
from stageflow_trio.testing import create_test_pipeline_context, create_test_stage_context
from stageflow_trio.tools.adapters import DictContextAdapter
from stageflow_trio.tools.approval import ApprovalService
from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput, UndoMetadata
from stageflow_trio.tools.errors import ToolApprovalDeniedError
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor, ToolExecutorConfig
from stageflow_trio.tools.undo import UndoStore

# The Redis server fixtures of the store tests (a server of its own for this module
# unless STAGEFLOW_TEST_REDIS_URL names one; skipped without a redis-server binary).
from tests.stores.conftest import _command, redis_server, redis_url  # noqa: F401
from tests.trio_setups import inline_run_sync

if TYPE_CHECKING:
    from pathlib import Path


@attrs.frozen
class Act:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


CTX = DictContextAdapter({"pipeline_run_id": str(uuid.uuid4()), "execution_mode": "agent"})


async def _change(tool_input: ToolInput) -> ToolOutput:
    return ToolOutput.ok(data={"done": True}, undo_metadata={"before": 1})


async def _revert(metadata: UndoMetadata) -> None:
    await trio.lowlevel.checkpoint()


def _undoable() -> ToolDefinition:
    return ToolDefinition(
        name="change", action_type="CHANGE", handler=_change, undoable=True, undo_handler=_revert
    )


# --------------------------------------------------------------------------- found: undo stores


def undo_rows(path: Path) -> int:
    """How many rows the SQLite file's undo table holds."""
    with closing(sqlite3.connect(path)) as connection:
        count: int = connection.execute("SELECT count(*) FROM undo").fetchone()[0]
        return count


async def test_sqlite_deletes_expired_undo_rows_of_actions_never_undone(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The undo table kept a row for every undoable action ever run."""
    # Statements run inline, not in a worker thread: the autojump clock jumps whenever
    # every task waits, a thread's statement included, so where the purges fell among
    # the actions depended on the threads' speed (the test failed now and then).
    monkeypatch.setattr(trio.to_thread, "run_sync", inline_run_sync)
    set_event_sink(NoOpEventSink())
    wall = [1_000_000.0]
    path = tmp_path / "s.db"

    async with open_sqlite_stores(str(path), clock=lambda: wall[0]) as stores:
        executor = AdvancedToolExecutor(
            ToolExecutorConfig(undo_ttl_seconds=10),
            undo_store=stores.undo_store(),
            approval_service=ApprovalService(),
        )
        executor.register(_undoable())
        kept = uuid.uuid4()
        await stores.undo.put(
            UndoMetadata(action_id=kept, tool_name="change", undo_data={}), float("inf")
        )
        for _ in range(3):  # three "days" of actions nobody undoes
            for _ in range(50):
                await executor.execute(Act(uuid.uuid4(), "CHANGE", {}), CTX)
            assert undo_rows(path) == 51
            wall[0] += 11
            await trio.sleep(PURGE_INTERVAL_SECONDS + 1)
            await stores.undo.get(kept)  # after the purge (one statement at a time)
            assert undo_rows(path) == 1
        assert [m.action_id for m in await stores.undo.get_all()] == [kept]


async def test_the_sqlite_purge_keeps_an_undo_entry_at_its_expiry_instant(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An undo entry is valid up to and including its expiry instant (as the reads say):
    # the purge at that instant keeps it, the next one (a moment later) deletes it.
    monkeypatch.setattr(trio.to_thread, "run_sync", inline_run_sync)
    wall = [1_000_000.0]
    path = tmp_path / "s.db"

    async with open_sqlite_stores(str(path), clock=lambda: wall[0]) as stores:
        action = uuid.uuid4()
        await stores.undo.put(UndoMetadata(action_id=action, tool_name="t", undo_data={}), 10)
        wall[0] += 10  # the expiry instant
        await trio.sleep(PURGE_INTERVAL_SECONDS + 1)
        assert undo_rows(path) == 1
        assert await stores.undo.get(action) is not None
        wall[0] += 0.001
        await trio.sleep(PURGE_INTERVAL_SECONDS)
        assert undo_rows(path) == 0


async def test_redis_undo_index_is_pruned_by_writes(redis_url: str) -> None:  # noqa: F811
    """Redis expires an entry's key but the index kept its id until a read swept it."""
    async with open_stores(redis_url) as stores:
        backend = stores.undo
        index = backend._backend.key("undos")  # type: ignore[attr-defined]

        def index_size() -> int:
            return int(_command(redis_url, "ZCARD", index)[1:].split(b"\r\n")[0])

        async def put(action_id: uuid.UUID) -> None:
            await backend.put(
                UndoMetadata(action_id=action_id, tool_name="t", undo_data={}), float("inf")
            )

        live = uuid.uuid4()
        await put(live)
        # The first put swept (no countdown yet) and set the next sweep 64 puts away: the
        # index's size (1) or 64, whichever is larger.
        sweep = backend._backend.key("undos", "sweep")  # type: ignore[attr-defined]
        assert _command(redis_url, "GET", sweep) == b"$2\r\n64\r\n"
        sizes = []
        for _ in range(5):
            ids = [uuid.uuid4() for _ in range(100)]
            for action_id in ids:
                await put(action_id)
            # What Redis's expiry does: the keys go, the index is not told.
            for action_id in ids:
                key = backend._backend.key("undo", str(action_id))  # type: ignore[attr-defined]
                assert _command(redis_url, "DEL", key) == b":1\r\n"
            sizes.append(index_size())
        # Near the live entries plus one round of writes (the sweep runs after as many
        # puts as it left, at least 64), not 501 ids.
        assert max(sizes) <= 1 + 100 + 64, sizes
        assert sizes[-1] <= sizes[1], sizes
        assert [m.action_id for m in await backend.get_all()] == [live]


# --------------------------------------------------------------------------- guards: no growth


async def _ok(ctx: Any) -> StageOutput:
    return StageOutput.ok(x=1)


async def _fail(ctx: Any) -> StageOutput:
    raise RuntimeError("boom")


async def _hang(ctx: Any) -> StageOutput:
    await trio.sleep_forever()
    raise AssertionError


def _root_children() -> int:
    """How many tasks run directly under the root task (the test's own, the system's)."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    return sum(len(nursery.child_tasks) for nursery in root.child_nurseries)


def _fds() -> int:
    """Open file descriptors, after collecting what an earlier test left for the GC
    (a Redis client's sockets): a count that can only grow with this test's leaks."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


async def test_graph_runs_with_default_and_hardening_interceptors_leave_no_per_call_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    interceptors = [
        *get_default_interceptors(),
        ImmutabilityInterceptor(crash_on_violation=False),
        ContextSizeInterceptor(),
    ]
    graphs = [
        Pipeline("p")
        .with_stage("a", _ok, StageKind.TRANSFORM)
        .with_stage("b", last, StageKind.WORK, dependencies=("a",))
        .build(interceptors=interceptors)
        for last in (_ok, _fail, _hang)
    ]
    children = _root_children()
    fds = _fds()
    # Twenty of each run (ok, failed, cancelled while it hangs): each leaves the same state
    # (the breaker never opens: a success resets its count before the fifth failure), the
    # per-call dicts must be empty and the others keyed by stage, so one leaked entry a
    # run shows as it did in 600 runs (until audit 26); no interceptor sweeps every N calls.
    for i in range(60):
        graph = graphs[i % 3]
        with trio.move_on_after(1):
            with contextlib.suppress(UnifiedStageExecutionError):  # the failing stage
                await graph.run(create_test_stage_context(event_sink=NoOpEventSink()))
    for interceptor in interceptors:
        for name in ("_before", "_sizes", "_spans", "_owned"):
            assert len(getattr(interceptor, name, ())) == 0, (interceptor, name)
        # Keyed by stage name: the two stages, whatever the number of runs.
        for name in ("_failure_counts", "_breaker_states", "_metrics"):
            assert len(getattr(interceptor, name, ())) <= 2, (interceptor, name)
    assert _root_children() == children
    assert _fds() <= fds


async def test_global_spawner_and_tracker_forget_children_that_ended(
    autojump_clock: trio.testing.MockClock,
) -> None:
    spawner = get_subpipeline_spawner()
    tracker = get_child_tracker()

    async def child(ctx: Any) -> dict[str, Any]:
        await trio.sleep(0.1)
        return {}

    async def broken(ctx: Any) -> dict[str, Any]:
        raise ValueError("child failed")

    async def stuck(ctx: Any) -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError

    for _ in range(300):
        ctx = create_test_pipeline_context()
        assert (await spawner.spawn("c", ctx, uuid.uuid4(), "s", child)).success
        assert not (await spawner.spawn("c", ctx, uuid.uuid4(), "s", broken)).success
        with trio.move_on_after(1):  # the parent's own scope, not cancel_with_children
            await spawner.spawn("c", ctx, uuid.uuid4(), "s", stuck)
    assert spawner.running_children == frozenset()
    assert spawner._retained == {}
    assert spawner._canceled_runs == {}  # only cancel_with_children records (documented)
    assert tracker._children == {}
    assert tracker._parents == {}


async def test_executor_approvals_and_undo_leave_nothing_once_cleaned_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    set_event_sink(NoOpEventSink())
    approvals = ApprovalService()
    undo = UndoStore()
    executor = AdvancedToolExecutor(
        ToolExecutorConfig(approval_timeout_seconds=1, undo_ttl_seconds=10),
        undo_store=undo,
        approval_service=approvals,
    )
    executor.register(_undoable())
    executor.register(
        ToolDefinition(name="ask", action_type="ASK", handler=_change, requires_approval=True)
    )

    async def decide(granted: bool) -> None:
        await trio.testing.wait_all_tasks_blocked()  # the call waits for its decision
        pending = await approvals.get_pending_requests()
        await approvals.record_decision(pending[0].id, granted=granted)

    for i in range(200):
        action = Act(uuid.uuid4(), "CHANGE", {})
        await executor.execute(action, CTX)
        assert await executor.undo_action(action.id, CTX)
        kind = i % 4
        async with trio.open_nursery() as nursery:
            if kind < 2:
                nursery.start_soon(decide, kind == 0)
            with trio.move_on_after(0.5 if kind == 3 else 5):
                with contextlib.suppress(ToolApprovalDeniedError):
                    await executor.execute(Act(uuid.uuid4(), "ASK", {}), CTX)
        # A service forgets a finished request with cleanup() (kept until then, as the
        # reference keeps it).
        for request in list(approvals.backend._requests):  # type: ignore[attr-defined]
            await approvals.cleanup(request)
    backend = approvals.backend
    for name in ("_requests", "_events", "_decisions", "_open", "_by_action", "_action_of"):
        assert len(getattr(backend, name)) == 0, name
    assert executor._undo_keys == {}
    assert executor._undoing == {}
    assert len(undo.backend) == 0  # type: ignore[arg-type]


async def test_backpressure_sink_cycles_leave_no_task_or_registration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from stageflow_trio.events._registry import _run_registry

    children = _root_children()
    for i in range(300):
        if i % 2:
            async with BackpressureAwareEventSink(NoOpEventSink(), max_queue_size=4) as sink:
                await sink.emit(type="x", data={})
        else:
            # A worker whose nursery is cancelled without stop().
            with trio.move_on_after(1):
                async with trio.open_nursery() as nursery:
                    sink = BackpressureAwareEventSink(NoOpEventSink(), max_queue_size=4)
                    await sink.start(nursery)
                    await sink.emit(type="x", data={})
                    await trio.sleep_forever()
    assert _run_registry().sinks == set()
    assert _root_children() == children
