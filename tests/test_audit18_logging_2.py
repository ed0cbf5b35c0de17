"""Audit 18 (second pass): log records outside the engine, compared with stageflow-core 0.9.1.

The first pass (tests/test_audit18_logging.py) covered the graphs and the interceptor chain.
This one covers the auth interceptors, the UUID monitor, the subpipeline spawner, the v1
and v2 tool executors, the backpressure sink, guardrails, truncation tracking, the context
enrichments' deprecation warnings and the pipeline runner: each scenario runs on both sides
(the reference under ``asyncio.run``, ours under ``trio.run`` with an autojumping MockClock)
with a DEBUG handler on the root logger, and the records (logger, level, message, ``extra``
keys and value types, whether a traceback is attached) must match, modulo the parity rows.

Then the records that could raise while being built: an exception whose ``__str__`` raises
must not turn a logged failure into a crash, nor an auth check into a pass.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing

from tests.differential.harness import ORG_ID, Side
from tests.differential.scenarios_core import pipeline_ctx, stage_ctx
from tests.differential.scenarios_tools_helpers import run_executor
from tests.log_records import Body, Record, capture, record_shape

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A duration or skew in a message depends on the clock, not on what happened.
MS_RE = re.compile(r"\d+(\.\d+)?ms\b")


def _shape(record: logging.LogRecord) -> Record:
    """A record as compared; ids in the message become ``<uuid>``, durations ``<n>ms``."""
    return record_shape(record, lambda text: MS_RE.sub("<n>ms", UUID_RE.sub("<uuid>", text)))


def _records(side_name: str, body: Body) -> list[Record]:
    return [_shape(r) for r in capture(side_name, body)]


def _differential(body: Body) -> list[Record]:
    ours = _records("ours", body)
    assert ours == _records("ref", body)
    return ours


# --- auth ----------------------------------------------------------------------------------

OTHER_ORG = "66666666-6666-4666-8666-666666666666"
VALID = f"valid_{uuid.UUID(int=7)}_{ORG_ID}_admin"


def _auth(token: object | None, resource: object | None = None, *, auth_first: bool = True) -> Body:
    async def body(side: Side) -> Any:
        auth = side.mod("auth.interceptors")
        ctx = pipeline_ctx(side)
        if token is not None:
            ctx.data["_auth_token"] = token
        result = await auth.AuthInterceptor().before("s", ctx) if auth_first else None
        if resource is not None:
            ctx.data["_resource_org_id"] = resource
            result = await auth.OrgEnforcementInterceptor().before("s", ctx)
        return None if result is None else result.error

    body.__name__ = f"auth_{token}_{resource}"
    return body


AUTH_SCENARIOS = {
    "missing_token": _auth(None),
    "expired": _auth("expired_abc"),
    "invalid": _auth("invalid_abc"),
    "missing_claims": _auth("missing_abc"),
    "success": _auth(VALID),
    "tenant_mismatch": _auth(VALID, OTHER_ORG),
    "same_tenant": _auth(VALID, str(ORG_ID)),
    "bad_resource_id": _auth(VALID, "not-a-uuid"),
    "org_without_auth": _auth(None, OTHER_ORG, auth_first=False),
}


@pytest.mark.parametrize("name", sorted(AUTH_SCENARIOS))
def test_auth_records_equal_reference(name: str) -> None:
    """Rejections at WARNING (``reason``, ``error_detail``), a login at INFO (``user_id``,
    ``org_id``), a cross-tenant access at WARNING with the three ids; nothing else."""
    _differential(AUTH_SCENARIOS[name])


def test_auth_records_carry_no_token(caplog: pytest.LogCaptureFixture) -> None:
    """No record (message or extra) holds the bearer token, valid or not."""
    secret = "invalid_s3cr3t-bearer-token"

    async def main() -> None:
        for token in (secret, VALID + "s3cr3t"):
            await _auth(token)(Side("ours"))

    caplog.set_level(logging.DEBUG)
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert caplog.records
    for record in caplog.records:
        assert "s3cr3t" not in record.getMessage()
        assert "s3cr3t" not in repr(vars(record))


# --- UuidCollisionMonitor ------------------------------------------------------------------


def _uuid7(ms: int) -> uuid.UUID:
    """A version-7 id whose timestamp is ``ms`` milliseconds after the epoch."""
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62) | 1)


async def uuid_skew_and_collision(side: Side) -> Any:
    monitor = side.mod("helpers.uuid_utils").UuidCollisionMonitor(check_skew=True)
    old = _uuid7(1_000)  # 1970: far past any skew limit
    return [monitor.observe(old), monitor.observe(old), monitor.observe(uuid.UUID(int=9))]


def test_uuid_monitor_records_equal_reference() -> None:
    """A skewed v7 id: WARNING ``Clock skew detected for UUID <id>: <n>ms`` (``uuid``,
    ``skew_ms``) on each sighting; a collision is not logged (listeners are told)."""
    records = _differential(uuid_skew_and_collision)
    assert [(r[1], r[3]) for r in records] == [("WARNING", {"uuid": "str", "skew_ms": "float"})] * 2


# --- SubpipelineSpawner --------------------------------------------------------------------


async def spawn_child_fails(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    spawner = pipeline.SubpipelineSpawner(child_tracker=pipeline.ChildRunTracker())

    async def runner(child: Any) -> Any:
        await side.checkpoint()
        raise ValueError("child broke")

    res = await spawner.spawn("child", pipeline_ctx(side), uuid.UUID(int=3), "tool", runner)
    return res.error


async def spawn_max_depth(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    spawner = pipeline.SubpipelineSpawner(child_tracker=pipeline.ChildRunTracker(), max_depth=1)

    async def grandchild(ctx: Any) -> Any:
        return {}

    async def child(ctx: Any) -> Any:
        return (await spawner.spawn("g", ctx, uuid.UUID(int=4), "inner", grandchild)).error

    res = await spawner.spawn("child", pipeline_ctx(side), uuid.UUID(int=3), "outer", child)
    return res.error


async def spawn_succeeds_then_cancel_tree(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    tracker = pipeline.ChildRunTracker()
    spawner = pipeline.SubpipelineSpawner(child_tracker=tracker)

    async def runner(child: Any) -> Any:
        await side.checkpoint()
        return {"n": 1}

    res = await spawner.spawn("child", pipeline_ctx(side), uuid.UUID(int=3), "tool", runner)
    await tracker.register_child(res.child_run_id, uuid.UUID(int=5))
    await spawner.cancel_with_children(res.child_run_id, reason="user_requested")
    return res.success


@pytest.mark.parametrize(
    "body",
    [spawn_child_fails, spawn_max_depth, spawn_succeeds_then_cancel_tree],
    ids=lambda body: body.__name__,
)
def test_spawner_records_equal_reference(body: Body) -> None:
    """A child failure: ERROR ``Child pipeline <id> failed: <error>``; the depth limit:
    ERROR ``Max subpipeline depth exceeded: d >= m`` (``parent_run_id``, ``current_depth``,
    ``max_depth``) then the child's failure; a success and ``cancel_with_children``: none."""
    _differential(body)


