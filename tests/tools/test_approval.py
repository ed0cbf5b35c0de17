"""Tests for stageflow_trio.tools.approval: the request lifecycle in virtual time."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.testing import reset_globals
from stageflow_trio.tools import approval
from stageflow_trio.tools.approval import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalService,
    ApprovalStatus,
    InMemoryApprovalBackend,
    clear_approval_service,
    get_approval_service,
    set_approval_service,
)

ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
OTHER_RUN = uuid.UUID("44444444-4444-4444-8444-444444444444")
USER = uuid.UUID("33333333-3333-4333-8333-333333333333")


def status(request: ApprovalRequest) -> ApprovalStatus:
    """The request's status, read through a call (so mypy does not keep an earlier narrowing)."""
    return request.status


def test_all_matches_the_reference(reference: ModuleType) -> None:
    assert sorted(approval.__all__) == sorted(reference.tools.approval.__all__)


def test_status_values_match_the_reference(reference: ModuleType) -> None:
    ref = reference.tools.approval.ApprovalStatus
    assert [(m.name, m.value) for m in ApprovalStatus] == [(m.name, m.value) for m in ref]
    assert ApprovalStatus("pending") is ApprovalStatus.PENDING
    assert isinstance(ApprovalStatus.PENDING, str)


async def test_request_approval_creates_a_pending_request() -> None:
    service = ApprovalService()
    request = await service.request_approval(
        ACTION, "edit", RUN, "Edit it?", payload_summary={"doc": "d1"}
    )
    assert request.status is ApprovalStatus.PENDING
    assert (request.action_id, request.tool_name, request.pipeline_run_id) == (ACTION, "edit", RUN)
    assert await service.get_request(request.id) is request
    assert await service.get_pending_requests() == [request]
    created = datetime.fromisoformat(request.created_at)
    assert created.utcoffset() is not None
    assert request.to_dict() == {
        "id": str(request.id),
        "action_id": str(ACTION),
        "tool_name": "edit",
        "pipeline_run_id": str(RUN),
        "approval_message": "Edit it?",
        "status": "pending",
        "decided_by": None,
        "decided_at": None,
        "created_at": request.created_at,
        "payload_summary": {"doc": "d1"},
    }
    other = await service.request_approval(ACTION, "edit")
    assert other.id != request.id
    assert other.payload_summary == {}
    assert other.to_dict()["pipeline_run_id"] is None


async def test_decision_to_dict() -> None:
    decision = ApprovalDecision(request_id=ACTION, granted=True, decided_by=USER, reason="ok")
    assert decision.to_dict() == {
        "request_id": str(ACTION),
        "granted": True,
        "decided_by": str(USER),
        "reason": "ok",
    }
    assert ApprovalDecision(ACTION, False).to_dict() == {
        "request_id": str(ACTION),
        "granted": False,
        "decided_by": None,
        "reason": None,
    }


async def test_pending_requests_filter_by_run() -> None:
    service = ApprovalService()
    first = await service.request_approval(ACTION, "a", RUN)
    second = await service.request_approval(ACTION, "b", OTHER_RUN)
    third = await service.request_approval(ACTION, "c")
    assert await service.get_pending_requests(RUN) == [first]
    assert await service.get_pending_requests() == [first, second, third]
    await service.record_decision(second.id, granted=False)
    assert await service.get_pending_requests() == [first, third]


async def test_a_decision_by_another_task_wakes_the_waiter_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    results: list[tuple[float, ApprovalDecision]] = []

    async def wait() -> None:
        decision = await service.await_decision(request.id, timeout_seconds=60)
        results.append((trio.current_time(), decision))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(7)
        recorded = await service.record_decision(request.id, True, decided_by=USER, reason="fine")
    assert results == [(7.0, recorded)]
    assert recorded == ApprovalDecision(request.id, True, USER, "fine")
    assert request.status is ApprovalStatus.APPROVED
    assert request.decided_by == USER
    assert request.decided_at is not None
    assert datetime.fromisoformat(request.decided_at).utcoffset() is not None


