"""Audit 18, mutation pass over the session's source changes: tests for the mutants that survived.

Each test names the mutant it kills (a small change to the source that the rest of the suite
let through). Virtual time throughout (pytest-trio's ``autojump_clock``), no real sleeps.
"""

from __future__ import annotations

import logging
import types
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.stages import PipelineContext, StageResult

PLACEHOLDER = "<_Unprintable (str() failed)>"


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ broke")


def _ctx() -> PipelineContext:
    return PipelineContext(pipeline_run_id=uuid.UUID(int=1))


def _result(name: str) -> StageResult:
    now = datetime.now(UTC)
    return StageResult(name=name, status="completed", started_at=now, ended_at=now, data={})


# -- the interceptor chain (_engine/_stage_call.py) ----------------------------------------


def _plain_interceptor() -> type[Any]:
    from stageflow_trio.pipeline.interceptors import BaseInterceptor

    class _Plain(BaseInterceptor):
        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            await trio.lowlevel.checkpoint()

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            await trio.lowlevel.checkpoint()

    return _Plain


async def test_a_hook_error_that_cannot_be_printed_is_only_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutant: ``_log_hook_error`` took ``str(exc)`` again. A hook error is logged and the
    stage's result stands; an error whose ``__str__`` raises escaped from the handler."""
    from stageflow_trio.pipeline.interceptors import run_with_interceptors

    class _BrokenAfter(_plain_interceptor()):  # type: ignore[misc]
        name = "broken_after"

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            await trio.lowlevel.checkpoint()
            raise _Unprintable

    async def stage() -> StageResult:
        await trio.lowlevel.checkpoint()
        return _result("s")

    caplog.set_level(logging.ERROR)
    result = await run_with_interceptors("s", stage, _ctx(), [_BrokenAfter()])
    assert result.status == "completed"
    records = [r for r in caplog.records if r.getMessage().startswith("Interceptor broken_after")]
    assert [r.getMessage() for r in records] == [
        f"Interceptor broken_after after() failed: {PLACEHOLDER}"
    ]
    assert [getattr(r, "error", None) for r in records] == [PLACEHOLDER]