# --- tools ---------------------------------------------------------------------------------


class _Action:
    def __init__(self, type_: str) -> None:
        self.id = uuid.UUID(int=11)
        self.type = type_
        self.payload: dict[str, Any] = {}


class _Plan:
    def __init__(self, *types: str) -> None:
        self.actions = [_Action(t) for t in types]


async def tool_executor_v1(side: Side) -> Any:
    tools = side.mod("tools")

    class Registry:
        async def execute(self, action: Any, ctx: dict[str, Any]) -> Any:
            await side.checkpoint()
            if action.type == "UNKNOWN":
                return None
            if action.type == "FAILS":
                return tools.ToolOutput(success=False, error="quota exceeded")
            if action.type == "RAISES":
                raise ValueError("disk full")
            return tools.ToolOutput(success=True, data={"ok": True})

    executor = tools.ToolExecutor()
    executor.tool_registry = Registry()
    plan = _Plan("OK", "UNKNOWN", "FAILS", "RAISES")
    result = await executor.execute(pipeline_ctx(side), plan)
    return [result.actions_executed, result.actions_failed]


@pytest.mark.parametrize("kind", ["success", "gated", "broken", "broken_undo", "unknown"])
def test_tool_executor_v2_records_equal_reference(kind: str) -> None:
    """The v2 executor logs only the DEBUG ``Registered tool`` / ``Stored undo metadata``
    records and the undo WARNINGs (no metadata, no handler): a denial, a handler error
    and an unknown tool are reported by the result and the events, on both sides."""

    async def body(side: Side) -> Any:
        return await run_executor(side, kind)

    _differential(body)


