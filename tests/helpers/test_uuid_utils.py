"""UuidCollisionMonitor (window in virtual time), UUIDv7 generation and clock-skew detection."""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import stageflow_trio.helpers as helpers_package
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.helpers import uuid_utils as module
from stageflow_trio.helpers.memory_tracker import MemoryTracker
from stageflow_trio.helpers.uuid_utils import (
    ClockSkewDetector,
    UuidCollisionMonitor,
    UuidEvent,
    generate_uuid7,
)
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.pipeline.registry import PipelineRegistry
from stageflow_trio.pipeline.subpipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.testing import create_test_pipeline_context
from stageflow_trio.tools.executor import ToolExecutor

A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def uuid7_at(when: datetime) -> uuid.UUID:
    ms = int(when.timestamp() * 1000)
    return uuid.UUID(int=ms << 80 | 0x7 << 76 | 0xABC << 64 | 0b10 << 62 | 0x1234)


def test_all_is_the_references() -> None:
    assert sorted(module.__all__) == [
        "ClockSkewDetector",
        "UuidCollisionMonitor",
        "UuidEvent",
        "UuidEventListener",
        "generate_uuid7",
    ]
    for name in module.__all__:
        assert getattr(helpers_package, name) is getattr(module, name)


def test_generate_uuid7_is_version_7_now_and_strictly_increasing() -> None:
    assert module.HAS_UUID7 is True
    before = datetime.now(UTC)
    ids = [generate_uuid7() for _ in range(200)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 200
    # The time part (48 bits of ms and 12 of sub-ms) alone is strictly increasing.
    ticks = [_tick(u) for u in ids]
    assert ticks == sorted(set(ticks))
    first = datetime.fromtimestamp((ids[0].int >> 80) / 1000, tz=UTC)
    assert before - timedelta(milliseconds=1) <= first <= before + timedelta(seconds=5)


def _tick(value: uuid.UUID) -> int:
    """The 60-bit time of a UUIDv7: its milliseconds, then its 12 sub-millisecond bits."""
    return (value.int >> 80) << 12 | (value.int >> 64 & 0xFFF)


def test_generate_uuid7_time_does_not_run_ahead_in_a_burst() -> None:
    # One millisecond ahead per id in the same millisecond (the uuid6 package's
    # rule, which this module followed) put a burst of 20,000 ids about 20 s in
    # the future: ClockSkewDetector's default limit is 5 s.
    ids = [generate_uuid7() for _ in range(20_000)]
    after_ms = time.time_ns() // 1_000_000
    assert ids == sorted(ids)
    assert ids[-1].int >> 80 <= after_ms + 1
    assert ClockSkewDetector().check(ids[-1]) is None


def test_generate_uuid7_sub_millisecond_bits_and_a_clock_stepping_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "_last_uuid7_tick", 0)
    wall_ns = iter(
        [
            1_700_000_000_123_500_000,  # half way through millisecond ...123
            1_700_000_000_123_500_000,  # the same instant again
            1_700_000_000_100_000_000,  # the clock stepped back 23.5 ms
            1_700_000_000_200_000_000,
        ]
    )
    clock = SimpleNamespace(time_ns=lambda: next(wall_ns))
    monkeypatch.setattr(f"{module.__name__}.time", clock)
    made = [generate_uuid7() for _ in range(4)]
    assert [(u.int >> 80, u.int >> 64 & 0xFFF) for u in made] == [
        (1_700_000_000_123, 2048),
        (1_700_000_000_123, 2049),
        (1_700_000_000_123, 2050),
        (1_700_000_000_200, 0),
    ]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)


