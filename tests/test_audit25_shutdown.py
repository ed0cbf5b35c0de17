"""Audit 25: a worker's graceful shutdown, end to end.

What was tried: a worker wired as docs/deployment.md says (stores from ``open_stores``, a
``BackpressureAwareEventSink`` in front of an ``AnalyticsSink`` and a ``BufferedExporter``,
the tool executor with approvals, subpipelines, the idempotency interceptor), 50 runs in
flight (in approval waits, in a subpipeline, mid-tool, undoing, holding an idempotency
claim), stopped by SIGTERM (a real process and signals, and here a shutdown event) with the
drain deadline past and short of the work; the analytics backend hanging in the final
flush; Redis paused (SIGSTOP) at shutdown, with and without ``command_timeout``; a second
SIGTERM and a Ctrl-C during the drain; a handler raising during the drain. Memory, SQLite
and Redis stores.

What held: the exit time is bounded; every event the sink accepted is delivered or counted
(``metrics.undelivered``, a warning); no approval is left PENDING; every claim is released
at once (another worker is granted the key); no task is left; the library's boundaries raise
a bare ``KeyboardInterrupt``, never a group.

What did not (fixed here):

- A run cancelled in an approval wait whose backend raised when the executor cancelled
  the request (Redis past ``command_timeout``: ``TimeoutError``) raised that error in place
  of ``trio.Cancelled``: the run failed (``pipeline_failed``, ERROR records) instead of
  being cancelled, and a caller's ``move_on_after`` did not catch it. Now logged.
- Such a run spent ``ApprovalService``'s 5 s grace and then the executor's 5 s more
  against a backend that did not answer (10 s of shutdown); the executor no longer tries
  again after ``ApprovalService.await_decision`` has tried.
- ``ApprovalService`` gave up closing a request after its grace without a word (the request
  stays PENDING); it now logs a warning.
- ``BufferedExporter.close()`` cut by a shutdown deadline (a backend that hangs) counted the
  events it could not write in ``dropped_count`` but said nothing; it now logs a warning.

The guide: docs/deployment.md, "Shutting down" (its block runs in tests/stores/test_guide.py).
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageOutput
from stageflow_trio.events import BackpressureAwareEventSink, set_event_sink
from stageflow_trio.helpers.analytics import AnalyticsEvent, AnalyticsSink, BufferedExporter
from stageflow_trio.pipeline import Pipeline, SubpipelineSpawner
from stageflow_trio.pipeline.idempotency import IdempotencyClaim, IdempotencyInterceptor
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stores import open_stores
from stageflow_trio.tools import (
    AdvancedToolExecutor,
    ApprovalService,
    ToolDefinition,
    ToolInput,
    ToolOutput,
    UndoMetadata,
    UndoStore,
    adapt_context,
)
from stageflow_trio.tools.approval import ApprovalStatus, InMemoryApprovalBackend
from tests.stores.conftest import OwnRedis, own_redis, redis_server, redis_url  # noqa: F401

APPROVAL_LOG = "stageflow_trio.tools.approval"
EXECUTOR_LOG = "stageflow_trio.tools.executor"
ANALYTICS_LOG = "stageflow_trio.helpers.analytics"


@attrs.frozen
class Action:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


async def _ok(tool_input: ToolInput) -> ToolOutput:
    await trio.lowlevel.checkpoint()
    return ToolOutput.ok()


class BrokenBackend(InMemoryApprovalBackend):
    """Requests are kept, but closing one fails (``raise``) or never answers (``hang``)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.closes = 0

    async def close_pending(self, *args: Any, **kwargs: Any) -> bool:
        self.closes += 1
        if self.mode == "hang":
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        raise ConnectionError("store down")


