"""Audit 20: per-request state that a long-running service must not keep for ever.

- ``SubpipelineSpawner`` remembered every run ``cancel_with_children`` ever
  cancelled: the global spawner of a service grew by one entry per cancelled
  request tree. Now the table is bounded (``max_canceled_runs``), while the
  promises hold for every run the spawner still holds and for the runs most
  recently cancelled or asked about.
- ``RealtimeStageBus`` kept every closed channel: a long-lived bus with a
  channel per request grew by one closed channel per request.
  ``close_channel(name, remove=True)`` now ends a channel and forgets it.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest
import trio
import trio.testing

from stageflow_trio.events import NoOpEventSink, set_event_sink
from stageflow_trio.helpers.streaming import RealtimeStageBus
from stageflow_trio.pipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import create_test_pipeline_context


def _spawner(**kwargs: object) -> SubpipelineSpawner:
    set_event_sink(NoOpEventSink())
    return SubpipelineSpawner(child_tracker=ChildRunTracker(), **kwargs)  # type: ignore[arg-type]


async def _cancel_requests(spawner: SubpipelineSpawner, count: int) -> None:
    """``count`` requests whose root run is cancelled while its child runs."""

    async def stuck(ctx: PipelineContext) -> None:
        await trio.sleep_forever()

    for _ in range(count):
        root = create_test_pipeline_context()
        assert root.pipeline_run_id is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(spawner.spawn, "child", root, uuid.uuid4(), "stage", stuck)
            await trio.sleep(1)
            assert len(await spawner.cancel_with_children(root.pipeline_run_id, "gone")) == 2


async def _cancel_roots(spawner: SubpipelineSpawner, count: int) -> None:
    for _ in range(count):
        await spawner.cancel_with_children(uuid.uuid4(), "gone")


async def _returns(ctx: PipelineContext) -> dict[str, int]:
    return {"ran": 1}


# -- SubpipelineSpawner: the table of cancelled runs ----------------------------


async def test_a_hundred_cancelled_requests_keep_the_table_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 200 runs cancelled (a root and its child a request), twenty times the bound: the
    # table stays at the bound as with 1,000 requests and a bound of 50 (until audit 26).
    spawner = _spawner(max_canceled_runs=10)
    await _cancel_requests(spawner, 100)
    assert len(spawner._canceled_runs) == 10
    assert spawner.running_children == frozenset()
    assert spawner._retained == {}


async def test_the_default_spawner_remembers_ten_thousand_runs() -> None:
    spawner = _spawner(emit_events=False)
    assert spawner.max_canceled_runs == 10_000
    first = uuid.uuid4()
    await spawner.cancel_with_children(first)
    await _cancel_roots(spawner, 10_499)
    assert len(spawner._canceled_runs) == 10_000
    assert await spawner.is_canceled(first) is False


async def test_none_remembers_every_run_as_the_reference() -> None:
    spawner = _spawner(emit_events=False, max_canceled_runs=None)
    first = uuid.uuid4()
    await spawner.cancel_with_children(first)
    await _cancel_roots(spawner, 10_500)
    assert len(spawner._canceled_runs) == 10_501
    assert await spawner.is_canceled(first)


async def test_a_held_child_stays_cancelled_however_many_runs_are_cancelled_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    spawner = _spawner(max_canceled_runs=3)
    root = create_test_pipeline_context()
    assert root.pipeline_run_id is not None
    release = trio.Event()
    child_ids: list[UUID] = []

    async def lingering(ctx: PipelineContext) -> None:
        assert ctx.pipeline_run_id is not None
        child_ids.append(ctx.pipeline_run_id)
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):  # a long cleanup: the run goes on
                await release.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spawner.spawn, "child", root, uuid.uuid4(), "stage", lingering)
        await trio.sleep(1)
        try:
            await spawner.cancel_with_children(root.pipeline_run_id, "gone")
            await _cancel_roots(spawner, 10)  # the child's entry is long gone from the table
            (child_id,) = child_ids
            assert child_id not in spawner._canceled_runs
            assert await spawner.is_canceled(child_id)
            # A spawn under it (with a context that was not marked) is still refused.
            under = create_test_pipeline_context(pipeline_run_id=child_id)
            result = await spawner.spawn("grandchild", under, uuid.uuid4(), "s", _returns)
            assert not result.success
            assert result.error == (
                f"Parent run {child_id} was canceled; the child pipeline was not started"
            )
            # And a new cancel of the subtree does not report it again.
            assert await spawner.cancel_with_children(child_id, "again") == []
        finally:
            release.set()
    # Ended and forgotten: the answer is now False, as documented.
    assert await spawner.is_canceled(child_id) is False


async def test_an_ended_child_with_a_running_grandchild_stays_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The child hands a grandchild to an outer nursery and ends: the spawner holds
    # it (retained) until the grandchild ends, and remembers its cancellation so long.
    spawner = _spawner(max_canceled_runs=3)
    root = create_test_pipeline_context()
    assert root.pipeline_run_id is not None
    release = trio.Event()
    ids: dict[str, UUID] = {}

    async def grandchild(ctx: PipelineContext) -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await release.wait()

    async with trio.open_nursery() as outer:

        async def child(ctx: PipelineContext) -> None:
            assert ctx.pipeline_run_id is not None
            ids["child"] = ctx.pipeline_run_id
            await spawner.spawn_detached("g", ctx, uuid.uuid4(), "s", grandchild, nursery=outer)
            await trio.sleep_forever()

        outer.start_soon(spawner.spawn, "child", root, uuid.uuid4(), "stage", child)
        await trio.sleep(1)
        try:
            assert len(await spawner.cancel_with_children(root.pipeline_run_id, "gone")) == 3
            await trio.sleep(1)
            assert ids["child"] in spawner._retained  # ended, its grandchild still running
            await _cancel_roots(spawner, 10)
            assert ids["child"] not in spawner._canceled_runs
            assert await spawner.is_canceled(ids["child"])
            under = create_test_pipeline_context(pipeline_run_id=ids["child"])
            assert not (await spawner.spawn("late", under, uuid.uuid4(), "s", _returns)).success
            assert await spawner.cancel_with_children(ids["child"], "again") == []
        finally:
            release.set()
    assert spawner._retained == {}
    assert await spawner.is_canceled(ids["child"]) is False


async def test_an_ended_child_cancelled_itself_stays_cancelled_while_held(
    autojump_clock: trio.testing.MockClock,
) -> None:
    spawner = _spawner(max_canceled_runs=3)
    root = create_test_pipeline_context()
    release = trio.Event()
    ids: dict[str, UUID] = {}

    async def grandchild(ctx: PipelineContext) -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await release.wait()

    async with trio.open_nursery() as outer:

        async def child(ctx: PipelineContext) -> None:  # hands off and returns
            assert ctx.pipeline_run_id is not None
            ids["child"] = ctx.pipeline_run_id
            await spawner.spawn_detached("g", ctx, uuid.uuid4(), "s", grandchild, nursery=outer)

        assert (await spawner.spawn("child", root, uuid.uuid4(), "stage", child)).success
        try:
            assert ids["child"] in spawner._retained
            assert len(await spawner.cancel_with_children(ids["child"], "gone")) == 2
            await _cancel_roots(spawner, 10)
            assert await spawner.is_canceled(ids["child"])
            assert await spawner.cancel_with_children(ids["child"], "again") == []
        finally:
            release.set()


async def test_a_cancelled_root_that_keeps_spawning_stays_remembered() -> None:
    spawner = _spawner(emit_events=False, max_canceled_runs=3)
    root = create_test_pipeline_context()
    root_id = root.pipeline_run_id
    assert root_id is not None
    await spawner.cancel_with_children(root_id, "gone")
    for _ in range(5):
        await _cancel_roots(spawner, 2)
        result = await spawner.spawn("child", root, uuid.uuid4(), "s", _returns)
        assert not result.success  # refused, and the refusal refreshed the root
    for _ in range(5):
        await _cancel_roots(spawner, 2)
        assert await spawner.is_canceled(root_id)  # so does a True answer
    assert root_id in spawner._canceled_runs


async def test_a_forgotten_root_is_reported_again_but_its_marked_context_refuses() -> None:
    spawner = _spawner(emit_events=False, max_canceled_runs=3)
    root = create_test_pipeline_context()
    root_id = root.pipeline_run_id
    assert root_id is not None
    assert await spawner.cancel_with_children(root_id, "gone", {root_id: root}) == [root_id]
    await _cancel_roots(spawner, 3)
    assert await spawner.is_canceled(root_id) is False
    # The marked context refuses for good ...
    refused = await spawner.spawn("child", root, uuid.uuid4(), "s", _returns)
    assert not refused.success
    # ... a fresh context of the forgotten run does not.
    fresh = create_test_pipeline_context(pipeline_run_id=root_id)
    assert (await spawner.spawn("child", fresh, uuid.uuid4(), "s", _returns)).success
    assert await spawner.cancel_with_children(root_id, "again") == [root_id]


async def test_within_the_bound_the_promises_hold_after_the_tree_ended(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The docs' example: is_canceled(root) after the whole tree ended.
    spawner = _spawner()
    root = create_test_pipeline_context()
    assert root.pipeline_run_id is not None
    await _cancel_requests(spawner, 10)
    await spawner.cancel_with_children(root.pipeline_run_id, "gone")
    await _cancel_requests(spawner, 10)
    assert await spawner.is_canceled(root.pipeline_run_id)
    fresh = create_test_pipeline_context(pipeline_run_id=root.pipeline_run_id)
    assert not (await spawner.spawn("child", fresh, uuid.uuid4(), "s", _returns)).success


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("10", TypeError, "max_canceled_runs must be an int or None, got str"),
        (True, TypeError, "max_canceled_runs must be an int or None, got bool"),
        (1.5, TypeError, "max_canceled_runs must be an int or None, got float"),
        (0, ValueError, "max_canceled_runs must be >= 1 or None, got 0"),
    ],
)
def test_max_canceled_runs_is_checked(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=rf"^{message}$"):
        SubpipelineSpawner(child_tracker=ChildRunTracker(), max_canceled_runs=value)  # type: ignore[arg-type]


# -- RealtimeStageBus: channels per request ---------------------------------------


async def _request(bus: RealtimeStageBus, *, remove: bool) -> list[int]:
    name = f"tokens:{uuid.uuid4()}"
    got: list[int] = []

    async def speak() -> None:
        async for token in bus.subscribe(name):
            got.append(token)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(speak)
        for token in range(3):
            assert await bus.publish(name, token)
        await bus.close_channel(name, remove=remove)
    return got


async def test_a_thousand_channel_lifecycles_leave_nothing_with_remove(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = RealtimeStageBus()
    for _ in range(1_000):
        assert await _request(bus, remove=True) == [0, 1, 2]
    assert bus._channels == {}
    assert await bus.stats() == {}


async def test_without_remove_a_closed_name_keeps_answering(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = RealtimeStageBus()
    await bus.publish("tokens", 1)
    await bus.close_channel("tokens")
    assert await bus.publish("tokens", 2) is False
    assert [token async for token in bus.subscribe("tokens")] == [1]
    assert (await bus.stats())["tokens"]["closed"]


async def test_remove_ends_the_holders_and_frees_the_name(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = RealtimeStageBus()
    await bus.channel("tokens", max_size=1)
    got: list[int] = []
    outcomes: list[bool] = []

    async def speak() -> None:
        async for token in bus.subscribe("tokens"):
            got.append(token)
            await trio.sleep(10)  # slow: the publisher below waits for room

    async def stream() -> None:
        for token in range(4):
            outcomes.append(await bus.publish("tokens", token))
            if not outcomes[-1]:
                return  # a publish after this one would start a new channel

    async with trio.open_nursery() as nursery:
        nursery.start_soon(speak)
        nursery.start_soon(stream)
        await trio.sleep(1)
        await bus.close_channel("tokens", remove=True)
        assert await bus.stats() == {}
    # The subscriber drained what was queued and ended; the waiting put got False.
    assert got == [0, 1]
    assert outcomes == [True, True, False]
    # The name starts a new, open channel with the bus's defaults.
    assert await bus.publish("tokens", 7)
    stats = await bus.stats()
    assert stats["tokens"]["closed"] is False
    assert stats["tokens"]["backpressure"]["total_items"] == 1
    await bus.close_channel("tokens")
    assert [token async for token in bus.subscribe("tokens")] == [7]


async def test_remove_on_a_closed_bus_keeps_the_name_closed() -> None:
    bus = RealtimeStageBus()
    async with bus:
        await bus.publish("tokens", 1)
    await bus.close_channel("tokens", remove=True)
    assert await bus.stats() == {}
    assert await bus.publish("tokens", 2) is False
    assert [token async for token in bus.subscribe("tokens")] == []


async def test_remove_checks_its_flag_and_checkpoints() -> None:
    bus = RealtimeStageBus()
    await bus.channel("tokens")
    with pytest.raises(
        TypeError, match=r"^RealtimeStageBus.close_channel: remove must be a bool; got str$"
    ):
        await bus.close_channel("tokens", remove="yes")  # type: ignore[arg-type]
    assert "tokens" in await bus.stats()  # nothing closed or removed
    with trio.testing.assert_checkpoints():
        await bus.close_channel("missing", remove=True)
    with trio.testing.assert_checkpoints():
        await bus.close_channel("tokens", remove=True)
