"""Audit 22: approval retention in store URLs, and Redis requests closed before retention.

1. ``open_stores("sqlite:///...")`` / ``open_stores("redis://...")`` had no query option for
   the openers' ``approval_retention_seconds=``: a service configured by
   ``STAGEFLOW_STORE_URL`` alone could not choose the period (``?approval_retention_seconds=``
   was refused as unknown). It takes the keyword's values: seconds >= 0, ``inf`` included.
2. A Redis request that a version before retention (audit 21) closed had no expiry, and was
   kept for ever unless it changed again. Those versions listed every request they made in
   the creation-ordered index ``{prefix}approvals``; the stores now sweep that index as
   they open (in batches), giving each closed request its period from then.

The "legacy" data is written here by the scripts of those versions (the project's own,
before audit 21). Redis expiries are checked by ``PTTL``, never waited for.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from typing import TYPE_CHECKING, Any

import coredis
import pytest
import trio
from coredis.connection import TCPLocation

from stageflow_trio.stores import _REDIS_OPTIONS as REDIS_STORE_OPTIONS
from stageflow_trio.stores import StoreConfigError, open_stores
from stageflow_trio.stores import redis as redis_stores
from stageflow_trio.stores._common import request_to_json
from stageflow_trio.stores._redis_url import parse_redis_url
from stageflow_trio.stores.redis import open_redis_stores
from stageflow_trio.tools.approval import ApprovalRequest, ApprovalStatus

from .conftest import _command

if TYPE_CHECKING:
    from pathlib import Path

A = uuid.UUID(int=1)
B = uuid.UUID(int=2)

# -- 1. the URL option ---------------------------------------------------------------------


def _url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/s.db"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("600", 600.0),
        ("0.25", 0.25),
        ("0", 0.0),
        ("inf", math.inf),
        ("Infinity", math.inf),
        ("1e400", math.inf),
    ],
)
async def test_the_url_option_sets_the_retention(
    kind: str, text: str, value: float, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    base = _url(kind, tmp_path, request)
    async with open_stores(f"{base}?approval_retention_seconds={text}") as stores:
        assert stores.approvals.retention_seconds == value  # type: ignore[attr-defined]
    async with open_stores(base) as stores:  # the default, as the keyword's
        assert stores.approvals.retention_seconds == 3600  # type: ignore[attr-defined]


async def test_the_url_option_reaches_the_redis_scripts(redis_url: str) -> None:
    async with open_stores(f"{redis_url}?approval_retention_seconds=90") as stores:
        service = stores.approval_service()
        request = await service.request_approval(A, "t")
        await service.record_decision(request.id, True)
        assert 89_000 < _ttl(redis_url, f"stageflow:approval:{request.id}") <= 90_000


_RULE = "must be a number of seconds >= 0 (inf: kept until removed)"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "sqlite:///tmp/x.db?approval_retention_seconds=-1",
            "option approval_retention_seconds='-1' in"
            f" 'sqlite:///tmp/x.db?approval_retention_seconds=-1': {_RULE}",
        ),
        (
            "sqlite:///tmp/x.db?approval_retention_seconds=nan",
            "option approval_retention_seconds='nan' in"
            f" 'sqlite:///tmp/x.db?approval_retention_seconds=nan': {_RULE}",
        ),
        (
            "redis://:pw@127.0.0.1:1/0?approval_retention_seconds=-inf",
            "option approval_retention_seconds='-inf' in"
            f" 'redis://:***@127.0.0.1:1/0?approval_retention_seconds=-inf': {_RULE}",
        ),
        (
            "redis+cluster://u:pw@127.0.0.1:1?approval_retention_seconds=-0.5",
            "option approval_retention_seconds='-0.5' in"
            f" 'redis+cluster://u:***@127.0.0.1:1?approval_retention_seconds=-0.5': {_RULE}",
        ),
        (
            "redis://127.0.0.1:1/0?approval_retention_seconds=hour",
            "option approval_retention_seconds='hour' in"
            " 'redis://127.0.0.1:1/0?approval_retention_seconds=hour':"
            " could not convert string to float: 'hour'",
        ),
        (
            "sqlite:///tmp/x.db?approval_retention_seconds=",
            "option approval_retention_seconds='' in"
            " 'sqlite:///tmp/x.db?approval_retention_seconds=':"
            " could not convert string to float: ''",
        ),
        (
            "sqlite:///tmp/x.db?approval_retention=1",
            "unknown option 'approval_retention' in 'sqlite:///tmp/x.db?approval_retention=1';"
            " known: approval_retention_seconds, claim_lease_seconds, poll_interval",
        ),
    ],
)
async def test_a_bad_retention_option_fails_at_open(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=f"^url: {re.escape(message)}$") as info:
        async with open_stores(url):
            pytest.fail("opened")
    assert info.value.setting == "url"


def test_a_cluster_url_names_every_store_option_it_takes() -> None:
    """The message listing what a cluster URL's query may hold follows the option table."""
    with pytest.raises(StoreConfigError) as info:
        parse_redis_url("redis+cluster://a:1?max_connections=4", "url")
    listed = re.search(r"\(([^)]*)\)$", str(info.value))
    assert listed is not None
    assert sorted(listed.group(1).split(", ")) == sorted(REDIS_STORE_OPTIONS)


