"""Audit 16, mutation pass (I/O side): tests that kill mutants the suite let survive.

Modules: events/_sink_worker.py, events/_backpressure.py, helpers/_chunk_queue.py,
pipeline/idempotency.py, pipeline/retry.py, tools/executor_v2.py, tools/approval.py,
_budget.py. Each test names the mutant it kills.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio._budget import schedule_point_due
from stageflow_trio._time import utc_now
from stageflow_trio.events import BackpressureAwareEventSink
from stageflow_trio.lowlevel import checkpoint_budget
from stageflow_trio.pipeline.idempotency import CachedStageResult, InMemoryIdempotencyStore
from stageflow_trio.pipeline.interceptors import ErrorAction
from stageflow_trio.pipeline.retry import JitterStrategy, RetryInterceptor
from stageflow_trio.stages.result import StageResult
from stageflow_trio.tools.approval import ApprovalService
from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput, UndoMetadata
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor
from stageflow_trio.tools.undo import UndoStore
from tests.fakes import pipeline_context

# --- pipeline/idempotency.py: InMemoryIdempotencyStore --------------------------------------


def _entry(data: dict[str, Any]) -> CachedStageResult:
    now = utc_now()
    return CachedStageResult(
        result=StageResult(name="s", status="completed", started_at=now, ended_at=now, data=data),
        params_hash="h",
    )


async def test_store_get_and_delete_refuse_a_key_that_is_not_a_str() -> None:
    # Kills: dropping _check_key(...) in InMemoryIdempotencyStore.get / .delete.
    store = InMemoryIdempotencyStore()
    with pytest.raises(TypeError, match="key"):
        await store.get(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        await store.delete(1)  # type: ignore[arg-type]


async def test_store_set_refuses_an_entry_that_is_not_a_cached_stage_result() -> None:
    # Kills: dropping _check_entry(owner, entry) in InMemoryIdempotencyStore.set.
    store = InMemoryIdempotencyStore()
    with pytest.raises(TypeError, match="entry"):
        await store.set("k", {"result": None})  # type: ignore[arg-type]
    assert len(store) == 0


async def test_full_sweep_runs_after_64_writes_counted_from_purge_expired(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Kills: purge_expired resetting the write counter to 1 instead of 0 (the sweep one
    # write early). An expired entry behind an older live one stays counted by len()
    # until the full sweep, which comes after max(len, 64) writes.
    store = InMemoryIdempotencyStore()
    store.purge_expired()
    await store.set("live", _entry({}))  # write 1: oldest, never expires
    await store.set("short", _entry({}), ttl_seconds=1)  # write 2
    await trio.sleep(2)
    for _ in range(61):  # writes 3..63
        await store.set("other", _entry({}))
    assert len(store) == 3  # "short" expired but not swept yet
    await store.set("other", _entry({}))  # write 64: the full sweep
    assert len(store) == 2
    assert await store.get("short") is None


# --- pipeline/retry.py: RetryInterceptor ---------------------------------------------------


async def test_retry_state_without_an_attempt_counts_as_the_first_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Kills: `state.get("attempt", 0)` -> `state.get("attempt", 1)` in on_error (a state
    # dict the stage rewrote without "attempt" would be read as one retry already made).
    retry = RetryInterceptor(max_attempts=2, base_delay_ms=0, jitter_strategy=JitterStrategy.NONE)
    ctx = pipeline_context(topology="t", execution_mode="practice")
    ctx.data["_retry.s"] = {"last_error": None}
    assert await retry.on_error("s", TimeoutError("slow"), ctx) is ErrorAction.RETRY
    assert ctx.data["_retry.s"]["attempt"] == 1


async def test_retry_on_error_returns_fail_when_attempts_are_used_up() -> None:
    # Kills: `return ErrorAction.FAIL` -> `return None` in _exhausted.
    retry = RetryInterceptor(max_attempts=1, base_delay_ms=0)
    ctx = pipeline_context(topology="t", execution_mode="practice")
    await retry.before("s", ctx)
    assert await retry.on_error("s", TimeoutError("slow"), ctx) is ErrorAction.FAIL


# --- events/_backpressure.py: BackpressureAwareEventSink ------------------------------------


class _Down:
    """A downstream EventSink's synchronous half; the tests' sinks add ``emit``."""

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        return None


class _Recording(_Down):
    def __init__(self) -> None:
        self.types: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()
        self.types.append(type)


async def test_stop_of_a_cancelled_caller_drains_then_raises_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Kills: dropping the final `await trio.lowlevel.checkpoint()` of stop() (a cancelled
    # caller would get a normal return).
    down = _Recording()
    sink = BackpressureAwareEventSink(down)
    for name in ("a", "b"):
        assert sink.try_emit(type=name, data=None)
    with trio.CancelScope() as scope:
        scope.cancel()
        await sink.stop()
        pytest.fail("stop() returned normally to a cancelled caller")  # pragma: no cover
    assert scope.cancelled_caught
    assert down.types == ["a", "b"]
    assert sink.queue_size == 0


async def test_stop_from_inside_emit_still_drains_when_the_owner_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Kills: shield=True -> False in _run_worker's finally (the stop the worker asked for
    # would be cut by the owner's cancellation: queued events neither delivered nor counted).
    delivered: list[str] = []
    drops: list[str] = []

    class StopsOnFirst(_Down):
        async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            await trio.lowlevel.checkpoint()
            delivered.append(type)
            if type == "a":
                await sink.stop()
                nursery.cancel_scope.cancel()

    sink = BackpressureAwareEventSink(StopsOnFirst(), on_drop=lambda t, _d: drops.append(t))
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        for name in ("a", "b", "c"):
            assert sink.try_emit(type=name, data=None)
    assert delivered == ["a", "b", "c"]
    assert drops == []
    assert not sink.is_running
    assert sink.queue_size == 0


async def test_stop_called_inside_the_downstreams_emit_is_a_checkpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Kills: dropping the `await trio.lowlevel.checkpoint()` of stop()'s worker-task path
    # ("it only checkpoints and returns").
    checked: list[bool] = []

    class StopsInside(_Down):
        async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            with trio.testing.assert_checkpoints():
                await sink.stop()
            checked.append(True)

    sink = BackpressureAwareEventSink(StopsInside())
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        assert sink.try_emit(type="a", data=None)
    assert checked == [True]
    assert not sink.is_running


async def test_stop_of_a_stopped_empty_sink_is_a_checkpoint() -> None:
    # Kills: dropping the `await trio.lowlevel.checkpoint()` of stop()'s "nothing to do" path.
    sink = BackpressureAwareEventSink(_Recording())
    with trio.testing.assert_checkpoints():
        await sink.stop()


# --- events/_sink_worker.py: the delivery side ----------------------------------------------


class _NeverCheckpoints(_Down):
    def __init__(self) -> None:
        self.delivered: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.delivered.append(type)


def _record_yields(monkeypatch: pytest.MonkeyPatch, down: _NeverCheckpoints) -> list[int]:
    """Where (after how many deliveries) ``trio.lowlevel.checkpoint`` is called.

    The sink's fair-share yields are its only calls of it while delivering to a
    downstream that never checkpoints; watching them directly is deterministic, unlike
    a sibling task whose turn depends on trio's batch order.
    """
    positions: list[int] = []
    original = trio.lowlevel.checkpoint

    async def checkpoint() -> None:
        positions.append(len(down.delivered))
        await original()

    monkeypatch.setattr(trio.lowlevel, "checkpoint", checkpoint)
    return positions


def _sink_holding_300_events() -> tuple[_NeverCheckpoints, BackpressureAwareEventSink]:
    """A sink (unbounded, not started) with 300 events queued for a never-yielding downstream."""
    down = _NeverCheckpoints()
    sink = BackpressureAwareEventSink(down, max_queue_size=0)
    for index in range(300):
        assert sink.try_emit(type=str(index), data=None)
    return down, sink


async def test_stop_drain_yields_after_every_128_deliveries(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills: `count = 0` -> `count = 1` after _drain's fair-share yield (the second yield
    # would come after 127 more deliveries, not 128).
    down, sink = _sink_holding_300_events()
    positions = _record_yields(monkeypatch, down)
    await sink.stop()  # no worker: this task drains
    assert len(down.delivered) == 300
    assert positions[:2] == [128, 256]


async def test_the_worker_yields_after_every_128_deliveries(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills: dropping `count = 0` after _deliver_forever's fair-share yield (the worker would
    # yield once, after the first 128 deliveries, and never again).
    down, sink = _sink_holding_300_events()
    positions = _record_yields(monkeypatch, down)
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        await trio.testing.wait_all_tasks_blocked()
        monkeypatch.undo()
        assert len(down.delivered) == 300
        await sink.stop()
    assert [p for p in positions if 0 < p < 300] == [128, 256]


async def test_a_half_delivered_event_after_a_stop_drain_is_given_up_on_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Kills: dropping `self._drain_done = None` in drain_here's finally: a later worker
    # cancelled mid-delivery would have its in-flight event neither delivered nor counted
    # when the sink starts again (give_up_in_flight would think a drain still runs).
    drops: list[str] = []

    class BlocksOnBlock(_Down):
        async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            if type == "block":
                await trio.sleep_forever()
            await trio.lowlevel.checkpoint()

    sink = BackpressureAwareEventSink(BlocksOnBlock(), on_drop=lambda t, _d: drops.append(t))
    assert sink.try_emit(type="x", data=None)
    await sink.stop()  # no worker: the stop drains "x" from this task
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        assert sink.try_emit(type="block", data=None)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert not sink.is_running
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        assert drops == ["block"]
        assert sink.metrics.undelivered == 1
        await sink.stop()
    assert drops == ["block"]


# --- tools/executor_v2.py: AdvancedToolExecutor ----------------------------------------------


def _undoable(name: str, action_type: str, undone: list[str]) -> ToolDefinition:
    async def run(tool_input: ToolInput) -> ToolOutput:
        return ToolOutput.ok(undo_metadata={"by": name})

    async def undo(metadata: UndoMetadata) -> None:
        undone.append(metadata.tool_name)

    return ToolDefinition(name, action_type, run, undoable=True, undo_handler=undo)


def _two_undoable_tools() -> tuple[AdvancedToolExecutor, UndoStore, Any, list[str]]:
    """An executor with two undoable tools ("first", "second"), its store, a context, and
    the names of the tools whose undo ran."""
    undone: list[str] = []
    store = UndoStore()
    tools = AdvancedToolExecutor(undo_store=store, approval_service=ApprovalService())
    tools.register(_undoable("first", "FIRST", undone))
    tools.register(_undoable("second", "SECOND", undone))
    return tools, store, _tool_ctx(), undone


async def test_undo_forgets_the_action_type_so_later_data_of_another_tool_is_undone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Kills: dropping `self._undo_keys.pop(action_id, None)` in the remover run after a
    # successful undo: the stale action type would then pick the first tool for data
    # another tool stored later under the same action id (undo_action False).
    tools, store, ctx, undone = _two_undoable_tools()
    action_id = uuid.uuid4()
    await tools.execute(_Act(action_id, "FIRST", {}), ctx)
    assert await tools.undo_action(action_id, ctx)
    await store.store(action_id=action_id, tool_name="second", undo_data={"by": "second"})
    assert await tools.undo_action(action_id, ctx)
    assert undone == ["first", "second"]


async def test_undo_of_gone_data_forgets_the_action_type(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Kills: dropping `self._undo_keys.pop(action_id, None)` in _undo's "no metadata" branch
    # (data deleted behind the executor's back): the stale action type would win over the
    # tool name of data stored later under the same action id.
    tools, store, ctx, undone = _two_undoable_tools()
    action_id = uuid.uuid4()
    await tools.execute(_Act(action_id, "FIRST", {}), ctx)
    await store.delete(action_id)
    assert not await tools.undo_action(action_id, ctx)
    await store.store(action_id=action_id, tool_name="second", undo_data={"by": "second"})
    assert await tools.undo_action(action_id, ctx)
    assert undone == ["second"]


class _Act:
    def __init__(self, id: uuid.UUID, type: str, payload: dict[str, Any]) -> None:  # noqa: A002
        self.id = id
        self.type = type
        self.payload = payload


def _tool_ctx() -> Any:
    from stageflow_trio.tools.adapters import DictContextAdapter

    return DictContextAdapter(
        {"pipeline_run_id": str(uuid.uuid4()), "request_id": None, "execution_mode": None}
    )


# --- _budget.py: the checkpoint budget ----------------------------------------------------


def _pattern(count: int) -> list[bool]:
    return [schedule_point_due(now=0) for _ in range(count)]


def test_schedule_point_due_spends_one_call_each() -> None:
    # Kills: `state.calls_left = left - 1` -> `left - 0` in schedule_point_due (the calls
    # bound would never bring a schedule point again).
    with checkpoint_budget(calls=3, seconds=math.inf):
        assert _pattern(7) == [True, False, False, True, False, False, True]


def test_closing_a_reentered_block_restores_the_block_opened_between() -> None:
    # Kills: `and` -> `or` in checkpoint_budget.__exit__'s owner search (the inner exit of
    # an object entered twice would close its OUTER entry, and the policy left in force
    # would be that object's, not the block opened in between).
    every_second = checkpoint_budget(calls=2, seconds=math.inf)
    every_fifth = checkpoint_budget(calls=5, seconds=math.inf)
    with every_second:
        with every_fifth:
            with every_second:
                assert _pattern(3) == [True, False, True]
            assert _pattern(6) == [True, False, False, False, False, True]
        assert _pattern(3) == [True, False, True]
