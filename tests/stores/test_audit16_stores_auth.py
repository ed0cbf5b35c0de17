"""Audit 16 of the stores: a bounded wait for an unresponsive Redis (``command_timeout``),
no retried write after a ``stream_timeout``, releases that keep up with many claimers, and
expired SQLite rows deleted over time."""

from __future__ import annotations

import math
import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import coredis.exceptions
import pytest
import trio
import trio.testing

from stageflow_trio.helpers.memory import MemoryConfig, MemoryEntry
from stageflow_trio.pipeline.idempotency import CachedStageResult, IdempotencyClaim
from stageflow_trio.stages.result import StageResult
from stageflow_trio.stores import StoreConfigError, open_stores
from stageflow_trio.stores._redis_url import parse_redis_url, redis_client
from stageflow_trio.stores.redis import (
    CANCELLED_CLAIM_RELEASE_SECONDS,
    RedisApprovalBackend,
    RedisBackend,
    RedisIdempotencyStore,
    RedisMemoryStore,
    RedisUndoBackend,
    open_redis_stores,
)
from stageflow_trio.stores.sqlite import PURGE_INTERVAL_SECONDS, open_sqlite_stores
from stageflow_trio.tools.approval import ApprovalDecision, ApprovalRequest
from stageflow_trio.tools.definitions import UndoMetadata
from tests.trio_setups import inline_run_sync

from .conftest import OwnRedis, _command

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path


def _entry() -> CachedStageResult:
    now = datetime.now(UTC)
    result = StageResult(name="s", status="completed", started_at=now, ended_at=now, data={})
    return CachedStageResult(result=result, params_hash="h")


class _SilentClient:
    """A coredis client of a server that answers nothing (paused, partitioned)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def command(*args: Any, **kwargs: Any) -> Any:
            self.sent.append(name)
            await trio.sleep_forever()

        return command


def _silent_backend(command_timeout: float | None) -> tuple[_SilentClient, RedisBackend]:
    client = _SilentClient()
    backend = RedisBackend(
        client, prefix="t:", resync_interval=5.0, command_timeout=command_timeout
    )
    return client, backend


async def test_command_timeout_bounds_every_store_call_on_a_silent_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Without it, a store call against a paused Redis waited until its caller gave up."""
    _, backend = _silent_backend(2.0)
    idempotency = RedisIdempotencyStore(backend, claim_lease_seconds=30)
    memory = RedisMemoryStore(backend)
    approvals = RedisApprovalBackend(backend)
    undo = RedisUndoBackend(backend)
    session, request_id = uuid.UUID(int=1), uuid.UUID(int=2)
    request = ApprovalRequest(id=request_id, action_id=uuid.UUID(int=3), tool_name="t")
    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("RedisIdempotencyStore.get", lambda: idempotency.get("k")),
        ("RedisIdempotencyStore.set", lambda: idempotency.set("k", _entry())),
        ("RedisIdempotencyStore.delete", lambda: idempotency.delete("k")),
        ("RedisMemoryStore.fetch", lambda: memory.fetch(session, MemoryConfig())),
        (
            "RedisMemoryStore.write",
            lambda: memory.write(MemoryEntry(id="1", session_id=session, role="u", content="")),
        ),
        ("RedisMemoryStore.clear", lambda: memory.clear(session)),
        ("RedisApprovalBackend.add", lambda: approvals.add(request)),
        ("RedisApprovalBackend.get", lambda: approvals.get(request_id)),
        ("RedisApprovalBackend.pending", lambda: approvals.pending()),
        (
            "RedisApprovalBackend.decide",
            lambda: approvals.decide(ApprovalDecision(request_id, True), "now"),
        ),
        ("RedisApprovalBackend.decision", lambda: approvals.wait_decision(request_id)),
        ("RedisApprovalBackend.remove", lambda: approvals.remove(request_id)),
        ("RedisUndoBackend.put", lambda: undo.put(UndoMetadata(request_id, "t", {}), 60)),
        ("RedisUndoBackend.get_all", lambda: undo.get_all()),
    ]
    for owner, call in calls:
        start = trio.current_time()
        with pytest.raises(TimeoutError) as info:
            await call()
        assert trio.current_time() - start == pytest.approx(2.0)
        assert str(info.value).startswith(
            f"{owner}: Redis did not answer within command_timeout=2.0 s; the command may"
            " still run when the server answers"
        )
        assert info.value.__context__ is None  # no "During handling" noise


