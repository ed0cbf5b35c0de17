"""Pipeline.run / invoke, run_stage, stage(), from_stages and the 1.2.0 with_stage forms."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.context import Conversation
from stageflow_trio.core import StageContext, StageKind, StageOutput, stage_metadata
from stageflow_trio.core.stage_output import StageArtifact
from stageflow_trio.events import set_event_sink
from stageflow_trio.pipeline import (
    CancellationToken,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
)
from stageflow_trio.pipeline import pipeline as pipeline_module
from stageflow_trio.pipeline._checks import StageDefinitionError, StageDefinitionTypeError
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CircuitBreakerInterceptor,
    InterceptorResult,
    LoggingInterceptor,
    TimeoutInterceptor,
)
from stageflow_trio.pipeline.pipeline import (
    _ONE_STAGE_PIPELINES,
    Pipeline,
    UnifiedStageSpec,
    _default_chain,
    run_stage,
    stage,
)
from stageflow_trio.pipeline.results import PipelineResults
from stageflow_trio.pipeline.spec import PipelineConfigError
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.ports import CorePorts
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context, reset_globals

USER = uuid.UUID("6f1c2f0e-54b1-4a9e-9a59-2b3a2f6f0c11")


async def snapshot_fields(ctx: StageContext) -> dict[str, Any]:
    s = ctx.snapshot
    return {
        "text": s.input_text,
        "topology": s.topology,
        "mode": s.execution_mode,
        "user_id": s.user_id,
        "run_id": s.pipeline_run_id,
        "audio": s.input_audio_duration_ms,
        "conversation": s.conversation,
        "metadata": dict(s.metadata),
        "ports": ctx.inputs.ports,
    }


def echo_pipeline(name: str = "pipeline") -> Pipeline:
    return Pipeline(name).with_stage("echo", snapshot_fields, StageKind.TRANSFORM)


class Greeter:
    kind = "transform"

    def __init__(self, greeting: str = "hello") -> None:
        self.greeting = greeting

    async def execute(self, ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text=f"{self.greeting}, {ctx.snapshot.input_text}")


# --- Pipeline.run ---------------------------------------------------------------


async def test_run_builds_the_context_from_keywords() -> None:
    conversation = Conversation()
    results = await echo_pipeline().run(
        input_text="hi",
        execution_mode="practice",
        user_id=str(USER),
        input_audio_duration_ms=120,
        conversation=conversation,
        metadata={"k": 1},
    )
    assert type(results) is PipelineResults
    assert results.data("echo") == {
        "text": "hi",
        "topology": "pipeline",
        "mode": "practice",
        "user_id": USER,
        "run_id": None,
        "audio": 120,
        "conversation": conversation,
        "metadata": {"k": 1},
        "ports": None,
    }


async def test_run_passes_ports_and_leaves_none_fields_at_their_defaults() -> None:
    ports = CorePorts()
    results = await echo_pipeline().run(ports=ports, input_text=None, metadata=None)
    assert results.data("echo")["ports"] is ports
    assert (results.data("echo")["text"], results.data("echo")["metadata"]) == (None, {})


async def test_run_topology_defaults_to_the_pipeline_name() -> None:
    assert (await echo_pipeline("chat").run()).data("echo")["topology"] == "chat"
    assert (await echo_pipeline("chat").run(topology="t")).data("echo")["topology"] == "t"


async def test_run_passes_the_event_sink() -> None:
    sink = RecordingEventSink()
    await echo_pipeline().run(event_sink=sink)
    assert sink.types() == [
        "stage.echo.started",
        "stage.echo.completed",
        "pipeline_completed",
    ]


async def test_run_with_a_stage_context() -> None:
    ctx = create_test_stage_context(input_text="from ctx")
    results = await echo_pipeline().run(ctx)
    assert results.data("echo")["text"] == "from ctx"


async def test_run_rejects_a_context_and_keywords() -> None:
    ctx = create_test_stage_context()
    with pytest.raises(
        ValueError, match=r"^Pass either ctx or PipelineContext keyword fields, not both$"
    ):
        await echo_pipeline().run(ctx, input_text="x")


class SeeContext(BaseInterceptor):
    """Records what the interceptors see of the run's context, once per stage."""

    name = "see_context"
    priority = 1

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def before(self, stage_name: str, ctx: Any) -> None:
        self.seen.append(
            {
                "type": type(ctx),
                "data": {k: v for k, v in ctx.data.items() if not k.startswith("_")},
                "configuration": ctx.configuration,
                "service": ctx.service,
                "db": ctx.db,
                "artifacts": ctx.artifacts,
                "topology": ctx.topology,
            }
        )

    async def after(self, stage_name: str, result: StageResult, ctx: Any) -> None:
        return None


