"""Every async method of every store is a checkpoint, on every backend."""

from __future__ import annotations

import uuid

from trio.testing import assert_checkpoints

from stageflow_trio.helpers.memory import MemoryConfig, MemoryEntry
from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores import open_stores
from stageflow_trio.tools.approval import ApprovalDecision, ApprovalStatus
from stageflow_trio.tools.definitions import UndoMetadata

from ._worker import entry


async def test_every_method_is_a_checkpoint(store_url: str) -> None:
    session, action = uuid.uuid4(), uuid.uuid4()
    async with open_stores(store_url) as stores:
        idempotency, memory, approvals, undo = (
            stores.idempotency,
            stores.memory,
            stores.approvals,
            stores.undo,
        )
        with assert_checkpoints():
            claim = await idempotency.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        with assert_checkpoints():
            await idempotency.set("k", entry(1))
        idempotency.release(claim)
        with assert_checkpoints():
            assert await idempotency.get("k") is not None
        with assert_checkpoints():
            assert not isinstance(await idempotency.claim("k"), IdempotencyClaim)
        with assert_checkpoints():
            await idempotency.delete("k")

        with assert_checkpoints():
            await memory.write(MemoryEntry(id="1", session_id=session, role="user", content="x"))
        with assert_checkpoints():
            assert len(await memory.fetch(session, MemoryConfig())) == 1
        with assert_checkpoints():
            assert await memory.clear(session) == 1

        request = await stores.approval_service().request_approval(action, "edit")
        with assert_checkpoints():
            assert await approvals.get(request.id) is not None
        with assert_checkpoints():
            assert await approvals.latest_for_action(action) is not None
        with assert_checkpoints():
            assert len(await approvals.pending(None)) == 1
        with assert_checkpoints():
            assert await approvals.decision(request.id) is None
        with assert_checkpoints():
            assert await approvals.close_pending(request.id, ApprovalStatus.EXPIRED, None)
        decision = ApprovalDecision(request.id, True)
        with assert_checkpoints():
            assert await approvals.decide(decision, "2026-01-01T00:00:00+00:00") is not None
        with assert_checkpoints():
            assert await approvals.wait_decision(request.id) == decision
        with assert_checkpoints():
            await approvals.remove(request.id)

        with assert_checkpoints():
            await undo.put(UndoMetadata(action, "edit", {}), 60)
        with assert_checkpoints():
            assert await undo.get(action) is not None
        with assert_checkpoints():
            assert len(await undo.get_all()) == 1
        with assert_checkpoints():
            assert await undo.cleanup_expired() == 0
        with assert_checkpoints():
            assert await undo.delete(action)
