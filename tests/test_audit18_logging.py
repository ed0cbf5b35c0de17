"""Audit 18: the log records the library emits, compared with stageflow-core 0.9.1's.

Services alert and dashboard on log records (logger, level, message, ``extra`` keys and
value types, ``exc_info``), so a scenario must leave the same records on both sides,
modulo the rows of docs/parity.md (logger names under ``stageflow_trio.``). Each
differential test runs the reference under ``asyncio.run`` and ours under ``trio.run``
with an autojumping MockClock, both with a DEBUG handler on the root logger.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing

from tests.differential.harness import Side
from tests.differential.scenarios_core import pipeline_ctx, stage_ctx, unified
from tests.log_records import Body, Record, capture, record_shape


def _records(side_name: str, body: Body) -> list[Record]:
    return [record_shape(r) for r in capture(side_name, body)]


# --- UnifiedStageGraph ------------------------------------------------------------------


def _boom(ctx: Any, out: Any) -> Any:
    raise ValueError("boom")


async def unified_ok(side: Side) -> Any:
    graph = unified(
        side,
        [("a", (), lambda c, o: o.ok(x=1)), ("b", ("a",), lambda c, o: o.skip(reason="meh"))],
    )
    return await graph.run(stage_ctx(side))


async def unified_raise(side: Side) -> Any:
    graph = unified(side, [("a", (), lambda c, o: o.ok(x=1)), ("b", ("a",), _boom)])
    return await graph.run(stage_ctx(side))


async def unified_fail(side: Side) -> Any:
    graph = unified(side, [("a", (), lambda c, o: o.fail(error="nope"))])
    return await graph.run(stage_ctx(side))


async def unified_cancel(side: Side) -> Any:
    graph = unified(side, [("a", (), lambda c, o: o.cancel(reason="user left"))])
    return await graph.run(stage_ctx(side))


async def unified_conditional_skip(side: Side) -> Any:
    graph = unified(
        side,
        [("a", (), lambda c, o: o.ok(skip_reason="nothing to do")), ("b", ("a",), _boom)],
        conditional=("b",),
    )
    return await graph.run(stage_ctx(side))


async def unified_guard_recovers(side: Side) -> Any:
    guard_retry = side.mod("pipeline.guard_retry")
    count = {"n": 0}

    def gen(ctx: Any, out: Any) -> Any:
        count["n"] += 1
        return out.ok(v=count["n"])

    def guard(ctx: Any, out: Any) -> Any:
        return out.fail(error="bad") if count["n"] < 2 else out.ok()

    policy = guard_retry.GuardRetryPolicy(retry_stage="gen", max_attempts=3)
    strategy = guard_retry.GuardRetryStrategy(policies={"guard": policy})
    graph = unified(
        side, [("gen", (), gen), ("guard", ("gen",), guard)], guard_retry_strategy=strategy
    )
    return await graph.run(stage_ctx(side))


@pytest.mark.parametrize(
    "body",
    [
        unified_ok,
        unified_raise,
        unified_fail,
        unified_cancel,
        unified_conditional_skip,
        unified_guard_recovers,
    ],
    ids=lambda body: body.__name__,
)
def test_unified_graph_records_match_reference(body: Body) -> None:
    """The reference's UnifiedStageGraph logs its run on ``pipeline_dag``: start, each stage
    (started, completed, failed with ERROR, raised with ERROR and the traceback), guard
    retries, cancellation, completion. Ours logged none of it (a failed run left no ERROR
    record at all), though parity.md says messages and extras are the reference's."""
    ref = [r for r in _records("ref", body) if r[1] != "DEBUG"]
    ours = [r for r in _records("ours", body) if r[1] != "DEBUG"]
    assert ours == ref


def test_unified_stage_error_record_carries_the_stage_traceback() -> None:
    records = capture("ours", unified_raise)
    [stage_error] = [r for r in records if getattr(r, "event", None) == "stage_error"]
    assert stage_error.levelno == logging.ERROR
    assert stage_error.exc_info is not None
    exc = stage_error.exc_info[1]
    assert isinstance(exc, ValueError)
    assert str(exc) == "boom"
    assert getattr(stage_error, "stage", None) == "b"
    # The run-level record names the error without a second copy of the traceback.
    [run_failed] = [r for r in records if getattr(r, "event", None) == "stage_failed"]
    assert run_failed.levelno == logging.ERROR
    assert run_failed.exc_info is None
    assert run_failed.getMessage() == "Stage task execution failed: Stage 'b' failed: boom"
    assert getattr(run_failed, "error", None) == "Stage 'b' failed: boom"


async def unified_guard_exhausted(side: Side) -> Any:
    guard_retry = side.mod("pipeline.guard_retry")
    policy = guard_retry.GuardRetryPolicy(retry_stage="gen", max_attempts=2)
    strategy = guard_retry.GuardRetryStrategy(policies={"guard": policy})
    graph = unified(
        side,
        [("gen", (), lambda c, o: o.ok(v=1)), ("guard", ("gen",), lambda c, o: o.fail("bad"))],
        guard_retry_strategy=strategy,
    )
    return await graph.run(stage_ctx(side))