def test_tool_executor_v1_records_equal_reference() -> None:
    """No tool: WARNING; a failed output: ERROR; a raised error: ERROR with its traceback."""
    records = _differential(tool_executor_v1)
    assert [(r[1], r[2], r[4]) for r in records] == [
        ("WARNING", "No tool available for action type: UNKNOWN", False),
        ("ERROR", "Action FAILS failed: quota exceeded", False),
        ("ERROR", "Error executing action RAISES: disk full", True),
    ]


# --- BackpressureAwareEventSink ------------------------------------------------------------


class _Downstream:
    def __init__(self, side: Side) -> None:
        self.side = side
        self.seen: list[str] = []

    async def emit(self, *, type: str, data: Any) -> None:  # noqa: A002
        await self.side.checkpoint()
        if type == "bad":
            raise RuntimeError("downstream down")
        self.seen.append(type)

    def try_emit(self, *, type: str, data: Any) -> None:  # noqa: A002
        self.seen.append(type)


async def backpressure_lifecycle(side: Side) -> Any:
    """Three events into a queue of two (one dropped), one rejected downstream."""
    events = side.mod("events")
    down = _Downstream(side)
    sink = events.BackpressureAwareEventSink(down, max_queue_size=2)
    accepted = [sink.try_emit(type=t, data={}) for t in ("a", "bad", "c")]

    async def started() -> None:
        if side.name == "ref":
            await sink.start()
        else:
            await sink.start(nursery)
        await side.sleep(1)
        await sink.stop()

    if side.name == "ref":
        await started()
    else:
        async with trio.open_nursery() as nursery:
            await started()
    return [accepted, down.seen]


def test_backpressure_sink_records_equal_reference() -> None:
    """Drop: WARNING ``Event dropped due to backpressure`` (``event_type``, ``queue_size``,
    ``dropped_total``); start / stop: INFO (``max_queue_size``; ``metrics``); a downstream
    error: ERROR ``Failed to emit event to downstream: e`` (``event_type``, ``error``)."""
    records = _differential(backpressure_lifecycle)
    assert [r[2] for r in records] == [
        "Event dropped due to backpressure",
        "BackpressureAwareEventSink started",
        "Failed to emit event to downstream: downstream down",
        "BackpressureAwareEventSink stopped",
    ]


# --- guardrails ----------------------------------------------------------------------------


class _RaisingSink:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def emit(self, *, type: str, data: Any) -> None:  # noqa: A002
        raise self.error

    def try_emit(self, *, type: str, data: Any) -> None:  # noqa: A002
        raise self.error


def _guardrail(sink: object, *, fail: bool, log_violations: bool = False) -> Body:
    async def body(side: Side) -> Any:
        guardrails, core = side.mod("helpers.guardrails"), side.mod("core")
        config = guardrails.GuardrailConfig(fail_on_violation=fail, log_violations=log_violations)
        stage = guardrails.GuardrailStage(
            [guardrails.ContentLengthCheck(max_chars=3)], config=config
        )
        base = stage_ctx(side, input_text="far too long")
        ctx = core.StageContext(
            snapshot=base.snapshot,
            inputs=base.inputs,
            stage_name="guard",
            timer=base.timer,
            event_sink=sink,
        )
        output = await stage.execute(ctx)
        return output.status

    return body


