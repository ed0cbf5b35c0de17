"""Several worker processes sharing one store: the guarantees a deployment relies on.

Each test starts real Python processes (``tests/stores/_worker.py``) on the
SQLite and Redis backends; ``memory://`` is the control that shows the tests
can fail (nothing is shared between processes there).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from stageflow_trio.helpers.memory import MemoryConfig
from stageflow_trio.pipeline.idempotency import CachedStageResult, IdempotencyClaim
from stageflow_trio.stores import open_stores

from ._worker import SESSION
from ._worker import entry as _entry
from .test_idempotency_contract import _same

ROOT = Path(__file__).resolve().parents[2]

# Each test starts Python processes (about 1 s of CPU each): CI runs them in its first
# suite run only.
pytestmark = pytest.mark.skipif(
    os.environ.get("STAGEFLOW_TEST_MULTIPROCESS") == "off",
    reason="STAGEFLOW_TEST_MULTIPROCESS=off: the multi-process tests ran in CI's first run",
)


async def _spawn(*args: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.stores._worker", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )


async def _line(process: trio.Process) -> str:
    assert process.stdout is not None
    data = b""
    while not data.endswith(b"\n"):
        chunk = await process.stdout.receive_some(1)
        if not chunk:
            raise AssertionError(f"worker exited: {data!r}")
        data += chunk
    return data.decode().strip()


async def _race(url: str, tmp_path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    charges = tmp_path / "charges.txt"
    workers = [await _spawn("race", url, str(charges)) for _ in range(2)]
    try:
        with trio.fail_after(30):
            for worker in workers:
                assert await _line(worker) == "ready"
            for worker in workers:  # as close to together as two pipes allow
                assert worker.stdin is not None
                await worker.stdin.send_all(b"go\n")
            outputs = [json.loads(await _line(worker)) for worker in workers]
            for worker in workers:
                assert await worker.wait() == 0
    finally:
        for worker in workers:
            worker.kill()
    return charges.read_text().split(), outputs


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_two_workers_racing_on_one_key_run_the_stage_once(
    store_url: str, tmp_path: Path
) -> None:
    charged_by, outputs = await _race(store_url, tmp_path)
    assert len(charged_by) == 1
    # Both report the one charge: the holder's own result, the other's replay.
    assert outputs == [{"charged": 10, "by": int(charged_by[0])}] * 2


async def test_without_a_shared_store_each_worker_runs_the_stage(tmp_path: Path) -> None:
    charged_by, outputs = await _race("memory://", tmp_path)
    assert len(charged_by) == 2
    assert sorted(o["by"] for o in outputs) == sorted(map(int, charged_by))


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_killed_worker_blocks_its_key_one_lease_and_loses_nothing_committed(
    store_url: str,
) -> None:
    lease = 0.5
    sep = "&" if "?" in store_url else "?"
    url = f"{store_url}{sep}claim_lease_seconds={lease}"
    worker = await _spawn("hold", url)
    try:
        with trio.fail_after(30):
            assert await _line(worker) == "claimed"
    finally:
        worker.send_signal(signal.SIGKILL)
    killed_at = trio.current_time()
    assert await worker.wait() == -signal.SIGKILL
    async with open_stores(url) as stores:
        with trio.fail_after(10):
            claim = await stores.idempotency.claim("held")
        waited = trio.current_time() - killed_at
        assert isinstance(claim, IdempotencyClaim)
        assert waited < lease + 0.5  # no longer than the lease (plus a poll and some slack)
        committed = await stores.idempotency.get("committed")
        _same(committed, _entry(5))
        assert isinstance(committed, CachedStageResult)
        memory = await stores.memory.fetch(SESSION, MemoryConfig())
        assert [(m.id, m.content) for m in memory] == [("kept", "hello")]
        stores.idempotency.release(claim)


@pytest.mark.parametrize(("backend", "bound"), [("sqlite", 0.2), ("redis", 0.1)])
async def test_a_decision_in_one_process_wakes_the_waiter_in_another(
    store_url: str, bound: float
) -> None:
    """Redis pushes the decision (bound 100 ms); SQLite's waiter polls every 50 ms."""
    latencies = []
    worker = await _spawn("await", store_url)
    try:
        async with open_stores(store_url) as stores:
            service = stores.approval_service()
            assert worker.stdin is not None
            with trio.fail_after(30):
                for granted in (True, False, True):
                    request = await service.request_approval(uuid.uuid4(), "edit")
                    await worker.stdin.send_all(f"{request.id}\n".encode())
                    assert await _line(worker) == "waiting"
                    await trio.sleep(0.1)  # let it reach the wait
                    decided_at = time.time()
                    await service.record_decision(request.id, granted)
                    woke = json.loads(await _line(worker))
                    assert woke["granted"] is granted
                    latencies.append(woke["woke"] - decided_at)
                await worker.stdin.aclose()
                assert await worker.wait() == 0
    finally:
        worker.kill()
    assert sorted(latencies)[1] < bound, latencies  # the median