def test_guard_retry_exhausted_record_has_the_reference_extras() -> None:
    """Ours names the guard, the attempts and the reason in the message, and adds
    ``reason`` to the reference's extras (parity row, audit 18)."""
    ref = [r for r in _records("ref", unified_guard_exhausted) if r[1] != "DEBUG"]
    ours = [r for r in _records("ours", unified_guard_exhausted) if r[1] != "DEBUG"]
    *ours_head, ours_last = ours
    *ref_head, ref_last = ref
    assert ours_head == ref_head
    name, level, message, extra, exc_info = ours_last
    assert message == "Guard retry limits exceeded for guard after 2 attempts (max_attempts)"
    assert message.startswith(ref_last[2])
    assert extra.pop("reason") == "str"
    assert (name, level, extra, exc_info) == (ref_last[0], ref_last[1], ref_last[3], ref_last[4])


async def _ours_token_cancel() -> None:
    cancellation = __import__("stageflow_trio.pipeline.cancellation", fromlist=["x"])
    side = Side("ours")
    token = cancellation.CancellationToken()

    async def waits(ctx: Any) -> Any:
        token.cancel("operator stop")
        await trio.sleep(10)

    core = side.mod("core")
    dag = side.mod("pipeline.dag")
    spec = dag.UnifiedStageSpec(name="w", runner=waits, kind=core.StageKind.WORK)
    with pytest.raises(dag.UnifiedPipelineCancelled):
        await dag.UnifiedStageGraph([spec]).run(stage_ctx(side), cancel_token=token)


