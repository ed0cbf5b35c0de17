"""Wrong arguments to the shared idempotency stores: a TypeError at the call, naming the
parameter; and every store reads ``ttl_seconds`` as the in-memory store does."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio

from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores import open_stores
from stageflow_trio.stores.sqlite import open_sqlite_stores

from ._worker import entry
from .conftest import _command
from .test_idempotency_contract import _same
from .test_ttl import FakeWallClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

SHARED = pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])

# The stores as Any: the calls break their signatures on purpose.
CALLS: list[tuple[Callable[[Any], Awaitable[Any]], str]] = [
    (lambda s: s.get(123), "get: key must be a str; got int"),
    (lambda s: s.delete(None), "delete: key must be a str; got NoneType"),
    (lambda s: s.claim(None), "claim: key must be a str; got NoneType"),
    (lambda s: s.set(b"k", entry(1)), "set: key must be a str; got bytes"),
    (lambda s: s.set("k", "x"), "set: entry must be a CachedStageResult; got str"),
    (
        lambda s: s.set("k", entry(1), ttl_seconds="5"),
        "set: ttl_seconds must be a number or None; got str",
    ),
    (
        lambda s: s.set("k", entry(1), ttl_seconds=True),
        "set: ttl_seconds must be a number or None; got bool",
    ),
]


@SHARED
@pytest.mark.parametrize(("call", "message"), CALLS)
async def test_a_wrong_argument_is_a_type_error_naming_it(
    store_url: str, call: Callable[[Any], Awaitable[Any]], message: str
) -> None:
    async with open_stores(store_url) as stores:
        store = stores.idempotency
        owner = type(store).__name__
        with pytest.raises(TypeError, match=f"^{re.escape(f'{owner}.{message}')}$"):
            await call(store)
        assert await store.get("k") is None  # nothing stored
        assert isinstance(await store.claim("k"), IdempotencyClaim)  # nothing held


@SHARED
async def test_release_of_a_non_claim_is_a_type_error(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        store = stores.idempotency
        owner = type(store).__name__
        message = f"{owner}.release: claim must be an IdempotencyClaim; got str"
        with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
            store.release("x")  # type: ignore[arg-type]


async def test_every_backend_reads_ttl_seconds_as_the_in_memory_store(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        store: Any = stores.idempotency  # ttl_seconds is typed int | None (the reference's)
        # NaN never expires (expired once stored_at + ttl <= now: never true for NaN),
        # also through memory://'s write-time sweep of its oldest entries.
        forever = (math.inf, 0, None, 1e300, math.nan)
        for ttl in forever:
            await store.set("k", entry(1), ttl_seconds=ttl)
            _same(await store.get("k"), entry(1))
        for ttl in (-1, -0.001, -math.inf):  # expired already
            await store.set("k", entry(1))
            await store.set("k", entry(2), ttl_seconds=ttl)
            assert await store.get("k") is None
            claim = await store.claim("k")
            assert isinstance(claim, IdempotencyClaim)
            store.release(claim)


async def test_redis_rounds_a_short_ttl_up_to_a_millisecond(redis_url: str) -> None:
    key = "stageflow:idem:result:k"
    async with open_stores(redis_url) as stores:
        store: Any = stores.idempotency
        await store.set("k", entry(1), ttl_seconds=60.0001)
        # 60,001 ms when read at once; a loaded machine may take longer than 1 ms to ask.
        left = int(_command(redis_url, "PTTL", key)[1:])
        assert 59_000 < left <= 60_001
        await store.set("k", entry(1), ttl_seconds=1e300)
        assert _command(redis_url, "PTTL", key) == b":-1\r\n"  # never expires
        await store.set("k", entry(1), ttl_seconds=0.0001)  # 1 ms
        assert _command(redis_url, "PTTL", key) in (b":1\r\n", b":0\r\n", b":-2\r\n")
        await trio.sleep(0.01)  # Redis's own clock must pass 1 ms
        assert await store.get("k") is None


async def test_sqlite_keeps_a_short_ttl(tmp_path: Path) -> None:
    clock = FakeWallClock()
    async with open_sqlite_stores(str(tmp_path / "s.db"), clock=clock) as stores:
        store: Any = stores.idempotency
        await store.set("k", entry(1), ttl_seconds=0.0001)
        got = await store.get("k")
        assert got is not None
        assert got.expires_at == clock.now + 0.0001
        clock.now += 0.0001
        assert await store.get("k") is None
