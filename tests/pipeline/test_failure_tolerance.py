"""FailureCollector, FailureSummary, BackpressureMonitor and ConditionalDependency.

Summaries and predicate results are compared with the reference on the same inputs.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.failure_tolerance import (
    BackpressureConfig,
    BackpressureMonitor,
    ConditionalDependency,
    FailureCollector,
    FailureMode,
    FailureRecord,
    FailureSummary,
)
from stageflow_trio.utils.frozen import FrozenDict, FrozenList
from tests.fakes import extras

if TYPE_CHECKING:
    from types import ModuleType

LOGGER = "stageflow_trio.pipeline.failure_tolerance"


@pytest.fixture
def ref_ft(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.pipeline.failure_tolerance")


def _drive(collector: Any, mode_failures: list[tuple[str, Any, bool]], done: list[str]) -> None:
    for stage, error, recoverable in mode_failures:
        collector.record_failure(stage, error, recoverable, {"k": 1})
    for stage in done:
        collector.record_completion(stage)


# --- FailureMode / FailureRecord ------------------------------------------------------


def test_failure_modes_match_the_reference(ref_ft: ModuleType) -> None:
    assert [(m.name, m.value) for m in FailureMode] == [
        (m.name, m.value) for m in ref_ft.FailureMode
    ]


def test_failure_record_defaults_timestamp_and_freezes_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("time.time", lambda: 123.5)
    record = FailureRecord(stage="a", error="boom", error_type="ValueError", recoverable=False)
    assert record.timestamp == 123.5
    assert record.context == {}
    assert isinstance(record.context, FrozenDict)
    given = FailureRecord("a", "e", "E", True, 1.0, {"x": [1]})
    assert given.context == {"x": [1]}
    assert isinstance(given.context, FrozenDict)


def test_failure_record_rejects_a_non_mapping_context() -> None:
    with pytest.raises(TypeError, match=r"^FailureRecord: context must be a mapping; got list$"):
        FailureRecord("a", "e", "E", True, 1.0, [1])  # type: ignore[arg-type]


# --- FailureCollector -----------------------------------------------------------------


def test_record_failure_logs_a_warning_with_the_reference_extras(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = FailureCollector(FailureMode.BEST_EFFORT)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        collector.record_failure("fetch", ConnectionError("down"), recoverable=True)
    (record,) = caplog.records
    assert record.getMessage() == "Stage failure recorded: fetch"
    assert extras(record, "event", "stage", "error", "error_type", "recoverable", "mode") == (
        "failure_recorded",
        "fetch",
        "down",
        "ConnectionError",
        True,
        "BEST_EFFORT",
    )


def test_a_message_error_has_type_error() -> None:
    collector = FailureCollector()
    collector.record_failure("a", "plain message")
    summary = collector.get_summary(1, {})
    assert [(f.error, f.error_type, f.recoverable) for f in summary.failures] == [
        ("plain message", "Error", False)
    ]


def test_fail_fast_stops_after_the_first_failure() -> None:
    collector = FailureCollector()
    assert collector.mode is FailureMode.FAIL_FAST
    assert collector.should_continue("b", set()) is True
    collector.record_failure("a", ValueError("x"))
    assert collector.should_continue("b", set()) is False
    assert collector.has_failures is True


def test_continue_on_failure_skips_only_dependents() -> None:
    collector = FailureCollector(FailureMode.CONTINUE_ON_FAILURE)
    collector.record_failure("a", ValueError("x"))
    assert collector.should_continue("b", {"a", "c"}) is False
    assert collector.should_continue("d", {"c"}) is True
    assert collector.should_continue("e", set()) is True


def test_best_effort_always_continues() -> None:
    collector = FailureCollector(FailureMode.BEST_EFFORT)
    collector.record_failure("a", ValueError("x"))
    assert collector.should_continue("b", {"a"}) is True


def test_failed_stages_is_a_copy() -> None:
    collector = FailureCollector()
    assert collector.has_failures is False
    collector.record_failure("a", "x")
    stages = collector.failed_stages
    stages.add("zzz")
    assert collector.failed_stages == {"a"}


def test_collector_rejects_a_non_mode() -> None:
    with pytest.raises(TypeError, match=r"^FailureCollector: mode must be a FailureMode; got str$"):
        FailureCollector("FAIL_FAST")  # type: ignore[arg-type]


def test_summary_counts_rate_and_freezes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 5.0)
    collector = FailureCollector(FailureMode.BEST_EFFORT)
    _drive(collector, [("a", ValueError("x"), False), ("a", KeyError("k"), True)], ["b", "c"])
    summary = collector.get_summary(4, {"b": 1})
    assert (summary.total_stages, summary.completed_stages, summary.failed_stages) == (4, 2, 1)
    assert summary.success_rate == 0.5
    assert summary.has_failures is True
    assert isinstance(summary.failures, FrozenList)
    assert isinstance(summary.partial_results, FrozenDict)
    assert summary.to_dict() == {
        "total_stages": 4,
        "completed_stages": 2,
        "failed_stages": 1,
        "success_rate": 0.5,
        "failures": [
            {
                "stage": "a",
                "error": "x",
                "error_type": "ValueError",
                "recoverable": False,
                "timestamp": 5.0,
            },
            {
                "stage": "a",
                "error": "'k'",
                "error_type": "KeyError",
                "recoverable": True,
                "timestamp": 5.0,
            },
        ],
    }


def test_empty_summary_rate_is_zero() -> None:
    results: FrozenDict[str, Any] = FrozenDict()
    summary = FailureSummary(0, 0, 0, [], results)
    assert summary.partial_results is results
    assert summary.success_rate == 0.0
    assert summary.has_failures is False


def test_summary_rejects_non_mapping_results() -> None:
    with pytest.raises(
        TypeError, match=r"^FailureSummary: partial_results must be a mapping; got list$"
    ):
        FailureSummary(0, 0, 0, [], [])  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["FAIL_FAST", "CONTINUE_ON_FAILURE", "BEST_EFFORT"])
def test_summary_and_decisions_match_the_reference(
    ref_ft: ModuleType, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr("time.time", lambda: 7.25)
    failures = [("a", ValueError("bad"), False), ("b", "text", True), ("a", OSError("io"), True)]
    ours = FailureCollector(FailureMode[mode])
    theirs = ref_ft.FailureCollector(ref_ft.FailureMode[mode])
    decisions: list[tuple[bool, bool]] = []
    for step in range(len(failures)):
        _drive(ours, failures[step : step + 1], [f"done{step}"])
        _drive(theirs, failures[step : step + 1], [f"done{step}"])
        for deps in (set(), {"a"}, {"c"}):
            decisions.append((ours.should_continue("x", deps), theirs.should_continue("x", deps)))
    assert all(mine == ref for mine, ref in decisions)
    mine, ref = ours.get_summary(6, {"done0": 1}).to_dict(), theirs.get_summary(6, {}).to_dict()
    # The reference's records read time.time when its class was defined; only ours is patched.
    for failure in ref["failures"]:
        failure["timestamp"] = 7.25
    assert mine == ref
    assert len(mine["failures"]) == 3
    assert ours.failed_stages == theirs.failed_stages


# --- BackpressureConfig / BackpressureMonitor ----------------------------------------


def test_backpressure_config_defaults_match_the_reference(ref_ft: ModuleType) -> None:
    ref = ref_ft.BackpressureConfig()
    ours = BackpressureConfig()
    names = (
        "max_active_stages high_watermark low_watermark latency_threshold_ms "
        "queue_size_limit shed_on_overload"
    ).split()
    assert [getattr(ours, n) for n in names] == [getattr(ref, n) for n in names]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_active_stages": 0}, ValueError, "max_active_stages must be at least 1; got 0"),
        ({"max_active_stages": 2.0}, TypeError, "max_active_stages must be an int; got float"),
        ({"queue_size_limit": -1}, ValueError, "queue_size_limit must be at least 0; got -1"),
        ({"high_watermark": "x"}, TypeError, "high_watermark must be a number; got str"),
        ({"low_watermark": -0.1}, ValueError, "low_watermark must be >= 0; got -0.1"),
        (
            {"latency_threshold_ms": float("nan")},
            ValueError,
            "latency_threshold_ms must be a finite number; got nan",
        ),
        ({"shed_on_overload": 1}, TypeError, "shed_on_overload must be a bool; got int"),
    ],
)
def test_backpressure_config_rejects_bad_values(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=rf"^BackpressureConfig: {message}$"):
        BackpressureConfig(**kwargs)


def test_monitor_rejects_a_non_config() -> None:
    with pytest.raises(
        TypeError,
        match=r"^BackpressureMonitor: config must be a BackpressureConfig or None; got dict$",
    ):
        BackpressureMonitor({})  # type: ignore[arg-type]


async def test_acquire_and_release_track_utilization_and_latency() -> None:
    monitor = BackpressureMonitor(BackpressureConfig(max_active_stages=4))
    assert monitor.get_metrics() == {
        "active_count": 0,
        "queued_count": 0,
        "utilization": 0.0,
        "p95_latency_ms": 0.0,
        "shed_count": 0,
        "is_overloaded": False,
    }
    assert await monitor.acquire() is True
    assert await monitor.acquire() is True
    assert monitor.utilization == 0.5
    monitor.release(10.0)
    monitor.release()
    assert monitor.get_metrics()["active_count"] == 0
    assert monitor.get_metrics()["p95_latency_ms"] == 10.0


async def test_acquire_is_a_checkpoint_on_both_paths() -> None:
    monitor = BackpressureMonitor()
    with trio.testing.assert_checkpoints():
        assert await monitor.acquire() is True
    shedding = BackpressureMonitor(
        BackpressureConfig(max_active_stages=1, high_watermark=0.0, shed_on_overload=True)
    )
    with trio.testing.assert_checkpoints():
        assert await shedding.acquire() is False


async def test_acquire_waits_for_a_slot(autojump_clock: trio.testing.MockClock) -> None:
    monitor = BackpressureMonitor(BackpressureConfig(max_active_stages=1))
    assert await monitor.acquire() is True
    acquired_at: list[float] = []

    async def second() -> None:
        assert await monitor.acquire() is True
        acquired_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()
        assert monitor.get_metrics()["queued_count"] == 1
        assert monitor.is_overloaded is True  # utilization 1.0 >= 0.8
        await trio.sleep(3)
        monitor.release(1.0)
    assert acquired_at == [3.0]
    assert monitor.get_metrics()["queued_count"] == 0


async def test_a_cancelled_acquire_takes_no_slot(autojump_clock: trio.testing.MockClock) -> None:
    monitor = BackpressureMonitor(BackpressureConfig(max_active_stages=1))
    await monitor.acquire()
    with trio.move_on_after(2.0) as scope:
        await monitor.acquire()
    assert scope.cancelled_caught
    assert trio.current_time() == 2.0
    assert monitor.get_metrics()["queued_count"] == 0
    assert monitor.get_metrics()["active_count"] == 1


async def test_shedding_counts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    monitor = BackpressureMonitor(
        BackpressureConfig(max_active_stages=2, high_watermark=0.5, shed_on_overload=True)
    )
    assert await monitor.acquire() is True
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert await monitor.acquire() is False
    (record,) = caplog.records
    assert record.getMessage() == "Shedding load due to backpressure"
    assert extras(record, "event", "utilization", "queued", "shed_count") == (
        "load_shed",
        0.5,
        1,
        1,
    )
    assert monitor.get_metrics()["shed_count"] == 1


async def test_queue_limit_and_latency_make_it_overloaded() -> None:
    queue = BackpressureMonitor(BackpressureConfig(queue_size_limit=0))
    assert queue.is_overloaded is True
    slow = BackpressureMonitor(BackpressureConfig(latency_threshold_ms=100))
    await slow.acquire()
    slow.release(100.0)
    assert slow.is_overloaded is False
    await slow.acquire()
    slow.release(101.0)
    assert slow.is_overloaded is True


async def test_p95_and_sample_window_match_the_reference(ref_ft: ModuleType) -> None:
    ours = BackpressureMonitor()
    theirs = ref_ft.BackpressureMonitor()
    for i in range(1100):
        latency = float((i * 37) % 1013)
        assert await ours.acquire() is True  # release() needs a matching acquire()
        ours.release(latency)
        theirs._semaphore.release()
        theirs.release(latency)
    assert len(ours._latencies) == 1000
    assert ours._p95_latency() == theirs._get_p95_latency()


def test_is_overloaded_is_a_bool_where_the_reference_gives_a_list(ref_ft: ModuleType) -> None:
    assert ref_ft.BackpressureMonitor().get_metrics()["is_overloaded"] == []
    assert BackpressureMonitor().get_metrics()["is_overloaded"] is False


# --- ConditionalDependency ------------------------------------------------------------


OUTPUTS: dict[str, Any] = {
    "router": StageOutput.ok(route="a", empty=""),
    "plain": {"flag": 1, "off": 0},
    "broken": 5,
}


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        ("router:route", True),
        ("router:empty", False),
        ("router:missing", False),
        ("plain:flag", True),
        ("plain:off", False),
        ("absent:key", True),
        ("no_colon", True),
        ("a:b:c", True),
    ],
)
def test_simple_predicates(predicate: str, expected: bool) -> None:
    assert ConditionalDependency("stage", predicate).evaluate(OUTPUTS) is expected
    assert ConditionalDependency("stage", predicate, skip_on_false=False).evaluate(OUTPUTS) is (
        expected
    )


@pytest.mark.parametrize("predicate", ["router:route", "router:empty", "plain:off", "x:y", "q"])
def test_simple_predicates_match_the_reference(ref_ft: ModuleType, predicate: str) -> None:
    reference = importlib.import_module("stageflow")
    ref_outputs = {
        "router": reference.StageOutput.ok(route="a", empty=""),
        "plain": {"flag": 1, "off": 0},
    }
    assert ConditionalDependency("s", predicate).evaluate(OUTPUTS) == ref_ft.ConditionalDependency(
        "s", predicate
    ).evaluate(ref_outputs)


def test_an_evaluation_error_runs_the_stage_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert ConditionalDependency("s", "broken:key").evaluate(OUTPUTS) is True
    (record,) = caplog.records
    assert record.getMessage() == "Predicate evaluation failed: 'int' object has no attribute 'get'"
    assert extras(record, "predicate", "error") == (
        "broken:key",
        "'int' object has no attribute 'get'",
    )


def test_complex_predicate_without_jmespath_runs_the_stage(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "jmespath", None)  # makes the import fail
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert ConditionalDependency("s", "router.data.route").evaluate(OUTPUTS) is True
    (record,) = caplog.records
    assert record.getMessage() == "jmespath not available for complex predicate evaluation"
    assert extras(record, "predicate") == ("router.data.route",)


@pytest.mark.parametrize(("result", "expected"), [("yes", True), ([], False), (None, False)])
def test_complex_predicate_uses_jmespath(
    monkeypatch: pytest.MonkeyPatch, result: object, expected: bool
) -> None:
    seen: list[tuple[str, object]] = []
    fake = types.ModuleType("jmespath")

    def search(expression: str, data: object) -> object:
        seen.append((expression, data))
        return result

    fake.search = search  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jmespath", fake)
    outputs = {"a": {"b": [1]}}
    assert ConditionalDependency("s", "a.b[0]").evaluate(outputs) is expected
    assert seen == [("a.b[0]", outputs)]


def test_conditional_dependency_defaults_and_is_frozen() -> None:
    condition = ConditionalDependency("s", "a:b")
    assert condition.skip_on_false is True
    with pytest.raises(AttributeError):
        condition.stage = "t"  # type: ignore[misc]
