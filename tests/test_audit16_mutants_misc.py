"""Audit 16 mutation pass (stores, guardrails, memory, compression, auth, cli run).

Each test here kills a mutant of the code that the other tests let survive: a
flipped comparison, a dropped statement, a removed shield. The docstring of each
test names the behaviour it pins.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
import trio
import trio.testing

from stageflow_trio.auth import TokenExpiredError
from stageflow_trio.auth.jwt import SignedJwtValidator
from stageflow_trio.helpers.guardrails import PIIDetector, PolicyViolation, ViolationType
from stageflow_trio.helpers.memory import InMemoryStore, MemoryConfig, MemoryEntry
from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores._common import RELEASE_BATCH, Stores, Wakeups, serve_releases
from stageflow_trio.stores.sqlite import PURGE_INTERVAL_SECONDS, open_sqlite_stores

# --- stores/_common.py: serve_releases ------------------------------------------------


async def _serve(claims: list[IdempotencyClaim]) -> list[list[str]]:
    """Run serve_releases over ``claims`` already queued (then closed); the batches written."""
    send, receive = trio.open_memory_channel[IdempotencyClaim](len(claims))
    for claim in claims:
        send.send_nowait(claim)
    send.close()
    written: list[list[str]] = []

    async def write(batch: list[IdempotencyClaim]) -> None:
        await trio.lowlevel.checkpoint()
        written.append([claim.key for claim in batch])

    await serve_releases(receive, write, drain_seconds=1.0)
    return written


async def test_serve_releases_writes_at_most_release_batch_claims_at_once() -> None:
    """Queued releases go out in batches of RELEASE_BATCH at most, in order."""
    claims = [IdempotencyClaim(key=f"k{i}") for i in range(RELEASE_BATCH + 44)]
    written = await _serve(claims)
    assert [len(batch) for batch in written] == [RELEASE_BATCH, 44]
    assert [key for batch in written for key in batch] == [claim.key for claim in claims]


async def test_serve_releases_cancelled_after_a_write_does_not_write_that_batch_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A batch written before the cancellation is not written again by the drain."""
    send, receive = trio.open_memory_channel[IdempotencyClaim](10)
    written: list[list[str]] = []
    wrote = trio.Event()

    async def write(batch: list[IdempotencyClaim]) -> None:
        await trio.lowlevel.checkpoint()
        written.append([claim.key for claim in batch])
        wrote.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_releases, receive, write, 1.0)
        send.send_nowait(IdempotencyClaim(key="a"))
        send.send_nowait(IdempotencyClaim(key="b"))
        await wrote.wait()
        await trio.testing.wait_all_tasks_blocked()
        # serve_releases now waits for the next release: cancel it there.
        nursery.cancel_scope.cancel()
    assert written == [["a", "b"]]


async def test_serve_releases_cancelled_mid_write_writes_the_batch_and_the_queue_shielded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The batch a cancellation interrupted, and the releases queued after, are written."""
    send, receive = trio.open_memory_channel[IdempotencyClaim](10)
    written: list[list[str]] = []
    started = trio.Event()

    async def write(batch: list[IdempotencyClaim]) -> None:
        started.set()
        await trio.sleep(0.5)  # cancelled on the first call; shielded afterwards
        written.append([claim.key for claim in batch])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_releases, receive, write, 5.0)
        send.send_nowait(IdempotencyClaim(key="a"))
        await started.wait()
        send.send_nowait(IdempotencyClaim(key="b"))
        send.close()
        nursery.cancel_scope.cancel()
    assert written == [["a"], ["b"]]


# --- stores/_common.py: Wakeups -------------------------------------------------------


def test_wakeups_keep_the_event_of_a_watcher_still_watching_when_another_leaves() -> None:
    """Two waiters on one key: the first leaving must not lose the second's wake-up."""
    wakeups = Wakeups()
    with wakeups.watch("k") as staying:
        with wakeups.watch("k") as leaving:
            assert leaving is staying
        wakeups.wake("k")
        assert staying.is_set()


def test_wakeups_forget_a_key_once_its_last_watcher_leaves() -> None:
    """A long-lived store watching many keys holds no event per key ever watched."""
    wakeups = Wakeups()
    for index in range(1000):
        with wakeups.watch(f"k{index}"), wakeups.watch(f"k{index}"):
            pass
    assert wakeups._events == {}
    # And a key watched again after its last watcher left gets a fresh event.
    with wakeups.watch("k") as first:
        pass
    with wakeups.watch("k") as second:
        assert second is not first


def test_wakeups_wake_sets_the_key_s_event_at_once_and_only_that_key_s() -> None:
    """A change made in this process wakes its waiters without waiting for a poll."""
    wakeups = Wakeups()
    with wakeups.watch("a") as on_a, wakeups.watch("b") as on_b:
        wakeups.wake("a")
        assert on_a.is_set()
        assert not on_b.is_set()
        wakeups.wake("missing")  # no watcher: nothing to do, no error


def test_wakeups_wake_all_sets_every_event_and_forgets_them() -> None:
    """A reconnected store wakes every waiter to look at the shared state again."""
    wakeups = Wakeups()
    with wakeups.watch("a") as on_a, wakeups.watch("b") as on_b:
        wakeups.wake_all()
        assert on_a.is_set()
        assert on_b.is_set()
        assert wakeups._events == {}
        with wakeups.watch("a") as again:
            assert not again.is_set()
    assert wakeups._events == {}