async def test_await_returns_a_decision_already_recorded() -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    await service.record_decision(request.id, False)
    with trio.testing.assert_checkpoints():
        decision = await service.await_decision(request.id)
    assert decision == ApprovalDecision(request.id, False)
    assert request.status is ApprovalStatus.DENIED


async def test_timeout_at_exactly_the_configured_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    start = trio.current_time()
    with pytest.raises(TimeoutError) as info:
        await service.await_decision(request.id, timeout_seconds=12.5)
    assert trio.current_time() - start == 12.5
    assert type(info.value) is TimeoutError
    assert request.status is ApprovalStatus.EXPIRED
    assert await service.get_pending_requests() == []
    # An expired request can still be decided, as in the reference.
    await service.record_decision(request.id, True)
    assert status(request) is ApprovalStatus.APPROVED


async def test_default_timeout_is_used(autojump_clock: trio.testing.MockClock) -> None:
    assert ApprovalService().default_timeout_seconds == 60.0
    service = ApprovalService(default_timeout_seconds=3)
    request = await service.request_approval(ACTION, "edit")
    start = trio.current_time()
    with pytest.raises(TimeoutError):
        await service.await_decision(request.id)
    assert trio.current_time() - start == 3


async def test_zero_timeout_expires_even_when_decided() -> None:
    # As the reference's asyncio.wait_for(timeout=0): no waiting at all.
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    await service.record_decision(request.id, True)
    with pytest.raises(TimeoutError):
        await service.await_decision(request.id, timeout_seconds=0)
    assert request.status is ApprovalStatus.APPROVED  # only a PENDING request expires


async def test_infinite_timeout_waits_for_the_decision(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService(default_timeout_seconds=math.inf)
    request = await service.request_approval(ACTION, "edit")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.await_decision, request.id)
        await trio.sleep(10_000)
        await service.record_decision(request.id, True)
    assert trio.current_time() == 10_000


async def test_unknown_request_raises_key_error() -> None:
    service = ApprovalService()
    missing = uuid.UUID(int=7)
    message = f"^'Approval request {missing} not found'$"
    with trio.testing.assert_checkpoints(), pytest.raises(KeyError, match=message):
        await service.await_decision(missing)
    with pytest.raises(KeyError, match=message):
        await service.record_decision(missing, True)


