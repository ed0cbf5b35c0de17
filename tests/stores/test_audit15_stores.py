"""Audit 15 of the stores: argument checks at the call, an injected clock read in the trio
thread, and Redis connection errors met while releasing a claim."""

from __future__ import annotations

import logging
import math
import uuid
from typing import TYPE_CHECKING, Any, cast

import anyio
import coredis
import pytest
import trio

from stageflow_trio.helpers.memory import MemoryConfig, MemoryEntry
from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores import open_stores
from stageflow_trio.stores.redis import _CLAIM, _RELEASE, open_redis_stores
from stageflow_trio.stores.sqlite import open_sqlite_stores
from stageflow_trio.tools.definitions import UndoMetadata

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("bad", [None, "00000000-0000-0000-0000-000000000001", 1])
async def test_memory_session_id_must_be_a_uuid_on_every_backend(store_url: str, bad: Any) -> None:
    """As InMemoryStore: a str session id was read as the UUID's text (SQLite, Redis)."""
    session = uuid.UUID(int=1)
    async with open_stores(store_url) as stores:
        memory = stores.memory
        await memory.write(MemoryEntry(id="1", session_id=session, role="user", content="x"))
        with pytest.raises(TypeError, match=r"fetch: session_id must be a UUID; got "):
            await memory.fetch(bad, MemoryConfig())
        with pytest.raises(TypeError, match=r"clear: session_id must be a UUID; got "):
            await memory.clear(bad)
        # Nothing was cleared.
        assert len(await memory.fetch(session, MemoryConfig())) == 1


async def test_sqlite_undo_reads_an_injected_clock_in_the_trio_thread(tmp_path: Path) -> None:
    """``get_all`` called the clock in its worker thread, where ``trio.current_time`` fails."""
    async with open_sqlite_stores(str(tmp_path / "u.db"), clock=trio.current_time) as stores:
        undo = stores.undo_store()
        kept, other = uuid.UUID(int=1), uuid.UUID(int=2)
        await undo.store(kept, "tool", {"n": 1}, ttl_seconds=math.inf)
        await undo.store(other, "tool", {"n": 2}, ttl_seconds=3600)
        assert [m.action_id for m in await undo.get_all()] == [kept, other]
        assert await undo.cleanup_expired() == 0


async def test_open_sqlite_stores_refuses_a_clock_that_is_not_callable(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"open_sqlite_stores: clock must be callable; got int"):
        async with open_sqlite_stores(str(tmp_path / "c.db"), clock=5):  # type: ignore[arg-type]
            pass
    assert not (tmp_path / "c.db").exists()


async def test_open_redis_stores_refuses_a_url_that_is_not_a_str() -> None:
    with pytest.raises(TypeError, match=r"open_redis_stores: url must be a str; got bytes"):
        async with open_redis_stores(b"redis://127.0.0.1:1/0"):  # type: ignore[arg-type]
            pass


class _ClosedConnectionRedis(coredis.Redis):  # type: ignore[type-arg]
    """A client whose claim script waits for ever, and whose release script then meets the
    connection the cancellation closed (anyio's ClosedResourceError, as coredis raises)."""

    closed = False
    releases = 0
    released: trio.Event

    async def eval(self, script: Any, keys: Any = None, args: Any = None) -> Any:  # type: ignore[override]
        if self.closed and script == _CLAIM:
            await trio.sleep_forever()
        if self.closed and script == _RELEASE:
            self.releases += 1
            self.released.set()
            raise anyio.ClosedResourceError
        return await super().eval(script, keys=keys, args=args)


def _client(url: str) -> _ClosedConnectionRedis:
    client = cast("_ClosedConnectionRedis", _ClosedConnectionRedis.from_url(url))
    client.released = trio.Event()
    return client


async def test_redis_a_cancelled_claim_whose_release_meets_a_closed_connection_is_cancelled(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The release of what the script may have granted must not replace ``Cancelled``."""
    client = _client(redis_url)
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.stores"):
        async with open_redis_stores(client=client) as stores:
            client.closed = True
            with trio.move_on_after(0.01) as scope:
                await stores.idempotency.claim("k")
            assert scope.cancelled_caught
            assert client.releases >= 1
            client.closed = False
    assert "could not release claim 'k'" in caplog.text


async def test_redis_a_background_release_meeting_a_closed_connection_is_logged(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """It crashed the store's background task, and the stores' block with it."""
    client = _client(redis_url)
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.stores"):
        async with open_redis_stores(client=client) as stores:
            claim = await stores.idempotency.claim("k")
            assert isinstance(claim, IdempotencyClaim)
            client.closed = True
            stores.idempotency.release(claim)
            with trio.fail_after(5):
                await client.released.wait()
            client.closed = False
            await stores.undo.put(UndoMetadata(uuid.UUID(int=1), "tool", {}), 60)
    assert "could not release claim 'k'" in caplog.text


def test_the_repr_of_stores_never_shows_the_url_password() -> None:
    from stageflow_trio.stores import Stores

    stores = Stores(
        url="redis://worker:s3cret@db.internal:6379/0",
        idempotency=None,  # type: ignore[arg-type]
        memory=None,  # type: ignore[arg-type]
        approvals=None,  # type: ignore[arg-type]
        undo=None,  # type: ignore[arg-type]
    )
    text = repr(stores)
    assert "s3cret" not in text
    assert "url='redis://worker:***@db.internal:6379/0'" in text
    assert stores.url == "redis://worker:s3cret@db.internal:6379/0"  # the value itself is kept
