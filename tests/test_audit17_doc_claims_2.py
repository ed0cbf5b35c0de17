"""Audit 17, second pass: prose claims of the guides (getting_started from its typed payloads on,
agent, tools, helpers, builders, migration, runner, tracing, analytics, auth, contracts, duplex,
concepts), pinned where no other test did.

Each test quotes the sentence it pins; the audit's full list of checked claims is in the
lead's notes. Claims whose doc sentence this audit corrected are marked "(corrected)".
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest
import trio

import stageflow_trio.tools as tools_package
from stageflow_trio.api import (
    Pipeline,
    StageCancellationRequested,
    StageContext,
    StageOutput,
    StagePayloadResult,
    ok_output,
    payload_from_inputs,
)
from stageflow_trio.contracts import ContractRegistry
from stageflow_trio.events import get_event_sink, set_event_sink
from stageflow_trio.helpers.guardrails import ContentLengthCheck, ViolationType
from stageflow_trio.helpers.run_utils import PipelineRunner
from stageflow_trio.observability import summarize_pipeline_error
from stageflow_trio.pipeline import (
    DuplexLaneSpec,
    DuplexSystemSpec,
    GuardRetryPolicy,
    GuardRetryStrategy,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    with_duplex_system,
)
from stageflow_trio.pipeline.builder import PipelineBuilder
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context
from stageflow_trio.tools import BaseTool, ToolRegistry
from stageflow_trio.tools.base import ToolInput
from stageflow_trio.tools.base import ToolOutput as V1ToolOutput

# --- getting_started.md ------------------------------------------------------------------


async def test_getting_started_stage_cancellation_requested_stops_the_run_with_results() -> None:
    """getting_started.md: "A stage that finds nothing to do can raise
    `StageCancellationRequested(reason)`: the run stops there, as with
    `StageOutput.cancel(reason=...)`, and `UnifiedPipelineCancelled` carries the results so
    far"."""
    ran: list[str] = []

    async def first(ctx: StageContext) -> StageOutput:
        return ok_output(StagePayloadResult(payload=1))

    async def stop(ctx: StageContext) -> StageOutput:
        raise StageCancellationRequested("nothing to do")

    async def later(ctx: StageContext) -> None:
        ran.append("later")

    pipeline = (
        Pipeline()
        .with_stage("first", first, "transform")
        .with_stage("stop", stop, "transform", dependencies=("first",))
        .with_stage("later", later, "work", dependencies=("stop",))
    )
    with pytest.raises(UnifiedPipelineCancelled) as info:
        await pipeline.run()
    assert info.value.reason == "nothing to do"
    assert "first" in info.value.results
    assert ran == []


async def test_getting_started_payload_from_inputs_type_error_names_the_stage() -> None:
    """getting_started.md: "both take `expected_type=` and raise a `TypeError` naming the stage
    when the payload is something else"."""
    errors: list[str] = []

    async def produce(ctx: StageContext) -> StageOutput:
        return ok_output(StagePayloadResult(payload=3))

    async def consume(ctx: StageContext) -> None:
        try:
            payload_from_inputs(ctx, "produce", expected_type=str)
        except TypeError as exc:
            errors.append(str(exc))

    await (
        Pipeline()
        .with_stage("produce", produce, "transform")
        .with_stage("consume", consume, "work", dependencies=("produce",))
        .run()
    )
    assert errors == ["Stage 'produce' payload from stage inputs did not match str; got int"]


async def test_getting_started_run_default_chain_has_no_circuit_breaker() -> None:
    """getting_started.md: "`run()` sends each stage through the default interceptors that act
    within one run: tracing, metrics, child-tracker metrics and logging, plus a timeout
    interceptor" (no circuit breaker: six failing runs all call the stage)."""
    calls: list[int] = []

    async def flaky(ctx: StageContext) -> None:
        calls.append(1)
        raise ConnectionError("down")

    failing = Pipeline().with_stage("call", flaky, "work")
    for _ in range(6):
        with pytest.raises(UnifiedStageExecutionError, match="down"):
            await failing.run()
    assert len(calls) == 6


# --- tools.md ----------------------------------------------------------------------------


class _Tool(BaseTool):
    def __init__(self, label: str) -> None:
        self.label = label

    name = "t"
    description = ""
    action_type = "t"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> V1ToolOutput:  # noqa: A002
        return V1ToolOutput(success=True, data={"label": self.label})


def test_tools_an_instance_wins_over_a_factory() -> None:
    """tools.md: "`register_tool(instance)` registers a ready instance; an instance wins over a
    factory for the same action type"."""
    registry = ToolRegistry()
    registry.register_factory("t", lambda: _Tool("factory"))
    registry.register(_Tool("instance"))
    tool = registry.get_tool("t")
    assert isinstance(tool, _Tool)
    assert tool.label == "instance"


