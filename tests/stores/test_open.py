"""Opening stores: choosing a backend by URL or environment variable, and bad
configuration failing at open with an error that names the setting."""

from __future__ import annotations

import gc
import re
import sqlite3
import sys
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from stageflow_trio.helpers.memory import InMemoryStore
from stageflow_trio.pipeline.idempotency import InMemoryIdempotencyStore
from stageflow_trio.stores import STORE_URL_ENV, StoreConfigError, open_stores
from stageflow_trio.stores.redis import RedisIdempotencyStore, RedisMemoryStore, open_redis_stores
from stageflow_trio.stores.sqlite import (
    SCHEMA_VERSION,
    SqliteIdempotencyStore,
    SqliteMemoryStore,
    open_sqlite_stores,
)

from .conftest import _free_port


async def test_the_default_is_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    async with open_stores() as stores:
        assert stores.url == "memory://"
        assert type(stores.idempotency) is InMemoryIdempotencyStore
        assert type(stores.memory) is InMemoryStore


async def test_the_environment_variable_chooses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(STORE_URL_ENV, f"sqlite:///{tmp_path}/env.db")
    async with open_stores() as stores:
        assert stores.url == f"sqlite:///{tmp_path}/env.db"
        assert type(stores.idempotency) is SqliteIdempotencyStore
        assert type(stores.memory) is SqliteMemoryStore
    assert (tmp_path / "env.db").exists()


async def test_a_redis_url_chooses_redis(redis_url: str) -> None:
    async with open_stores(f"{redis_url}?prefix=app1:&resync_interval=2") as stores:
        assert type(stores.idempotency) is RedisIdempotencyStore
        assert type(stores.memory) is RedisMemoryStore


async def test_the_sqlite_file_is_in_wal_mode_with_the_schema_version(tmp_path: Path) -> None:
    async with open_stores(f"sqlite:///{tmp_path}/s.db?poll_interval=0.1"):
        pass
    with closing(sqlite3.connect(tmp_path / "s.db")) as connection, connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    async with open_stores(f"sqlite:///{tmp_path}/s.db"):  # reopened as it is
        pass


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x", r"url: unknown store URL 'ftp://x'"),
        ("memory://x", r"url: memory store URL takes nothing after memory://"),
        ("sqlite://", r"url: SQLite store URL must be sqlite:///path"),
        ("sqlite://host/x.db", r"url: SQLite store URL must be sqlite:///path"),
        ("sqlite:///tmp/x.db?bogus=1", r"url: unknown option 'bogus'"),
        ("sqlite:///tmp/x.db?poll_interval=soon", r"url: option poll_interval='soon'"),
        ("redis://[::1", r"url: malformed store URL"),
        ("redis://localhost:notaport/0", r"url: malformed Redis URL"),
    ],
)
async def test_a_malformed_url_fails_at_open(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message) as info:
        async with open_stores(url):
            pytest.fail("opened")
    assert info.value.setting == "url"


_SECONDS = "must be a finite number of seconds > 0"
_REDIS_KNOWN = (
    "approval_retention_seconds, claim_lease_seconds, client_name, command_timeout,"
    " connect_timeout, db, max_connections, max_idle_time, noevict, notouch, prefix,"
    " resync_interval, stream_timeout, timeout"
)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "sqlite:///tmp/x.db?claim_lease_seconds=-1",
            f"option claim_lease_seconds='-1' in 'sqlite:///tmp/x.db?claim_lease_seconds=-1':"
            f" {_SECONDS}",
        ),
        (
            "sqlite:///tmp/x.db?claim_lease_seconds=nan",
            f"option claim_lease_seconds='nan' in 'sqlite:///tmp/x.db?claim_lease_seconds=nan':"
            f" {_SECONDS}",
        ),
        (
            "sqlite:///tmp/x.db?poll_interval=0",
            f"option poll_interval='0' in 'sqlite:///tmp/x.db?poll_interval=0': {_SECONDS}",
        ),
        (
            "sqlite:///tmp/x.db?poll_interval=inf",
            f"option poll_interval='inf' in 'sqlite:///tmp/x.db?poll_interval=inf': {_SECONDS}",
        ),
        (
            "redis://:pw@127.0.0.1:1/0?claim_lease_seconds=-1",
            "option claim_lease_seconds='-1' in"
            f" 'redis://:***@127.0.0.1:1/0?claim_lease_seconds=-1': {_SECONDS}",
        ),
        (
            "redis://127.0.0.1:1/0?resync_interval=nan",
            f"option resync_interval='nan' in 'redis://127.0.0.1:1/0?resync_interval=nan':"
            f" {_SECONDS}",
        ),
        (
            "redis://127.0.0.1:1/0?bogus=1",
            f"unknown option 'bogus' in 'redis://127.0.0.1:1/0?bogus=1'; known: {_REDIS_KNOWN}",
        ),
        (
            "redis+cluster://127.0.0.1:1?resync_intervall=1",
            "unknown option 'resync_intervall' in"
            f" 'redis+cluster://127.0.0.1:1?resync_intervall=1'; known: {_REDIS_KNOWN}",
        ),
        (
            "redis://127.0.0.1:1/0?noreply=true",
            f"unknown option 'noreply' in 'redis://127.0.0.1:1/0?noreply=true'; known: {_REDIS_KNOWN}",
        ),
    ],
)
async def test_a_bad_option_fails_at_open_naming_the_setting(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=f"^url: {re.escape(message)}$") as info:
        async with open_stores(url):
            pytest.fail("opened")
    assert info.value.setting == "url"


