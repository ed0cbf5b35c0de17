"""A failure in a store's background work (releasing, renewing) is logged; the lease covers it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import coredis.exceptions
import pytest
import trio

from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores import open_stores
from stageflow_trio.stores.redis import RedisIdempotencyStore
from stageflow_trio.stores.sqlite import open_sqlite_stores


async def logged(caplog: pytest.LogCaptureFixture, message: str) -> None:
    """Wait (real time: the stores' background tasks run on trio's clock) for a record
    starting with ``message`` (the error's text and the lease follow: audit 26).

    Polled rather than a fixed sleep, which a loaded machine can outlast.
    """
    with trio.fail_after(5):
        while not any(  # noqa: ASYNC110 - log records to poll
            r.getMessage().startswith(message + " (")
            for r in caplog.records
            if r.name == "stageflow_trio.stores"
        ):
            await trio.sleep(0.01)


async def test_sqlite_release_and_renewal_failures_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    async with open_sqlite_stores(str(path), claim_lease_seconds=0.03) as stores:
        claim = await stores.idempotency.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        with closing(sqlite3.connect(path)) as connection, connection:
            connection.execute("DROP TABLE idempotency_claims")
        await logged(caplog, "could not renew 1 claims")  # a renewal (every 10 ms) fails
        stores.idempotency.release(claim)
        await logged(caplog, "could not release claim 'k'")  # the release fails


class FailingClient:
    async def eval(self, *args: Any, **kwargs: Any) -> Any:
        await trio.lowlevel.checkpoint()
        raise coredis.exceptions.ConnectionError("gone")


async def test_redis_release_and_renewal_failures_are_logged(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_stores(f"{redis_url}?claim_lease_seconds=0.03") as stores:
        store = stores.idempotency
        assert isinstance(store, RedisIdempotencyStore)
        claim = await store.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        real, store._client = store._client, FailingClient()
        await logged(caplog, "could not renew 1 claims")  # a renewal (every 10 ms) fails
        store.release(claim)
        await logged(caplog, "could not release claim 'k'")  # the release fails
        store._client = real