# -- 2. Redis requests closed before retention ----------------------------------------------

# The scripts of the versions before retention (audit 21), as they wrote a request and
# closed it: no expiry, and every request listed in the creation-ordered index.
_OLD_ADD = """
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'request', ARGV[1], 'status', ARGV[2], 'decided_by', '',
    'decided_at', '', 'action_id', ARGV[4])
redis.call('ZADD', KEYS[2], seq, ARGV[3])
redis.call('ZADD', KEYS[4], seq, ARGV[3])
if ARGV[2] == 'pending' then redis.call('ZADD', KEYS[5], seq, ARGV[3]) end
return seq
"""

_OLD_CLOSE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""


class OldVersion:
    """Writes approvals as a version before retention did, through a client of its own."""

    def __init__(self, client: Any, prefix: str = "stageflow:") -> None:
        self.client = client
        self.prefix = prefix

    async def add(self, action: uuid.UUID, status: ApprovalStatus) -> uuid.UUID:
        request = ApprovalRequest(id=uuid.uuid4(), action_id=action, tool_name="t")
        p = self.prefix
        await self.client.eval(
            _OLD_ADD,
            keys=[
                f"{p}approval:{request.id}",
                f"{p}approvals",
                f"{p}approvals:seq",
                f"{p}approvals:action:{action}",
                f"{p}approvals:pending",
            ],
            args=[request_to_json(request), "pending", str(request.id), str(action)],
        )
        if status is not ApprovalStatus.PENDING:
            await self.close(request.id, status)
        return request.id

    async def close(self, request_id: uuid.UUID, status: ApprovalStatus) -> None:
        p = self.prefix
        await self.client.eval(
            _OLD_CLOSE,
            keys=[f"{p}approval:{request_id}", f"{p}approvals:pending"],
            args=[status.value, str(request_id)],
        )

    async def ttl(self, key: str) -> int:
        return int(await self.client.pttl(self.prefix + key))

    async def listed(self) -> list[str]:
        ids = await self.client.zrange(self.prefix + "approvals", 0, -1)
        return [i.decode() for i in ids]


def _ttl(url: str, key: str) -> int:
    reply = _command(url, "PTTL", key)
    assert reply.startswith(b":"), reply
    return int(reply[1:].strip())


def _in_a_minute(ms: int) -> bool:
    return 59_000 < ms <= 60_000


async def test_open_gives_the_requests_an_older_version_closed_their_expiry(
    redis_url: str,
) -> None:
    async with coredis.Redis.from_url(redis_url) as client:
        old = OldVersion(client)
        denied = await old.add(A, ApprovalStatus.DENIED)
        cancelled = await old.add(A, ApprovalStatus.CANCELLED)
        pending = await old.add(A, ApprovalStatus.PENDING)
        approved = await old.add(B, ApprovalStatus.APPROVED)  # B: its only request
        changed = await old.add(B, ApprovalStatus.EXPIRED)
        await client.pexpire(f"stageflow:approval:{changed}", 5_000)  # changed since: kept as is
        gone = await old.add(B, ApprovalStatus.APPROVED)
        await client.delete([f"stageflow:approval:{gone}"])
        assert await old.ttl(f"approval:{denied}") == -1

        async with open_redis_stores(redis_url, approval_retention_seconds=60) as stores:
            for closed in (denied, cancelled, approved):
                assert _in_a_minute(await old.ttl(f"approval:{closed}"))
            assert 0 < await old.ttl(f"approval:{changed}") <= 5_000
            assert await old.ttl(f"approval:{pending}") == -1
            assert await old.ttl(f"approvals:action:{A}") == -1  # holds a pending request
            assert _in_a_minute(await old.ttl(f"approvals:action:{B}"))
            # Only the pending request stays listed: an older version may still close it.
            assert await old.listed() == [str(pending)]
            service = stores.approval_service()
            assert await service.get_status(denied) is ApprovalStatus.DENIED
            assert await service.get_status(A) is ApprovalStatus.PENDING

            # A rolling upgrade: an older version closes it meanwhile; the next open sees it.
            await old.close(pending, ApprovalStatus.APPROVED)
            async with open_redis_stores(redis_url, approval_retention_seconds=60):
                assert _in_a_minute(await old.ttl(f"approval:{pending}"))
                assert _in_a_minute(await old.ttl(f"approvals:action:{A}"))
                assert await client.exists(["stageflow:approvals"]) == 0  # nothing left