async def test_a_bad_option_names_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "sqlite:///tmp/x.db?poll_interval=-1"
    monkeypatch.setenv(STORE_URL_ENV, url)
    message = f"{STORE_URL_ENV}: option poll_interval='-1' in {url!r}: {_SECONDS}"
    with pytest.raises(StoreConfigError, match=f"^{re.escape(message)}$"):
        async with open_stores():
            pytest.fail("opened")


async def test_the_error_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORE_URL_ENV, "postgres://x")
    with pytest.raises(StoreConfigError, match=rf"^{STORE_URL_ENV}: unknown store URL"):
        async with open_stores():
            pytest.fail("opened")


async def test_an_unreachable_redis_fails_at_open() -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    with pytest.raises(StoreConfigError, match=rf"url: cannot reach Redis at {url}"):
        async with open_stores(url):
            pytest.fail("opened")


@pytest.mark.parametrize(
    "path",
    [
        "/proc/stageflow-stores.db",  # a read-only file system, even for root
        "{tmp}/missing-dir/s.db",
        "{tmp}",  # a directory
    ],
)
async def test_an_unwritable_sqlite_path_fails_at_open(path: str, tmp_path: Path) -> None:
    path = path.format(tmp=tmp_path)
    with pytest.raises(StoreConfigError, match=r"url: cannot (open|use) SQLite database"):
        async with open_stores(f"sqlite:///{path}"):
            pytest.fail("opened")


async def test_a_newer_sqlite_schema_is_refused(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "s.db")) as connection, connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreConfigError, match=r"path: .* has schema version 2, newer"):
        async with open_sqlite_stores(str(tmp_path / "s.db")):
            pytest.fail("opened")


async def test_a_newer_redis_layout_is_refused(redis_url: str) -> None:
    from .conftest import _command

    _command(redis_url, "SET", "stageflow:schema", "99")
    with pytest.raises(StoreConfigError, match=r"url: Redis at .* key layout version 99"):
        async with open_stores(redis_url):
            pytest.fail("opened")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"path": 3}, TypeError, r"open_sqlite_stores: path must be a str; got int"),
        ({"path": ""}, ValueError, r"open_sqlite_stores: path must not be empty"),
        ({"poll_interval": 0}, ValueError, r"open_sqlite_stores: poll_interval must be > 0"),
        ({"claim_lease_seconds": "1"}, TypeError, r"claim_lease_seconds must be a number"),
    ],
)
async def test_sqlite_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str, tmp_path: Path
) -> None:
    kwargs = {"path": str(tmp_path / "s.db"), **kwargs}
    with pytest.raises(error, match=message):
        async with open_sqlite_stores(**kwargs):
            pytest.fail("opened")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, TypeError, r"open_redis_stores: give exactly one of url and client"),
        ({"url": "redis://x", "prefix": 1}, TypeError, r"prefix must be a str or None; got int"),
        ({"url": "redis://x", "resync_interval": -1}, ValueError, r"resync_interval must be > 0"),
    ],
)
async def test_redis_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        async with open_redis_stores(**kwargs):
            pytest.fail("opened")


async def test_open_stores_rejects_a_non_string_url() -> None:
    with pytest.raises(TypeError, match=r"open_stores: url must be a str or None; got int"):
        async with open_stores(3):  # type: ignore[arg-type]
            pytest.fail("opened")


async def test_an_in_memory_sqlite_database_is_refused() -> None:
    with pytest.raises(StoreConfigError, match=r"path: .* cannot use WAL mode"):
        async with open_sqlite_stores(":memory:"):
            pytest.fail("opened")


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.db").write_bytes(b"not a database, not at all" * 100)
    with pytest.raises(
        StoreConfigError, match=r"path: cannot use SQLite database .*not a database"
    ):
        async with open_sqlite_stores(str(tmp_path / "s.db")):
            pytest.fail("opened")


