"""Tests for RealtimeStageBus and create_realtime_stage_context (helpers.streaming)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.helpers import RealtimeStageBus as HelpersBus
from stageflow_trio.helpers import create_realtime_stage_context as helpers_create
from stageflow_trio.helpers.streaming import (
    ChunkQueue,
    RealtimeStageBus,
    create_realtime_stage_context,
)
from stageflow_trio.stages.ports import CorePorts
from stageflow_trio.testing import create_test_snapshot


def _stats(total: int = 0, dropped: int = 0, size: int = 0, closed: bool = False) -> dict[str, Any]:
    return {
        "size": size,
        "closed": closed,
        "backpressure": {
            "total_items": total,
            "dropped_items": dropped,
            "blocked_puts": 0,
            "max_queue_size": size if not closed else total - dropped,
            "total_blocked_ms": 0.0,
            "drop_rate": dropped / max(total, 1),
        },
    }


def test_helpers_reexports_the_bus() -> None:
    assert HelpersBus is RealtimeStageBus
    assert helpers_create is create_realtime_stage_context
    assert RealtimeStageBus.__module__ == "stageflow_trio.helpers.streaming"


async def test_channel_is_created_once_with_the_defaults() -> None:
    bus = RealtimeStageBus(default_max_size=2, default_drop_on_overflow=True)
    queue = await bus.channel("tokens")
    assert isinstance(queue, ChunkQueue)
    assert await bus.channel("tokens", max_size=50, drop_on_overflow=False) is queue
    for item in (1, 2, 3):
        assert await bus.publish("tokens", item) is True
    # Capacity 2, dropping the oldest: the defaults applied.
    assert [await queue.get(), await queue.get()] == [2, 3]


async def test_channel_settings_override_the_defaults() -> None:
    bus = RealtimeStageBus()
    queue = await bus.channel("c", max_size=1, drop_on_overflow=True)
    await bus.publish("c", "a")
    await bus.publish("c", "b")
    assert len(queue) == 1
    assert await queue.get() == "b"


async def test_publish_and_subscribe_across_tasks_until_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    received: list[tuple[float, str]] = []

    async def speak(bus: RealtimeStageBus) -> None:
        async for token in bus.subscribe("llm_to_tts"):
            received.append((trio.current_time(), token))

    async with trio.open_nursery() as nursery, RealtimeStageBus() as bus:
        start = trio.current_time()
        nursery.start_soon(speak, bus)
        for token in ("Hel", "lo"):
            await trio.sleep(1)
            assert await bus.publish("llm_to_tts", token) is True
        await bus.close_channel("llm_to_tts")
    assert received == [(start + 1, "Hel"), (start + 2, "lo")]
    assert await bus.publish("llm_to_tts", "late") is False


async def test_subscribe_creates_the_channel_on_first_step() -> None:
    bus = RealtimeStageBus()
    subscription = bus.subscribe("later")
    assert await bus.stats() == {}
    await bus.publish("later", 1)
    await bus.close_channel("later")
    assert [item async for item in subscription] == [1]
    # A second subscriber of a closed, drained channel ends at once.
    assert [item async for item in bus.subscribe("later")] == []


async def test_two_subscribers_share_one_channel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    got: dict[str, list[int]] = {"a": [], "b": []}

    async def consume(name: str, bus: RealtimeStageBus) -> None:
        async for item in bus.subscribe("c"):
            got[name].append(item)
            await trio.sleep(1)

    # The bus inside the nursery: leaving it closes the channel, which ends the
    # consumers, which lets the nursery exit.
    async with trio.open_nursery() as nursery, RealtimeStageBus() as bus:
        nursery.start_soon(consume, "a", bus)
        nursery.start_soon(consume, "b", bus)
        await trio.testing.wait_all_tasks_blocked()
        for item in range(4):
            await bus.publish("c", item)
    assert sorted(got["a"] + got["b"]) == [0, 1, 2, 3]
    assert got["a"]
    assert got["b"]


async def test_stats_report_every_channel() -> None:
    bus = RealtimeStageBus(default_max_size=1, default_drop_on_overflow=True)
    await bus.publish("a", 1)
    await bus.publish("a", 2)
    await bus.channel("b")
    await bus.close_channel("b")
    assert await bus.stats() == {
        "a": _stats(total=2, dropped=1, size=1),
        "b": {
            "size": 1,  # the end marker
            "closed": True,
            "backpressure": {
                "total_items": 0,
                "dropped_items": 0,
                "blocked_puts": 0,
                "max_queue_size": 0,
                "total_blocked_ms": 0.0,
                "drop_rate": 0.0,
            },
        },
    }


async def test_close_channel_of_an_unknown_name_is_a_checkpoint_and_creates_nothing() -> None:
    bus = RealtimeStageBus()
    with trio.testing.assert_checkpoints():
        await bus.close_channel("nope")
    assert await bus.stats() == {}


async def test_close_all_closes_every_channel_even_when_cancelled() -> None:
    bus = RealtimeStageBus()
    queues = [await bus.channel(name) for name in ("a", "b", "c")]
    with trio.CancelScope() as scope:
        scope.cancel()
        await bus.close_all()
    assert scope.cancelled_caught
    assert [queue.is_closed for queue in queues] == [True, True, True]


async def test_async_with_closes_every_channel_on_exit_and_on_error() -> None:
    bus = RealtimeStageBus()
    queue = await bus.channel("x")

    async def fail_inside() -> None:
        async with bus:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match=r"^boom$"):
        await fail_inside()
    assert queue.is_closed


async def test_a_subscriber_whose_first_step_comes_after_the_bus_closed_ends_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The producer published nothing, so "llm_to_tts" did not exist when the
    # bus closed; the subscriber used to create it open and wait forever.
    spoken: list[str] = []

    async def tts(bus: RealtimeStageBus) -> None:
        async for token in bus.subscribe("llm_to_tts"):
            spoken.append(token)

    start = trio.current_time()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, RealtimeStageBus() as bus:
            nursery.start_soon(tts, bus)
    assert trio.current_time() - start == 0
    assert spoken == []
    assert await bus.stats() == {"llm_to_tts": _stats(closed=True)}


async def test_after_close_all_new_channels_are_created_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[str] = []
    bus = RealtimeStageBus(event_emitter=lambda kind, data: events.append(kind))
    await bus.close_all()
    assert events == []  # no channel existed
    assert await bus.publish("new", 1) is False
    queue = await bus.channel("other", max_size=5)
    assert queue.is_closed
    assert await bus.channel("other") is queue
    with trio.fail_after(1):  # an open channel would wait forever
        assert [item async for item in bus.subscribe("third")] == []
    marker_only = {**_stats(closed=True), "size": 1}  # the end marker, as close_channel leaves it
    assert await bus.stats() == {
        "new": marker_only,
        "other": marker_only,
        "third": _stats(closed=True),  # the subscriber took the marker
    }
    assert events == ["stream.queue_closed"] * 3
    # A channel that existed before the close drains and ends as before.
    old_bus = RealtimeStageBus()
    await old_bus.publish("kept", "a")
    await old_bus.close_all()
    assert [item async for item in old_bus.subscribe("kept")] == ["a"]


async def test_calls_on_a_closed_bus_are_checkpoints(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = RealtimeStageBus()
    await bus.close_all()
    with trio.testing.assert_checkpoints():
        await bus.publish("a", 1)
    with trio.testing.assert_checkpoints():
        await bus.channel("b")
    with trio.fail_after(1), trio.testing.assert_checkpoints():
        assert [item async for item in bus.subscribe("c")] == []


async def test_every_public_method_is_a_checkpoint() -> None:
    bus = RealtimeStageBus()
    with trio.testing.assert_checkpoints():
        await bus.channel("x")
    with trio.testing.assert_checkpoints():
        await bus.publish("x", 1)
    with trio.testing.assert_checkpoints():
        await bus.stats()
    with trio.testing.assert_checkpoints():
        await bus.__aenter__()
    with trio.testing.assert_checkpoints():
        await bus.close_all()
    with trio.testing.assert_checkpoints():
        await bus.close_channel("x")


async def test_event_emitter_reaches_the_channels() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    bus = RealtimeStageBus(event_emitter=lambda kind, data: events.append((kind, data)))
    await bus.channel("x")
    await bus.close_channel("x")
    assert [kind for kind, _ in events] == ["stream.queue_closed"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"default_max_size": "9"}, TypeError, "default_max_size must be an int; got str"),
        (
            {"default_drop_on_overflow": 1},
            TypeError,
            "default_drop_on_overflow must be a bool; got int",
        ),
        ({"event_emitter": 3}, TypeError, "event_emitter must be a callable or None; got int"),
    ],
)
def test_bus_bad_input(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=rf"^RealtimeStageBus: {message}$"):
        RealtimeStageBus(**kwargs)


async def test_bad_channel_names_and_settings() -> None:
    bus = RealtimeStageBus()
    with pytest.raises(ValueError, match=r"^RealtimeStageBus channel name cannot be empty$"):
        await bus.channel("")
    with pytest.raises(TypeError, match=r"^RealtimeStageBus: channel name must be a str; got int$"):
        await bus.publish(1, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^ChunkQueue: max_size must be an int; got float$"):
        await bus.channel("c", max_size=1.5)  # type: ignore[arg-type]
    assert await bus.stats() == {}


def test_create_realtime_stage_context_wires_a_new_bus() -> None:
    snapshot = create_test_snapshot(input_text="hi")
    ctx, bus = create_realtime_stage_context(snapshot, bus_max_size=7, bus_drop_on_overflow=True)
    assert isinstance(ctx, StageContext)
    assert isinstance(bus, RealtimeStageBus)
    assert ctx.snapshot is snapshot
    assert ctx.stage_name == "pipeline_entry"
    assert isinstance(ctx.inputs.ports, CorePorts)
    assert ctx.inputs.ports.realtime_bus is bus
    assert ctx.inputs.strict is False


async def test_create_realtime_stage_context_uses_the_given_defaults_and_bus() -> None:
    _, bus = create_realtime_stage_context(
        create_test_snapshot(), bus_max_size=1, bus_drop_on_overflow=True
    )
    await bus.publish("c", 1)
    await bus.publish("c", 2)
    assert (await bus.stats())["c"]["backpressure"]["dropped_items"] == 1
    mine = RealtimeStageBus()
    ctx, same = create_realtime_stage_context(create_test_snapshot(), bus=mine)
    assert same is mine
    assert isinstance(ctx.inputs.ports, CorePorts)
    assert ctx.inputs.ports.realtime_bus is mine


def test_create_realtime_stage_context_bad_bus() -> None:
    with pytest.raises(
        TypeError,
        match=r"^create_realtime_stage_context: bus must be a RealtimeStageBus or None; got dict$",
    ):
        create_realtime_stage_context(create_test_snapshot(), bus={})  # type: ignore[arg-type]
