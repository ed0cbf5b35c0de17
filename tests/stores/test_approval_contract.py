"""The approval backend contract, through ApprovalService, on every backend."""

from __future__ import annotations

import uuid

import pytest
import trio

from stageflow_trio.stores import open_stores
from stageflow_trio.tools.approval import ApprovalDecision, ApprovalStatus, InMemoryApprovalBackend

ACTION = uuid.UUID(int=10)
RUN = uuid.UUID(int=20)
USER = uuid.UUID(int=30)


async def test_request_get_status_pending_and_cleanup(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        service = stores.approval_service()
        first = await service.request_approval(
            ACTION, "edit", RUN, "may I?", {"path": "/x", "n": [1, 2]}
        )
        second = await service.request_approval(ACTION, "edit")
        other = await service.request_approval(uuid.uuid4(), "delete", RUN)
        got = await service.get_request(first.id)
        assert got is not None
        assert got.to_dict() == first.to_dict()
        assert await service.get_request(uuid.uuid4()) is None
        assert await service.get_status(first.id) is ApprovalStatus.PENDING
        assert await service.get_status(uuid.uuid4()) is None
        pending = await service.get_pending_requests()
        assert [r.id for r in pending] == [first.id, second.id, other.id]
        assert [r.id for r in await service.get_pending_requests(RUN)] == [first.id, other.id]
        # By action: the newest request's status.
        await service.record_decision(second.id, False)
        assert await service.get_status(ACTION) is ApprovalStatus.DENIED
        await service.cleanup(second.id)
        assert await service.get_request(second.id) is None
        assert await service.get_status(ACTION) is ApprovalStatus.PENDING  # the older one
        await service.cleanup(second.id)  # unknown: no error
        with pytest.raises(KeyError, match="not found"):
            await service.await_decision(second.id)


async def test_a_decision_wakes_the_waiter(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        service = stores.approval_service()
        request = await service.request_approval(ACTION, "edit", RUN)
        decisions: list[ApprovalDecision] = []

        async def wait() -> None:
            decisions.append(await service.await_decision(request.id, timeout_seconds=5))

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                recorded = await service.record_decision(request.id, True, USER, "fine")
        assert decisions == [recorded, recorded]
        assert recorded == ApprovalDecision(request.id, True, USER, "fine")
        got = await service.get_request(request.id)
        assert got is not None
        assert (got.status, got.decided_by) == (ApprovalStatus.APPROVED, USER)
        assert got.decided_at is not None
        assert await service.get_pending_requests() == []
        # Decided already: returns at once.
        assert await service.await_decision(request.id) == recorded
        with pytest.raises(KeyError, match="not found"):
            await service.record_decision(uuid.uuid4(), True)


async def test_cancel_wakes_the_waiter_with_a_cancelled_decision(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        service = stores.approval_service()
        request = await service.request_approval(ACTION, "edit")
        decisions: list[ApprovalDecision] = []

        async def wait() -> None:
            decisions.append(await service.await_decision(request.id, timeout_seconds=5))

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                assert await service.cancel_request(request.id) is True
        assert decisions == [ApprovalDecision(request.id, False, reason="cancelled")]
        assert await service.get_status(request.id) is ApprovalStatus.CANCELLED
        assert await service.cancel_request(request.id) is False  # no longer pending
        assert await service.cancel_request(uuid.uuid4()) is False
        # A cancelled request can still be decided.
        await service.record_decision(request.id, True)
        assert await service.get_status(request.id) is ApprovalStatus.APPROVED


async def test_a_timeout_expires_the_request(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        service = stores.approval_service()
        request = await service.request_approval(ACTION, "edit")
        with pytest.raises(TimeoutError):
            await service.await_decision(request.id, timeout_seconds=0.05)
        assert await service.get_status(request.id) is ApprovalStatus.EXPIRED


async def test_a_cancelled_waiter_cancels_its_request(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        service = stores.approval_service()
        request = await service.request_approval(ACTION, "edit")
        with trio.move_on_after(0.05):
            await service.await_decision(request.id)
        assert await service.get_status(request.id) is ApprovalStatus.CANCELLED
        assert await service.await_decision(request.id) == ApprovalDecision(
            request.id, False, reason="cancelled"
        )


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_decision_through_another_opening_wakes_the_waiter(store_url: str) -> None:
    # Two openings of one store share nothing in memory: as two processes would.
    async with open_stores(store_url) as waiter, open_stores(store_url) as decider:
        request = await waiter.approval_service().request_approval(ACTION, "edit")
        got: list[ApprovalDecision] = []

        async def wait() -> None:
            got.append(await waiter.approval_service().await_decision(request.id, 5))

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.sleep(0.02)
                await decider.approval_service().record_decision(request.id, False, USER)
        assert got == [ApprovalDecision(request.id, False, USER)]


async def test_the_backend_reads_a_decision(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        request = await stores.approval_service().request_approval(ACTION, "edit")
        assert await stores.approvals.decision(request.id) is None
        await stores.approval_service().record_decision(request.id, True)
        assert await stores.approvals.decision(request.id) == ApprovalDecision(request.id, True)


async def test_the_in_memory_backend_waits_for_nothing_on_an_unknown_request() -> None:
    # Reachable when cleanup() runs between await_decision's look-up and its wait.
    with trio.testing.assert_checkpoints():
        assert await InMemoryApprovalBackend().wait_decision(uuid.uuid4()) is None