async def test_cancel_request_wakes_the_waiter_with_a_cancelled_decision(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    results: list[ApprovalDecision] = []

    async def wait() -> None:
        results.append(await service.await_decision(request.id))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(2)
        assert await service.cancel_request(request.id) is True
    assert results == [ApprovalDecision(request.id, False, reason="cancelled")]
    assert trio.current_time() == 2
    assert request.status is ApprovalStatus.CANCELLED
    assert await service.cancel_request(request.id) is False  # no longer pending
    assert await service.cancel_request(uuid.UUID(int=1)) is False  # unknown
    # A decision still overrides a cancellation, as in the reference.
    await service.record_decision(request.id, True)
    assert status(request) is ApprovalStatus.APPROVED


async def test_a_waiter_cancelled_by_its_caller_leaves_nothing_pending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    other_waiter: list[ApprovalDecision] = []

    async def watch() -> None:
        other_waiter.append(await service.await_decision(request.id, timeout_seconds=100))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        with trio.move_on_after(5) as scope:
            await service.await_decision(request.id, timeout_seconds=60)
    assert scope.cancelled_caught
    assert trio.current_time() == 5
    assert request.status is ApprovalStatus.CANCELLED
    assert await service.get_pending_requests() == []
    assert other_waiter == [ApprovalDecision(request.id, False, reason="cancelled")]


async def test_a_cancelled_waiter_leaves_a_decided_request_alone() -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    await service.record_decision(request.id, True)
    with trio.CancelScope() as scope:
        scope.cancel()
        await service.await_decision(request.id)
    assert request.status is ApprovalStatus.APPROVED


async def test_cleanup_forgets_the_request_and_wakes_no_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    outcome: list[str] = []

    async def wait() -> None:
        try:
            await service.await_decision(request.id, timeout_seconds=30)
        except TimeoutError:
            outcome.append(f"timeout at {trio.current_time()}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(1)
        await service.cleanup(request.id)
        assert await service.get_request(request.id) is None
    assert outcome == ["timeout at 30.0"]
    await service.cleanup(request.id)  # unknown: no error
    with pytest.raises(KeyError):
        await service.await_decision(request.id)


async def test_a_fired_event_without_a_decision_reads_as_no_decision() -> None:
    # Reachable when cleanup() runs between a decision and the waiter's wake-up;
    # here the event is fired directly to make that order deterministic.
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    _memory(service)._events[request.id].set()
    assert await service.await_decision(request.id) == ApprovalDecision(
        request.id, False, reason="no_decision"
    )


async def test_request_copies_a_request_object_and_get_status() -> None:
    service = ApprovalService()
    template = ApprovalRequest(
        id=uuid.UUID(int=1),
        action_id=ACTION,
        tool_name="edit",
        pipeline_run_id=RUN,
        approval_message="m",
        payload_summary={"a": 1},
    )
    first = await service.request(template)
    assert first.id != template.id
    assert (first.action_id, first.tool_name, first.pipeline_run_id) == (ACTION, "edit", RUN)
    assert (first.approval_message, first.payload_summary) == ("m", {"a": 1})
    assert await service.get_request(template.id) is None
    second = await service.request(template)
    await service.record_decision(second.id, False)
    assert await service.get_status(first.id) is ApprovalStatus.PENDING
    assert await service.get_status(ACTION) is ApprovalStatus.DENIED  # the newest for the action
    assert await service.get_status(uuid.UUID(int=99)) is None


async def test_every_method_is_a_checkpoint() -> None:
    service = ApprovalService()
    with trio.testing.assert_checkpoints():
        request = await service.request_approval(ACTION, "edit")
    with trio.testing.assert_checkpoints():
        await service.request(request)
    with trio.testing.assert_checkpoints():
        await service.get_request(request.id)
    with trio.testing.assert_checkpoints():
        await service.get_status(request.id)
    with trio.testing.assert_checkpoints():
        await service.get_pending_requests()
    with trio.testing.assert_checkpoints():
        await service.cancel_request(request.id)
    with trio.testing.assert_checkpoints():
        await service.record_decision(request.id, True)
    with trio.testing.assert_checkpoints():
        await service.cleanup(request.id)


async def test_a_cancelled_request_approval_creates_nothing() -> None:
    service = ApprovalService()
    with trio.CancelScope() as scope:
        scope.cancel()
        await service.request_approval(ACTION, "edit")
    assert scope.cancelled_caught
    assert await service.get_pending_requests() == []


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("5", TypeError, "must be a number; got str"),
        (True, TypeError, "must be a number; got bool"),
        (-1, ValueError, "must be >= 0; got -1"),
        (math.nan, ValueError, "must be >= 0; got nan"),
    ],
)
async def test_bad_timeouts(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^ApprovalService: default_timeout_seconds {message}$"):
        ApprovalService(default_timeout_seconds=value)
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    with pytest.raises(error, match=f"^ApprovalService.await_decision: timeout_seconds {message}$"):
        await service.await_decision(request.id, timeout_seconds=value)
    assert request.status is ApprovalStatus.PENDING


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action_id": str(ACTION)}, "action_id must be a UUID; got str"),
        ({"tool_name": 5}, "tool_name must be a str; got int"),
        ({"pipeline_run_id": str(RUN)}, "pipeline_run_id must be a UUID or None; got str"),
        ({"approval_message": None}, "approval_message must be a str; got NoneType"),
        ({"payload_summary": 5}, "payload_summary must be a dict or None; got int"),
        ({"payload_summary": [("k", 1)]}, "payload_summary must be a dict or None; got list"),
    ],
)
async def test_request_approval_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    service = ApprovalService()
    arguments: dict[str, Any] = {"action_id": ACTION, "tool_name": "edit", **kwargs}
    with pytest.raises(TypeError, match=f"^ApprovalService.request_approval: {message}$"):
        await service.request_approval(**arguments)
    assert await service.get_pending_requests() == []