async def test_an_on_abort_hook_that_overruns_its_slot_is_cut_logged_and_not_raised(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutant: ``_abort`` without ``except trio.Cancelled: raise``. The slot's own deadline
    (``ABORT_HOOK_TIMEOUT``) then was kept as the "interrupt" and raised after the hooks, in
    place of the call's own error, and the overrun was never logged."""
    from stageflow_trio._engine._stage_call import ABORT_HOOK_TIMEOUT
    from stageflow_trio.pipeline.interceptors import CriticalInterceptorError, run_with_interceptors

    aborted: list[str] = []

    class _SlowAbort(_plain_interceptor()):  # type: ignore[misc]
        name = "slow_abort"
        priority = 1

        async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
            aborted.append("slow started")
            await trio.sleep(ABORT_HOOK_TIMEOUT * 10)
            aborted.append("slow finished")  # pragma: no cover - cut by its slot

    class _Refuses(_plain_interceptor()):  # type: ignore[misc]
        name = "refuses"
        priority = 2

        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            await trio.lowlevel.checkpoint()
            raise CriticalInterceptorError("no", self.name)

    async def stage() -> StageResult:  # pragma: no cover - refused before it runs
        return _result("s")

    caplog.set_level(logging.WARNING, logger="stageflow_trio")
    started = trio.current_time()
    caught: list[BaseException] = []
    try:
        await run_with_interceptors("s", stage, _ctx(), [_SlowAbort(), _Refuses()])
    except BaseException as exc:  # a stray Cancelled must fail the test, not end it
        caught.append(exc)
    # Under the mutant the slot's spent Cancelled came out here; uncaught, pytest-trio
    # ended the test at this line as if it had passed.
    assert [(type(exc), str(exc)) for exc in caught] == [(CriticalInterceptorError, "no")]
    assert aborted == ["slow started"]
    assert trio.current_time() - started == pytest.approx(ABORT_HOOK_TIMEOUT)
    assert [r.getMessage() for r in caplog.records if "on_abort" in r.getMessage()] == [
        f"Interceptor slow_abort on_abort() for stage s did not finish within {ABORT_HOOK_TIMEOUT}s"
    ]


# -- validate_dependencies' shortcut (pipeline/_validation.py) -----------------------------


def test_a_str_of_earlier_stage_names_as_dependencies_is_still_refused() -> None:
    """Mutant: ``_in_dependency_order`` without its ``type(stage_deps) is not tuple`` test.
    A str is a sequence of one-character names: ``"ab"`` after stages ``a`` and ``b`` passed
    the one-pass shortcut, so the full check's TypeError was never raised."""
    from stageflow_trio.pipeline._validation import validate_dependencies

    with pytest.raises(TypeError, match="dependencies of stage 'c' must be a tuple or list"):
        validate_dependencies({"a": (), "b": (), "c": "ab"})


# -- BackpressureAwareEventSink.stop cut by KeyboardInterrupt (events/_backpressure.py) ----


class _InterruptingDownstream:
    """Raises KeyboardInterrupt on its first event (as a Ctrl-C landing in ``emit``)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.calls.append(type)
        await trio.lowlevel.checkpoint()
        if len(self.calls) == 1:
            raise KeyboardInterrupt


async def test_a_ctrl_c_in_a_stop_that_drains_from_its_own_task_counts_the_event_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Mutant: ``_give_up_interrupted`` without ``worker.set_aside_in_flight(leftovers)``.
    With no worker running, ``stop`` delivers the queue from its own task; a Ctrl-C in that
    delivery left its event in flight, neither delivered nor counted (``async with`` counted
    it on exit, a bare ``stop`` did not)."""
    from stageflow_trio.events import BackpressureAwareEventSink

    dropped: list[str] = []
    downstream = _InterruptingDownstream()
    sink = BackpressureAwareEventSink(downstream, on_drop=lambda kind, data: dropped.append(kind))
    assert sink.try_emit(type="a", data=None)
    assert sink.try_emit(type="b", data=None)
    with pytest.raises(KeyboardInterrupt):
        await sink.stop()
    assert downstream.calls == ["a"]
    assert sink.metrics.undelivered == 2
    assert dropped == ["a", "b"]
    assert sink.queue_size == 0


# -- generate_uuid7 across threads (helpers/uuid_utils.py) ---------------------------------


def test_generate_uuid7_reads_and_advances_its_last_tick_under_the_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutant: ``with _uuid7_lock:`` replaced by ``if True:``. The thread test
    (tests/helpers/test_uuid_utils.py) rarely sees two threads interleave between the
    comparison and the store; here the lock is watched: the last tick must be read and
    advanced while it is held, once per id."""
    from stageflow_trio.helpers import uuid_utils

    seen: list[tuple[str, int]] = []

    class _WatchedLock:
        def __enter__(self) -> None:
            seen.append(("enter", uuid_utils._last_uuid7_tick))

        def __exit__(self, *exc: object) -> None:
            seen.append(("exit", uuid_utils._last_uuid7_tick))

    monkeypatch.setattr(uuid_utils, "_uuid7_lock", _WatchedLock())
    monkeypatch.setattr(uuid_utils, "_last_uuid7_tick", 0)
    clock = types.SimpleNamespace(time_ns=lambda: 1_700_000_000_123_500_000)
    monkeypatch.setattr(uuid_utils, "time", clock)
    first, second = uuid_utils.generate_uuid7(), uuid_utils.generate_uuid7()
    assert first < second
    tick = 1_700_000_000_123 * 4096 + 2048
    assert seen == [("enter", 0), ("exit", tick), ("enter", tick), ("exit", tick + 1)]


# -- the command line (cli/) ----------------------------------------------------------------


def test_cli_debug_leaves_configured_logging_alone(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mutants: ``library_records`` without its ``if logging.getLogger().handlers:`` branch
    (or without its early return). Without ``--debug`` that is invisible (a NullHandler,
    the records still propagate); with it, a process that configured logging got every
    DEBUG record of the library a second time on stderr, and the library's level changed."""
    from stageflow_trio.cli._library_logs import library_records

    library = logging.getLogger("stageflow_trio")
    before = (list(library.handlers), library.level)
    assert logging.getLogger().handlers  # pytest's capture: a configured process
    with caplog.at_level(logging.INFO), library_records(debug=True):
        assert (list(library.handlers), library.level) == before
        logging.getLogger("stageflow_trio.dag").info("Running stage: %s", "a")
        logging.getLogger("stageflow_trio.dag").debug("not wanted: INFO configured")
    assert [r.getMessage() for r in caplog.records] == ["Running stage: a"]
    assert capsys.readouterr().err == ""
    assert (list(library.handlers), library.level) == before


async def test_events_file_keeps_an_event_json_cannot_hold_as_is_with_a_lone_surrogate() -> None:
    """Mutant: ``_json_line``'s fallback (``jsonable``) without ``ensure_ascii=ensure_ascii``.
    Data JSON cannot hold as it is (a tuple key) and a lone surrogate: the ASCII retry went
    through the fallback, which wrote the surrogate raw again, and the UnicodeEncodeError
    escaped from ``try_emit`` (the event lost from the file and the view)."""
    import io
    import json

    from stageflow_trio.cli.run import PlainView, RunRecorder

    raw = io.BytesIO()
    events = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    out = io.StringIO()
    recorder = RunRecorder(["a"], PlainView(out), events)
    recorder.try_emit(type="custom", data={("k", 1): "bad\ud800"})  # type: ignore[dict-item]
    [line] = raw.getvalue().decode("utf-8").splitlines()
    assert line.isascii()
    assert list(json.loads(line)["data"].values()) == ["bad\ud800"]
    assert recorder.events_error is None
    assert len(out.getvalue().splitlines()) == 1  # the view saw it


# -- the unified graph's log records (_engine/_unified.py, _engine/_unified_run.py) ---------


def _two_stage_pipeline(*, fail: bool = False) -> Any:
    from stageflow_trio.api import Pipeline, StageContext, StageKind, StageOutput

    async def first(ctx: StageContext) -> StageOutput:
        await trio.lowlevel.checkpoint()
        return StageOutput.ok(x=1)

    async def second(ctx: StageContext) -> StageOutput:
        await trio.lowlevel.checkpoint()
        return StageOutput.fail(error="boom") if fail else StageOutput.ok(y=2)

    return (
        Pipeline(name="p")
        .with_stage("a", first, StageKind.TRANSFORM)
        .with_stage("b", second, StageKind.TRANSFORM, dependencies=("a",))
    )


def _extra(record: logging.LogRecord, *names: str) -> tuple[Any, ...]:
    """The values of ``extra`` keys of ``record`` (attributes a LogRecord does not declare)."""
    return tuple(getattr(record, name) for name in names)


def _dag_records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "stageflow_trio.dag" and getattr(r, "event", None) == event
    ]


