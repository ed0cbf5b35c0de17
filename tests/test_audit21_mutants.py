"""Audit 21: tests written for the mutants of this session's changes that survived the suite.

A hand-made mutation pass over the session's source changes: each test here kills a
mutant (a small plausible slip in a changed line) that every existing test let through,
and its docstring says which. The ones that need a Redis server are at the end of
``tests/stores/test_audit21_retention.py``, beside its fixtures.
"""

from __future__ import annotations

import math
import sqlite3
import uuid
from contextlib import closing
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from stageflow_trio.context import ContextSnapshot
from stageflow_trio.context.conversation import Conversation
from stageflow_trio.context.enrichments import Enrichments
from stageflow_trio.helpers.memory import InMemoryStore, MemoryConfig, MemoryEntry
from stageflow_trio.observability.tracing import TraceContext
from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores._common import DEFAULT_APPROVAL_RETENTION_SECONDS
from stageflow_trio.stores.redis import RedisApprovalBackend, RedisBackend, RedisMemoryStore
from stageflow_trio.stores.sqlite import (
    SqliteApprovalBackend,
    SqliteDatabase,
    SqliteMemoryStore,
    open_sqlite_stores,
)
from stageflow_trio.testing import explore_cancellation
from stageflow_trio.tools.approval import ApprovalRequest, ApprovalStatus, InMemoryApprovalBackend
from stageflow_trio.tools.undo import set_undo_store
from tests.observability.test_audit19_otel import INCOMING_TRACE
from tests.observability.test_tracing import (
    FakeOtel,
    FakeSpan,
    FakeSpanContext,
    fake_otel,  # noqa: F401  # the fake-API fixture
)
from tests.stores.test_audit21_retention import FakeWallClock

if TYPE_CHECKING:
    from pathlib import Path


# --- _parsed_list: "" and {} are not an empty list ----------------------------------------


@pytest.mark.parametrize("empty", ["", {}], ids=["str", "dict"])
@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (Conversation.from_dict, lambda v: {"messages": v}, "messages"),
        (Enrichments.from_dict, lambda v: {"documents": v}, "documents"),
        (ContextSnapshot.from_dict, lambda v: {"messages": v}, "messages"),
        (ContextSnapshot.from_dict, lambda v: {"documents": v}, "documents"),
        (
            ContextSnapshot.from_dict,
            lambda v: {"conversation": {"messages": v}},
            r"conversation\.messages",
        ),
        (
            ContextSnapshot.from_dict,
            lambda v: {"enrichments": {"documents": v}},
            r"enrichments\.documents",
        ),
    ],
)
def test_a_falsy_non_list_is_refused_as_a_list_field(
    parse: Any, data: Any, message: str, empty: object
) -> None:
    """The falsy branch of ``_parsed_list`` still checks the value: only None and [] are
    empty (a mutant returning the empty list at once read "" and {} as no messages)."""
    with pytest.raises(TypeError, match=rf"^{message} must be a list, got {type(empty).__name__}$"):
        parse(data(empty))


# --- the memory stores' argument checks, one copy in helpers/memory.py -------------------


class _SubConfig(MemoryConfig):
    pass


class _SubEntry(MemoryEntry):
    pass


def _memory_stores() -> list[tuple[str, Any]]:
    """Each store with a backend that is never reached: the checks come first."""
    db = SqliteDatabase(None, "x", clock=FakeWallClock(), poll_interval=1)  # type: ignore[arg-type]
    redis = RedisBackend(None, prefix="t:", resync_interval=1)
    return [
        ("InMemoryStore", InMemoryStore()),
        ("SqliteMemoryStore", SqliteMemoryStore(db)),
        ("RedisMemoryStore", RedisMemoryStore(redis)),
    ]


async def test_each_memory_store_names_itself_and_the_method_in_its_checks() -> None:
    """A subclass of MemoryConfig is refused (the check is of the exact type, as
    ``MemoryFetchStage``'s); each message names the store and the method."""
    session = uuid.uuid4()
    for owner, store in _memory_stores():
        with pytest.raises(
            TypeError, match=rf"^{owner}\.fetch: config must be a MemoryConfig; got _SubConfig$"
        ):
            await store.fetch(session, _SubConfig())
        with pytest.raises(
            TypeError, match=rf"^{owner}\.fetch: session_id must be a UUID; got str$"
        ):
            await store.fetch(str(session), MemoryConfig())
        with pytest.raises(
            TypeError, match=rf"^{owner}\.write: entry must be a MemoryEntry; got dict$"
        ):
            await store.write({})