@pytest.mark.parametrize(
    "name",
    ["fail_open_no_sink", "fail_open_sink_raises", "fail_closed", "fail_open_with_sink"],
)
def test_guardrail_records_equal_reference(name: str) -> None:
    """Fail-open without a sink: WARNING ``Guardrail fail-open audit`` with the payload;
    a fail-closed violation or an audit the sink takes: none."""
    sink: object = {
        "fail_open_no_sink": None,
        "fail_open_sink_raises": _RaisingSink(RuntimeError("sink down")),
        "fail_closed": None,
        "fail_open_with_sink": _Downstream(Side("ours")),
    }[name]
    body = _guardrail(sink, fail=name == "fail_closed")
    ours = _records("ours", body)
    ref = _records("ref", body)
    if name == "fail_open_sink_raises":
        # parity.md "Fail-open audit when the sink raises": ours adds the error text.
        assert ours[0][2] == "Failed to emit guardrail fail-open audit: sink down"
        ours[0] = (*ours[0][:2], ref[0][2], *ours[0][3:])
    assert ours == ref


# --- context helpers -----------------------------------------------------------------------


async def truncation_recorded(side: Side) -> Any:
    enrich = side.mod("context.enrich")
    tracker = enrich.TruncationTracker()
    event = tracker.record_truncation(
        original_tokens=200,
        truncated_tokens=50,
        strategy="tail",
        content_type="history",
        reason="budget",
    )
    return event.tokens_removed if hasattr(event, "tokens_removed") else None


async def enrichment_deprecations(side: Side) -> Any:
    enrichments = side.mod("context.enrichments")
    memory = enrichments.MemoryEnrichment(short_term=["a"], long_term=["b"], summary="s")
    document = enrichments.DocumentEnrichment(doc_id="d", doc_type="t", content="c")
    return [memory.recent_topics, document.document_id]


@pytest.mark.parametrize(
    "body", [truncation_recorded, enrichment_deprecations], ids=lambda body: body.__name__
)
def test_context_helper_records_equal_reference(body: Body) -> None:
    """A truncation: INFO ``Context truncated: 200 -> 50 tokens (tail, 25.0% preserved)``
    with the event's fields; each deprecated enrichment argument: a WARNING."""
    _differential(body)


# --- PipelineRunner ------------------------------------------------------------------------


def _runner(fails: bool) -> Body:
    async def body(side: Side) -> Any:
        pipeline_mod, core, helpers = side.mod("pipeline"), side.mod("core"), side.mod("helpers")

        class Work:
            name = "work"
            kind = core.StageKind.WORK

            async def execute(self, ctx: Any) -> Any:
                await side.checkpoint()
                if fails:
                    raise ValueError("stage broke")
                return core.StageOutput.ok(n=1)

        pipeline = pipeline_mod.Pipeline().with_stage("work", Work, core.StageKind.WORK)
        runner = helpers.PipelineRunner(verbose=False, colorize=False)
        result = await runner.run(pipeline, input_text="hi")
        return [result.success, result.error]

    body.__name__ = f"runner_{'fails' if fails else 'ok'}"
    return body


@pytest.mark.parametrize("fails", [False, True])
def test_pipeline_runner_records_equal_reference(fails: bool) -> None:
    """The runner adds no record of its own; the graph's records are the reference's."""
    _differential(_runner(fails))


# --- an error that cannot say what it is ---------------------------------------------------
#
# ``str(exc)`` runs the error's ``__str__``, user code that can raise. Where a failure is
# logged or turned into a message, that must not become a second, unrelated failure.

PLACEHOLDER = "<_Unprintable (str() failed)>"


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ broke")


def _stage_result(name: str) -> Any:
    from stageflow_trio.stages import StageResult

    now = datetime.now(UTC)
    return StageResult(name=name, status="completed", started_at=now, ended_at=now, data={"x": 1})


class _UnprintableValidator:
    async def validate(self, token: str) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        raise _Unprintable


class _UnprintableOrg:
    """A ``_resource_org_id`` whose comparison raises an error that cannot be printed."""

    def __ne__(self, other: object) -> bool:
        raise _Unprintable

    __hash__ = None  # type: ignore[assignment]