def test_tools_v1_tool_output_checks_fields_v2_does_not() -> None:
    """tools.md (corrected): "This v1 `ToolOutput(...)`, imported from
    `stageflow_trio.tools.base` ... raises a `TypeError` naming the field when `success` is not
    a bool" and "The `ToolOutput` of `stageflow_trio.tools` itself is the v2 one ... which,
    like the reference's, does not check its fields"."""
    with pytest.raises(TypeError, match="success must be a bool"):
        V1ToolOutput(success=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="artifacts must be"):
        V1ToolOutput(success=True, artifacts={"a": 1})  # type: ignore[arg-type]
    v2: object = tools_package.ToolOutput
    assert v2 is not V1ToolOutput
    assert tools_package.ToolOutput(success=1).success == 1  # type: ignore[arg-type]


# --- helpers.md --------------------------------------------------------------------------


def test_helpers_content_length_check_tokens_and_min_chars() -> None:
    """helpers.md: "`ContentLengthCheck(max_chars=0, max_tokens=0, min_chars=0)` | length in
    characters and in tokens (`chars // 4`) | `CONTENT_TOO_LONG`, 0.5; `CUSTOM`, 0.3 under
    `min_chars`"."""
    result = ContentLengthCheck(max_chars=3, max_tokens=1, min_chars=100).check("hello world")
    found = [(v.type, v.severity) for v in result.violations]
    assert found == [
        (ViolationType.CONTENT_TOO_LONG, 0.5),
        (ViolationType.CONTENT_TOO_LONG, 0.5),
        (ViolationType.CUSTOM, 0.3),
    ]
    assert result.metadata["token_count"] == len("hello world") // 4
    assert ContentLengthCheck().check("x" * 10_000).passed  # 0: no limit


# --- builders.md -------------------------------------------------------------------------


async def _noop(ctx: Any) -> None:
    return None


class _Other:
    async def execute(self, ctx: Any) -> None:
        return None


def test_builders_compose_right_wins_left_name_kept_and_builder_name_joined() -> None:
    """builders.md: "`compose` | right-hand stages win, left name kept | `"{left}+{right}"`,
    conflicting definitions raise"."""
    other = _Other()
    left = Pipeline(name="L").with_stage("a", _noop, "work")
    composed = left.compose(Pipeline(name="R").with_stage("a", other, "work"))
    spec = composed.get_stage("a")
    assert spec is not None
    assert spec.runner is other
    assert composed.name == "L"
    assert left.get_stage("a") is not None
    joined = PipelineBuilder(name="l").compose(PipelineBuilder(name="r"))
    assert joined.name == "l+r"


# --- migration.md ------------------------------------------------------------------------


async def test_migration_guard_failure_event_comes_before_guard_retry_attempt(
    autojump_clock: trio.abc.Clock,
) -> None:
    """migration.md: "The sink sees `stage.policy.failed` before `guard_retry.attempt` and a
    second `stage.draft.started` for the re-run"."""
    verdicts = iter([False, True])

    async def draft(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text="x")

    async def policy(ctx: StageContext) -> StageOutput:
        return StageOutput.ok() if next(verdicts) else StageOutput.fail(error="too short")

    graph = (
        Pipeline()
        .with_stage("draft", draft, "transform")
        .with_stage("policy", policy, "guard", dependencies=("draft",))
        .build(guard_retry_strategy=GuardRetryStrategy({"policy": GuardRetryPolicy("draft")}))
    )
    sink = RecordingEventSink()
    await graph.run(create_test_stage_context(event_sink=sink))
    types = sink.types()
    assert types.index("stage.policy.failed") < types.index("guard_retry.attempt")
    assert types.count("stage.draft.started") == 2
    assert types[-1] == "pipeline_completed"


# --- runner.md ---------------------------------------------------------------------------


async def test_runner_restores_the_global_sink_and_lets_cancelled_through(
    autojump_clock: trio.abc.Clock,
) -> None:
    """runner.md: "When `run` returns (or raises), the global sink is the one that was there
    before. A cancel scope around the call is never turned into a result: `trio.Cancelled`
    propagates"."""
    seen: list[str] = []

    async def look(ctx: StageContext) -> None:
        seen.append(type(get_event_sink()).__name__)

    async def hang(ctx: StageContext) -> None:
        await trio.sleep(100)

    mine = RecordingEventSink()
    set_event_sink(mine)
    runner = PipelineRunner(verbose=False)
    result = await runner.run(Pipeline().with_stage("look", look, "work"))
    assert result.success
    assert seen == ["ObservableEventSink"]
    assert get_event_sink() is mine
    with trio.move_on_after(1) as scope:
        await runner.run(Pipeline().with_stage("hang", hang, "work"))
    assert scope.cancelled_caught
    assert get_event_sink() is mine


