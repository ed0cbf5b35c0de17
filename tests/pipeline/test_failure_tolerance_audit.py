"""Audit regressions: bad input to the failure-tolerance helpers fails at the call."""

from __future__ import annotations

import re

import pytest
import trio

from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.failure_tolerance import (
    BackpressureMonitor,
    ConditionalDependency,
    FailureCollector,
    FailureMode,
)


def test_release_without_acquire_is_refused_and_keeps_the_limit() -> None:
    monitor = BackpressureMonitor()
    with pytest.raises(
        RuntimeError,
        match=r"^BackpressureMonitor\.release: release\(\) without a matching acquire\(\)"
        r" that returned True$",
    ):
        monitor.release()
    assert monitor.get_metrics()["active_count"] == 0
    assert monitor.utilization == 0.0


async def test_unmatched_release_does_not_raise_the_concurrency_limit(
    autojump_clock: object,
) -> None:
    from stageflow_trio.pipeline.failure_tolerance import BackpressureConfig

    monitor = BackpressureMonitor(BackpressureConfig(max_active_stages=1))
    with pytest.raises(RuntimeError):
        monitor.release()
    assert await monitor.acquire() is True
    with trio.move_on_after(1) as scope:
        await monitor.acquire()
    assert scope.cancelled_caught  # the one slot is taken: the second acquire waits


async def test_release_latency_must_be_a_number() -> None:
    monitor = BackpressureMonitor()
    assert await monitor.acquire() is True
    with pytest.raises(
        TypeError, match=r"^BackpressureMonitor\.release: latency_ms must be a number; got str$"
    ):
        monitor.release("slow")  # type: ignore[arg-type]
    monitor.release(12.5)
    assert monitor.get_metrics()["p95_latency_ms"] == 12.5


@pytest.mark.parametrize(
    ("field", "kwargs"), [("stage", {"stage": 5}), ("predicate", {"predicate": 5})]
)
def test_conditional_dependency_fields_are_str(field: str, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"stage": "s", "predicate": "a:b", **kwargs}
    with pytest.raises(
        TypeError, match=rf"^ConditionalDependency: {field} must be a str; got int$"
    ):
        ConditionalDependency(**args)  # type: ignore[arg-type]


def test_conditional_dependency_skip_on_false_is_a_bool() -> None:
    with pytest.raises(
        TypeError, match=r"^ConditionalDependency: skip_on_false must be a bool; got str$"
    ):
        ConditionalDependency("s", "a:b", "no")  # type: ignore[arg-type]


def test_record_failure_checks_its_arguments() -> None:
    collector = FailureCollector()
    with pytest.raises(
        TypeError, match=r"^FailureCollector\.record_failure: stage must be a str; got int$"
    ):
        collector.record_failure(5, "boom")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^FailureCollector\.record_failure: error must be an Exception or a str; got NoneType$",
    ):
        collector.record_failure("s", None)  # type: ignore[arg-type]
    assert not collector.has_failures
    with pytest.raises(
        TypeError, match=r"^FailureCollector\.record_completion: stage must be a str; got int$"
    ):
        collector.record_completion(5)  # type: ignore[arg-type]


def test_should_continue_takes_any_collection_of_names() -> None:
    collector = FailureCollector(FailureMode.CONTINUE_ON_FAILURE)
    collector.record_failure("a", ValueError("x"))
    assert collector.should_continue("c", ["a", "b"]) is False
    assert collector.should_continue("c", ("b",)) is True
    assert collector.should_continue("c", {"a"}) is False
    with pytest.raises(
        TypeError,
        match=re.escape(
            "FailureCollector.should_continue: dependent_on must be a collection of stage"
            " names; got str"
        ),
    ):
        collector.should_continue("c", "a")


def test_get_summary_total_stages_is_checked() -> None:
    collector = FailureCollector()
    with pytest.raises(
        TypeError, match=r"^FailureCollector\.get_summary: total_stages must be an int; got str$"
    ):
        collector.get_summary("3", {})  # type: ignore[arg-type]
    summary = collector.get_summary(2, {"a": StageOutput.ok()})
    assert summary.success_rate == 0.0