def _approving_executor(backend: BrokenBackend) -> tuple[AdvancedToolExecutor, ApprovalService]:
    approvals = ApprovalService(backend=backend)
    executor = AdvancedToolExecutor(undo_store=UndoStore(), approval_service=approvals)
    executor.register(
        ToolDefinition(
            name="delete",
            action_type="DELETE",
            handler=_ok,
            allowed_behaviors=("work",),
            requires_approval=True,
        )
    )
    return executor, approvals


def _run_ctx() -> Any:
    return adapt_context({"pipeline_run_id": str(uuid.uuid4()), "execution_mode": "work"})


# -- The fixes ------------------------------------------------------------------------------


def test_a_cancelled_approval_wait_stays_cancelled_when_the_backend_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        backend = BrokenBackend("raise")
        executor, approvals = _approving_executor(backend)
        with trio.move_on_after(1) as scope:
            await executor.execute(Action(uuid.uuid4(), "DELETE", {}), _run_ctx())
        # Before: the backend's ConnectionError escaped in place of the cancellation.
        assert scope.cancelled_caught
        [request] = await approvals.get_pending_requests()  # could not be closed: said so
        assert request.status is ApprovalStatus.PENDING

    with caplog.at_level(logging.WARNING):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert any("Failed to cancel approval request" in r.getMessage() for r in caplog.records)


def test_a_custom_service_failing_to_cancel_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Service:  # an ApprovalServiceLike of its own: the executor cancels for it
        def __init__(self) -> None:
            self.inner = ApprovalService()

        async def request_approval(self, *args: Any, **kwargs: Any) -> Any:
            return await self.inner.request_approval(*args, **kwargs)

        async def await_decision(self, request_id: uuid.UUID, timeout_seconds: Any = None) -> Any:
            await trio.sleep_forever()

        async def cancel_request(self, request_id: uuid.UUID) -> bool:
            await trio.lowlevel.checkpoint()
            raise TimeoutError("Redis did not answer within command_timeout")

    async def main() -> None:
        executor = AdvancedToolExecutor(undo_store=UndoStore(), approval_service=Service())
        executor.register(
            ToolDefinition(
                name="delete",
                action_type="DELETE",
                handler=_ok,
                allowed_behaviors=("work",),
                requires_approval=True,
            )
        )
        with trio.move_on_after(1) as scope:
            await executor.execute(Action(uuid.uuid4(), "DELETE", {}), _run_ctx())
        assert scope.cancelled_caught

    with caplog.at_level(logging.WARNING, logger=EXECUTOR_LOG):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    [record] = [r for r in caplog.records if r.name == EXECUTOR_LOG]
    assert record.getMessage().startswith("Failed to cancel approval request ")
    assert record.getMessage().endswith(": Redis did not answer within command_timeout")