# --- tracing.md --------------------------------------------------------------------------


def test_tracing_error_summary_codes_and_message_cut() -> None:
    """tracing.md: "`TIMEOUT` for `TimeoutError` and `trio.TooSlowError`, `CIRCUIT_OPEN` when
    the message mentions a circuit breaker ..., else `UNKNOWN`; the message is cut to 500
    characters"."""
    assert summarize_pipeline_error(trio.TooSlowError())["code"] == "TIMEOUT"
    assert summarize_pipeline_error(TimeoutError("t"))["code"] == "TIMEOUT"
    assert summarize_pipeline_error(RuntimeError("Circuit breaker open"))["code"] == "CIRCUIT_OPEN"
    long = summarize_pipeline_error(ValueError("x" * 1000))
    assert (long["code"], len(long["message"])) == ("UNKNOWN", 500)
    assert set(long) == {"code", "type", "message", "retryable"}


# --- contracts.md ------------------------------------------------------------------------


@attrs.frozen
class _Model:
    x: int


def test_contracts_types_may_widen_or_drop_null_anything_else_breaks() -> None:
    """contracts.md: "a field's JSON types may widen (`"integer"` to `["integer", "string"]`) or
    drop `"null"`, anything else is breaking"."""
    registry = ContractRegistry()
    for version, types in [
        ("1", "integer"),
        ("2", ["integer", "string"]),
        ("3", ["integer", "null"]),
    ]:
        registry.register(
            stage="s",
            version=version,
            model=_Model,
            schema={"properties": {"x": {"type": types}}, "required": ["x"]},
        )
    assert registry.diff("s", "1", "2").breaking_changes == []
    assert registry.diff("s", "3", "1").breaking_changes == []
    assert registry.diff("s", "2", "1").breaking_changes == [
        "Field 'x' changed types {'integer', 'string'} -> {'integer'}"
    ]


# --- duplex.md ---------------------------------------------------------------------------


def test_duplex_join_depends_on_both_lane_ends_then_join_depends_on_once_each() -> None:
    """duplex.md: "an optional join stage, which depends on the forward lane's last stage, the
    reverse lane's last stage, then `join_depends_on` (each name once)"."""
    system = DuplexSystemSpec(
        DuplexLaneSpec([("a", _noop), ("b", _noop)]),
        DuplexLaneSpec([("c", _noop)], depends_on=("x",)),
        join_stage=("j", _noop),
        join_depends_on=("b", "x"),
    )
    builder = with_duplex_system(PipelineBuilder().with_stage("x", _noop), system)
    deps = {name: spec.dependencies for name, spec in builder.stages.items()}
    assert deps == {"x": (), "a": (), "b": ("a",), "c": ("x",), "j": ("b", "c", "x")}


# --- concepts.md -------------------------------------------------------------------------


async def test_concepts_a_dict_or_none_returned_becomes_ok() -> None:
    """concepts.md: "A `dict` or `None` returned instead becomes `ok(...)`"."""

    async def as_dict(ctx: StageContext) -> dict[str, int]:
        return {"a": 1}

    results = await Pipeline().with_stage("d", as_dict, "work").with_stage("n", _noop, "work").run()
    ok = StageOutput.ok().status
    assert (results["d"].status, dict(results["d"].data)) == (ok, {"a": 1})
    assert (results["n"].status, dict(results["n"].data)) == (ok, {})


async def test_concepts_mark_canceled_runs_each_callback_once_and_logs_errors(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """concepts.md: "`pipeline_ctx.mark_canceled(reason)` stops every run started with that
    `PipelineContext` the same way (the callbacks given to `pipeline_ctx.on_cancel` each run
    once; an error in one is logged and the others still run)"."""
    order: list[str] = []

    def bad(reason: str) -> None:
        order.append("bad")
        raise RuntimeError("callback down")

    async def hang(ctx: StageContext) -> None:
        await trio.sleep(100)

    ctx = PipelineContext.create()
    ctx.on_cancel(bad)
    ctx.on_cancel(lambda reason: order.append(f"ok:{reason}"))
    reasons: list[str] = []

    async def run_one() -> None:
        with pytest.raises(UnifiedPipelineCancelled) as info:
            await Pipeline().with_stage("hang", hang, "work").run(ctx)
        reasons.append(info.value.reason)

    with caplog.at_level(logging.ERROR):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_one)
            nursery.start_soon(run_one)
            await trio.sleep(1)
            ctx.mark_canceled("stop")
        ctx.mark_canceled("again")
    assert reasons == ["stop", "stop"]
    assert order == ["bad", "ok:stop"]
    assert "cancellation callback" in caplog.text