async def test_token_cancel_is_logged_as_the_reference_does(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """0.9.1: ``"Pipeline cancelled via token: <reason>"`` with ``event`` and ``reason``."""
    caplog.set_level(logging.INFO)
    await _ours_token_cancel()
    [record] = [r for r in caplog.records if "cancelled" in r.getMessage()]
    assert record.name == "stageflow_trio.dag"
    assert record.levelno == logging.INFO
    assert record.getMessage() == "Pipeline cancelled via token: operator stop"
    assert getattr(record, "event", None) == "pipeline_cancelled_token"
    assert getattr(record, "reason", None) == "operator stop"


def test_per_stage_info_records_cost_nothing_when_info_is_off() -> None:
    """With the level at WARNING no per-stage record is even made, but a failure still
    reaches the log at ERROR."""
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if record.name.startswith("stageflow_trio"):
            made.append(record)
        return record

    logging.setLogRecordFactory(counting)
    try:
        records = capture("ours", unified_ok, level=logging.WARNING)
        assert records == []
        assert made == []
        records = capture("ours", unified_fail, level=logging.WARNING)
    finally:
        logging.setLogRecordFactory(factory)
    assert [(r.levelname, r.getMessage()) for r in records] == [("ERROR", "Stage a failed: nope")]


# --- the interceptor chain ----------------------------------------------------------------


def _completed(side: Side, name: str = "s") -> Callable[[], Awaitable[Any]]:
    stages = side.mod("stages")

    async def run() -> Any:
        await side.checkpoint()
        now = datetime.now(UTC)
        return stages.StageResult(
            name=name, status="completed", started_at=now, ended_at=now, data={"x": 1}
        )

    return run


async def chain_short_circuit(side: Side) -> Any:
    interceptors = side.mod("pipeline.interceptors")

    class Cache(interceptors.BaseInterceptor):  # type: ignore[name-defined,misc]
        name = "cache"
        priority = 1

        async def before(self, stage_name: str, ctx: Any) -> Any:
            return interceptors.InterceptorResult(stage_ran=False, result={"cached": True})

        async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
            return None

    result = await interceptors.run_with_interceptors(
        "s", _completed(side), pipeline_ctx(side), [Cache()]
    )
    return dict(result.data)


def test_short_circuit_record_matches_reference() -> None:
    """0.9.1 logs a short-circuit (an idempotency replay, an open circuit breaker) at INFO
    with ``interceptor`` and ``stage`` in ``extra``; ours logged it at DEBUG without them."""
    ref = _records("ref", chain_short_circuit)
    ours = _records("ours", chain_short_circuit)
    assert ours == ref
    assert [r[1] for r in ours] == ["INFO"]


async def chain_hook_errors(side: Side) -> Any:
    interceptors = side.mod("pipeline.interceptors")

    class Broken(interceptors.BaseInterceptor):  # type: ignore[name-defined,misc]
        name = "broken"
        priority = 1

        async def before(self, stage_name: str, ctx: Any) -> Any:
            raise RuntimeError("before broke")

        async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
            raise RuntimeError("after broke")

    result = await interceptors.run_with_interceptors(
        "s", _completed(side), pipeline_ctx(side), [Broken()]
    )
    return result.status


async def chain_timeout(side: Side) -> Any:
    interceptors = side.mod("pipeline.interceptors")
    stages = side.mod("stages")
    ctx = pipeline_ctx(side)
    ctx.data["_timeout_ms"] = 50

    async def slow() -> Any:
        await side.sleep(10)
        now = datetime.now(UTC)
        return stages.StageResult(name="s", status="completed", started_at=now, ended_at=now)

    result = await interceptors.run_with_interceptors(
        "s", slow, ctx, [interceptors.TimeoutInterceptor()]
    )
    return result.error


async def chain_retry_once(side: Side) -> Any:
    interceptors = side.mod("pipeline.interceptors")
    retry = side.mod("pipeline.retry")
    calls: list[int] = []
    run = _completed(side)

    async def flaky() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("flaky")
        return await run()

    interceptor = retry.RetryInterceptor(
        max_attempts=3, base_delay_ms=1, max_delay_ms=1, jitter_strategy=retry.JitterStrategy.NONE
    )
    result = await interceptors.run_with_interceptors("s", flaky, pipeline_ctx(side), [interceptor])
    return result.status


async def legacy_default_chain(side: Side) -> Any:
    dag, core = side.mod("pipeline.dag"), side.mod("core")

    class Explodes:
        async def execute(self, ctx: Any) -> Any:
            await side.checkpoint()
            raise ValueError("exploded")

    class Fine:
        async def execute(self, ctx: Any) -> Any:
            await side.checkpoint()
            return core.StageOutput.ok(v=1)

    graph = dag.StageGraph(
        [
            dag.StageSpec(name="a", runner=Fine, dependencies=()),
            dag.StageSpec(name="b", runner=Explodes, dependencies=("a",)),
        ]
    )
    return sorted(await graph.run(pipeline_ctx(side)))


@pytest.mark.parametrize(
    "body",
    [chain_hook_errors, chain_timeout, chain_retry_once, legacy_default_chain],
    ids=lambda body: body.__name__,
)
def test_chain_records_equal_reference(body: Body) -> None:
    """Already equal (kept so they stay so): hook errors at ERROR, a timeout at WARNING,
    a retry at INFO, the legacy graph's default interceptors at INFO. The reference's
    legacy ``"[DEBUG] Running stage: x"`` INFO record on ``pipeline_dag`` goes with its
    debug file (parity.md "Legacy StageGraph debug file (d5)")."""
    ref = [r for r in _records("ref", body) if not r[2].startswith("[DEBUG] Running stage")]
    ours = _records("ours", body)
    assert ours == ref


# --- events ---------------------------------------------------------------------------------


async def sink_raises(side: Side) -> Any:
    class Broken:
        async def emit(self, *, type: str, data: Any) -> None:  # noqa: A002
            raise RuntimeError("sink down")

        def try_emit(self, *, type: str, data: Any) -> None:  # noqa: A002
            raise RuntimeError("sink down")

    core = side.mod("core")
    ctx = stage_ctx(side)
    ctx = core.StageContext(
        snapshot=ctx.snapshot,
        inputs=ctx.inputs,
        stage_name="s",
        timer=ctx.timer,
        event_sink=Broken(),
    )
    ctx.try_emit_event(type="custom.thing", data={"k": 1})


def test_stage_context_sink_failure_record_equal_reference() -> None:
    ref = _records("ref", sink_raises)
    ours = _records("ours", sink_raises)
    assert ours == ref
    assert ours == [
        (
            "stageflow_trio.core.stage_context",
            "WARNING",
            "Failed to emit event custom.thing: sink down",
            {},
            False,
        )
    ]


# The command line and the examples runner decide where the new ERROR records go.


def _unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root logger as in a process that configured no logging (pytest's handlers off)."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


def test_cli_without_debug_keeps_library_records_off_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stageflow_trio.cli._library_logs import library_records

    _unconfigured(monkeypatch)
    dag_logger = logging.getLogger("stageflow_trio.dag")
    dag_logger.error("Stage %s failed: %s", "a", "nope")  # before: the last resort prints it
    assert "Stage a failed: nope" in capsys.readouterr().err
    with library_records(debug=False):
        dag_logger.error("Stage %s failed: %s", "a", "nope")
    assert capsys.readouterr().err == ""
    assert logging.getLogger("stageflow_trio").handlers == []  # taken away again


def test_cli_with_debug_prints_every_library_record(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stageflow_trio.cli._library_logs import library_records

    _unconfigured(monkeypatch)
    library = logging.getLogger("stageflow_trio")
    level = library.level
    with library_records(debug=True):
        logging.getLogger("stageflow_trio.dag").debug("Running stage: %s", "a")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("stageflow_trio.dag").exception("Stage a failed with error")
    err = capsys.readouterr().err
    assert "DEBUG stageflow_trio.dag: Running stage: a\n" in err
    assert "ERROR stageflow_trio.dag: Stage a failed with error\nTraceback" in err
    assert "ValueError: boom" in err
    assert library.level == level
    assert library.handlers == []


def test_cli_leaves_configured_logging_alone(caplog: pytest.LogCaptureFixture) -> None:
    from stageflow_trio.cli._library_logs import library_records

    with caplog.at_level(logging.INFO), library_records(debug=False):
        logging.getLogger("stageflow_trio.dag").info("Running stage: %s", "a")
    assert [r.getMessage() for r in caplog.records] == ["Running stage: a"]
    assert logging.getLogger("stageflow_trio").handlers == []