async def test_a_claim_that_times_out_holds_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, backend = _silent_backend(1.0)
    store = RedisIdempotencyStore(backend, claim_lease_seconds=30)
    start = trio.current_time()
    with pytest.raises(TimeoutError, match=r"^RedisIdempotencyStore\.claim: "):
        await store.claim("k")
    # Its timeout, then the bounded release of what the script may grant.
    assert trio.current_time() - start == pytest.approx(1.0 + CANCELLED_CLAIM_RELEASE_SECONDS)
    assert client.sent == ["eval", "eval"]  # the claim script, then its release
    assert store._held == {}
    queued = store._receive.receive_nowait()  # for the background task, when Redis answers
    assert queued.key == "k"


async def test_command_timeout_is_checked_before_connecting() -> None:
    unreachable = "redis://127.0.0.1:1/0"
    for bad, error in ((0, ValueError), (math.nan, ValueError), ("1", TypeError)):
        with pytest.raises(error, match=r"^open_redis_stores: command_timeout must be"):
            async with open_redis_stores(unreachable, command_timeout=bad):  # type: ignore[arg-type]
                pytest.fail("opened")
    with pytest.raises(StoreConfigError, match=r"option command_timeout='0'"):
        async with open_stores(f"{unreachable}?command_timeout=0"):
            pytest.fail("opened")


async def test_command_timeout_on_a_paused_server_then_the_connection_goes_on(
    own_redis: OwnRedis,
) -> None:
    """The URL option reaches the stores; a call cut short leaves no reply out of step."""
    session = uuid.UUID(int=1)
    async with open_stores(f"{own_redis.url}?command_timeout=0.05") as stores:
        memory = stores.memory
        await memory.write(MemoryEntry(id="0", session_id=session, role="u", content=""))
        own_redis.pause()
        try:
            with trio.fail_after(5), pytest.raises(TimeoutError, match=r"^RedisMemoryStore\.write"):
                await memory.write(MemoryEntry(id="1", session_id=session, role="u", content=""))
        finally:
            own_redis.resume()
        with trio.fail_after(5):
            # The late write ran once; each later call gets its own reply.
            entries = await memory.fetch(session, MemoryConfig(max_entries=10))
            assert [entry.id for entry in entries] == ["0", "1"]
            assert await stores.idempotency.get("k") is None
            assert isinstance(await stores.idempotency.claim("k"), IdempotencyClaim)


async def test_a_single_server_client_does_not_send_a_timed_out_command_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """coredis's default sent it twice more: a late RPUSH landed three times."""
    target = parse_redis_url("redis://127.0.0.1:1/0?stream_timeout=0.2", "url")
    async with redis_client(target, 5.0, "url") as client:
        sent = 0

        async def timing_out() -> None:
            nonlocal sent
            sent += 1
            await trio.lowlevel.checkpoint()
            raise TimeoutError("RPUSH timed out after 0.2 seconds")

        with pytest.raises(TimeoutError):
            await client.retry_policy.call_with_retries(timing_out)
        assert sent == 1

        sent = 0

        async def disconnected() -> None:
            nonlocal sent
            sent += 1
            await trio.lowlevel.checkpoint()
            raise coredis.exceptions.ConnectionError("lost")

        with pytest.raises(coredis.exceptions.ConnectionError):
            await client.retry_policy.call_with_retries(disconnected)
        assert sent == 3  # a lost connection is still tried again