async def _auth_chain(ran: list[str], *, org: bool) -> None:
    from stageflow_trio.auth.interceptors import AuthInterceptor, OrgEnforcementInterceptor
    from stageflow_trio.pipeline.interceptors import BaseInterceptor, run_with_interceptors

    async def stage() -> Any:
        ran.append("stage")
        return _stage_result("s")

    ctx = pipeline_ctx(Side("ours"))
    ctx.data["_auth_token"] = VALID
    chain: list[BaseInterceptor]
    if org:
        ctx.data["_resource_org_id"] = _UnprintableOrg()
        chain = [AuthInterceptor(), OrgEnforcementInterceptor()]
    else:
        chain = [AuthInterceptor(_UnprintableValidator())]
    await run_with_interceptors("s", stage, ctx, chain)


@pytest.mark.parametrize("org", [False, True], ids=["auth", "org_enforcement"])
async def test_auth_check_failing_with_an_unprintable_error_still_fails_closed(
    autojump_clock: trio.testing.MockClock, org: bool
) -> None:
    """A check that fails raises CriticalInterceptorError so the stage does not run
    (parity.md "Auth and tenancy"). Building its message called ``str`` on the error; one
    whose ``__str__`` raised escaped as that RuntimeError instead, which the chain logs
    and swallows like any hook error: the stage ran unauthenticated."""
    from stageflow_trio.pipeline.interceptors import CriticalInterceptorError

    ran: list[str] = []
    with pytest.raises(CriticalInterceptorError) as caught:
        await _auth_chain(ran, org=org)
    assert ran == []
    name = "org_enforcement" if org else "auth"
    assert str(caught.value) == (
        f"{name} interceptor failed, so stage 's' does not run: _Unprintable: {PLACEHOLDER}"
    )
    assert isinstance(caught.value.__cause__, _Unprintable)


class _UnprintableDownstream:
    async def emit(self, *, type: str, data: Any) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()
        raise _Unprintable

    def try_emit(self, *, type: str, data: Any) -> None:  # noqa: A002
        raise _Unprintable


async def test_backpressure_downstream_error_that_cannot_be_printed_is_counted(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A downstream rejection is logged, counted and passed to ``on_drop`` (parity.md
    "Downstream errors"). The record's ``extra`` called ``str`` on the error: one whose
    ``__str__`` raised killed the worker, and ``async with sink:`` failed with it."""
    from stageflow_trio.events import BackpressureAwareEventSink

    dropped: list[str] = []
    caplog.set_level(logging.ERROR, logger="stageflow_trio.events.backpressure")
    sink = BackpressureAwareEventSink(
        _UnprintableDownstream(), on_drop=lambda kind, data: dropped.append(kind)
    )
    async with sink:
        assert sink.try_emit(type="a", data={})
        await trio.sleep(1)
        assert sink.try_emit(type="b", data={})  # the worker still runs
        await trio.sleep(1)
    assert sink.metrics.downstream_errors == 2
    assert dropped == ["a", "b"]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"Failed to emit event to downstream: {PLACEHOLDER}"] * 2
    assert [getattr(r, "error", None) for r in caplog.records] == [PLACEHOLDER] * 2


@pytest.mark.parametrize("log_violations", [False, True])
async def test_guardrail_sink_error_that_cannot_be_printed_does_not_fail_the_stage(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture, log_violations: bool
) -> None:
    """parity.md "guardrail.violations_detected when the sink raises": a broken sink never
    fails the stage. Its error was put in the record with ``str``: one whose ``__str__``
    raised escaped from ``execute``."""
    caplog.set_level(logging.WARNING, logger="stageflow_trio.helpers.guardrails")
    body = _guardrail(_RaisingSink(_Unprintable()), fail=False, log_violations=log_violations)
    status = await body(Side("ours"))
    assert status.value == "ok"
    warnings = [r.getMessage() for r in caplog.records]
    expected = [f"Failed to emit guardrail fail-open audit: {PLACEHOLDER}"]
    if log_violations:
        expected.insert(0, f"Failed to emit guardrail.violations_detected: {PLACEHOLDER}")
    assert warnings == [*expected, "Guardrail fail-open audit"]


async def test_child_error_that_cannot_be_printed_is_the_child_failure(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A child's exception becomes a failed SubpipelineResult and an ERROR record. Its
    text was taken with ``str``: one whose ``__str__`` raised escaped from ``spawn``
    instead, as a RuntimeError unrelated to the child (the reference's f-string too)."""
    from stageflow_trio.pipeline import ChildRunTracker, SubpipelineSpawner

    caplog.set_level(logging.ERROR, logger="stageflow_trio.subpipeline")
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())

    async def runner(child: Any) -> Any:
        await trio.lowlevel.checkpoint()
        raise _Unprintable

    ctx = pipeline_ctx(Side("ours"))
    result = await spawner.spawn("child", ctx, uuid.UUID(int=3), "tool", runner)
    assert not result.success
    assert result.error == PLACEHOLDER
    [record] = caplog.records
    assert record.getMessage() == f"Child pipeline {result.child_run_id} failed: {PLACEHOLDER}"