async def test_run_builds_a_pipeline_context_from_its_only_fields() -> None:
    """As 1.2.0: the keywords go to PipelineContext.create; the interceptors see that context."""
    data = {"k": 1}
    configuration = {"c": 2}
    artifact = StageArtifact(type="text", payload={"x": 1})
    see = SeeContext()
    results = await echo_pipeline().run(
        data=data,
        configuration=configuration,
        service="svc",
        db="DB",
        artifacts=(artifact,),
        canceled=False,
        interceptors=[see],
    )
    assert see.seen == [
        {
            "type": PipelineContext,
            "data": {"k": 1},
            "configuration": {"c": 2},
            "service": "svc",
            "db": "DB",
            "artifacts": [artifact],
            "topology": "pipeline",
        }
    ]
    ports = results.data("echo")["ports"]
    assert (type(ports), ports.db) == (CorePorts, "DB")  # core ports around db, as 1.2.0
    see.seen[0]["data"]["k"] = 99  # create copied the dicts
    assert (data, configuration) == ({"k": 1}, {"c": 2})


async def test_run_data_timeout_applies_through_the_default_chain(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def slow(ctx: StageContext) -> None:
        await trio.sleep(100)

    start = trio.current_time()
    with pytest.raises(
        UnifiedStageExecutionError, match=r"^Stage 'slow' failed: Stage timed out after 2500ms$"
    ):
        await Pipeline().with_stage("slow", slow, "work").run(data={"_timeout_ms": 2500})
    assert trio.current_time() - start == 2.5


async def test_run_takes_any_mapping_for_the_dict_fields() -> None:
    see = SeeContext()
    await echo_pipeline().run(
        data=MappingProxyType({"k": 1}),
        configuration=MappingProxyType({"c": 2}),
        metadata=MappingProxyType({"m": 3}),
        interceptors=[see],
    )
    assert (type(see.seen[0]["data"]), see.seen[0]["data"]) == (dict, {"k": 1})
    assert (type(see.seen[0]["configuration"]), see.seen[0]["configuration"]) == (dict, {"c": 2})


async def test_run_with_canceled_true_runs_no_stage() -> None:
    ran: list[str] = []

    async def body(ctx: StageContext) -> None:
        ran.append("ran")

    with pytest.raises(UnifiedPipelineCancelled) as info:
        await Pipeline().with_stage("s", body, "work").run(canceled=True)
    # 1.2.0's reason for a context canceled without one.
    assert (info.value.stage, info.value.reason, dict(info.value.results), ran) == (
        "<external>",
        "Cancelled",
        {},
        [],
    )


async def test_run_without_event_sink_uses_the_global_sink() -> None:
    """As 1.2.0's PipelineContext.create: the global sink when none is passed."""
    sink = RecordingEventSink()
    set_event_sink(sink)
    await echo_pipeline().run(service="svc")
    assert sink.types() == ["stage.echo.started", "stage.echo.completed", "pipeline_completed"]
    data = sink.events[0][1]
    assert data is not None
    assert data["service"] == "svc"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("data", 5, "data must be a mapping or None; got int"),
        ("data", [], "data must be a mapping or None; got list"),
        ("configuration", "x", "configuration must be a mapping or None; got str"),
        ("metadata", 1.5, "metadata must be a mapping or None; got float"),
        ("artifacts", "ab", "artifacts must be a list of StageArtifact or None; got str"),
        ("artifacts", 3, "artifacts must be a list of StageArtifact or None; got int"),
        ("artifacts", {"a": 1}, "artifacts must be a list of StageArtifact or None; got dict"),
    ],
)
async def test_run_rejects_bad_pipeline_context_fields(key: str, value: Any, expected: str) -> None:
    with pytest.raises(TypeError, match=rf"^Pipeline\.run: {re.escape(expected)}$"):
        await echo_pipeline().run(**{key: value})


async def test_run_rejects_unknown_keywords() -> None:
    with pytest.raises(
        TypeError, match=r"^Pipeline\.run\(\) got an unexpected keyword argument 'inpt_text'$"
    ):
        await echo_pipeline().run(inpt_text="x")


