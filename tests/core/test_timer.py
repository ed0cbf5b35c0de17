"""PipelineTimer: epoch-millisecond timing, as in the reference."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType

import pytest

from stageflow_trio.core import timer as _timer
from stageflow_trio.core import timer as timer_module
from stageflow_trio.core.timer import PipelineTimer


class _FakeWallClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> _FakeWallClock:
    clock = _FakeWallClock(1_700_000_000.25)
    monkeypatch.setattr(_timer, "_wall_clock", clock)
    return clock


def test_exports() -> None:
    assert timer_module.__all__ == ["PipelineTimer"]


def test_start_now_and_elapsed(wall_clock: _FakeWallClock) -> None:
    timer = PipelineTimer()
    assert timer.pipeline_start_ms == 1_700_000_000_250
    assert timer.now_ms() == 1_700_000_000_250
    assert timer.elapsed_ms() == 0
    wall_clock.now += 1.5
    assert timer.now_ms() == 1_700_000_001_750
    assert timer.elapsed_ms() == 1500
    assert timer.pipeline_start_ms == 1_700_000_000_250


def test_started_at(wall_clock: _FakeWallClock) -> None:
    timer = PipelineTimer()
    assert timer.started_at == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)


def test_slots_and_read_only_start(wall_clock: _FakeWallClock) -> None:
    timer = PipelineTimer()
    with pytest.raises(AttributeError):
        timer.pipeline_start_ms = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        timer.other = 1  # type: ignore[attr-defined]


def test_real_clock_is_epoch_based() -> None:
    before = int(datetime.now(UTC).timestamp() * 1000)
    timer = PipelineTimer()
    after = int(datetime.now(UTC).timestamp() * 1000)
    assert before - 1 <= timer.pipeline_start_ms <= after + 1
    elapsed = timer.elapsed_ms()
    now = int(datetime.now(UTC).timestamp() * 1000)
    assert 0 <= elapsed <= now - before + 1


def test_differential_against_reference(
    reference: ModuleType, monkeypatch: pytest.MonkeyPatch, wall_clock: _FakeWallClock
) -> None:
    ref = reference.core.timer
    monkeypatch.setattr(ref, "time", wall_clock)
    ours, theirs = PipelineTimer(), ref.PipelineTimer()
    wall_clock.now += 0.123
    assert ours.pipeline_start_ms == theirs.pipeline_start_ms
    assert ours.now_ms() == theirs.now_ms()
    assert ours.elapsed_ms() == theirs.elapsed_ms() == 123
    assert ours.started_at == theirs.started_at