async def test_graph_started_and_completed_records_carry_the_stages(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutants: ``graph_started``'s ``stage_count`` off by one, ``graph_completed``'s
    ``stages_completed`` empty. The records' ``extra`` were compared by type only."""
    caplog.set_level(logging.INFO, logger="stageflow_trio.dag")
    await _two_stage_pipeline().run(input_text="x")
    [started] = _dag_records(caplog, "graph_started")
    assert (started.getMessage(), *_extra(started, "stage_count", "stages")) == (
        "UnifiedStageGraph execution started",
        2,
        ["a", "b"],
    )
    [completed] = _dag_records(caplog, "graph_completed")
    assert _extra(completed, "stage_count", "stages_completed") == (2, ["a", "b"])


async def test_with_info_off_no_per_stage_info_record_is_made(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutant: ``UnifiedRun.log_info`` always True. Invisible in the output (the logger
    drops the records), but the per-stage INFO work is what the flag saves (parity.md,
    the log records' cost at WARNING): with INFO off, no stage's start is described."""
    from stageflow_trio._engine import _unified_run

    started: list[str] = []
    monkeypatch.setattr(_unified_run, "_log_started", lambda spec: started.append(spec.name))
    caplog.set_level(logging.WARNING, logger="stageflow_trio.dag")
    await _two_stage_pipeline().run(input_text="x")
    assert started == []
    caplog.set_level(logging.INFO, logger="stageflow_trio.dag")
    await _two_stage_pipeline().run(input_text="x")
    assert started == ["a", "b"]


async def test_a_failed_stage_is_logged_at_warning_with_an_event_sink(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutant: ``_execute`` (the path taken with an event sink) logging a returned FAIL
    only when INFO is on. The ERROR record of a failed stage is always made."""
    from stageflow_trio.advanced import UnifiedStageExecutionError
    from stageflow_trio.events import NoOpEventSink

    caplog.set_level(logging.WARNING, logger="stageflow_trio.dag")
    with pytest.raises(UnifiedStageExecutionError):
        await _two_stage_pipeline(fail=True).run(input_text="x", event_sink=NoOpEventSink())
    [failed] = [
        r for r in _dag_records(caplog, "stage_failed") if r.getMessage().startswith("Stage b")
    ]
    assert (failed.levelname, failed.getMessage(), *_extra(failed, "error")) == (
        "ERROR",
        "Stage b failed: boom",
        "boom",
    )


async def test_a_stage_whose_inner_graph_failed_logs_the_run_level_record(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutant: ``_stage_raised`` without ``_log_run_failed`` for a stage that raised an
    inner graph's UnifiedStageExecutionError (no interceptors, so it is raised as it is):
    the outer run's run-level ERROR record was missing."""
    from stageflow_trio.advanced import UnifiedStageExecutionError
    from stageflow_trio.api import Pipeline, StageContext, StageKind, StageOutput

    async def outer(ctx: StageContext) -> StageOutput:
        await _two_stage_pipeline(fail=True).run(input_text="x", interceptors=[])
        return StageOutput.ok()  # pragma: no cover - the inner run raises

    caplog.set_level(logging.ERROR, logger="stageflow_trio.dag")
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await (
            Pipeline(name="o")
            .with_stage("outer", outer, StageKind.TRANSFORM)
            .run(input_text="x", interceptors=[])
        )
    assert caught.value.stage == "b"
    run_level = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("Stage task execution")
    ]
    assert run_level == ["Stage task execution failed: Stage 'b' failed: boom"]


async def test_guard_retry_exhausted_by_its_timeout_says_so_in_the_record(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutant: the ``guard_retry_exhausted`` record's ``timeout`` extra always False."""
    from stageflow_trio.core.stage_output import StageOutput
    from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
    from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy
    from tests.pipeline.graph_helpers import stage_ctx
    from tests.pipeline.test_dag_guard_retry import build

    outputs = [StageOutput.fail(error="x", data={"n": i}) for i in range(20)]
    graph = build(
        outputs,
        GuardRetryPolicy(retry_stage="draft", max_attempts=20, timeout_seconds=2.5),
        draft_delay=1.0,
    )
    caplog.set_level(logging.ERROR, logger="stageflow_trio.dag")
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx())
    [record] = _dag_records(caplog, "guard_retry_exhausted")
    assert _extra(record, "reason", "timeout", "attempts") == ("timeout", True, 4)


async def test_guard_retry_exhausted_by_stagnation_counts_the_hits_in_the_record(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutant: the ``guard_retry_exhausted`` record's ``stagnation_hits`` extra always 0."""
    from stageflow_trio.core.stage_output import StageOutput
    from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
    from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy
    from tests.pipeline.graph_helpers import stage_ctx
    from tests.pipeline.test_dag_guard_retry import build

    same = StageOutput.fail(error="same", data={"issue": "identical"})
    graph = build(
        [same], GuardRetryPolicy(retry_stage="draft", max_attempts=10, stagnation_limit=2)
    )
    caplog.set_level(logging.ERROR, logger="stageflow_trio.dag")
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx())
    [record] = _dag_records(caplog, "guard_retry_exhausted")
    assert _extra(record, "reason", "timeout", "attempts", "stagnation_hits") == (
        "stagnation",
        False,
        3,
        2,
    )


# -- error_text call sites that no test reached with an unprintable error -------------------


def test_failure_collector_records_an_unprintable_error_by_its_placeholder(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Mutant: ``FailureCollector.record_failure`` taking ``str(error)``."""
    from stageflow_trio.pipeline.failure_tolerance import FailureCollector

    collector = FailureCollector()
    with caplog.at_level(logging.WARNING):
        collector.record_failure("s", _Unprintable())
    [failure] = collector.get_summary(1, {}).failures
    assert (failure.error, failure.error_type) == (PLACEHOLDER, "_Unprintable")
    assert [getattr(r, "error", None) for r in caplog.records] == [PLACEHOLDER]


async def test_retry_interceptor_retries_an_unprintable_retryable_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Mutant: ``RetryInterceptor.on_error`` taking ``str(error)``: the hook then failed
    (logged, taken as FAIL) and the stage was not retried."""
    from stageflow_trio.pipeline.interceptors import run_with_interceptors
    from stageflow_trio.pipeline.retry import RetryInterceptor

    calls: list[int] = []

    async def stage() -> StageResult:
        await trio.lowlevel.checkpoint()
        calls.append(len(calls))
        if len(calls) == 1:
            raise _Unprintable
        return _result("s")

    retry = RetryInterceptor(max_attempts=3, base_delay_ms=10, retryable_errors=(_Unprintable,))
    result = await run_with_interceptors("s", stage, _ctx(), [retry])
    assert result.status == "completed"
    assert calls == [0, 1]


async def test_stage_runner_keeps_an_unprintable_error_as_the_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Mutant: ``StageRunner.run`` taking ``str(exc)``: the RuntimeError of ``__str__``
    escaped in place of the StageExecutionError chained to the stage's error."""
    from stageflow_trio.pipeline.dag import StageExecutionError
    from stageflow_trio.stages.errors import StageRunner

    def broken() -> None:
        raise _Unprintable

    with caplog.at_level(logging.ERROR), pytest.raises(StageExecutionError) as caught:
        await StageRunner("s", _ctx()).run(broken)
    assert isinstance(caught.value.original, _Unprintable)
    assert [getattr(r, "error", None) for r in caplog.records] == [PLACEHOLDER]


async def test_a_stage_raising_an_unprintable_graph_error_is_still_that_failure(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutant: ``_log_run_failed`` taking ``str(error)``. A stage may raise a
    UnifiedStageExecutionError of its own (a subclass); one whose ``__str__`` raises
    turned the run's failure into that RuntimeError."""
    from stageflow_trio.advanced import UnifiedStageExecutionError
    from stageflow_trio.api import Pipeline, StageContext, StageKind, StageOutput

    class _Unprintable2(UnifiedStageExecutionError):
        def __str__(self) -> str:
            raise RuntimeError("__str__ broke")

    async def raises(ctx: StageContext) -> StageOutput:
        await trio.lowlevel.checkpoint()
        raise _Unprintable2("inner", ValueError("v"))

    caplog.set_level(logging.ERROR, logger="stageflow_trio.dag")
    with pytest.raises(_Unprintable2):
        await (
            Pipeline(name="o")
            .with_stage("s", raises, StageKind.TRANSFORM)
            .run(input_text="x", interceptors=[])
        )
    assert [getattr(r, "error", None) for r in caplog.records] == ["<_Unprintable2 (str() failed)>"]


def _errors(sink: Any) -> dict[str, Any]:
    """``{event type: data["error"]}`` for the recorded events that carry an error."""
    return {kind: data["error"] for kind, data in sink.events if "error" in (data or {})}


async def test_unified_events_of_a_stage_raising_an_unprintable_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Mutants: ``terminal_event`` and the wide event of a raised stage taking ``str(exc)``
    (reached with an event sink, wide events and no interceptor, where the error is raised
    as it is). And a bug the pass found: ``failure()``, the ``pipeline_failed`` payload,
    still took ``str(cause)``, so this run raised that RuntimeError in place of the
    stage's failure (fixed by /tmp/audit18d/mut_failure_text.patch)."""
    from stageflow_trio.advanced import UnifiedStageExecutionError
    from stageflow_trio.api import Pipeline, StageContext, StageKind, StageOutput
    from stageflow_trio.testing import RecordingEventSink

    async def raises(ctx: StageContext) -> StageOutput:
        await trio.lowlevel.checkpoint()
        raise _Unprintable

    sink = RecordingEventSink()
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await (
            Pipeline(name="o")
            .with_stage("s", raises, StageKind.TRANSFORM)
            .run(input_text="x", interceptors=[], event_sink=sink, emit_stage_wide_events=True)
        )
    assert isinstance(caught.value.original, _Unprintable)
    assert _errors(sink) == {
        "stage.s.failed": PLACEHOLDER,
        "stage.wide": PLACEHOLDER,
        "pipeline_failed": PLACEHOLDER,
    }


async def test_legacy_events_of_a_refusal_with_an_unprintable_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Mutant: the legacy graph's failed wide event taking ``str(exc)`` (reached by an
    error raised out of the chain: a CriticalInterceptorError, here one whose ``__str__``
    raises). And the same ``failure()`` bug as above, for ``pipeline_failed``."""
    from stageflow_trio.pipeline.dag import StageExecutionError, StageGraph, StageSpec
    from stageflow_trio.pipeline.interceptors import CriticalInterceptorError
    from stageflow_trio.testing import RecordingEventSink

    class _UnprintableRefusal(CriticalInterceptorError):
        def __str__(self) -> str:
            raise RuntimeError("__str__ broke")

    class _Refuses(_plain_interceptor()):  # type: ignore[misc]
        name = "refuses"

        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            await trio.lowlevel.checkpoint()
            raise _UnprintableRefusal("no", self.name)

    async def runs(ctx: PipelineContext) -> dict[str, Any]:  # pragma: no cover - refused
        return {}

    sink = RecordingEventSink()
    ctx = PipelineContext.create(pipeline_run_id=uuid.UUID(int=1), topology="t", event_sink=sink)
    graph = StageGraph(
        [StageSpec(name="a", runner=runs)], interceptors=[_Refuses()], emit_stage_wide_events=True
    )
    with pytest.raises(StageExecutionError) as caught:
        await graph.run(ctx)
    assert isinstance(caught.value.original, _UnprintableRefusal)
    text = "<_UnprintableRefusal (str() failed)>"
    assert _errors(sink) == {
        "stage.a.failed": text,
        "stage.wide": text,
        "pipeline_failed": text,
    }


async def test_immutability_check_with_an_unprintable_snapshot_error_is_only_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutant: ``ImmutabilityInterceptor._serialize`` taking ``str(exc)``: its warning
    became a hook failure (the chain's "before() failed" ERROR with the RuntimeError).
    (``after`` compares with no "before" snapshot, so it does not serialize.)"""
    from stageflow_trio.pipeline.interceptors import run_with_interceptors
    from stageflow_trio.pipeline.interceptors_hardening import ImmutabilityInterceptor

    def snapshot(ctx: Any) -> Any:
        raise _Unprintable

    async def stage() -> StageResult:
        await trio.lowlevel.checkpoint()
        return _result("s")

    caplog.set_level(logging.WARNING)
    interceptor = ImmutabilityInterceptor(snapshot_getter=snapshot)
    result = await run_with_interceptors("s", stage, _ctx(), [interceptor])
    assert result.status == "completed"
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            f"Immutability check could not serialize the snapshot of stage s: {PLACEHOLDER}",
        )
    ]
