"""BackpressureMetrics.drop_rate: the share of offered events lost, each counted once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.events import BackpressureMetrics


def counted(accepted: int, refused: int, undelivered: int) -> BackpressureMetrics:
    """Metrics built through the recorders, as the sink builds them."""
    metrics = BackpressureMetrics()
    for _ in range(accepted):
        metrics.record_emit()
    for _ in range(refused):
        metrics.record_drop()
    metrics.record_undelivered(undelivered)
    return metrics


def test_undelivered_events_are_not_counted_twice() -> None:
    # Defect: 10 accepted, all 10 undelivered read as 50%.
    metrics = counted(accepted=10, refused=0, undelivered=10)
    assert (metrics.emitted, metrics.dropped) == (10, 10)
    assert metrics.drop_rate == 100.0
    assert metrics.to_dict()["drop_rate_percent"] == 100.0


def test_refused_and_undelivered_events_share_one_denominator() -> None:
    # 8 accepted + 2 refused = 10 offered; 2 refused + 3 undelivered = 5 lost.
    metrics = counted(accepted=8, refused=2, undelivered=3)
    assert (metrics.emitted, metrics.dropped, metrics.queue_full_count) == (8, 5, 2)
    assert metrics.drop_rate == 50.0


def test_without_undelivered_events_the_rate_is_the_references() -> None:
    metrics = counted(accepted=2, refused=1, undelivered=0)
    assert metrics.drop_rate == pytest.approx(100 / 3)
    assert metrics.to_dict()["drop_rate_percent"] == 33.33


def test_inconsistent_hand_made_counters_give_zero_not_an_error() -> None:
    assert BackpressureMetrics(undelivered=5).drop_rate == 0.0


@given(
    accepted=st.integers(min_value=0, max_value=10**4),
    refused=st.integers(min_value=0, max_value=10**4),
    data=st.data(),
)
def test_drop_rate_is_lost_over_offered(accepted: int, refused: int, data: st.DataObject) -> None:
    undelivered = data.draw(st.integers(min_value=0, max_value=accepted))
    metrics = counted(accepted, refused, undelivered)
    offered = accepted + refused
    lost = refused + undelivered
    assert metrics.drop_rate == (lost / offered * 100.0 if offered else 0.0)
    assert 0.0 <= metrics.drop_rate <= 100.0