async def test_a_memory_entry_of_a_subclass_is_written() -> None:
    store = InMemoryStore()
    entry = _SubEntry(id="e1", session_id=uuid.uuid4(), role="user", content="hi")
    await store.write(entry)
    assert await store.fetch(entry.session_id, MemoryConfig()) == [entry]


# --- TraceContext.capture(): flags and state only with the span's ids ----------------------


def test_a_recording_span_without_valid_ids_gives_no_flags_or_state(
    fake_otel: FakeOtel,  # noqa: F811 - the imported fixture
) -> None:
    """Flags and state are read from the span only when its ids are taken: a recording
    span whose context is invalid leaves ids, flags and state all the activated ones."""
    activated = TraceContext(trace_id=INCOMING_TRACE, trace_flags=0x00, trace_state="a=1")
    with activated.activate():
        invalid = FakeSpanContext(0, 0, valid=False, trace_flags=0x01)
        fake_otel.current = FakeSpan("invalid", invalid)
        captured = TraceContext.capture()
    assert (captured.trace_id, captured.trace_flags, captured.trace_state) == (
        INCOMING_TRACE,
        0x00,
        "a=1",
    )


def test_captured_flags_are_a_plain_int(
    fake_otel: FakeOtel,  # noqa: F811 - the imported fixture
) -> None:
    """The API's ``TraceFlags`` is an int subclass: the context keeps a plain int."""

    class TraceFlags(int):
        pass

    fake_otel.current = FakeSpan("root", FakeSpanContext(0xABC, 0xDEF, trace_flags=TraceFlags(1)))
    captured = TraceContext.capture()
    assert type(captured.trace_flags) is int
    assert captured.trace_flags == 1


# --- IdempotencyClaim's repr: 16 characters is long enough for a prefix ----------------


def test_a_token_of_exactly_16_characters_shows_its_prefix() -> None:
    assert repr(IdempotencyClaim("k", "0123456789abcdef")) == (
        "IdempotencyClaim(key='k', token='0123...')"
    )


# --- the approval retention's default, an hour as the in-memory backend's ----------------


async def test_the_shared_approval_backends_keep_a_closed_request_an_hour_by_default(
    tmp_path: Path,
) -> None:
    assert DEFAULT_APPROVAL_RETENTION_SECONDS == 3600
    assert InMemoryApprovalBackend().retention_seconds == 3600
    db = SqliteDatabase(None, "x", clock=FakeWallClock(), poll_interval=1)  # type: ignore[arg-type]
    assert SqliteApprovalBackend(db).retention_seconds == 3600
    assert (
        RedisApprovalBackend(RedisBackend(None, prefix="t:", resync_interval=1)).retention_seconds
        == 3600
    )
    async with open_sqlite_stores(str(tmp_path / "s.db")) as stores:
        assert stores.approvals.retention_seconds == 3600  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("seconds", "px"),
    [(60.0005, "60001"), (0.0015, "2"), (0.0001, "1"), (0, "1"), (2.5, "2500"), (math.inf, "")],
)
def test_redis_retention_rounds_up_to_whole_milliseconds(seconds: float, px: str) -> None:
    """A request is never forgotten before its period is over: the ``PEXPIRE`` of a
    retention between two milliseconds is the later one (the server tests read PTTL,
    which cannot tell 60,000 from 60,001 ms apart)."""
    backend = RedisApprovalBackend(
        RedisBackend(None, prefix="t:", resync_interval=1), retention_seconds=seconds
    )
    assert backend._px == px


# --- the protocols moved out of executor_v2 are still importable from it ----------------


def test_the_executor_module_still_names_the_protocols_it_defined() -> None:
    from stageflow_trio.tools import approval, executor_v2, undo

    assert executor_v2.UndoStoreLike is undo.UndoStoreLike
    assert executor_v2.ApprovalServiceLike is approval.ApprovalServiceLike


# --- typing: a process-wide undo store's get must return undo metadata -------------------


class _UndoStoreWithBadGet:
    async def store(
        self,
        action_id: uuid.UUID,
        tool_name: str,
        undo_data: dict[str, Any],
        ttl_seconds: float | None = None,
    ) -> None:
        pass

    async def get(self, action_id: uuid.UUID) -> str:  # not UndoMetadata | None
        return ""

    async def delete(self, action_id: uuid.UUID) -> None:
        pass


def _undo_store_shapes() -> None:  # pragma: no cover - mypy only
    """Checked by mypy (the suite is): the executor reads ``get``'s result, so
    ``UndoStoreLike.get`` is typed, not Any."""
    set_undo_store(_UndoStoreWithBadGet())  # type: ignore[arg-type]


# --- SQLite approval retention ----------------------------------------------------------

ACTION = uuid.UUID(int=1)