def test_a_hung_backend_holds_a_cancelled_approval_wait_one_grace_not_two(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        backend = BrokenBackend("hang")
        executor, _ = _approving_executor(backend)
        with trio.move_on_after(1) as scope:
            await executor.execute(Action(uuid.uuid4(), "DELETE", {}), _run_ctx())
        assert scope.cancelled_caught
        # ApprovalService's 5 s grace, not that and the executor's 5 s more (11 s before).
        assert trio.current_time() == 6
        assert backend.closes == 1

    with caplog.at_level(logging.WARNING):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    [record] = [r for r in caplog.records if r.name == APPROVAL_LOG]
    assert "Gave up trying to cancel approval request" in record.getMessage()
    assert "stays PENDING" in record.getMessage()


@pytest.mark.parametrize("how", ["cancelled", "timed out"])
def test_the_approval_service_says_when_it_gives_up_closing_a_request(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        approvals = ApprovalService(backend=BrokenBackend("hang"))
        request = await approvals.request_approval(uuid.uuid4(), "delete")
        if how == "cancelled":
            with trio.move_on_after(1):
                await approvals.await_decision(request.id)
        else:
            with pytest.raises(TimeoutError):
                await approvals.await_decision(request.id, timeout_seconds=1)
        assert trio.current_time() == 6
        assert (await approvals.get_status(request.id)) is ApprovalStatus.PENDING

    with caplog.at_level(logging.WARNING, logger=APPROVAL_LOG):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    verb = "cancel" if how == "cancelled" else "expire"
    assert [r.getMessage().split(" approval request")[0] for r in caplog.records] == [
        f"Gave up trying to {verb}"
    ]


class Backend:
    """An analytics backend (an HTTP exporter): records what it got; may hang."""

    def __init__(self) -> None:
        self.events: list[AnalyticsEvent] = []
        self.hang = False

    async def export(self, event: AnalyticsEvent) -> None:
        await self.export_batch([event])

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        if self.hang:
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        self.events.extend(events)

    async def flush(self) -> None:
        await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()


def test_a_buffered_exporter_cut_at_close_says_what_it_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        backend = Backend()
        with trio.move_on_after(5):
            async with BufferedExporter(backend, batch_size=100) as exporter:
                for n in range(7):
                    await exporter.export(AnalyticsEvent(event_type=f"e{n}"))
                backend.hang = True
        assert exporter.dropped_count == 7
        assert backend.events == []

    with caplog.at_level(logging.WARNING, logger=ANALYTICS_LOG):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert [r.getMessage() for r in caplog.records] == [
        "BufferedExporter closed before writing 7 events (dropped_count=7)"
    ]


def test_a_close_that_loses_nothing_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        with trio.CancelScope() as scope:
            async with BufferedExporter(Backend(), batch_size=100):
                scope.cancel()

    with caplog.at_level(logging.WARNING, logger=ANALYTICS_LOG):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert caplog.records == []


# -- The worker, end to end -----------------------------------------------------------------

KINDS = ("claim", "subpipeline", "tool", "approval", "undo")
WORK_SECONDS = 3.0
_request: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("request")


@dataclass
class Outcome:
    accepted: int = 0
    finished: int = 0
    cancelled: int = 0
    failed: list[str] = field(default_factory=list)
    events: BackpressureAwareEventSink | None = None
    exporter: BufferedExporter | None = None
    signalled_at: float = 0.0
    ended_at: float = 0.0


async def serve(
    url: str,
    requests: trio.MemoryReceiveChannel[dict[str, Any]],
    shutdown: trio.Event,
    backend: Backend,
    outcome: Outcome,
    *,
    drain_seconds: float,
    flush_seconds: float = 5.0,
) -> None:
    """The worker of docs/deployment.md ("Shutting down"), with every kind of run."""
    spawner = SubpipelineSpawner()
    async with open_stores(url) as stores:
        approvals = stores.approval_service(default_timeout_seconds=300)
        undo = stores.undo_store()
        executor = AdvancedToolExecutor(undo_store=undo, approval_service=approvals)

        async def tool(tool_input: ToolInput) -> ToolOutput:
            await trio.sleep(WORK_SECONDS)
            return ToolOutput.ok(undo_metadata={"before": "x"})

        async def revert(metadata: UndoMetadata) -> None:
            await trio.sleep(WORK_SECONDS)

        for action_type, approval in (("EDIT", False), ("DELETE", True)):
            executor.register(
                ToolDefinition(
                    name=action_type.lower(),
                    action_type=action_type,
                    handler=tool,
                    allowed_behaviors=("work",),
                    requires_approval=approval,
                    undoable=True,
                    undo_handler=revert,
                )
            )
        interceptors = [IdempotencyInterceptor(store=stores.idempotency)]

        async def child(child_ctx: PipelineContext) -> dict[str, Any]:
            await trio.sleep(WORK_SECONDS)
            return {}

        async def work(ctx: StageContext) -> StageOutput:
            request = _request.get()
            kind = request["kind"]
            run = adapt_context(
                {"pipeline_run_id": str(ctx.pipeline_run_id), "execution_mode": "work"}
            )
            if kind == "claim":
                await trio.sleep(WORK_SECONDS)
            elif kind == "subpipeline":
                pipeline_ctx = ctx.as_pipeline_context()
                await spawner.spawn("child", pipeline_ctx, uuid.uuid4(), "work", child)
            elif kind in ("tool", "approval"):
                action_type = "DELETE" if kind == "approval" else "EDIT"
                await executor.execute(Action(uuid.uuid4(), action_type, {}), run)
            elif kind == "undo":
                action = Action(uuid.uuid4(), "EDIT", {})
                await executor.execute(action, run)
                await executor.undo_action(action.id, run)
            else:
                await trio.sleep(request["after"])
                raise RuntimeError("a handler's bug")
            return StageOutput.ok()

        pipeline = Pipeline().with_stage("work", work, "work")

        async def handle(request: dict[str, Any]) -> None:
            _request.set(request)
            try:
                await pipeline.run(
                    interceptors=interceptors, data={"idempotency_key": request["key"]}
                )
            except trio.Cancelled:
                outcome.cancelled += 1
                raise
            except Exception as exc:  # one request's failure is its own
                outcome.failed.append(type(exc).__name__)
            else:
                outcome.finished += 1

        async def stop_accepting(scope: trio.CancelScope) -> None:
            await shutdown.wait()
            scope.cancel()

        with trio.CancelScope() as flushing:
            async with BufferedExporter(
                backend, batch_size=100, flush_interval_seconds=1
            ) as exporter:
                async with AnalyticsSink(exporter) as analytics:
                    async with BackpressureAwareEventSink(analytics) as events:
                        outcome.events, outcome.exporter = events, exporter
                        set_event_sink(events)
                        async with trio.open_nursery() as runs:
                            with trio.CancelScope() as accepting:
                                runs.start_soon(stop_accepting, accepting)
                                async for request in requests:
                                    outcome.accepted += 1
                                    runs.start_soon(handle, request)
                            outcome.signalled_at = trio.current_time()
                            runs.cancel_scope.deadline = trio.current_time() + drain_seconds
                        flushing.deadline = trio.current_time() + flush_seconds
    outcome.ended_at = trio.current_time()


async def _shut_down(
    url: str,
    *,
    drain_seconds: float,
    runs: int = 50,
    hang: bool = False,
    boom: bool = False,
    at_signal: Any = None,
) -> tuple[Outcome, Backend, list[str]]:
    """Start ``runs`` requests, signal at 1 s, and return what happened and the keys."""
    backend, outcome, shutdown = Backend(), Outcome(), trio.Event()
    send, receive = trio.open_memory_channel[dict[str, Any]](0)
    tag = uuid.uuid4().hex[:8]
    keys: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: serve(url, receive, shutdown, backend, outcome, drain_seconds=drain_seconds)
        )
        async with send:
            for n in range(runs):
                kind = KINDS[n % len(KINDS)]
                key = f"{tag}-{n}" if kind == "claim" else None
                if key is not None:
                    keys.append(key)
                await send.send({"kind": kind, "key": key})
            if boom:
                await send.send({"kind": "boom", "key": None, "after": 1.5})
            await trio.sleep(1)
            if hang:
                backend.hang = True
            if at_signal is not None:
                at_signal()
            shutdown.set()
    return outcome, backend, keys


async def _check_the_store(url: str, keys: list[str], *, cached: int) -> None:
    """No approval PENDING; every claim released (granted to another worker at once), or
    its stage's result cached."""
    async with open_stores(url) as stores:
        assert await stores.approval_service().get_pending_requests() == []
        got = [await stores.idempotency.claim(f'["work", "{key}"]') for key in keys]
        assert sum(isinstance(g, IdempotencyClaim) for g in got) == len(keys) - cached
        for claim in got:
            if isinstance(claim, IdempotencyClaim):
                stores.idempotency.release(claim)


def _every_event_accounted(outcome: Outcome, backend: Backend) -> None:
    events, exporter = outcome.events, outcome.exporter
    assert events is not None
    assert exporter is not None
    delivered = events.metrics.emitted - events.metrics.undelivered
    assert len(backend.events) + exporter.dropped_count == delivered
    assert events.metrics.queue_full_count == 0


@pytest.mark.parametrize("drain", [10.0, 1.0])
def test_the_worker_drains_then_cancels(drain: float) -> None:
    async def main() -> None:
        outcome, backend, _keys = await _shut_down("memory://", drain_seconds=drain)
        assert outcome.accepted == 50
        # The drain deadline bounds the exit (the flush is instant here).
        assert outcome.ended_at - outcome.signalled_at == drain
        if drain == 10:  # everything but the approval waits finished
            assert (outcome.finished, outcome.cancelled) == (40, 10)
        else:
            assert (outcome.finished, outcome.cancelled) == (0, 50)
        assert outcome.failed == []  # nothing cancelled turned into an error
        _every_event_accounted(outcome, backend)
        assert outcome.events is not None
        assert outcome.events.metrics.undelivered == 0
        assert outcome.exporter is not None
        assert outcome.exporter.dropped_count == 0
        ended = [e.event_type for e in backend.events if e.event_type.startswith("pipeline_")]
        assert len(ended) == 50  # one terminal event per run

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_backend_hanging_in_the_final_flush_is_cut_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        outcome, backend, _ = await _shut_down("memory://", drain_seconds=10, hang=True)
        assert outcome.ended_at - outcome.signalled_at == 10 + 5  # drain + flush budget
        _every_event_accounted(outcome, backend)
        assert outcome.exporter is not None
        assert outcome.exporter.dropped_count > 0

    with caplog.at_level(logging.WARNING):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    messages = [r.getMessage() for r in caplog.records]
    assert "Drain timeout, some events may be lost" in messages
    assert any(m.startswith("BufferedExporter closed before writing") for m in messages)


def test_a_handler_raising_during_the_drain_fails_only_its_request() -> None:
    async def main() -> None:
        outcome, backend, _ = await _shut_down("memory://", drain_seconds=10, boom=True)
        assert outcome.failed == ["UnifiedStageExecutionError"]
        assert (outcome.finished, outcome.cancelled) == (40, 10)
        _every_event_accounted(outcome, backend)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_the_worker_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/stores.db?poll_interval=1"

    async def main() -> None:
        outcome, backend, keys = await _shut_down(url, drain_seconds=1, runs=10)
        assert outcome.failed == []
        assert outcome.finished + outcome.cancelled == 10
        _every_event_accounted(outcome, backend)
        await _check_the_store(url, keys, cached=0)

    # SQLite works in threads: the clock jumps only once they have been idle a while.
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.02))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_worker_on_redis(redis_url: str) -> None:  # noqa: F811
    async def main() -> None:
        outcome, backend, keys = await _shut_down(redis_url, drain_seconds=1, runs=10)
        assert outcome.failed == []
        assert outcome.cancelled == 10
        _every_event_accounted(outcome, backend)
        await _check_the_store(redis_url, keys, cached=0)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.02))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_worker_with_redis_paused_at_shutdown(
    own_redis: OwnRedis,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"{own_redis.url}?command_timeout=1"

    async def main() -> None:
        outcome, backend, _keys = await _shut_down(
            url, drain_seconds=1, runs=10, at_signal=own_redis.pause
        )
        # Cancelled, not failed with the backend's TimeoutError (before the fix: 2 failed).
        assert outcome.failed == []
        assert outcome.cancelled == 10
        # Bounded: the drain, the approvals' command_timeout, the stores' connect_timeout.
        assert outcome.ended_at - outcome.signalled_at <= 1 + 1 + 5 + 0.5
        _every_event_accounted(outcome, backend)
        own_redis.resume()

    with caplog.at_level(logging.WARNING):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.02))
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Failed to cancel approval request") for m in messages)
    assert any(m.startswith("could not release") for m in messages)
