"""The shared stores when the block that opened them is cancelled.

A service cancelled at shutdown (Ctrl+C, a parent's timeout) still runs its cleanup:
an idempotency holder releases its claim there. That release must not raise, should
reach the store while it can, and the cancelled block must end promptly in
``trio.Cancelled``, not in an error of the connection the cancellation closed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from typing import TYPE_CHECKING

import trio
import trio.testing

from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores import open_stores
from stageflow_trio.stores.redis import open_redis_stores
from stageflow_trio.stores.sqlite import open_sqlite_stores

if TYPE_CHECKING:
    from pathlib import Path


def _claims_in(path: Path) -> list[str]:
    # closing(): a connection's own ``with`` commits, it does not close (Python 3.13
    # warns of the unclosed connection when it is collected, in a later test).
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return [row[0] for row in connection.execute("SELECT key FROM idempotency_claims")]


async def test_sqlite_a_claim_released_in_a_cancelled_blocks_cleanup_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    with trio.CancelScope() as scope:
        async with open_sqlite_stores(str(path)) as stores:
            claim = await stores.idempotency.claim("k")
            assert isinstance(claim, IdempotencyClaim)
            scope.cancel()
            # The holder's cleanup, after the cancel has reached the store's task.
            with trio.CancelScope(shield=True):
                await trio.testing.wait_all_tasks_blocked()
                stores.idempotency.release(claim)  # must not raise
    assert scope.cancelled_caught
    # Released, not left to block every process for a lease (30 s).
    assert _claims_in(path) == []


async def test_sqlite_a_release_racing_the_cancel_is_written(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with trio.CancelScope() as scope:
        async with open_sqlite_stores(str(path)) as stores:
            claims = [await stores.idempotency.claim(key) for key in ("a", "b")]
            for claim in claims:
                assert isinstance(claim, IdempotencyClaim)
                stores.idempotency.release(claim)
            scope.cancel()  # before the store's task has written them
    assert scope.cancelled_caught
    assert _claims_in(path) == []


async def test_redis_a_release_in_a_cancelled_blocks_cleanup_does_not_raise(
    redis_url: str,
) -> None:
    started = time.monotonic()
    with trio.CancelScope() as scope:
        async with open_redis_stores(redis_url, connect_timeout=30) as stores:
            claim = await stores.idempotency.claim("k")
            assert isinstance(claim, IdempotencyClaim)
            scope.cancel()
            with trio.CancelScope(shield=True):
                await trio.testing.wait_all_tasks_blocked()
                stores.idempotency.release(claim)  # must not raise (BrokenResourceError)
    assert scope.cancelled_caught
    # It waited for its background task's drain, which a cancel had ended: the whole
    # connect_timeout (30 s here) before.
    assert time.monotonic() - started < 15


async def test_redis_a_cancelled_stores_block_ends_in_cancelled(redis_url: str) -> None:
    # Its pub/sub cleanup met the connection the cancel closed (anyio's
    # ClosedResourceError) about one time in two: repeat.
    for _ in range(10):
        with trio.CancelScope() as scope:
            async with open_stores(redis_url) as stores:
                assert stores.url == redis_url
                scope.cancel()
                await trio.sleep(1)
        assert scope.cancelled_caught
