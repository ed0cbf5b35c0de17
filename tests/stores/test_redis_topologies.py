"""Redis Cluster and Sentinel: their store URLs, the cluster's key prefix, a client of your own.

The contract tests run on both topologies through ``store_url`` (conftest); these are
what only they have.
"""

from __future__ import annotations

import uuid
import warnings

import coredis
import pytest
from coredis.connection import TCPLocation

from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores import StoreConfigError, open_stores
from stageflow_trio.stores._redis_url import (
    RedisTarget,
    has_hash_tag,
    parse_redis_url,
    redacted,
)
from stageflow_trio.stores.redis import open_redis_stores

from .conftest import _command, _free_port


@pytest.mark.parametrize(
    ("url", "target"),
    [
        (
            "redis+cluster://a:7000,b:7001",
            RedisTarget(
                url="redis+cluster://a:7000,b:7001",
                kind="cluster",
                tls=False,
                nodes=(("a", 7000), ("b", 7001)),
            ),
        ),
        (
            "rediss+cluster://u:p%40ss@a/0",
            RedisTarget(
                url="rediss+cluster://u:p%40ss@a/0",
                kind="cluster",
                tls=True,
                nodes=(("a", 6379),),
                username="u",
                password="p@ss",
            ),
        ),
        (
            "redis+sentinel://s1,[::1]:26380/my%20primary/3",
            RedisTarget(
                url="redis+sentinel://s1,[::1]:26380/my%20primary/3",
                kind="sentinel",
                tls=False,
                nodes=(("s1", 26379), ("::1", 26380)),
                service="my primary",
                db=3,
            ),
        ),
        (
            "redis://[::1]/0",
            RedisTarget(url="redis://[::1]/0", kind="single", tls=False, nodes=(("::1", 6379),)),
        ),
        (
            "redis://h:6380/2?max_connections=4",
            RedisTarget(
                url="redis://h:6380/2?max_connections=4",
                kind="single",
                tls=False,
                nodes=(("h", 6380),),
            ),
        ),
    ],
)
def test_the_url_forms(url: str, target: RedisTarget) -> None:
    assert parse_redis_url(url, "url") == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "redis+cluster://a:1?max_connections=4",
            r"^url: 'redis\+cluster://a:1\?max_connections=4': a cluster URL takes only"
            r" the store options in its query \(prefix, claim_lease_seconds, resync_interval,"
            r" command_timeout, approval_retention_seconds\)$",
        ),
        (
            "redis+cluster://a:1/1",
            r"^url: 'redis\+cluster://a:1/1': a Redis Cluster has database 0",
        ),
        (
            "redis+sentinel://a:1",
            r"^url: 'redis\+sentinel://a:1': a Sentinel URL names its service: \.\.\./service\[/db\]$",
        ),
        (
            "redis+sentinel://a:1/s/x",
            r"^url: 'redis\+sentinel://a:1/s/x': the database must be a number; got 'x'$",
        ),
        ("redis://a:1/x", r"^url: 'redis://a:1/x': the path is the database number, /db$"),
        (
            "redis+cluster://u:secret@a:1,b:99999",
            r"^url: malformed Redis URL 'redis\+cluster://u:\*\*\*@a:1,b:99999': 'b:99999' is not"
            r" host:port$",
        ),
        ("memcached://a:1", r"^url: not a Redis store URL: 'memcached://a:1'$"),
        (
            "redis://u:s3cret@[::1:6379/0",
            r"^url: malformed Redis URL 'redis://u:\*\*\*@\[::1:6379/0': Invalid IPv6 URL$",
        ),
        ("redis://[::1]x/0", r"^url: malformed Redis URL 'redis://\[::1\]x/0': '\[::1\]x'"),
    ],
)
def test_a_bad_url_is_refused_naming_the_part(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message):
        parse_redis_url(url, "url")


def test_messages_never_show_the_password() -> None:
    assert redacted("redis://u:s3cret@h:1/0") == "redis://u:***@h:1/0"
    assert redacted("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"
    assert redacted("redis://u@h:1/0") == "redis://u@h:1/0"
    assert redacted("redis://h:1/0") == "redis://h:1/0"
    assert redacted("redis+sentinel://u:p@a:1,b:2/s") == "redis+sentinel://u:***@a:1,b:2/s"
    # An "@" in the query is not a password's end; a password in the query is hidden.
    assert redacted("redis://h:1/0?client_name=x@y") == "redis://h:1/0?client_name=x@y"
    assert redacted("redis://h:1/0?password=x@y") == "redis://h:1/0?password=***"


async def test_an_unreachable_server_is_named_without_its_password() -> None:
    port = _free_port()
    with pytest.raises(StoreConfigError) as caught:
        async with open_stores(f"redis+sentinel://u:s3cret@127.0.0.1:{port}/primary"):
            pytest.fail("opened")
    assert "s3cret" not in str(caught.value)
    assert f"cannot reach Redis at redis+sentinel://u:***@127.0.0.1:{port}/primary" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("prefix", "one_slot"),
    [
        ("{stageflow}:", True),
        ("app:{x}:", True),
        ("stageflow:", False),
        ("{}:", False),
        ("}{", False),
    ],
)
def test_a_hash_tag_puts_every_key_in_one_slot(prefix: str, one_slot: bool) -> None:
    assert has_hash_tag(prefix) is one_slot


async def test_a_cluster_keeps_every_key_under_one_hash_tag(redis_cluster: list[str]) -> None:
    hosts = ",".join(node.removeprefix("redis://").split("/")[0] for node in redis_cluster)
    for node in redis_cluster:
        _command(node, "FLUSHALL")
    async with open_stores(f"redis+cluster://{hosts}") as stores:
        await stores.idempotency.delete("k")  # the schema key is written at open
    found = [_command(node, "KEYS", "*") for node in redis_cluster]
    assert sum(b"{stageflow}:schema" in keys for keys in found) == 1
    with pytest.raises(StoreConfigError, match=r"needs a key prefix with a hash tag.*'\{app\}:'"):
        async with open_stores(f"redis+cluster://{hosts}?prefix=app:"):
            pytest.fail("opened")


async def test_a_cluster_client_of_your_own(redis_cluster: list[str]) -> None:
    node = redis_cluster[0].removeprefix("redis://").split("/")[0]
    host, port = node.split(":")
    client = coredis.RedisCluster(startup_nodes=[TCPLocation(host, int(port))])
    async with open_redis_stores(client=client, prefix="{mine}:") as stores:
        assert await stores.undo.delete(uuid.uuid4()) is False
    other = coredis.RedisCluster(startup_nodes=[TCPLocation(host, int(port))])
    with pytest.raises(StoreConfigError, match=r"got 'mine:'"):
        async with open_redis_stores(client=other, prefix="mine:"):
            pytest.fail("opened")


async def test_a_sentinel_client_of_your_own(redis_sentinel: str, redis_url: str) -> None:
    # What docs/deployment.md shows: the Sentinel is entered around the stores.
    target = parse_redis_url(redis_sentinel, "url")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated way of naming the sentinels
        sentinels = [TCPLocation(host, port) for host, port in target.nodes]
        async with coredis.Sentinel(sentinels) as sentinel:
            client = sentinel.primary_for(target.service)
            async with open_redis_stores(client=client, prefix="sentinel:") as stores:
                claim = await stores.idempotency.claim("k")
                assert isinstance(claim, IdempotencyClaim)
                stores.idempotency.release(claim)
    # The stores wrote to the primary the sentinel names: the session's Redis server.
    assert b"sentinel:schema" in _command(redis_url, "KEYS", "*")