async def test_request_approval_reads_an_empty_or_missing_summary_as_empty() -> None:
    service = ApprovalService()
    summaries: tuple[dict[str, Any] | None, ...] = (None, {})
    for summary in summaries:
        request = await service.request_approval(ACTION, "edit", payload_summary=summary)
        assert request.payload_summary == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"granted": "false"}, "granted must be a bool; got str"),
        ({"granted": 1}, "granted must be a bool; got int"),
        ({"granted": True, "decided_by": str(USER)}, "decided_by must be a UUID or None; got str"),
        ({"granted": True, "reason": 5}, "reason must be a str or None; got int"),
    ],
)
async def test_record_decision_rejects_bad_arguments_and_records_nothing(
    kwargs: dict[str, Any], message: str
) -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "edit")
    with pytest.raises(TypeError, match=f"^ApprovalService.record_decision: {message}$"):
        await service.record_decision(request.id, **kwargs)
    # "false" from a form must not approve: the request still waits for a real decision.
    assert request.status is ApprovalStatus.PENDING
    with pytest.raises(TimeoutError):
        await service.await_decision(request.id, timeout_seconds=0)


def test_singleton_helpers() -> None:
    service = get_approval_service()
    assert get_approval_service() is service
    mine = ApprovalService(default_timeout_seconds=5)
    set_approval_service(mine)
    assert get_approval_service() is mine
    clear_approval_service()
    fresh = get_approval_service()
    assert fresh is not mine
    assert fresh is not service
    reset_globals()
    assert get_approval_service() is not fresh


def test_lifecycle_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.tools.approval

    async def scenario(service: Any) -> list[Any]:
        seen: list[Any] = []
        a = await service.request_approval(ACTION, "a", RUN, "A?", {"x": 1})
        b = await service.request_approval(ACTION, "b", OTHER_RUN)
        c = await service.request_approval(ACTION, "c", RUN)
        seen.append([r.tool_name for r in await service.get_pending_requests(RUN)])
        seen.append((await service.record_decision(a.id, True, USER, "ok")).to_dict())
        seen.append((await service.await_decision(a.id, timeout_seconds=1)).to_dict())
        seen.append(await service.cancel_request(b.id))
        seen.append(await service.cancel_request(b.id))
        seen.append((await service.await_decision(b.id, timeout_seconds=1)).to_dict())
        seen.append(await service.cancel_request(a.id))
        for request in (a, b, c):
            data = request.to_dict()
            seen.append({k: v for k, v in data.items() if k not in ("id", "created_at")})
            seen.append(data["decided_at"] is None)
        await service.cleanup(c.id)
        seen.append(await service.get_request(c.id))
        seen.append([r.tool_name for r in await service.get_pending_requests()])
        return [_without_ids(item, a.id, b.id) for item in seen]

    ours = trio.run(scenario, ApprovalService())
    theirs = asyncio.run(scenario(ref.ApprovalService()))
    assert ours == theirs


def _without_ids(item: Any, *ids: uuid.UUID) -> Any:
    strings = [str(i) for i in ids]
    if isinstance(item, dict):
        return {
            k: ("<id>" if isinstance(v, str) and v in strings else v)
            for k, v in item.items()
            if k != "decided_at"
        }
    return item


def test_expiry_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.tools.approval

    async def scenario(service: Any) -> list[Any]:
        request = await service.request_approval(ACTION, "a")
        outcome: list[Any] = []
        try:
            await service.await_decision(request.id, timeout_seconds=0)
        except TimeoutError as exc:
            outcome.extend([type(exc).__name__, str(exc)])
        outcome.append(request.status.value)
        try:
            await service.await_decision(uuid.UUID(int=3))
        except KeyError as exc:
            outcome.append(str(exc))
        return outcome

    ours = trio.run(scenario, ApprovalService(), clock=trio.testing.MockClock(autojump_threshold=0))
    theirs = asyncio.run(scenario(ref.ApprovalService()))
    assert (
        ours
        == theirs
        == [
            "TimeoutError",
            "",
            "expired",
            "'Approval request 00000000-0000-0000-0000-000000000003 not found'",
        ]
    )


def _memory(service: ApprovalService) -> InMemoryApprovalBackend:
    """The service's default backend, whose internals these tests look at."""
    backend = service.backend
    assert isinstance(backend, InMemoryApprovalBackend)
    return backend
