"""After a Redis restart the pub/sub listener subscribes again, and waiters wake at once.

The resync interval is 60 s here: a waiter woken within seconds was woken by pub/sub.
coredis 6.9 ended the listener's ``async for`` after some reconnections (a race between
the resubscription's acknowledgement and its subscribed flag), and a decision published
before the resubscription was lost until the resync.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import trio

from stageflow_trio.stores import open_stores
from stageflow_trio.tools.approval import ApprovalDecision, ApprovalService

from .conftest import OwnRedis, _command


def _subscribers(url: str) -> bytes:
    reply = _command(url, "PUBSUB", "NUMSUB", "stageflow:changed")
    return reply.rsplit(b"\r\n", 2)[-2]


async def _wait(
    service: ApprovalService, request_id: UUID, decisions: list[ApprovalDecision]
) -> None:
    decisions.append(await service.await_decision(request_id, 60))


async def test_waiters_wake_at_once_after_the_server_restarts(own_redis: OwnRedis) -> None:
    url = f"{own_redis.url}?resync_interval=60"
    async with open_stores(url) as waiting, open_stores(url) as deciding:
        service, other = waiting.approval_service(), deciding.approval_service()
        for _ in range(3):
            own_redis.stop()
            own_redis.start()  # empty: nothing was persisted
            request = await service.request_approval(uuid4(), "edit")
            decisions: list[ApprovalDecision] = []
            with trio.fail_after(5):  # the resubscription comes within about a second
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_wait, service, request.id, decisions)
                    await other.record_decision(request.id, True)
            assert [(d.request_id, d.granted) for d in decisions] == [(request.id, True)]
        # Both listeners are subscribed (the server counts one per process); the one
        # deciding may still be reconnecting: a real server, so real time, 5 s at most.
        for _ in range(500):
            if _subscribers(own_redis.url) == b":2":
                break
            await trio.sleep(0.01)
        assert _subscribers(own_redis.url) == b":2"