async def test_sqlite_a_request_added_closed_starts_its_period_at_once(tmp_path: Path) -> None:
    """``add`` stamps a request that is not PENDING, as the in-memory backend marks it
    closed (a mutant storing no time kept it until the file was next opened)."""
    clock = FakeWallClock()
    async with open_sqlite_stores(
        str(tmp_path / "s.db"), clock=clock, approval_retention_seconds=10
    ) as stores:
        backend = stores.approvals
        closed = ApprovalRequest(
            id=uuid.uuid4(), action_id=ACTION, tool_name="t", status=ApprovalStatus.DENIED
        )
        await backend.add(closed)
        clock.now += 10
        await backend.add(ApprovalRequest(id=uuid.uuid4(), action_id=ACTION, tool_name="t"))
        assert await backend.get(closed.id) is not None
        clock.now += 0.001
        await backend.add(ApprovalRequest(id=uuid.uuid4(), action_id=ACTION, tool_name="t"))
        assert await backend.get(closed.id) is None


async def test_sqlite_reopening_the_file_does_not_restart_a_period(tmp_path: Path) -> None:
    """The open stamps only the closed requests without a time (closed by a version
    before retention), not every closed request: a restart must not keep them longer."""
    clock = FakeWallClock()
    path = str(tmp_path / "s.db")
    async with open_sqlite_stores(path, clock=clock, approval_retention_seconds=10) as stores:
        service = stores.approval_service()
        request = await service.request_approval(ACTION, "t")
        await service.record_decision(request.id, True)
    clock.now += 8
    async with open_sqlite_stores(path, clock=clock, approval_retention_seconds=10) as stores:
        service = stores.approval_service()
        clock.now += 2.001  # 10.001 s after the decision, 2.001 s after the open
        await service.request_approval(uuid.uuid4(), "t")
        assert await service.get_request(request.id) is None


async def test_sqlite_a_file_without_the_closed_at_index_gets_it_at_open(tmp_path: Path) -> None:
    """Files of schema 1 made before retention (no ``closed_at`` column), or with the
    column but not its index, get the index at open: the delete on ``add`` reads it."""
    path = str(tmp_path / "s.db")
    async with open_sqlite_stores(path):
        pass
    for drop_column in (False, True):
        with closing(sqlite3.connect(path)) as connection, connection:
            connection.execute("DROP INDEX approvals_by_closed_at")
            if drop_column:
                connection.execute("ALTER TABLE approvals DROP COLUMN closed_at")
        async with open_sqlite_stores(path):
            pass
        with closing(sqlite3.connect(path)) as connection:
            plan = connection.execute(
                "EXPLAIN QUERY PLAN DELETE FROM approvals"
                " WHERE closed_at < ? AND status != 'pending'",
                (0.0,),
            ).fetchall()
        assert "approvals_by_closed_at" in str(plan), drop_column


# --- explore_cancellation's hang watchdog: a message per pass that lifts a shield --------

GUARD = 2**21  # past the 2**20 s the explorer jumps the clock to (see test_audit21_trio_util)


async def test_the_hang_watchdog_reports_a_lifted_shield_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """After the watchdog lifts a shield, the run stays alive two more passes in a wait
    that is not shielded (and cannot be cancelled): those passes lift nothing and add
    nothing to the report (a list of names kept across passes repeated the first)."""
    parked = trio.Event()
    task: list[trio.lowlevel.Task] = []

    async def park() -> None:
        task.append(trio.lowlevel.current_task())
        parked.set()
        await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)

    async def wake_after_two_more_passes() -> None:
        await parked.wait()
        await trio.sleep(150)
        trio.lowlevel.reschedule(task[0])

    async def run() -> None:
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            try:
                with trio.CancelScope(shield=True):
                    await trio.Event().wait()  # lifted on the first pass
            finally:
                await park()
            raise

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wake_after_two_more_passes)
        with trio.fail_after(GUARD), pytest.raises(AssertionError) as failure:
            await explore_cancellation(run, hang_timeout=60, deadlines=())
    assert task, "the run was not cancelled"
    assert str(failure.value).count("blocked inside a shielded CancelScope") == 1


async def test_a_deadline_past_the_runs_end_is_not_waited_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The deadline task is cancelled when the run returns first: a nursery that waited
    for it kept the run going until the deadline, so a ``hang_timeout`` shorter than
    the deadline reported a run that had returned as hung."""
    ended: list[float] = []

    async def run() -> None:
        start = trio.current_time()
        await trio.sleep(1)
        ended.append(trio.current_time() - start)

    report = await explore_cancellation(run, at=[], deadlines=[5], hang_timeout=3)
    assert report.outcomes == {"returned": 2}
    assert ended == [1, 1]