async def test_the_sweep_goes_by_batches_past_the_pending_requests(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_stores, "_LEGACY_BATCH", 2)
    async with coredis.Redis.from_url(redis_url) as client:
        old = OldVersion(client)
        statuses = [ApprovalStatus.PENDING, ApprovalStatus.DENIED] * 3 + [ApprovalStatus.DENIED]
        ids = [await old.add(uuid.uuid4(), status) for status in statuses]
        async with open_redis_stores(redis_url, approval_retention_seconds=60) as stores:
            for request_id, status in zip(ids, statuses, strict=True):
                ttl = await old.ttl(f"approval:{request_id}")
                assert ttl == -1 if status is ApprovalStatus.PENDING else _in_a_minute(ttl)
            assert await old.listed() == [str(i) for i in ids[0:6:2]]
            # Three listed, two a batch: a full batch, then the one with the third.
            approvals = stores.approvals
            assert await approvals._expire_legacy() == 2  # type: ignore[attr-defined]


async def test_processes_sweeping_at_once_share_the_work(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_stores, "_LEGACY_BATCH", 1)
    async with (
        coredis.Redis.from_url(redis_url) as client,
        open_redis_stores(redis_url, approval_retention_seconds=60) as first,
        open_redis_stores(redis_url, approval_retention_seconds=60) as second,
    ):
        old = OldVersion(client)
        ids = [await old.add(uuid.uuid4(), ApprovalStatus.DENIED) for _ in range(12)]
        await client.pexpire(f"stageflow:approval:{ids[0]}", 5_000)  # changed since
        sweepers: list[Any] = [first.approvals, second.approvals, first.approvals]
        async with trio.open_nursery() as nursery:
            for approvals in sweepers:
                nursery.start_soon(approvals._expire_legacy)
        assert await old.listed() == []
        assert 0 < await old.ttl(f"approval:{ids[0]}") <= 5_000
        assert all([_in_a_minute(await old.ttl(f"approval:{i}")) for i in ids[1:]])


async def test_an_infinite_retention_leaves_them_as_they_are(redis_url: str) -> None:
    async with coredis.Redis.from_url(redis_url) as client:
        old = OldVersion(client)
        closed = await old.add(A, ApprovalStatus.DENIED)
        async with open_stores(f"{redis_url}?approval_retention_seconds=inf"):
            assert await old.ttl(f"approval:{closed}") == -1
            assert await old.listed() == [str(closed)]  # for a process that forgets them


async def test_a_sweep_that_fails_is_logged_and_the_stores_open(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    _command(redis_url, "SET", "stageflow:approvals", "not a sorted set")
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.stores"):
        async with open_redis_stores(redis_url) as stores:
            service = stores.approval_service()
            request = await service.request_approval(A, "t")
            assert await service.get_status(request.id) is ApprovalStatus.PENDING
    assert "could not give the approval requests closed by an older version" in caplog.text
    assert "WrongTypeError" in caplog.text


async def test_the_sweep_runs_on_a_cluster(redis_cluster: list[str]) -> None:
    """The old versions' index shares the prefix's hash tag: the script reaches the
    requests' hashes and the actions' indexes from it, on one shard."""
    for node in redis_cluster:
        _command(node, "FLUSHALL")
    nodes = [node.removeprefix("redis://").split("/")[0] for node in redis_cluster]
    host, port = nodes[0].split(":")
    async with coredis.RedisCluster(startup_nodes=[TCPLocation(host, int(port))]) as client:
        old = OldVersion(client, prefix="{stageflow}:")
        closed = await old.add(A, ApprovalStatus.APPROVED)
        pending = await old.add(B, ApprovalStatus.PENDING)
        url = f"redis+cluster://{','.join(nodes)}?approval_retention_seconds=60"
        async with open_stores(url) as stores:
            assert stores.approvals.retention_seconds == 60  # type: ignore[attr-defined]
            assert _in_a_minute(await old.ttl(f"approval:{closed}"))
            assert _in_a_minute(await old.ttl(f"approvals:action:{A}"))
            assert await old.ttl(f"approval:{pending}") == -1
            assert await old.listed() == [str(pending)]


# Moved from tests/test_audit22_coverage_4.py (the coverage pass's RedisBackend.listen case),
# beside the stores' Redis fixtures.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_user_who_may_not_subscribe_gets_the_servers_refusal_at_open(
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # RedisBackend.listen: an error that is not the cleanup of a cancellation (here the
    # server's NOPERM for the stores' channel) is raised as it is, from the opener's
    # start: no "failed as it was cancelled" debug line, no open without wake-ups.
    # (coredis 6.9 raises the refusal, or, in a race of its own, its TimeoutError for
    # the subscription's acknowledgement after one second: either ends the open.)
    user = "audit22_cov4"
    assert _command(redis_url, "ACL", "SETUSER", user, "on", ">pw", "~*", "resetchannels", "+@all")
    try:
        host = redis_url.removeprefix("redis://")
        caplog.set_level("DEBUG", logger="stageflow_trio.stores")
        with (
            trio.fail_after(10),
            pytest.raises((coredis.exceptions.AuthorizationError, TimeoutError)),
        ):
            async with open_redis_stores(f"redis://{user}:pw@{host}"):
                pytest.fail("the stores opened")
        assert "failed as it was cancelled" not in caplog.text
    finally:
        _command(redis_url, "ACL", "DELUSER", user)
