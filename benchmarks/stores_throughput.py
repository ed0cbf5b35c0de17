"""Throughput of the store backends: idempotency claims and approval round trips per second.

``python -m benchmarks.stores_throughput [--smoke] [--redis URL] [--ops N] [--tasks T]``

For each backend (``memory://``, SQLite in a temporary file, and Redis when
``--redis`` names a server or a ``redis-server`` binary can be started on a
free loopback port):

- ``idempotency claim``: one request's store traffic, claim a fresh key, ``set``
  its result, release; T tasks at once, N requests in all.
- ``approval round trip`` (when the stores carry approvals): request an
  approval, record the decision from another task, and the waiter wakes with it;
  T at once, N in all.

Prints requests per second and the mean latency. Not a ``bench_*`` module:
``python -m benchmarks`` and CI do not run it. Numbers are for the machine it
runs on; docs/deployment.md has the ones measured for the guide.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import trio

from stageflow_trio.pipeline.idempotency import CachedStageResult, IdempotencyClaim
from stageflow_trio.stages.result import StageResult
from stageflow_trio.stores import Stores, open_stores

NOW = datetime.now(UTC)
ENTRY = CachedStageResult(
    StageResult(name="charge", status="completed", started_at=NOW, ended_at=NOW, data={"ok": 1})
)


async def _spread(ops: int, tasks: int, one: Any) -> float:
    """Run ``one(i)`` for i in range(ops) over ``tasks`` tasks; return the wall seconds."""
    counter = iter(range(ops))

    async def worker() -> None:
        for i in counter:
            await one(i)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(worker)
    return time.perf_counter() - start


async def _claims(stores: Stores, ops: int, tasks: int) -> float:
    prefix = uuid4().hex

    async def one(i: int) -> None:
        store = stores.idempotency
        claim = await store.claim(f"{prefix}:{i}")
        assert isinstance(claim, IdempotencyClaim)
        await store.set(claim.key, ENTRY, ttl_seconds=60)
        store.release(claim)

    return await _spread(ops, tasks, one)


async def _approvals(stores: Stores, ops: int, tasks: int) -> float | None:
    make_service = getattr(stores, "approval_service", None)
    if make_service is None:
        return None
    service = make_service()

    async def one(i: int) -> None:
        request = await service.request_approval(uuid4(), "tool")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(service.record_decision, request.id, True)
            decision = await service.await_decision(request.id, timeout_seconds=10)
        assert decision.granted

    result: float = await _spread(ops, tasks, one)
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_redis(stack: ExitStack) -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    stack.callback(process.wait, 10)
    stack.callback(process.terminate)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stores_throughput")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--redis", help="a Redis URL (default: start a local redis-server)")
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=16)
    args = parser.parse_args(argv)
    ops = 50 if args.smoke else args.ops
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls = ["memory://", f"sqlite:///{tmp}/bench.db"]
        redis = args.redis or _start_redis(stack)
        if redis:
            urls.append(redis)
        print(f"{ops} requests, {args.tasks} tasks at once")
        print(f"{'backend':<10} {'workload':<22} {'per second':>12} {'mean latency':>14}")
        for url in urls:

            async def bench(url: str = url) -> list[tuple[str, float | None]]:
                async with open_stores(url) as stores:
                    return [
                        ("idempotency claim", await _claims(stores, ops, args.tasks)),
                        ("approval round trip", await _approvals(stores, ops, args.tasks)),
                    ]

            for workload, seconds in trio.run(bench):
                if seconds is None:
                    continue
                name = url.split(":")[0]
                latency_ms = seconds / ops * args.tasks * 1000
                print(f"{name:<10} {workload:<22} {ops / seconds:>12,.0f} {latency_ms:>11.2f} ms")


if __name__ == "__main__":
    main()
