"""A worker process for the multi-process store tests: ``python -m tests.stores._worker MODE URL ...``.

Modes:

- ``race URL FILE``: print ``ready``, wait for a line on stdin, then run a graph whose
  ``charge`` stage (idempotent, key ``order-1``) appends a line to FILE and takes 0.3 s;
  print the charge stage's data as JSON.
- ``await URL``: for each request id read from stdin, print ``waiting``, wait for its
  decision, and print the wall-clock time it woke (JSON).
- ``hold URL``: commit a result under ``committed`` and a memory entry, claim ``held``,
  print ``claimed``, then sleep until killed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import trio

from stageflow_trio.helpers.memory import MemoryEntry
from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.pipeline.idempotency import CachedStageResult
from stageflow_trio.pipeline.interceptors import get_default_interceptors
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.stores import open_stores
from stageflow_trio.testing import RecordingEventSink

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SESSION = uuid.UUID("00000000-0000-0000-0000-000000000001")


def entry(value: int, params_hash: str | None = "h") -> CachedStageResult:
    result = StageResult(
        name="charge", status="completed", started_at=T0, ended_at=T0, data={"n": value, "l": [1]}
    )
    return CachedStageResult(result=result, params_hash=params_hash)


def _say(line: str) -> None:
    print(line, flush=True)


async def race(url: str, path: str) -> None:
    async def charge(ctx: PipelineContext) -> dict[str, Any]:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
        await trio.sleep(0.3)
        return {"charged": ctx.data["idempotency_params"]["amount"], "by": os.getpid()}

    async with open_stores(url) as stores:
        graph = StageGraph(
            [StageSpec(name="charge", runner=charge)],
            get_default_interceptors(idempotency_store=stores.idempotency),
        )
        ctx = PipelineContext(
            pipeline_run_id=None,
            request_id=None,
            session_id=None,
            user_id=None,
            org_id=None,
            interaction_id=None,
            event_sink=RecordingEventSink(),
        )
        ctx.data["idempotency_key"] = "order-1"
        ctx.data["idempotency_params"] = {"amount": 10}
        _say("ready")
        await trio.to_thread.run_sync(sys.stdin.readline)
        results = await graph.run(ctx)
        _say(json.dumps(dict(results["charge"].data)))


async def hold(url: str) -> None:
    async with open_stores(url) as stores:
        await stores.idempotency.set("committed", entry(5))
        await stores.memory.write(
            MemoryEntry(id="kept", session_id=SESSION, role="user", content="hello")
        )
        claim = await stores.idempotency.claim("held")
        assert not isinstance(claim, CachedStageResult)
        _say("claimed")
        await trio.sleep_forever()


async def await_decisions(url: str) -> None:
    async with open_stores(url) as stores:
        service = stores.approval_service()
        while line := (await trio.to_thread.run_sync(sys.stdin.readline)).strip():
            _say("waiting")
            decision = await service.await_decision(uuid.UUID(line), timeout_seconds=10)
            woke = time.time()
            _say(json.dumps({"woke": woke, "granted": decision.granted}))


def main() -> None:
    mode, url, *rest = sys.argv[1:]
    if mode == "race":
        trio.run(race, url, rest[0])
    elif mode == "await":
        trio.run(await_decisions, url)
    else:
        trio.run(hold, url)


if __name__ == "__main__":
    main()
