"""stageflow_trio.stages.errors: the logging helpers, with_error_handling and StageRunner.

Events and results are compared with the reference's on the same inputs (its
coroutines never suspend here, so they are driven by hand).
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from stageflow_trio.pipeline.dag import StageExecutionError
from stageflow_trio.stages import errors as errors_module
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.errors import (
    StageRunner,
    _is_recoverable_error,
    create_error_context,
    handle_async_task_error,
    handle_provider_error,
    log_debug_failure,
    log_stage_error,
    safe_debug_log,
    with_error_handling,
)
from stageflow_trio.stages.result import StageError, StageResult
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import RefRecorder, extras

if TYPE_CHECKING:
    from types import ModuleType

RUN = uuid.UUID("00000000-0000-0000-0000-000000000001")
REQ = uuid.UUID("00000000-0000-0000-0000-000000000002")
IDS: dict[str, Any] = {
    "pipeline_run_id": RUN,
    "request_id": REQ,
    "session_id": None,
    "user_id": None,
    "org_id": None,
    "interaction_id": None,
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def ref_errors(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.stages.errors")


def _ctx() -> tuple[PipelineContext, RecordingEventSink]:
    sink = RecordingEventSink()
    return PipelineContext(**IDS, event_sink=sink), sink


def _ref_ctx(reference: ModuleType) -> tuple[Any, RefRecorder]:
    sink = RefRecorder()
    return reference.stages.context.PipelineContext(**IDS, event_sink=sink), sink


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a reference coroutine that never suspends."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the reference coroutine suspended")


def _events(sink: RecordingEventSink | RefRecorder) -> list[tuple[str, dict[str, Any]]]:
    return [
        (kind, {k: v for k, v in (data or {}).items() if k != "timestamp"})
        for kind, data in sink.events
    ]


def test_all_matches_the_reference(ref_errors: ModuleType) -> None:
    assert sorted(errors_module.__all__) == sorted(ref_errors.__all__)


# --- logging helpers ------------------------------------------------------------------


def test_log_stage_error_logs_ids_and_extras(caplog: pytest.LogCaptureFixture) -> None:
    ctx, _ = _ctx()
    error = ValueError("bad")
    with caplog.at_level(logging.ERROR):
        log_stage_error("fetch", error, ctx, additional_context={"attempt": 2})
    (record,) = caplog.records
    assert record.name == "stageflow_trio.pipeline_error"
    assert record.getMessage() == "Stage fetch failed: bad"
    assert record.exc_info is not None
    assert record.exc_info[1] is error
    assert extras(
        record,
        "service",
        "stage",
        "error_type",
        "error_message",
        "pipeline_run_id",
        "request_id",
        "session_id",
        "attempt",
    ) == ("pipeline", "fetch", "ValueError", "bad", str(RUN), str(REQ), None, 2)


def test_log_stage_error_to_a_given_logger_without_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mine = logging.getLogger("tests.mine")
    with caplog.at_level(logging.ERROR):
        log_stage_error("s", KeyError("k"), stage_logger=mine)
    (record,) = caplog.records
    assert record.name == "tests.mine"
    assert "pipeline_run_id" not in record.__dict__


def test_log_debug_failure(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        log_debug_failure("dump", OSError("disk"), {"path": "/x"})
        log_debug_failure("dump", OSError("disk"))
    first, second = caplog.records
    assert first.name == "stageflow_trio.debug_operations"
    assert first.getMessage() == "Debug operation failed: dump"
    assert extras(first, "service", "operation", "error_type", "error_message", "path") == (
        "debug",
        "dump",
        "OSError",
        "disk",
        "/x",
    )
    assert "path" not in second.__dict__


def test_safe_debug_log_calls_and_swallows_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[Any, ...]] = []
    safe_debug_log("op", lambda *a, **k: calls.append((a, k)), 1, x=2)
    assert calls == [((1,), {"x": 2})]

    def broken() -> None:
        raise RuntimeError("nope")

    with caplog.at_level(logging.ERROR):
        safe_debug_log("op", broken)
    (record,) = caplog.records
    assert extras(record, "operation", "error_message") == ("op", "nope")


def test_handle_provider_error(caplog: pytest.LogCaptureFixture) -> None:
    ctx, _ = _ctx()
    with caplog.at_level(logging.ERROR):
        handle_provider_error("openai", "chat", TimeoutError("slow"), ctx)
        handle_provider_error("openai", "chat", TimeoutError("slow"))
    first, second = caplog.records
    assert first.name == "stageflow_trio.provider_error"
    assert first.getMessage() == "Provider openai error during chat: slow"
    assert extras(
        first, "service", "provider", "operation", "error_type", "pipeline_run_id", "session_id"
    ) == ("provider", "openai", "chat", "TimeoutError", str(RUN), None)
    assert "pipeline_run_id" not in second.__dict__


def test_handle_async_task_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        handle_async_task_error("flush", ValueError("v"), {"n": 1})
        handle_async_task_error("flush", ValueError("v"))
    first, second = caplog.records
    assert first.name == "stageflow_trio.async_tasks"
    assert first.getMessage() == "Background task 'flush' failed: v"
    assert extras(first, "service", "task_name", "error_type", "error_message", "n") == (
        "async_tasks",
        "flush",
        "ValueError",
        "v",
        1,
    )
    assert "n" not in second.__dict__


def test_create_error_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 42.0)
    assert create_error_context(stage="s") == {"error_timestamp": 42.0, "stage": "s"}


@pytest.mark.parametrize(
    "error",
    [
        ValueError("Connection reset"),
        ValueError("read TIMEOUT"),
        ValueError("network"),
        ValueError("peer disconnected"),
        ConnectionError("x"),
        TimeoutError("x"),
        type("HTTPError", (Exception,), {})("x"),
        ValueError("bad input"),
        KeyError("k"),
    ],
)
def test_is_recoverable_error_matches_the_reference(
    ref_errors: ModuleType, error: Exception
) -> None:
    assert _is_recoverable_error(error) == ref_errors._is_recoverable_error(error)


def test_is_recoverable_error_examples() -> None:
    assert _is_recoverable_error(ValueError("connection lost")) is True
    assert _is_recoverable_error(ValueError("bad input")) is False


# --- with_error_handling --------------------------------------------------------------


class Stage:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    async def run(self, ctx: Any) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def _decorated(stage: Stage, **options: Any) -> Any:
    return with_error_handling(stage_name="s", **options)(Stage.run)


async def test_a_dict_becomes_a_completed_result() -> None:
    ctx, sink = _ctx()
    with trio.testing.assert_checkpoints():
        result = await _decorated(Stage({"a": 1}))(Stage({"a": 1}), ctx)
    assert (result.name, result.status, dict(result.data)) == ("s", "completed", {"a": 1})
    assert result.started_at <= result.ended_at
    assert sink.events == []


async def test_a_non_dict_gives_empty_data() -> None:
    ctx, _ = _ctx()
    result = await _decorated(Stage(5))(Stage(5), ctx)
    assert dict(result.data) == {}


async def test_a_stage_result_gets_fresh_times() -> None:
    ctx, _ = _ctx()
    given = StageResult(name="x", status="completed", started_at=T0, ended_at=T0, data={"k": 1})
    result = await _decorated(Stage(given))(Stage(given), ctx)
    assert result.name == "x"
    assert result.started_at > T0
    assert dict(result.data) == {"k": 1}


async def test_a_stage_error_is_recorded_and_reraised(caplog: pytest.LogCaptureFixture) -> None:
    ctx, sink = _ctx()
    error = StageError("s", ValueError("semantic"))
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.stage_errors"):
        with pytest.raises(StageError) as caught:
            await _decorated(Stage(error), record_payload_fn=lambda e, p: {"extra": len(p)})(
                Stage(error), ctx
            )
    assert caught.value is error
    assert caplog.records[0].getMessage() == "Stage s failed: semantic"
    [(kind, data)] = _events(sink)
    assert kind == "stage.s.failed"
    assert (data["error"], data["extra"]) == ("Stage s failed: semantic", 1)


async def test_other_errors_become_stage_execution_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx, sink = _ctx()
    error = ConnectionError("down")
    with caplog.at_level(logging.ERROR, logger="stageflow_trio.stage_errors"):
        with pytest.raises(StageExecutionError) as caught:
            await with_error_handling("s", "Fetching", lambda e, p: {"keys": sorted(p)})(Stage.run)(
                Stage(error), ctx=ctx
            )
    assert caught.value.original is error
    assert caught.value.__cause__ is error
    assert caught.value.recoverable is True
    assert caplog.records[0].getMessage() == "Fetching failed: down"
    [(kind, data)] = _events(sink)
    assert (kind, data["error"], data["error_type"]) == (
        "stage.s.failed",
        "down",
        "ConnectionError",
    )


async def test_without_a_context_nothing_is_recorded() -> None:
    with pytest.raises(StageExecutionError):
        await _decorated(Stage(ValueError("x")))(Stage(ValueError("x")), None)
    with pytest.raises(StageError):
        await _decorated(Stage(StageError("s", ValueError("x"))))(
            Stage(StageError("s", ValueError("x"))), None
        )


async def test_cancellation_passes_through_untouched(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ctx, sink = _ctx()

    async def slow(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(10)
        return {}

    with trio.move_on_after(1) as scope:
        await with_error_handling("s")(slow)(ctx)
    assert scope.cancelled_caught
    assert sink.events == []


@pytest.mark.parametrize("outcome", ["error", "stage_error", "dict"])
async def test_with_error_handling_events_match_the_reference(
    reference: ModuleType, ref_errors: ModuleType, outcome: str
) -> None:
    ctx, sink = _ctx()
    ref_ctx, ref_sink = _ref_ctx(reference)

    def make(stage_error: type[Exception]) -> Any:
        return {
            "error": ValueError("boom"),
            "stage_error": stage_error("s", KeyError("k")),
            "dict": {"a": 1},
        }[outcome]

    ours: Any
    theirs: Any
    try:
        ours = await with_error_handling("s", "msg")(Stage.run)(Stage(make(StageError)), ctx)
    except Exception as exc:
        ours = type(exc).__name__
    ref_outcome = make(reference.stages.result.StageError)
    try:
        theirs = _drive(
            ref_errors.with_error_handling("s", "msg")(Stage.run)(Stage(ref_outcome), ref_ctx)
        )
    except Exception as exc:
        theirs = type(exc).__name__
    if isinstance(ours, StageResult):
        assert (ours.status, dict(ours.data)) == (theirs.status, theirs.data)
    else:
        assert ours == theirs
    assert _events(sink) == _events(ref_sink)


# --- StageRunner ----------------------------------------------------------------------


async def test_runner_runs_sync_and_async_functions() -> None:
    ctx, sink = _ctx()
    runner = StageRunner("s", ctx)
    assert runner.error_message == "s"
    with trio.testing.assert_checkpoints():
        result = await runner.run(lambda: {"a": 1})

    async def produce() -> dict[str, int]:
        return {"b": 2}  # returns without yielding

    with trio.testing.assert_checkpoints():
        second = await runner.run(produce)
    assert (result.status, dict(result.data), dict(second.data)) == (
        "completed",
        {"a": 1},
        {"b": 2},
    )
    assert [(kind, data["data_keys"]) for kind, data in _events(sink)] == [
        ("stage.s.completed", ["a"]),
        ("stage.s.completed", ["b"]),
    ]


async def test_runner_on_success_and_empty_data() -> None:
    ctx, sink = _ctx()
    runner = StageRunner("s", ctx)
    shaped = await runner.run(lambda: 3, on_success=lambda value: {"value": value})
    empty = await runner.run(lambda: "text")
    assert (dict(shaped.data), dict(empty.data)) == ({"value": 3}, {})
    assert [sorted(data) for _, data in _events(sink)][1] == sorted(
        [
            "request_id",
            "session_id",
            "user_id",
            "org_id",
            "service",
            "stage",
            "status",
            "topology",
            "execution_mode",
            "pipeline_run_id",
        ]
    )


async def test_runner_wraps_errors(caplog: pytest.LogCaptureFixture) -> None:
    ctx, sink = _ctx()
    runner = StageRunner("s", ctx, error_message="Fetch failed")

    def broken() -> None:
        raise KeyError("k")

    with caplog.at_level(logging.ERROR, logger="stageflow_trio.stage_errors"):
        with pytest.raises(StageExecutionError) as caught:
            await runner.run(broken, on_error=lambda e: {"hint": "retry"})
    assert caught.value.recoverable is False
    assert caplog.records[0].getMessage() == "Fetch failed: 'k'"
    [(kind, data)] = _events(sink)
    assert (kind, data["error"], data["error_type"], data["hint"]) == (
        "stage.s.failed",
        "'k'",
        "KeyError",
        "retry",
    )


def test_runner_rejects_bad_arguments() -> None:
    ctx, _ = _ctx()
    with pytest.raises(TypeError, match=r"^StageRunner: stage_name must be a str; got int$"):
        StageRunner(1, ctx)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^StageRunner: ctx must be a PipelineContext; got dict$"):
        StageRunner("s", {})  # type: ignore[arg-type]


@pytest.mark.parametrize("outcome", [{"a": 1}, None, ValueError("timeout")])
async def test_runner_matches_the_reference(
    reference: ModuleType, ref_errors: ModuleType, outcome: Any
) -> None:
    ctx, sink = _ctx()
    ref_ctx, ref_sink = _ref_ctx(reference)

    def work() -> Any:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def summary(run: Any) -> Any:
        try:
            result = run()
        except StageError as exc:
            return (type(exc).__name__, exc.recoverable)  # type: ignore[attr-defined]
        except Exception as exc:
            return (type(exc).__name__, exc.recoverable)  # type: ignore[attr-defined]
        return (result.status, dict(result.data))

    async def ours_run() -> Any:
        try:
            result = await StageRunner("s", ctx).run(work)
        except Exception as exc:
            return (type(exc).__name__, exc.recoverable)  # type: ignore[attr-defined]
        return (result.status, dict(result.data))

    assert await ours_run() == summary(
        lambda: _drive(ref_errors.StageRunner("s", ref_ctx).run(work))
    )
    assert _events(sink) == _events(ref_sink)


@pytest.mark.parametrize("helper", ["stage", "debug", "task"])
def test_context_keys_a_log_record_has_are_renamed_not_a_key_error(
    helper: str, caplog: pytest.LogCaptureFixture
) -> None:
    # logging refuses an extra key a LogRecord already has (KeyError "Attempt to
    # overwrite 'name' in LogRecord"), so a free-form context holding "name" or
    # "message" turned the error being logged into a KeyError (the reference too).
    context = {"name": "n", "message": "m", "args": (1,), "kept": 1}
    error = ValueError("boom")
    with caplog.at_level(logging.ERROR):
        if helper == "stage":
            log_stage_error("s", error, additional_context=context)
        elif helper == "debug":
            log_debug_failure("op", error, context)
        else:
            handle_async_task_error("t", error, context)
    (record,) = caplog.records
    assert record.__dict__["kept"] == 1
    assert record.__dict__["context_name"] == "n"
    assert record.__dict__["context_message"] == "m"
    assert record.__dict__["context_args"] == (1,)
    assert record.name.startswith("stageflow_trio.")  # the record's own name is intact
