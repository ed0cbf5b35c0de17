"""Audit 20: per-request state of long-lived objects stays bounded.

The in-memory approval backend forgets a closed request ``retention_seconds``
after its last change (the reference keeps every request until ``cleanup()``,
which the executor never calls), and ``MemoryTracker.samples`` keeps the last
``max_samples`` samples (the reference keeps every sample). The behaviour
tests check what the docs still promise inside those bounds.
"""

from __future__ import annotations

import collections
import math
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.helpers.memory_tracker import MemorySample, MemoryTracker
from stageflow_trio.tools.approval import (
    ApprovalDecision,
    ApprovalService,
    ApprovalStatus,
    InMemoryApprovalBackend,
)

HOUR = 3600.0
_TABLES = ("_requests", "_events", "_decisions", "_open", "_by_action", "_action_of", "_closed")


def _memory(service: ApprovalService) -> InMemoryApprovalBackend:
    backend = service.backend
    assert isinstance(backend, InMemoryApprovalBackend)
    return backend


def _sizes(service: ApprovalService) -> dict[str, int]:
    backend = _memory(service)
    return {name: len(getattr(backend, name, ())) for name in _TABLES}


# -- ApprovalService: growth ---------------------------------------------------


async def test_thousands_of_decided_approvals_leave_a_bounded_table(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # One approval a second for 2,000 s, decided, denied, expired or cancelled in
    # turn, and nobody calls cleanup(): the table holds about the last 300 s's requests
    # (the retention; the default hour's is checked below: 10,000 requests took 13 s
    # of CI's coverage run).
    retention = 300.0
    service = ApprovalService(
        default_timeout_seconds=0.5,
        backend=InMemoryApprovalBackend(retention_seconds=retention),
    )
    peak = 0
    for i in range(2_000):
        request = await service.request_approval(uuid.uuid4(), "edit")
        kind = i % 4
        if kind < 2:
            await service.record_decision(request.id, granted=kind == 0)
            await service.await_decision(request.id)
        elif kind == 2:
            with pytest.raises(TimeoutError):
                await service.await_decision(request.id)
        else:
            assert await service.cancel_request(request.id)
        assert request.status is not ApprovalStatus.PENDING
        await trio.sleep_until(i + 1.0)
        peak = max(peak, len(_memory(service)._requests))
    # Closed at most 300 s ago (the period is inclusive) plus the one just added.
    assert retention + 1 <= peak <= retention + 2
    sizes = _sizes(service)
    assert sizes["_requests"] <= retention + 2
    for name in ("_events", "_action_of", "_by_action", "_closed"):
        assert sizes[name] == sizes["_requests"], name
    assert sizes["_decisions"] <= sizes["_requests"]
    assert sizes["_open"] == 0
    assert _memory(service)._waiting == {}


async def test_an_executor_that_never_cleans_up_keeps_a_bounded_table(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from stageflow_trio.events import NoOpEventSink, set_event_sink
    from stageflow_trio.tools.adapters import DictContextAdapter
    from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput
    from stageflow_trio.tools.errors import ToolApprovalDeniedError, ToolApprovalTimeoutError
    from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor, ToolExecutorConfig

    set_event_sink(NoOpEventSink())
    # A 20 s retention and 150 calls over 400 s: twenty retention periods (600 calls and a
    # 60 s retention gave 27, until audit 26), at a quarter of the calls.
    approvals = ApprovalService(backend=InMemoryApprovalBackend(retention_seconds=20))
    executor = AdvancedToolExecutor(
        ToolExecutorConfig(approval_timeout_seconds=5), approval_service=approvals
    )

    async def handler(tool_input: ToolInput) -> ToolOutput:
        return ToolOutput.ok(data={"done": True})

    executor.register(
        ToolDefinition(name="ask", action_type="ASK", handler=handler, requires_approval=True)
    )
    ctx = DictContextAdapter({"pipeline_run_id": str(uuid.uuid4()), "execution_mode": "agent"})

    @attrs.frozen
    class Act:
        id: uuid.UUID
        type: str
        payload: dict[str, Any]

    async def decide(granted: bool) -> None:
        await trio.testing.wait_all_tasks_blocked()
        (pending,) = await approvals.get_pending_requests()
        await approvals.record_decision(pending.id, granted=granted)

    outcomes: collections.Counter[str] = collections.Counter()
    for i in range(150):
        async with trio.open_nursery() as nursery:
            if i % 3 < 2:
                nursery.start_soon(decide, i % 3 == 0)
            try:
                await executor.execute(Act(uuid.uuid4(), "ASK", {}), ctx)
            except (ToolApprovalDeniedError, ToolApprovalTimeoutError) as exc:
                outcomes[type(exc).__name__] += 1
            else:
                outcomes["ran"] += 1
        await trio.sleep(1)
    assert outcomes == {"ran": 50, "ToolApprovalDeniedError": 50, "ToolApprovalTimeoutError": 50}
    # 150 calls over more than 400 s; closed requests live 20 s, a call at least 1 s.
    assert len(_memory(approvals)._requests) <= 22


# -- ApprovalService: what is still promised -----------------------------------


async def test_a_closed_request_stays_readable_and_decidable_for_the_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService(backend=InMemoryApprovalBackend(retention_seconds=100))
    action = uuid.uuid4()
    request = await service.request_approval(action, "edit")
    with pytest.raises(TimeoutError):
        await service.await_decision(request.id, timeout_seconds=10)
    expired_at = trio.current_time()
    assert request.status is ApprovalStatus.EXPIRED
    await trio.sleep_until(expired_at + 100)  # the last instant of the period
    await service.request_approval(uuid.uuid4(), "other")  # a call that forgets
    assert await service.get_request(request.id) is request
    assert await service.get_status(action) is ApprovalStatus.EXPIRED
    # An expired request can still be decided (documented), which restarts its period.
    decision = await service.record_decision(request.id, granted=True)
    decided_at = trio.current_time()
    await trio.sleep_until(decided_at + 100)
    await service.request_approval(uuid.uuid4(), "other")
    assert await service.await_decision(request.id) == decision
    assert await service.get_status(request.id) is ApprovalStatus.APPROVED
    # Past the period, the next request_approval forgets it, as cleanup() would.
    await trio.sleep_until(decided_at + 100.5)
    assert await service.get_request(request.id) is request  # nothing forgets on a read
    await service.request_approval(uuid.uuid4(), "other")
    assert await service.get_request(request.id) is None
    assert await service.get_status(action) is None
    with pytest.raises(KeyError, match="not found"):
        await service.await_decision(request.id)
    with pytest.raises(KeyError, match="not found"):
        await service.record_decision(request.id, granted=True)
    assert request.id not in _memory(service)._closed


async def test_a_pending_request_is_never_forgotten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService(backend=InMemoryApprovalBackend(retention_seconds=1))
    request = await service.request_approval(uuid.uuid4(), "edit", pipeline_run_id=None)
    for _ in range(50):
        await trio.sleep(10)
        await service.request_approval(uuid.uuid4(), "other")
    assert await service.get_request(request.id) is request
    assert request in await service.get_pending_requests()
    await service.record_decision(request.id, granted=False)
    assert await service.await_decision(request.id) == ApprovalDecision(request.id, False)


async def test_a_request_someone_still_waits_on_is_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The first waiter times out (EXPIRED, its event not set); a second one, with no
    # timeout, still waits: a late decision must reach it, however long it takes.
    service = ApprovalService(backend=InMemoryApprovalBackend(retention_seconds=5))
    request = await service.request_approval(uuid.uuid4(), "edit")
    got: list[ApprovalDecision] = []

    async def patient() -> None:
        got.append(await service.await_decision(request.id, timeout_seconds=math.inf))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(patient)
        with pytest.raises(TimeoutError):
            await service.await_decision(request.id, timeout_seconds=1)
        assert request.status is ApprovalStatus.EXPIRED
        for _ in range(20):
            await trio.sleep(5)
            await service.request_approval(uuid.uuid4(), "other")
        assert await service.get_request(request.id) is request
        decision = await service.record_decision(request.id, granted=True)
    assert got == [decision]
    # Once nobody waits, it goes like any other.
    await trio.sleep(6)
    await service.request_approval(uuid.uuid4(), "other")
    assert await service.get_request(request.id) is None


async def test_a_woken_waiter_gets_its_decision_even_with_a_zero_period() -> None:
    clock = trio.testing.MockClock()
    backend = InMemoryApprovalBackend(retention_seconds=0)
    service = ApprovalService(backend=backend)
    request = await service.request_approval(uuid.uuid4(), "edit")
    got: list[ApprovalDecision] = []

    async def waiter() -> None:
        got.append(await service.await_decision(request.id, timeout_seconds=math.inf))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        decision = await service.record_decision(request.id, granted=True)
        # Time passes and a forgetting call runs before the woken waiter resumes.
        clock.jump(1)
        backend._forget_expired()
        assert await service.get_request(request.id) is request  # kept for the waiter
    assert got == [decision]
    del clock


async def test_infinite_retention_keeps_every_request_as_the_reference(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService(backend=InMemoryApprovalBackend(retention_seconds=math.inf))
    ids = []
    for _ in range(100):
        request = await service.request_approval(uuid.uuid4(), "edit")
        await service.record_decision(request.id, granted=True)
        ids.append(request.id)
        await trio.sleep(HOUR)
    assert [await service.get_request(i) is not None for i in ids] == [True] * 100
    assert _memory(service)._closed == {}  # nothing to track
    for i in ids:
        await service.cleanup(i)
    assert all(size == 0 for size in _sizes(service).values())


async def test_cleanup_still_forgets_at_once_and_the_default_period_is_an_hour(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService()
    assert _memory(service).retention_seconds == HOUR
    request = await service.request_approval(uuid.uuid4(), "edit")
    await service.record_decision(request.id, granted=True)
    await service.cleanup(request.id)
    assert all(size == 0 for size in _sizes(service).values())
    with pytest.raises(AttributeError):
        _memory(service).retention_seconds = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "error", "rule"),
    [
        ("60", TypeError, "must be a number; got str"),
        (None, TypeError, "must be a number; got NoneType"),
        (True, TypeError, "must be a number; got bool"),
        (-1, ValueError, "must be >= 0; got -1"),
        (math.nan, ValueError, "must be >= 0; got nan"),
    ],
)
def test_bad_retention_seconds_names_the_parameter(
    value: object, error: type[Exception], rule: str
) -> None:
    with pytest.raises(error, match=rf"^InMemoryApprovalBackend: retention_seconds {rule}$"):
        InMemoryApprovalBackend(retention_seconds=value)  # type: ignore[arg-type]


# -- MemoryTracker ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def _stop_tracing() -> Iterator[None]:
    """tracemalloc slows every allocation: stop it after each test that started it."""
    was_tracing = tracemalloc.is_tracing()
    yield
    if not was_tracing:
        tracemalloc.stop()


async def _sample_periodically(tracker: MemoryTracker, count: int) -> int:
    """A sampler left running: one sample a minute, ``count`` times, on the trio clock.

    ``tracemalloc`` is stopped once the tracker has started it (the samples then read
    0 KiB, as documented): tracing every allocation of thousands of trio sleeps is slow.
    Returns the most samples the tracker held at any time.
    """
    tracemalloc.stop()
    most = 0
    for i in range(count):
        tracker.observe(label=str(i))
        most = max(most, len(tracker.samples))
        await trio.sleep(60)
    return most


async def test_a_tracker_left_sampling_keeps_at_most_the_default_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tracker = MemoryTracker()
    assert await _sample_periodically(tracker, 12_000) == 10_000
    assert trio.current_time() == 720_000
    assert len(tracker.samples) == 10_000
    assert [s.label for s in tracker.samples[:2]] == ["2000", "2001"]
    assert tracker.samples[-1].label == "11999"
    assert isinstance(tracker.samples, list)
    assert tracker.max_samples == 10_000


async def test_max_samples_is_a_ring_buffer_and_listeners_see_every_sample(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[MemorySample] = []
    tracker = MemoryTracker(listeners=[seen.append], max_samples=100)
    assert await _sample_periodically(tracker, 2_000) == 100
    assert len(seen) == 2_000
    assert tracker.samples == seen[-100:]  # the newest, oldest first
    assert [s.label for s in tracker.samples] == [str(i) for i in range(1_900, 2_000)]
    assert repr(tracker) == "MemoryTracker(auto_start=True, active=True, samples=100)"


def test_samples_still_read_tracemalloc() -> None:
    tracker = MemoryTracker(max_samples=3)
    held = [bytearray(64 * 1024) for _ in range(5)]
    for _ in range(5):
        tracker.observe()
    assert len(tracker.samples) == 3
    assert all(s.peak_kb >= s.current_kb >= 64 for s in tracker.samples)
    del held


def test_max_samples_none_keeps_every_sample_as_the_reference() -> None:
    tracker = MemoryTracker(max_samples=None)
    for i in range(20_000):
        tracker.observe(label=str(i))
    assert len(tracker.samples) == 20_000
    assert tracker.max_samples is None


def test_max_samples_one_and_a_replaced_list() -> None:
    tracker = MemoryTracker(auto_start=True, max_samples=1)
    first = tracker.observe(label="a")
    assert tracker.samples == [first]
    second = tracker.observe(label="b")
    assert tracker.samples == [second]
    # A caller may replace the list (a plain attribute): the bound applies to it too.
    tracker.samples = [first] * 5
    third = tracker.observe(label="c")
    assert tracker.samples == [third]


@pytest.mark.parametrize(
    ("value", "error", "rule"),
    [
        ("100", TypeError, "must be an int; got str"),
        (1.5, TypeError, "must be an int; got float"),
        (True, TypeError, "must be an int; got bool"),
        (0, ValueError, "must be at least 1; got 0"),
        (-3, ValueError, "must be at least 1; got -3"),
    ],
)
def test_bad_max_samples_names_the_parameter(
    value: object, error: type[Exception], rule: str
) -> None:
    with pytest.raises(error, match=rf"^MemoryTracker: max_samples {rule}$"):
        MemoryTracker(auto_start=False, max_samples=value)  # type: ignore[arg-type]


def test_max_samples_is_keyword_only_and_the_reference_positionals_still_work() -> None:
    with pytest.raises(TypeError):
        MemoryTracker(False, None, 5)  # type: ignore[call-arg]
    tracker = MemoryTracker(False, [])
    assert not tracker.active
    assert tracker.max_samples == 10_000
