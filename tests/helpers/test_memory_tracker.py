"""MemoryTracker and track_memory: samples, listeners, sync and async wrapping."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import trio

import stageflow_trio.helpers as helpers_package
from stageflow_trio.helpers import memory_tracker as module
from stageflow_trio.helpers.memory_tracker import MemorySample, MemoryTracker, track_memory


@pytest.fixture(autouse=True)
def _stop_tracing() -> Iterator[None]:
    """tracemalloc slows every allocation: stop it after each test that started it."""
    was_tracing = tracemalloc.is_tracing()
    yield
    if not was_tracing:
        tracemalloc.stop()


def test_all_is_the_references() -> None:
    assert module.__all__ == ["MemorySample", "MemoryTracker", "track_memory"]
    for name in module.__all__:
        assert getattr(helpers_package, name) is getattr(module, name)


def test_auto_start_starts_tracing_and_observe_records_a_sample() -> None:
    tracemalloc.stop()
    tracker = MemoryTracker()
    assert tracemalloc.is_tracing()
    assert tracker.active
    seen: list[MemorySample] = []
    tracker.listeners.append(seen.append)
    before = datetime.now(UTC)
    held = [bytearray(64 * 1024)]
    sample = tracker.observe(label="after")
    current, peak = tracemalloc.get_traced_memory()
    assert sample.label == "after"
    assert sample.timestamp >= before
    assert sample.timestamp.tzinfo is UTC
    assert 64 <= sample.current_kb <= current // 1024
    assert sample.current_kb <= sample.peak_kb <= peak // 1024
    assert tracker.samples == [sample]
    assert seen == [sample]
    del held


def test_without_auto_start_observe_raises_until_started() -> None:
    tracemalloc.stop()
    tracker = MemoryTracker(auto_start=False)
    assert not tracemalloc.is_tracing()
    with pytest.raises(RuntimeError, match=r"^MemoryTracker is not active; call start\(\) first$"):
        tracker.observe()
    tracker.start()
    assert tracker.observe().label is None
    tracker.stop()
    assert tracemalloc.is_tracing()  # stop() leaves tracing on, as in the reference
    with pytest.raises(RuntimeError):
        tracker.observe(label="x")
    assert len(tracker.samples) == 1


def test_start_leaves_running_tracing_alone() -> None:
    tracemalloc.start()
    held = bytearray(32 * 1024)
    MemoryTracker()
    assert tracemalloc.get_traced_memory()[0] >= 32 * 1024  # not restarted
    del held


def test_listeners_in_order_extend_and_errors_propagate() -> None:
    calls: list[tuple[str, str | None]] = []
    tracker = MemoryTracker(True, [lambda s: calls.append(("a", s.label))])
    tracker.extend_listeners([lambda s: calls.append(("b", s.label))])
    tracker.observe(label="x")
    assert calls == [("a", "x"), ("b", "x")]

    def broken(_sample: MemorySample) -> None:
        raise ValueError("listener broke")

    tracker.extend_listeners([broken])
    with pytest.raises(ValueError, match=r"^listener broke$"):
        tracker.observe(label="y")
    assert [s.label for s in tracker.samples] == ["x", "y"]


def test_sample_is_frozen_and_repr_counts_samples() -> None:
    sample = MemorySample(timestamp=datetime.now(UTC), current_kb=1, peak_kb=2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        sample.peak_kb = 3  # type: ignore[misc]
    tracker = MemoryTracker()
    tracker.observe()
    assert repr(tracker) == "MemoryTracker(auto_start=True, active=True, samples=1)"


def test_track_memory_wraps_a_sync_function() -> None:
    tracker = MemoryTracker()

    @track_memory(label="load", tracker=tracker)
    def load(n: int) -> list[int]:
        """Docstring kept."""
        return list(range(n))

    assert load(3) == [0, 1, 2]
    assert [s.label for s in tracker.samples] == ["load:start", "load:end"]
    assert (load.__name__, load.__doc__) == ("load", "Docstring kept.")


def test_track_memory_observes_the_end_when_the_function_raises() -> None:
    tracker = MemoryTracker()

    @track_memory(tracker=tracker)
    def explode() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        explode()
    assert [s.label for s in tracker.samples] == ["explode:start", "explode:end"]


async def test_track_memory_wraps_an_async_function(autojump_clock: Any) -> None:
    tracker = MemoryTracker()

    @track_memory(tracker=tracker)
    async def fetch(delay: float) -> str:
        await trio.sleep(delay)
        return "done"

    assert await fetch(1.5) == "done"
    assert trio.current_time() == 1.5
    assert [s.label for s in tracker.samples] == ["fetch:start", "fetch:end"]
    with trio.move_on_after(0.5):
        await fetch(1.0)
    assert [s.label for s in tracker.samples[2:]] == ["fetch:start", "fetch:end"]


def test_track_memory_without_a_tracker_starts_tracing() -> None:
    tracemalloc.stop()

    @track_memory()
    def work() -> int:
        return 7

    assert work() == 7
    assert tracemalloc.is_tracing()


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: MemoryTracker(auto_start=1), TypeError, r"^MemoryTracker: auto_start must be a bool; got int$"),  # type: ignore[arg-type]
        (lambda: MemoryTracker(listeners=(print,)), TypeError, r"^MemoryTracker: listeners must be a list or None; got tuple$"),  # type: ignore[arg-type]
        (lambda: MemoryTracker(listeners=[1]), TypeError, r"^MemoryTracker: listeners must be a callable; got int$"),  # type: ignore[list-item]
        (lambda: MemoryTracker().extend_listeners([print, None]), TypeError, r"^MemoryTracker.extend_listeners: extra must be a callable; got NoneType$"),  # type: ignore[list-item]
        (lambda: track_memory(label=1), TypeError, r"^track_memory: label must be a str or None; got int$"),  # type: ignore[arg-type]
        (lambda: track_memory(tracker="t"), TypeError, r"^track_memory: tracker must be a MemoryTracker or None; got str$"),  # type: ignore[arg-type]
        (lambda: track_memory()(5), TypeError, r"^track_memory: func must be a callable; got int$"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_bad_arguments(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_extend_listeners_adds_nothing_when_one_is_bad() -> None:
    tracker = MemoryTracker()
    with pytest.raises(TypeError):
        tracker.extend_listeners([print, 3])  # type: ignore[list-item]
    assert tracker.listeners == []
