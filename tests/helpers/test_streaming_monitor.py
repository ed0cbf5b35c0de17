"""BackpressureMonitor: counters, the throttle latch, and the reference's stats."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.helpers.streaming import BackpressureMonitor, BackpressureStats


def test_monitor_record_put_and_latch() -> None:
    monitor = BackpressureMonitor()
    monitor.record_put(50, 100)
    assert (monitor.fill_percentage, monitor.should_throttle()) == (50.0, False)
    monitor.record_put(80, 100)
    assert (monitor.fill_percentage, monitor.should_throttle()) == (80.0, True)
    monitor.record_put(21, 100)  # between the marks: the latch holds
    assert monitor.should_throttle() is True
    monitor.record_put(20, 100)
    assert monitor.should_throttle() is False
    monitor.record_put(79, 100)
    assert monitor.should_throttle() is False
    assert monitor.stats == BackpressureStats(total_items=5, max_queue_size=80)


def test_monitor_custom_marks_and_unbounded() -> None:
    monitor = BackpressureMonitor(high_water_mark=50, low_water_mark=10)
    monitor.record_put(5, 10)
    assert monitor.should_throttle() is True
    monitor.record_put(7, 0)  # unbounded queue: fill 0
    assert monitor.fill_percentage == 0
    assert monitor.should_throttle() is False
    monitor.record_put(3)  # default max_size 100
    assert monitor.fill_percentage == 3.0


def test_threshold_sets_the_marks_as_a_ratio() -> None:
    # stageflow 1.2's threshold=: the high mark at that fill, the low one at most half of it.
    monitor = BackpressureMonitor(threshold=0.5)
    monitor.record_put(49, 100)
    assert monitor.should_throttle() is False
    monitor.record_put(50, 100)
    assert monitor.should_throttle() is True
    monitor.record_put(21, 100)  # the low mark stays 20 (half of 50 is more)
    assert monitor.should_throttle() is True
    monitor.record_put(20, 100)
    assert monitor.should_throttle() is False
    tight = BackpressureMonitor(threshold=0.3, low_water_mark=20)  # low becomes 15
    tight.record_put(30, 100)
    tight.record_put(16, 100)
    assert tight.should_throttle() is True
    tight.record_put(15, 100)
    assert tight.should_throttle() is False
    # The mark is the ratio times 100 (1.2.0 truncates 0.29 to a 28 % mark).
    exact = BackpressureMonitor(threshold=0.29)
    exact.record_put(28, 100)
    assert exact.should_throttle() is False
    exact.record_put(29, 100)
    assert exact.should_throttle() is True


def test_monitor_blocked_and_drop_counters() -> None:
    monitor = BackpressureMonitor()
    monitor.record_blocked(2.5)
    monitor.record_blocked(1.5)
    monitor.record_drop()
    monitor.record_put(1, 10)
    stats = monitor.stats
    assert stats == BackpressureStats(
        total_items=1, dropped_items=1, blocked_puts=2, max_queue_size=1, total_blocked_ms=4.0
    )
    assert stats.to_dict() == {
        "total_items": 1,
        "dropped_items": 1,
        "blocked_puts": 2,
        "max_queue_size": 1,
        "total_blocked_ms": 4.0,
        "drop_rate": 1.0,
    }


def test_stats_snapshot_is_frozen_and_drop_rate_guards_zero() -> None:
    monitor = BackpressureMonitor()
    before = monitor.stats
    monitor.record_drop()
    assert before.dropped_items == 0
    assert monitor.stats.to_dict()["drop_rate"] == 1.0  # dropped / max(total, 1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        before.total_items = 3  # type: ignore[misc]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.integers(0, 120), st.integers(-1, 100)),
            st.tuples(st.just("blocked"), st.floats(0, 1000)),
            st.tuples(st.just("drop")),
        ),
        max_size=30,
    )
)
def test_monitor_matches_reference(reference: ModuleType, ops: list[tuple[Any, ...]]) -> None:
    ref = reference.helpers.streaming
    ours, theirs = BackpressureMonitor(), ref.BackpressureMonitor()
    for op in ops:
        for monitor in (ours, theirs):
            if op[0] == "put":
                monitor.record_put(op[1], op[2])
            elif op[0] == "blocked":
                monitor.record_blocked(op[1])
            else:
                monitor.record_drop()
        assert ours.should_throttle() == theirs.should_throttle()
        assert ours.fill_percentage == theirs.fill_percentage
    assert ours.stats.to_dict() == theirs.stats.to_dict()
