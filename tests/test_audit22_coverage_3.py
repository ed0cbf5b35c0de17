"""Audit 22, third pass: the branches nobody examined in the first two passes.

Each test names the lines it pins. One defect: a PipelineContext's ``canceled``
flag set by assignment (not ``mark_canceled``) during a unified run blamed the next
stage to come up, which had only been queued, instead of ending the run
``"<external>"`` as a mark does.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio import Pipeline, PipelineContext, StageKind, StageOutput
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.events import BackpressureAwareEventSink
from stageflow_trio.events._sink_worker import _FAIR_SHARE
from stageflow_trio.helpers.streaming import ChunkQueue
from stageflow_trio.pipeline.dag import UnifiedPipelineCancelled
from stageflow_trio.stores import sqlite as sqlite_stores
from stageflow_trio.testing import RecordingEventSink

# --- _engine/_unified_run.py: a flag set by assignment ----------------------------------------


@pytest.mark.parametrize("reason", [None, "user left"])
async def test_a_canceled_flag_assigned_by_a_stage_ends_the_run_external_not_on_the_next_stage(
    autojump_clock: trio.testing.MockClock, reason: str | None
) -> None:
    # _unified_run.py run_stage: the flag is seen as the next stage comes up. It used
    # to go on to that stage's raise_if_cancelled, so the run was "cancelled by stage
    # 'b'" ("Stage 'b' was cancelled"), a stage that never started; after a
    # mark_canceled it ends "<external>" with the context's reason, and so now does this.
    pctx = PipelineContext.create(event_sink=RecordingEventSink())
    ran: list[str] = []

    async def a(ctx: StageContext) -> StageOutput:
        if reason is not None:
            pctx.cancellation_reason = reason
        pctx.canceled = True  # a plain field: no mark_canceled, so no callback
        return StageOutput.ok()

    async def b(ctx: StageContext) -> StageOutput:
        ran.append("b")
        return StageOutput.ok()

    graph = (
        Pipeline(name="p")
        .with_stage("a", a, StageKind.WORK)
        .with_stage("b", b, StageKind.WORK, dependencies=("a",))
        .build()
    )
    with pytest.raises(UnifiedPipelineCancelled) as caught:
        await graph.run(pctx)
    assert (caught.value.stage, caught.value.reason) == ("<external>", reason or "Cancelled")
    assert list(caught.value.results) == ["a"]
    assert ran == []
    sink = pctx.event_sink
    assert isinstance(sink, RecordingEventSink)
    kind, data = sink.events[-1]
    assert kind == "pipeline_cancelled"
    assert data is not None
    assert (data["stage"], data["stages_completed"]) == ("<external>", ["a"])
    assert not any(kind.startswith("stage.b.") for kind, _ in sink.events)


# --- events/_backpressure.py and _sink_worker.py ----------------------------------------------


class _Counting:
    """A downstream whose emit never checkpoints; sets ``reached`` at the ``at``-th event."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.got: list[str] = []
        self.reached = trio.Event()

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.got.append(type)
        if len(self.got) == self.at:
            self.reached.set()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        raise AssertionError("the worker awaits emit")


async def test_a_stop_landing_while_the_worker_yields_its_fair_share_ends_it_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _sink_worker.py _deliver_forever, "if self.stopping: return" on an empty queue:
    # after _FAIR_SHARE events the worker yields; a stop asked for then (the worker
    # busy, not idle) waits for it to exit, which it must do at once, not park for
    # more events until the stop's timeout cuts it. Which of the two tasks runs first
    # after the yield is trio's (random) choice: repeated, both orders occur; the
    # outcome is the same in both.
    for _ in range(24):
        down = _Counting(_FAIR_SHARE)
        sink = BackpressureAwareEventSink(down, max_queue_size=0)
        async with trio.open_nursery() as nursery:
            await sink.start(nursery)
            for index in range(_FAIR_SHARE):
                assert sink.try_emit(type=f"e{index}", data=None)
            await down.reached.wait()
            await sink.stop()
            assert not sink.is_running
        assert len(down.got) == _FAIR_SHARE
        assert sink.metrics.dropped == 0
    assert trio.current_time() == 0


async def test_aexit_without_aenter_stops_the_sink_and_closes_no_nursery(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _backpressure.py __aexit__ "if manager is not None" false: a sink started with
    # start(nursery) and closed through __aexit__ (an exit stack handed it) is stopped
    # with drain, as stop() would; there is no nursery of its own to close.
    down = RecordingEventSink()
    sink = BackpressureAwareEventSink(down)
    async with trio.open_nursery() as nursery:
        await sink.start(nursery)
        sink.try_emit(type="x", data={"n": 1})
        await sink.__aexit__(None, None, None)
        assert not sink.is_running
    assert [kind for kind, _ in down.events] == ["x"]


# --- helpers/_chunk_queue.py ----------------------------------------------------------------


async def test_a_full_send_with_nothing_to_drop_reports_only_queue_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # _chunk_queue.py _drop_oldest_then_send: nothing queued to drop (the reference's
    # QueueEmpty): no "overflow" drop is counted, only the refused item.
    events: list[tuple[str, dict[str, Any]]] = []
    queue: ChunkQueue[int] = ChunkQueue(
        max_size=1, drop_on_overflow=True, event_emitter=lambda t, d: events.append((t, d))
    )

    def refuse(item: Any) -> None:
        raise trio.WouldBlock

    monkeypatch.setattr(queue._send, "send_nowait", refuse)
    assert await queue.put(1) is False
    assert events == [
        ("stream.chunk_dropped", {"queue_size": 0, "max_size": 1, "reason": "queue_full"})
    ]
    assert queue.monitor.stats.dropped_items == 1
    assert len(queue) == 0


# --- stores/sqlite.py -----------------------------------------------------------------------


async def test_an_unexpected_error_preparing_a_sqlite_file_closes_its_connection(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sqlite.py _connect: an error that is not sqlite3.Error while the file is switched
    # to WAL and migrated reaches the caller as itself, and the connection (a file
    # handle nothing else holds) is closed first.
    opened: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = real_connect(*args, **kwargs)
        opened.append(connection)
        return connection

    def broken(connection: sqlite3.Connection) -> tuple[str, int]:
        raise RuntimeError("broken migration")

    monkeypatch.setattr(sqlite3, "connect", connect)  # the module the store calls
    monkeypatch.setattr(sqlite_stores, "_prepare", broken)
    with pytest.raises(RuntimeError, match=r"^broken migration$"):
        async with sqlite_stores.open_sqlite_stores(str(tmp_path / "s.db")):
            raise AssertionError("not opened")  # pragma: no cover
    assert len(opened) == 1
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0].execute("SELECT 1")