# The same, where the lead's review found the pattern again: each place below took a
# user error's text with ``str`` while reporting it, so an error whose ``__str__``
# raised became that RuntimeError instead.


async def test_unified_stage_with_an_unprintable_error_fails_as_that_stage() -> None:
    from stageflow_trio.advanced import UnifiedStageExecutionError
    from stageflow_trio.api import Pipeline, StageContext, StageOutput

    async def broken(ctx: StageContext) -> StageOutput:
        raise _Unprintable

    with pytest.raises(UnifiedStageExecutionError) as caught:
        await Pipeline().with_stage("b", broken, "work").run(input_text="x")
    assert isinstance(caught.value.original, _Unprintable)
    assert str(caught.value) == f"Stage 'b' failed: {PLACEHOLDER}"


async def test_with_error_handling_keeps_an_unprintable_error_as_the_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from stageflow_trio.pipeline.dag import StageExecutionError
    from stageflow_trio.stages import StageError
    from stageflow_trio.stages.errors import with_error_handling

    @with_error_handling("load")
    async def load() -> None:
        raise _Unprintable

    class _UnprintableStageError(StageError):
        def __str__(self) -> str:
            raise RuntimeError("__str__ broke")

    @with_error_handling("save")
    async def save() -> None:
        raise _UnprintableStageError("save", ValueError("x"))

    with caplog.at_level(logging.WARNING), pytest.raises(StageExecutionError) as caught:
        await load()
    assert isinstance(caught.value.original, _Unprintable)
    assert str(caught.value) == f"Stage load failed: {PLACEHOLDER}"
    with pytest.raises(_UnprintableStageError):
        await save()
    assert [getattr(r, "error", None) for r in caplog.records] == [
        PLACEHOLDER,
        "<_UnprintableStageError (str() failed)>",
    ]


def test_error_logging_helpers_describe_an_unprintable_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from stageflow_trio.stages.errors import log_debug_failure

    with caplog.at_level(logging.ERROR):
        log_debug_failure("op", _Unprintable())
    [record] = caplog.records
    assert getattr(record, "error_message", None) == PLACEHOLDER


def test_a_conditional_dependency_whose_lookup_fails_unprintably_runs_the_stage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import types

    from stageflow_trio.pipeline.failure_tolerance import ConditionalDependency

    class _Data:
        def get(self, key: str) -> object:
            raise _Unprintable

    condition = ConditionalDependency(stage="b", predicate="a:ready")
    with caplog.at_level(logging.WARNING):
        assert condition.evaluate({"a": types.SimpleNamespace(data=_Data())}) is True
    assert [getattr(r, "error", None) for r in caplog.records] == [PLACEHOLDER]


async def test_a_wide_event_sink_error_that_cannot_be_printed_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from stageflow_trio.api import Pipeline, StageContext, StageOutput

    class _Sink:
        async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            await trio.lowlevel.checkpoint()

        def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            if type.endswith(".wide"):
                raise _Unprintable

    async def work(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(done=True)

    with caplog.at_level(logging.WARNING):
        results = await (
            Pipeline()
            .with_stage("w", work, "work")
            .run(input_text="x", event_sink=_Sink(), emit_stage_wide_events=True)
        )
    assert results["w"].data == {"done": True}
    assert PLACEHOLDER in [getattr(r, "error", None) for r in caplog.records]