def test_generate_uuid7_is_ordered_across_threads() -> None:
    per_thread: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(out: list[uuid.UUID]) -> None:
        for _ in range(5_000):
            out.append(generate_uuid7())

    threads = [threading.Thread(target=make, args=(out,)) for out in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for out in per_thread:
        assert out == sorted(out)
    # Each id got a time of its own: none of the 20,000 shares its 60 time bits.
    assert len({_tick(u) for out in per_thread for u in out}) == 20_000


async def test_collision_within_the_window(autojump_clock: Any) -> None:
    events: list[UuidEvent] = []
    monitor = UuidCollisionMonitor(ttl_seconds=10, category="pipeline", listeners=[events.append])
    assert monitor.category == "pipeline"
    assert monitor.observe(A) is False
    assert monitor.observe(B) is False
    await trio.sleep(9.5)
    assert monitor.observe(A) is True
    assert [(e.value, e.collision, e.category, e.skew_ms) for e in events] == [
        (A, False, "pipeline", None),
        (B, False, "pipeline", None),
        (A, True, "pipeline", None),
    ]
    assert all(e.observed_at.tzinfo is UTC for e in events)


async def test_ids_leave_the_window_after_ttl_seconds(autojump_clock: Any) -> None:
    monitor = UuidCollisionMonitor(ttl_seconds=10)
    monitor.observe(A)
    await trio.sleep(10)
    assert monitor.observe(A) is True  # exactly ttl old: still inside
    await trio.sleep(10.001)
    assert monitor.observe(A) is False  # the last sighting is now older than the window


async def test_ttl_below_one_second_is_raised_to_one(autojump_clock: Any) -> None:
    monitor = UuidCollisionMonitor(ttl_seconds=0.01)
    monitor.observe(A)
    await trio.sleep(0.5)
    assert monitor.observe(A) is True
    await trio.sleep(1.5)
    assert monitor.observe(A) is False


def test_max_entries_caps_the_window_oldest_first() -> None:
    monitor = UuidCollisionMonitor(max_entries=2)
    monitor.observe(A)
    monitor.observe(B)
    monitor.observe(C)  # A leaves
    assert monitor.observe(A) is False
    assert monitor.observe(C) is True


def test_an_id_with_a_live_duplicate_stays_indexed() -> None:
    """The reference un-indexed A when its oldest entry left, though a newer one remained."""
    monitor = UuidCollisionMonitor(max_entries=2)
    monitor.observe(A)
    assert monitor.observe(A) is True
    monitor.observe(B)  # the first A leaves; the second stays
    assert monitor.observe(A) is True


def test_max_entries_below_one_is_raised_to_one() -> None:
    monitor = UuidCollisionMonitor(max_entries=0)
    monitor.observe(A)
    assert monitor.observe(A) is True
    monitor.observe(B)
    assert monitor.observe(A) is False


def test_listeners_added_later_and_their_errors_propagate() -> None:
    monitor = UuidCollisionMonitor()
    seen: list[bool] = []
    monitor.add_listener(lambda event: seen.append(event.collision))
    monitor.observe(A)
    monitor.observe(A)
    assert seen == [False, True]

    def broken(_event: UuidEvent) -> None:
        raise RuntimeError("listener")

    monitor.add_listener(broken)
    with pytest.raises(RuntimeError, match=r"^listener$"):
        monitor.observe(B)


def test_event_is_frozen() -> None:
    event = UuidEvent(value=A, collision=False, category="c", observed_at=datetime.now(UTC))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.collision = True  # type: ignore[misc]


def test_skew_detector_reports_only_v7_beyond_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(module, "utc_now", lambda: now)
    detector = ClockSkewDetector(max_skew_ms=1000)
    assert detector.check(uuid7_at(now - timedelta(milliseconds=1500))) == 1500.0
    assert detector.check(uuid7_at(now + timedelta(seconds=2))) == 2000.0
    assert detector.check(uuid7_at(now - timedelta(milliseconds=1000))) is None
    assert detector.check(uuid.UUID(int=1 << 80 | 1, version=4)) is None
    assert ClockSkewDetector().max_skew_ms == 5000.0


def test_monitor_logs_skew_and_puts_it_in_the_event(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(module, "utc_now", lambda: now)
    events: list[UuidEvent] = []
    monitor = UuidCollisionMonitor(check_skew=True, listeners=[events.append])
    skewed = uuid7_at(now - timedelta(seconds=6))
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.helpers.uuid"):
        monitor.observe(skewed)
        monitor.observe(uuid7_at(now))
    assert [e.skew_ms for e in events] == [6000.0, None]
    (record,) = caplog.records
    assert record.getMessage() == f"Clock skew detected for UUID {skewed}: 6000.0ms"
    assert (record.uuid, record.skew_ms) == (str(skewed), 6000.0)  # type: ignore[attr-defined]


def test_observe_works_outside_trio() -> None:
    monitor = UuidCollisionMonitor()
    assert monitor.observe(A) is False
    assert monitor.observe(A) is True


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: UuidCollisionMonitor(ttl_seconds="5"), TypeError, r"^UuidCollisionMonitor: ttl_seconds must be a number; got str$"),  # type: ignore[arg-type]
        (lambda: UuidCollisionMonitor(max_entries=2.5), TypeError, r"^UuidCollisionMonitor: max_entries must be an int; got float$"),  # type: ignore[arg-type]
        (lambda: UuidCollisionMonitor(max_entries=True), TypeError, r"^UuidCollisionMonitor: max_entries must be an int; got bool$"),
        (lambda: UuidCollisionMonitor(category=None), TypeError, r"^UuidCollisionMonitor: category must be a str; got NoneType$"),  # type: ignore[arg-type]
        (lambda: UuidCollisionMonitor(check_skew="yes"), TypeError, r"^UuidCollisionMonitor: check_skew must be a bool; got str$"),  # type: ignore[arg-type]
        (lambda: UuidCollisionMonitor(listeners=[1]), TypeError, r"^UuidCollisionMonitor: listeners must be a callable; got int$"),  # type: ignore[list-item]
        (lambda: UuidCollisionMonitor().add_listener(None), TypeError, r"^UuidCollisionMonitor.add_listener: listener must be a callable; got NoneType$"),  # type: ignore[arg-type]
        (lambda: UuidCollisionMonitor().observe(str(A)), TypeError, r"^UuidCollisionMonitor.observe: value must be a UUID; got str$"),  # type: ignore[arg-type]
        (lambda: ClockSkewDetector(max_skew_ms=-1), ValueError, r"^ClockSkewDetector: max_skew_ms must be >= 0; got -1$"),
    ],
)  # fmt: skip
def test_bad_arguments(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


async def test_monitor_and_tracker_plug_into_the_v1_tool_executor(
    autojump_clock: Any,
) -> None:
    """ToolExecutor (a lower layer) takes them through a protocol; the real classes fit it."""

    async def work(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(mode=ctx.snapshot.execution_mode)

    registry = PipelineRegistry()
    registry.register("child", Pipeline().with_stage("work", work, StageKind.WORK))
    events: list[UuidEvent] = []
    monitor = UuidCollisionMonitor(category="tool", listeners=[events.append])
    tracker = MemoryTracker()
    try:
        executor = ToolExecutor(
            spawner=SubpipelineSpawner(child_tracker=ChildRunTracker()),
            registry=registry,
            uuid_monitor=monitor,
            memory_tracker=tracker,
        )
        correlation = uuid.UUID(int=77)
        for _ in range(2):
            result = await executor.spawn_subpipeline(
                "child", create_test_pipeline_context(), correlation
            )
            assert result.success
    finally:
        tracemalloc.stop()
    assert [(e.value, e.collision, e.category) for e in events] == [
        (correlation, False, "tool"),
        (correlation, True, "tool"),
    ]
    assert [s.label for s in tracker.samples] == ["subpipeline:start", "subpipeline:end"] * 2


# --- one clock for the monitor's whole life -------------------------------------------


class OffsetClock(trio.abc.Clock):
    """A trio clock like SystemClock: a shared time line plus this run's offset."""

    def __init__(self, time_line: list[float], offset: float) -> None:
        self.time_line = time_line
        self.offset = offset

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self.offset + self.time_line[0]

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return max(0.0, deadline - self.current_time())


def test_a_monitor_reused_across_runs_keeps_the_clock_it_was_made_with() -> None:
    """Each run's clock has its own offset (SystemClock's is random): mixing them
    missed the collision in run 2 and reported a false one in run 3."""
    time_line = [0.0]
    made: list[UuidCollisionMonitor] = []

    async def make_and_observe() -> bool:
        made.append(UuidCollisionMonitor(ttl_seconds=10))
        return made[0].observe(A)

    async def observe() -> bool:
        return made[0].observe(A)

    assert trio.run(make_and_observe, clock=OffsetClock(time_line, 10_000)) is False
    time_line[0] += 5  # inside the window
    assert trio.run(observe, clock=OffsetClock(time_line, 150_000)) is True
    time_line[0] += 20  # 20 s after the last sighting: outside it
    assert trio.run(observe, clock=OffsetClock(time_line, 0)) is False
    assert made[0].observe(A) is True  # outside a run: the same clock, no time passed


def test_a_monitor_made_outside_a_run_keeps_monotonic_time_inside_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(module, "_system_clock", lambda: now[0])
    monitor = UuidCollisionMonitor(ttl_seconds=1)
    assert monitor.observe(A) is False
    now[0] += 2  # twice the window

    async def later() -> tuple[bool, bool]:
        await trio.sleep(3600)  # virtual time does not move this monitor's window
        return monitor.observe(A), monitor.observe(B)

    assert trio.run(later, clock=trio.testing.MockClock(autojump_threshold=0)) == (False, False)
    assert monitor.observe(B) is True  # seen in the run a moment ago: a collision


def test_a_collision_inside_a_mock_clock_run_and_outside_it_is_seen() -> None:
    """The audit's repro: recorded at virtual t=0, then observed after the run."""
    monitor = UuidCollisionMonitor(ttl_seconds=300)

    async def first() -> bool:
        return monitor.observe(C)

    assert trio.run(first, clock=trio.testing.MockClock(autojump_threshold=0)) is False
    assert monitor.observe(C) is True