async def test_run_is_a_checkpoint() -> None:
    pipeline = echo_pipeline()
    with trio.testing.assert_checkpoints():
        await pipeline.run()


async def test_run_returns_every_stage_in_a_chain() -> None:
    async def upper(ctx: StageContext) -> dict[str, Any]:
        return {"text": str(ctx.inputs.get_from("echo", "text")).upper()}

    pipeline = echo_pipeline().with_stage("upper", upper, "transform", after="echo")
    results = await pipeline.run(input_text="abc")
    assert list(results) == ["echo", "upper"]
    assert results.data("upper") == {"text": "ABC"}


async def test_run_raises_the_stage_error() -> None:
    async def boom(ctx: StageContext) -> None:
        raise RuntimeError("boom")

    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'b' failed: boom$"):
        await Pipeline().with_stage("b", boom, "work").run()


async def test_run_raises_when_a_stage_cancels() -> None:
    async def stop(ctx: StageContext) -> StageOutput:
        return StageOutput.cancel(reason="enough")

    with pytest.raises(UnifiedPipelineCancelled):
        await Pipeline().with_stage("s", stop, "route").run()


async def test_run_cancel_token_stops_the_run(autojump_clock: trio.abc.Clock) -> None:
    token = CancellationToken()

    async def slow(ctx: StageContext) -> None:
        await trio.sleep(10)

    async def cancel_later() -> None:
        await trio.sleep(3)
        token.cancel("stop")

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(UnifiedPipelineCancelled):
            await Pipeline().with_stage("slow", slow, "work").run(cancel_token=token)
    assert trio.current_time() - start == 3


# --- interceptors: defaults, opting out, timeouts, circuit breaker ------------------


def test_default_chain_is_the_per_run_defaults_without_a_timeout() -> None:
    chain = _default_chain()
    assert [i.name for i in chain] == [
        "timeout",
        "tracing",
        "metrics",
        "child_tracker_metrics",
        "logging",
    ]
    timeout = chain[0]
    assert isinstance(timeout, TimeoutInterceptor)
    assert timeout.DEFAULT_TIMEOUT_MS == 0
    assert TimeoutInterceptor.DEFAULT_TIMEOUT_MS == 30000  # the class is untouched
    assert _default_chain() is chain  # stateless: one chain for every run


async def test_run_keeps_the_graph_of_its_default_options() -> None:
    pipeline = echo_pipeline()
    await pipeline.run()
    graph = pipeline._run_graph
    assert graph is not None
    await pipeline.run(input_text="again")
    assert pipeline._run_graph is graph
    await pipeline.run(interceptors=[])  # other options build a graph for the call
    assert pipeline._run_graph is graph
    assert pipeline.with_stage("x", snapshot_fields, "work")._run_graph is None


async def test_a_timeout_from_context_data_applies(autojump_clock: trio.abc.Clock) -> None:
    async def slow(ctx: StageContext) -> None:
        await trio.sleep(100)

    class SetTimeout(BaseInterceptor):
        # Stands in for a PipelineContext run whose data holds _timeout_ms.
        name = "set_timeout"
        priority = 1

        async def before(self, stage_name: str, ctx: Any) -> None:
            ctx.data["_timeout_ms"] = 2500

        async def after(self, stage_name: str, result: StageResult, ctx: Any) -> None:
            return None

    start = trio.current_time()
    with pytest.raises(
        UnifiedStageExecutionError, match=r"^Stage 'slow' failed: Stage timed out after 2500ms$"
    ):
        await (
            Pipeline()
            .with_stage("slow", slow, "work")
            .run(interceptors=[SetTimeout(), *_default_chain()])
        )
    assert trio.current_time() - start == 2.5


def _stage_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "stageflow_trio.stage_interceptor"]