async def test_a_clashing_schema_is_rolled_back_and_refused(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "s.db")) as connection, connection:
        connection.execute("CREATE TABLE memory (x)")
    with pytest.raises(StoreConfigError, match=r"table memory already exists"):
        async with open_sqlite_stores(str(tmp_path / "s.db")):
            pytest.fail("opened")
    with closing(sqlite3.connect(tmp_path / "s.db")) as connection, connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (0,)
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert tables.fetchall() == [("memory",)]


async def test_a_failed_transaction_is_rolled_back(tmp_path: Path) -> None:
    async with open_sqlite_stores(str(tmp_path / "s.db")) as stores:
        assert isinstance(stores.idempotency, SqliteIdempotencyStore)
        db = stores.idempotency._db

        def fail(connection: sqlite3.Connection) -> None:
            connection.execute("INSERT INTO undo (action_id, metadata) VALUES ('a', '{}')")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await db.transaction(fail)
        assert (await db.execute("SELECT count(*) FROM undo")).fetchone() == (0,)


async def test_a_client_can_be_given(redis_url: str) -> None:
    import coredis

    client = coredis.Redis.from_url(redis_url)
    async with open_redis_stores(client=client, prefix="given:") as stores:
        await stores.memory.clear(uuid.uuid4())
        assert stores.url.startswith("Redis<")


# coredis 6.9 leaves the memory streams of a connection that failed to connect unclosed;
# collected here, so that their ResourceWarnings land in this test and nowhere else.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_given_client_that_cannot_connect_fails_at_open(tmp_path: Path) -> None:
    import coredis

    client = coredis.Redis(unix_socket_path=str(tmp_path / "none.sock"))
    with pytest.raises(StoreConfigError, match=r"url: cannot use Redis at "):
        async with open_redis_stores(client=client, connect_timeout=2):
            pytest.fail("opened")
    del client
    gc.collect()


# coredis 6.9 leaves the memory streams of a connection that failed to connect unclosed;
# collected here, so that their ResourceWarnings land in this test and nowhere else.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_unix_socket_url_skips_the_tcp_check(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match=r"url: cannot use Redis at unix://"):
        async with open_redis_stores(f"unix://{tmp_path}/none.sock", connect_timeout=2):
            pytest.fail("opened")
    gc.collect()


async def test_other_query_parameters_go_to_the_redis_client(redis_url: str) -> None:
    async with open_stores(f"{redis_url}?max_connections=4&prefix=p:") as stores:
        assert stores.url == f"{redis_url}?max_connections=4"
        assert stores.idempotency._client.connection_pool.max_connections == 4  # type: ignore[attr-defined]


async def test_a_redis_url_without_the_client_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "stageflow_trio.stores.redis", None)
    with pytest.raises(StoreConfigError, match=r"url: 'redis://x' needs the Redis client: pip"):
        async with open_stores("redis://x"):
            pytest.fail("opened")


class _FakeTime:
    """A clock for ``_while_locked``: ``sleep`` advances ``monotonic``."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _failing(times: int, message: str) -> tuple[list[int], Any]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise sqlite3.OperationalError(message)
        return "opened"

    return calls, fn


def test_opening_retries_while_another_process_holds_the_new_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two processes opening one new file: switching to WAL mode can say "database is
    # locked" at once, without waiting busy_timeout (CI met it); the open tries again.
    from stageflow_trio.stores import sqlite as module

    fake = _FakeTime()
    monkeypatch.setattr(module, "time", fake)
    calls, fn = _failing(3, "database is locked")
    assert module._while_locked(fn) == "opened"
    assert len(calls) == 4
    assert fake.sleeps == [0.001, 0.002, 0.004]  # backing off


def test_opening_gives_up_after_five_seconds_locked(monkeypatch: pytest.MonkeyPatch) -> None:
    from stageflow_trio.stores import sqlite as module

    fake = _FakeTime()
    monkeypatch.setattr(module, "time", fake)
    calls, fn = _failing(10_000, "database is locked")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        module._while_locked(fn)
    assert len(calls) == len(fake.sleeps) + 1 > 100
    assert 5.0 <= fake.now < 5.1
    assert max(fake.sleeps) == 0.05


def test_opening_does_not_retry_other_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from stageflow_trio.stores import sqlite as module

    fake = _FakeTime()
    monkeypatch.setattr(module, "time", fake)
    calls, fn = _failing(1, "file is not a database")
    with pytest.raises(sqlite3.OperationalError, match="not a database"):
        module._while_locked(fn)
    assert len(calls) == 1
    assert fake.sleeps == []


async def test_a_store_connection_waits_five_seconds_for_a_lock(tmp_path: Path) -> None:
    async with open_stores(f"sqlite:///{tmp_path}/s.db") as stores:
        assert isinstance(stores.memory, SqliteMemoryStore)
        busy = await stores.memory._db.run(
            lambda connection: connection.execute("PRAGMA busy_timeout").fetchone()
        )
    assert busy == (5000,)