# --- helpers/guardrails.py ------------------------------------------------------------


class _CustomPatterns(PIIDetector):
    """A subclass with its own phone and email patterns (neither starts with a digit)."""

    PATTERNS: ClassVar[Mapping[str, tuple[str, str]]] = {
        **PIIDetector.PATTERNS,
        "phone": (r"tel:\d{3}", "Phone number detected"),
        "email": (r"mailto:\w+", "Email detected"),
        "zip": (r"ZIP\d{5}", "Postal code detected"),
    }


def test_a_subclass_s_own_pii_patterns_are_searched_everywhere() -> None:
    """The start-position shortcuts hold for the default patterns only."""
    content = "call tel:555 or write mailto:bob at ZIP12345"
    result = _CustomPatterns(detect_types={"phone", "email", "zip"}).check(content)
    found = [(v.metadata["pii_type"], v.location) for v in result.violations]
    assert found == [("email", (22, 32)), ("phone", (5, 12)), ("zip", (36, 44))]
    assert not result.passed


def test_a_policy_violation_holds_a_read_only_copy_of_its_metadata() -> None:
    """The metadata given as a dict is copied into a FrozenDict (later changes do not reach it)."""
    source: dict[str, object] = {"pii_type": "email"}
    violation = PolicyViolation(type=ViolationType.PII_DETECTED, message="m", metadata=source)
    source["pii_type"] = "phone"
    assert violation.metadata == {"pii_type": "email"}
    with pytest.raises(TypeError, match="immutable"):
        violation.metadata["pii_type"] = "ssn"


# --- helpers/memory.py ----------------------------------------------------------------


async def test_a_recency_window_of_one_second_filters() -> None:
    """``recency_window_seconds=1`` keeps only the entries of the last second (0 means all)."""
    store = InMemoryStore()
    session = uuid.UUID(int=5)
    old = datetime.now(UTC) - timedelta(seconds=30)
    await store.write(
        MemoryEntry(id="old", session_id=session, role="user", content="a", timestamp=old)
    )
    await store.write(MemoryEntry(id="new", session_id=session, role="user", content="b"))
    recent = await store.fetch(session, MemoryConfig(recency_window_seconds=1))
    assert [entry.id for entry in recent] == ["new"]
    everything = await store.fetch(session, MemoryConfig(recency_window_seconds=0))
    assert [entry.id for entry in everything] == ["old", "new"]


# --- stores/sqlite.py -----------------------------------------------------------------


async def test_sqlite_stores_close_their_file_when_the_block_is_cancelled(
    tmp_path: Path,
) -> None:
    """The connection is closed shielded: a cancelled block does not leave the file open.

    Closing the last connection of a WAL database checkpoints it and removes its
    ``-wal`` file, so the file's absence shows the close happened.
    """
    path = tmp_path / "s.db"
    kept: list[Stores] = []  # a reference that outlives the block
    with trio.CancelScope() as scope:
        async with open_sqlite_stores(str(path)) as stores:
            kept.append(stores)
            await stores.memory.write(
                MemoryEntry(id="1", session_id=uuid.UUID(int=1), role="user", content="hi")
            )
            assert (tmp_path / "s.db-wal").exists()
            scope.cancel()
            await trio.sleep(1)
    assert scope.cancelled_caught
    assert not (tmp_path / "s.db-wal").exists()
    assert kept


async def test_sqlite_stores_purge_expired_rows_once_per_interval_not_continuously(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    """The purge task sleeps PURGE_INTERVAL_SECONDS between purges (it reads the clock then)."""
    reads: list[float] = []

    def wall_clock() -> float:
        reads.append(1.0)
        return 1_000.0

    async with open_sqlite_stores(str(tmp_path / "s.db"), clock=wall_clock) as stores:
        opened = len(reads)  # the open reads it once (it stamps unstamped closed approvals)
        for index in range(5):  # worker threads: real time passes, trio's clock stands
            await stores.memory.write(
                MemoryEntry(id=str(index), session_id=uuid.UUID(int=1), role="user", content="x")
            )
        assert len(reads) == opened  # no interval has passed: no purge yet
        mock_clock.jump(PURGE_INTERVAL_SECONDS)
        await trio.testing.wait_all_tasks_blocked()
        assert len(reads) == opened + 1  # read in trio's thread, as the purge task wakes


# --- auth/jwt.py ----------------------------------------------------------------------


async def test_signed_jwt_validator_accepts_a_float_clock() -> None:
    """``now`` returning a float (``time.time``, the default, does) is a valid clock."""
    pyjwt = pytest.importorskip("jwt")
    secret = "s" * 32
    now = 1_800_000_000.25
    user = "33333333-3333-3333-3333-333333333333"
    session = "00000000-0000-0000-0000-000000000099"
    token = pyjwt.encode({"sub": user, "sid": session, "exp": now + 60}, secret, algorithm="HS256")
    validator = SignedJwtValidator(algorithms=["HS256"], key=secret, now=lambda: now)
    claims = await validator.validate(token)
    assert claims["user_id"] == user
    assert claims["session_id"] == session
    with pytest.raises(TokenExpiredError):
        await SignedJwtValidator(algorithms=["HS256"], key=secret, now=lambda: now + 60.0).validate(
            token
        )