class _CountingClient:
    """Answers the claim script at once (granted), and counts the release scripts."""

    def __init__(self) -> None:
        self.releases = 0
        self.released = 0

    async def eval(self, script: str, keys: list[str], args: list[str]) -> Any:
        await trio.sleep(0.001)  # one round trip
        if "'NX'" in script:
            return [2, "", ""]
        self.releases += 1
        self.released += len(keys)
        return len(keys)


async def test_releases_keep_up_with_many_tasks_claiming_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One release per round trip fell behind 16 claimers: 7,500 queued after 8,000 claims."""
    client = _CountingClient()
    backend = RedisBackend(client, prefix="t:", resync_interval=5.0)
    store = RedisIdempotencyStore(backend, claim_lease_seconds=30)
    claims_per_task, tasks = 100, 16
    peak = 0  # the most releases queued (trio's own peak_buffer_used is newer than 0.31)

    async def claimer(task: int) -> None:
        nonlocal peak
        for i in range(claims_per_task):
            claim = await store.claim(f"{task}:{i}")
            assert isinstance(claim, IdempotencyClaim)
            store.release(claim)
            peak = max(peak, store._receive.statistics().current_buffer_used)

    async with trio.open_nursery() as nursery:
        await nursery.start(store._serve)
        async with trio.open_nursery() as claimers:
            for task in range(tasks):
                claimers.start_soon(claimer, task)
        backlog = store._receive.statistics().current_buffer_used
        store._close()
    assert backlog <= tasks
    assert 0 < peak <= 2 * tasks
    assert client.released == tasks * claims_per_task
    assert client.releases <= claims_per_task + 10


async def test_a_batch_of_releases_deletes_only_the_claims_still_held(redis_url: str) -> None:
    async with open_stores(redis_url) as stores:
        store = stores.idempotency
        assert isinstance(store, RedisIdempotencyStore)
        claims = []
        for key in ("a", "b", "c"):
            claim = await store.claim(key)
            assert isinstance(claim, IdempotencyClaim)
            claims.append(claim)
        assert _command(redis_url, "SET", "stageflow:idem:claim:b", "another") == b"+OK\r\n"
        await store._send_release(claims)
        assert _command(redis_url, "EXISTS", "stageflow:idem:claim:a") == b":0\r\n"
        assert _command(redis_url, "GET", "stageflow:idem:claim:b") == b"$7\r\nanother\r\n"
        assert _command(redis_url, "EXISTS", "stageflow:idem:claim:c") == b":0\r\n"


async def test_sqlite_deletes_expired_idempotency_rows_over_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each key ever used kept its row for good: the file grew without bound."""
    # Statements inline, not in a worker thread: the autojump clock jumps whenever every
    # task waits, on a thread's statement too, so where the purges fell depended on the
    # threads' speed (two CI-like runs under load failed here).
    monkeypatch.setattr(trio.to_thread, "run_sync", inline_run_sync)
    wall = [1_000_000.0]
    path = tmp_path / "s.db"
    async with open_sqlite_stores(str(path), clock=lambda: wall[0]) as stores:
        store = stores.idempotency
        await store.set("expiring", _entry(), ttl_seconds=10)
        await store.set("kept", _entry())
        with closing(sqlite3.connect(path)) as connection, connection:
            # More keys used once, and a claim of a process that died holding it.
            connection.executemany(
                "INSERT INTO idempotency_entries VALUES (?, '', ?)",
                [(f"k{i}", wall[0] + 10) for i in range(200)],
            )
            connection.execute("INSERT INTO idempotency_claims VALUES ('dead', 't', ?)", (wall[0],))
        wall[0] += 11
        await trio.sleep(PURGE_INTERVAL_SECONDS + 1)
        assert await store.get("kept") is not None  # after the purge (one statement at a time)
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT key FROM idempotency_entries").fetchall() == [("kept",)]
        assert connection.execute("SELECT count(*) FROM idempotency_claims").fetchone() == (0,)