async def test_run_uses_the_default_chain(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stageflow_trio.stage_interceptor")
    await echo_pipeline().run()
    assert _stage_log(caplog) == ["Stage starting: echo", "Stage completed: echo - completed"]


async def test_empty_interceptors_opt_out_of_the_defaults(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="stageflow_trio.stage_interceptor")
    await echo_pipeline().run(interceptors=[])
    assert _stage_log(caplog) == []


async def test_default_chain_sets_no_timeout(autojump_clock: trio.abc.Clock) -> None:
    async def slow(ctx: StageContext) -> dict[str, float]:
        await trio.sleep(3600)
        return {"slept": 3600}

    start = trio.current_time()
    results = await Pipeline().with_stage("slow", slow, "work").run()
    assert results.data("slow") == {"slept": 3600}
    assert trio.current_time() - start == 3600


async def test_a_chain_without_timeout_interceptor_sets_no_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def slow(ctx: StageContext) -> None:
        await trio.sleep(100)

    start = trio.current_time()
    results = (
        await Pipeline().with_stage("slow", slow, "work").run(interceptors=[LoggingInterceptor()])
    )
    assert results.ok("slow")
    assert trio.current_time() - start == 100


async def test_a_timeout_interceptor_passed_in_applies_its_30s(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def slow(ctx: StageContext) -> None:
        await trio.sleep(100)

    start = trio.current_time()
    with pytest.raises(
        UnifiedStageExecutionError, match=r"^Stage 'slow' failed: Stage timed out after 30000ms$"
    ):
        await Pipeline().with_stage("slow", slow, "work").run(interceptors=[TimeoutInterceptor()])
    assert trio.current_time() - start == 30


async def test_an_open_circuit_breaker_fails_the_stage_without_running_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    calls: list[float] = []

    async def failing(ctx: StageContext) -> None:
        calls.append(trio.current_time())
        raise RuntimeError("boom")

    breaker = CircuitBreakerInterceptor()
    pipeline = Pipeline().with_stage("f", failing, "work")
    for _ in range(5):
        with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'f' failed: boom$"):
            await pipeline.run(interceptors=[breaker])
    assert breaker.state("f") == "open"
    with pytest.raises(
        UnifiedStageExecutionError, match=r"^Stage 'f' failed: Circuit breaker open for f$"
    ):
        await pipeline.run(interceptors=[breaker])
    assert len(calls) == 5  # the stage did not run
    await trio.sleep(31)  # past the reset time: half-open, the stage runs again
    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'f' failed: boom$"):
        await pipeline.run(interceptors=[breaker])
    assert len(calls) == 6


async def test_an_error_free_short_circuit_is_still_ok() -> None:
    """A replay-style short-circuit (no error) gives the interceptor's data as OK."""

    class Replay(BaseInterceptor):
        name = "replay"
        priority = 1

        async def before(self, stage_name: str, ctx: Any) -> InterceptorResult:
            return InterceptorResult(stage_ran=False, result={"cached": True})

        async def after(self, stage_name: str, result: StageResult, ctx: Any) -> None:
            return None

    ran: list[int] = []

    async def body(ctx: StageContext) -> None:
        ran.append(1)

    results = await Pipeline().with_stage("s", body, "work").run(interceptors=[Replay()])
    assert (results.require_ok("s").data, ran) == ({"cached": True}, [])


# --- invoke ---------------------------------------------------------------------


async def test_invoke_takes_input_text_or_a_context() -> None:
    pipeline = echo_pipeline()
    assert (await pipeline.invoke("positional")).data("echo")["text"] == "positional"
    assert (await pipeline.invoke(input_text="kw")).data("echo")["text"] == "kw"
    assert (await pipeline.invoke()).data("echo")["text"] is None
    ctx = create_test_stage_context(input_text="ctx")
    assert (await pipeline.invoke(ctx)).data("echo")["text"] == "ctx"


async def test_invoke_passes_pipeline_context_fields() -> None:
    see = SeeContext()
    results = await echo_pipeline().invoke("hi", data={"k": 1}, db="DB", interceptors=[see])
    assert (see.seen[0]["data"], see.seen[0]["db"]) == ({"k": 1}, "DB")
    assert results.data("echo")["text"] == "hi"


async def test_invoke_argument_errors() -> None:
    pipeline = echo_pipeline()
    with pytest.raises(ValueError, match=r"^input_text provided twice$"):
        await pipeline.invoke("a", input_text="b")
    ctx = create_test_stage_context()
    with pytest.raises(
        ValueError, match=r"^Do not pass input_text when invoke\(\) receives a context object$"
    ):
        await pipeline.invoke(ctx, input_text="b")
    # 1.2.0 drops other context keywords given with a context; they are an error here.
    with pytest.raises(
        ValueError, match=r"^Pass either ctx or PipelineContext keyword fields, not both$"
    ):
        await pipeline.invoke(ctx, topology="t")
    with pytest.raises(
        TypeError,
        match=r"^Pipeline\.invoke: input_text_or_ctx must be a str, a StageContext, a "
        r"PipelineContext or None; got int$",
    ):
        await pipeline.invoke(5)  # type: ignore[arg-type]


# --- run_stage ------------------------------------------------------------------


async def test_run_stage_returns_the_output() -> None:
    output = await run_stage("greet", Greeter, config={"greeting": "hey"}, input_text="bob")
    assert (output.status, dict(output.data)) == (StageOutput.ok().status, {"text": "hey, bob"})


async def test_run_stage_topology() -> None:
    plain = await run_stage("echo", snapshot_fields, "transform")
    named = await run_stage("echo", snapshot_fields, "transform", topology="custom")
    assert (plain.data["topology"], named.data["topology"]) == ("echo_pipeline", "custom")


async def test_run_stage_passes_pipeline_context_fields() -> None:
    see = SeeContext()
    output = await run_stage(
        "echo",
        snapshot_fields,
        "transform",
        configuration={"c": 1},
        service="svc",
        interceptors=[see],
        input_text="x",
    )
    assert (see.seen[0]["configuration"], see.seen[0]["service"]) == ({"c": 1}, "svc")
    assert (output.data["text"], output.data["topology"]) == ("x", "echo_pipeline")


async def test_run_stage_rejects_unknown_keywords() -> None:
    with pytest.raises(
        TypeError, match=r"^Pipeline\.run\(\) got an unexpected keyword argument 'bogus'$"
    ):
        await run_stage("echo", snapshot_fields, "transform", bogus=1)


async def test_run_stage_raises_on_failure() -> None:
    async def fails(ctx: StageContext) -> StageOutput:
        return StageOutput.fail(error="bad input")

    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'f' failed: bad input$"):
        await run_stage("f", fails, "work", interceptors=[])


async def test_run_stage_is_a_checkpoint() -> None:
    with trio.testing.assert_checkpoints():
        await run_stage("echo", snapshot_fields, "transform", interceptors=[])


# --- stage(), from_stages, with_stage -------------------------------------------------


def test_stage_builds_a_spec() -> None:
    spec = stage("g", Greeter, after="a", conditional=True, config={"greeting": "yo"})
    assert spec == UnifiedStageSpec(
        "g", Greeter, StageKind.TRANSFORM, ("a",), True, {"greeting": "yo"}
    )
    assert stage("x", snapshot_fields, "work", after=["a", "b"]).dependencies == ("a", "b")
    assert stage("x", snapshot_fields, "work", after=("a",)).dependencies == ("a",)
    assert stage("x", snapshot_fields, "work", ["a"]).dependencies == ("a",)


def test_stage_reads_the_kind_from_the_runner() -> None:
    @stage_metadata(name="decorated", kind=StageKind.ENRICH)
    class Decorated:
        async def execute(self, ctx: StageContext) -> None:
            return None

    assert stage("d", Decorated).kind is StageKind.ENRICH
    assert stage("d", Decorated()).kind is StageKind.ENRICH
    assert stage("g", Greeter).kind is StageKind.TRANSFORM  # a str value converted
    assert stage("g", Greeter, "work").kind is StageKind.WORK  # an explicit kind wins


def test_stage_errors() -> None:
    class BadKind:
        kind = "nope"

        async def execute(self, ctx: StageContext) -> None:
            return None

    with pytest.raises(
        StageDefinitionError,
        match=r"^kind is required unless the runner exposes a valid `\.kind` attribute$",
    ):
        stage("f", snapshot_fields)
    with pytest.raises(
        StageDefinitionError, match=r"^Unsupported stage kind value on runner: 'nope'$"
    ):
        stage("b", BadKind)
    with pytest.raises(
        StageDefinitionError, match=r"^Use either dependencies=\.\.\. or after=\.\.\., not both$"
    ):
        stage("x", snapshot_fields, "work", ("a",), after="b")
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Pipeline 'x': after must be a stage name or a tuple or list of them; got set$",
    ):
        stage("x", snapshot_fields, "work", after={"a"})  # type: ignore[arg-type]
    with pytest.raises(PipelineConfigError, match=r"^config can only be used with stage classes$"):
        stage("c", snapshot_fields, "work", config={"x": 1})
    with pytest.raises(
        StageDefinitionTypeError, match=r"^UnifiedStageSpec name must be a str; got int$"
    ):
        stage(5, snapshot_fields, "work")  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^UnifiedStageSpec 'k': kind must be a StageKind \(one of transform, enrich, "
        r"route, guard, work, agent\); got 'junk'$",
    ):
        stage("k", snapshot_fields, "junk")


def test_from_stages_and_with_stages() -> None:
    a = stage("a", snapshot_fields, "transform")
    b = stage("b", snapshot_fields, "work", after="a")
    pipeline = Pipeline.from_stages(a, b, name="two")
    assert (pipeline.name, dict(pipeline.stages)) == ("two", {"a": a, "b": b})
    assert Pipeline.from_stages(a).name == "pipeline"
    assert Pipeline("p").with_stages(a).with_stages(b) == Pipeline("p", {"a": a, "b": b})
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Pipeline\.with_stages: specs\[1\] must be a UnifiedStageSpec \(made by "
        r"stage\(\.\.\.\)\); got tuple$",
    ):
        Pipeline.from_stages(a, ("b",))  # type: ignore[arg-type]


def test_with_stage_forms() -> None:
    base = Pipeline()
    # 1.2.0: kind read from the runner, after=, keyword conditional/config.
    new = base.with_stage("g", Greeter, after="x", conditional=True, config={"greeting": "y"})
    # 0.9.1: positional kind, dependencies, conditional, config.
    old = base.with_stage("g", Greeter, StageKind.TRANSFORM, ("x",), True, {"greeting": "y"})
    assert new == old
    assert new.stages["g"] == stage(
        "g", Greeter, "transform", ["x"], conditional=True, config={"greeting": "y"}
    )
    with pytest.raises(
        StageDefinitionError, match=r"^Use either dependencies=\.\.\. or after=\.\.\., not both$"
    ):
        base.with_stage("g", Greeter, None, ("a",), after="b")


def test_results_is_a_mapping_of_outputs() -> None:
    results = PipelineResults(a=StageOutput.ok(x=1))
    assert isinstance(results, Mapping)
    assert results == {"a": StageOutput.ok(x=1)}


# --- run_stage's pipeline cache -------------------------------------------------


async def test_run_stage_reuses_the_pipeline_of_a_function_or_class() -> None:
    _ONE_STAGE_PIPELINES.clear()
    await run_stage("echo", snapshot_fields, "transform")
    await run_stage("echo", snapshot_fields, StageKind.TRANSFORM)  # the same key: "x" == X
    await run_stage("g", Greeter)
    assert list(_ONE_STAGE_PIPELINES) == [
        ("echo_pipeline", "echo", snapshot_fields, "transform", False, bool),
        ("g_pipeline", "g", Greeter, None, False, bool),
    ]
    (first, *_) = _ONE_STAGE_PIPELINES.values()
    await run_stage("echo", snapshot_fields, "transform", input_text="again")
    assert len(_ONE_STAGE_PIPELINES) == 2
    assert next(iter(_ONE_STAGE_PIPELINES.values())) is first


async def test_run_stage_does_not_keep_instances_or_configured_classes() -> None:
    _ONE_STAGE_PIPELINES.clear()
    await run_stage("g", Greeter(), input_text="x")
    await run_stage("g", Greeter, config={"greeting": "hey"})
    assert _ONE_STAGE_PIPELINES == {}


async def test_run_stage_cache_keys_on_the_conditional_type() -> None:
    _ONE_STAGE_PIPELINES.clear()
    await run_stage("c", snapshot_fields, "work", conditional=True)
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^UnifiedStageSpec 'c': conditional must be a bool; got int$",
    ):
        await run_stage("c", snapshot_fields, "work", conditional=1)  # type: ignore[arg-type]


async def test_run_stage_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    _ONE_STAGE_PIPELINES.clear()
    monkeypatch.setattr(pipeline_module, "_ONE_STAGE_PIPELINES_MAX", 2)
    for name in ("a", "b", "c"):
        await run_stage(name, snapshot_fields, "work")
    assert [key[1] for key in _ONE_STAGE_PIPELINES] == ["b", "c"]


def test_reset_globals_clears_the_run_stage_cache() -> None:
    _ONE_STAGE_PIPELINES[("k",)] = Pipeline()
    reset_globals()
    assert _ONE_STAGE_PIPELINES == {}
