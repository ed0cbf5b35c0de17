"""Scenarios: the unified and legacy graphs, contexts and values, builders and specs."""

from __future__ import annotations

from typing import Any

from tests.differential.harness import (
    REQUEST_ID,
    RUN_ID,
    SESSION_ID,
    USER_ID,
    Divergence,
    Result,
    Side,
    drop_event_types,
    rename_types,
    scenario,
    swap_outcome,
)

ENGINE = "Engine (UnifiedStageGraph, StageGraph, the interceptor chain)"
# The unified graph sends more events to the sink than the reference's (parity.md "Engine").
LIFECYCLE_EVENTS = Divergence(
    ENGINE,
    "Lifecycle events from UnifiedStageGraph",
    drop_event_types(r"stage\.[^.]+\.(started|completed|failed|cancelled)"),
)
TERMINAL_EVENTS = Divergence(
    ENGINE,
    "Pipeline-level terminal events (issue 13, defect 10)",
    drop_event_types(r"pipeline_(completed|failed)"),
)
CANCEL_EVENT = Divergence(
    ENGINE, "Pipeline cancellation event", drop_event_types("pipeline_cancelled")
)
# What a unified run that completes or fails sends beyond the reference's events.
UNIFIED_EVENTS = (LIFECYCLE_EVENTS, TERMINAL_EVENTS)


def snapshot(side: Side, **extra: Any) -> Any:
    context = side.mod("context")
    return context.ContextSnapshot(
        run_id=context.RunIdentity(
            pipeline_run_id=RUN_ID, request_id=REQUEST_ID, session_id=SESSION_ID, user_id=USER_ID
        ),
        topology="diff",
        execution_mode="practice",
        **extra,
    )


def stage_ctx(side: Side, name: str = "root", **extra: Any) -> Any:
    core, stages = side.mod("core"), side.mod("stages")
    snap = snapshot(side, **extra)
    return core.StageContext(
        snapshot=snap,
        inputs=stages.StageInputs(snapshot=snap),
        stage_name=name,
        timer=core.PipelineTimer(),
        event_sink=side.sink,
    )


def pipeline_ctx(side: Side, **extra: Any) -> Any:
    return side.mod("stages").PipelineContext(
        pipeline_run_id=RUN_ID,
        request_id=REQUEST_ID,
        session_id=SESSION_ID,
        user_id=USER_ID,
        org_id=None,
        interaction_id=None,
        topology="diff",
        execution_mode="practice",
        event_sink=side.sink,
        **extra,
    )


def unified(side: Side, stages: list[tuple[str, tuple[str, ...], Any]], **kw: Any) -> Any:
    """A UnifiedStageGraph of (name, deps, body) where body(ctx) -> StageOutput."""
    dag, core = side.mod("pipeline.dag"), side.mod("core")
    conditional = kw.pop("conditional", ())

    def runner(body: Any) -> Any:
        async def run(ctx: Any) -> Any:
            await side.checkpoint()
            return body(ctx, core.StageOutput)

        return run

    specs = [
        dag.UnifiedStageSpec(
            name=name,
            runner=runner(body),
            kind=core.StageKind.GUARD if name.startswith("guard") else core.StageKind.TRANSFORM,
            dependencies=deps,
            conditional=name in conditional,
        )
        for name, deps, body in stages
    ]
    return dag.UnifiedStageGraph(specs, **kw)


def outputs(results: Any) -> dict[str, Any]:
    return {
        name: [out.status.value, dict(out.data), out.error] for name, out in sorted(results.items())
    }


def ok(**data: Any) -> Any:
    return lambda ctx, out: out.ok(**data)


def add_one(dep: str) -> Any:
    return lambda ctx, out: out.ok(n=ctx.inputs.get_from(dep, "n") + 1)


# --- engine -------------------------------------------------------------------------------


@scenario("engine", *UNIFIED_EVENTS)
async def unified_chain(side: Side) -> Any:
    graph = unified(
        side, [("a", (), ok(n=1)), ("b", ("a",), add_one("a")), ("c", ("b",), add_one("b"))]
    )
    return outputs(await graph.run(stage_ctx(side)))


@scenario("engine", *UNIFIED_EVENTS)
async def unified_fan_out_fan_in(side: Side) -> Any:
    stages: list[tuple[str, tuple[str, ...], Any]] = [("root", (), ok(v=0))]
    stages += [(f"w{i}", ("root",), ok(v=i)) for i in range(4)]
    stages.append(
        (
            "join",
            tuple(f"w{i}" for i in range(4)),
            lambda ctx, out: out.ok(total=sum(ctx.inputs.get_from(f"w{i}", "v") for i in range(4))),
        )
    )
    return outputs(await unified(side, stages).run(stage_ctx(side)))


@scenario("engine", *UNIFIED_EVENTS)
async def unified_conditional_skip(side: Side) -> Any:
    graph = unified(
        side,
        [("router", (), ok(skip_reason="no route")), ("branch", ("router",), ok(ran=True))],
        conditional=("branch",),
    )
    return outputs(await graph.run(stage_ctx(side)))


@scenario("engine", *UNIFIED_EVENTS)
async def unified_stage_returns_skip(side: Side) -> Any:
    graph = unified(
        side, [("a", (), lambda ctx, out: out.skip(reason="nothing to do")), ("b", ("a",), ok(x=1))]
    )
    return outputs(await graph.run(stage_ctx(side)))


@scenario("engine", *UNIFIED_EVENTS)
async def unified_stage_fails(side: Side) -> Any:
    graph = unified(
        side, [("a", (), ok(n=1)), ("b", ("a",), lambda ctx, out: out.fail(error="boom"))]
    )
    try:
        await graph.run(stage_ctx(side))
    except side.mod("pipeline.dag").UnifiedStageExecutionError as exc:
        return {"stage": exc.stage, "message": str(exc)}
    raise AssertionError("no failure")


@scenario("engine", *UNIFIED_EVENTS)
async def unified_stage_raises(side: Side) -> Any:
    def boom(ctx: Any, out: Any) -> Any:
        raise ValueError("bad value")

    try:
        await unified(side, [("a", (), boom)]).run(stage_ctx(side))
    except side.mod("pipeline.dag").UnifiedStageExecutionError as exc:
        return {"stage": exc.stage, "message": str(exc), "cause": repr(exc.__cause__)}
    raise AssertionError("no failure")


@scenario("engine", LIFECYCLE_EVENTS, CANCEL_EVENT)
async def unified_stage_cancels(side: Side) -> Any:
    graph = unified(
        side, [("a", (), ok(n=1)), ("b", ("a",), lambda ctx, out: out.cancel(reason="user left"))]
    )
    try:
        await graph.run(stage_ctx(side))
    except side.mod("pipeline.dag").UnifiedPipelineCancelled as exc:
        return {"stage": exc.stage, "reason": exc.reason, "results": sorted(exc.results)}
    raise AssertionError("no cancel")


@scenario("engine", *UNIFIED_EVENTS)
async def unified_guard_retry_recovers(side: Side) -> Any:
    guard = side.mod("pipeline.guard_retry")
    attempts = {"n": 0}

    def check(ctx: Any, out: Any) -> Any:
        attempts["n"] += 1
        return out.fail(error="too short") if attempts["n"] < 3 else out.ok(passed=True)

    draft_calls = {"n": 0}

    def draft(ctx: Any, out: Any) -> Any:
        draft_calls["n"] += 1
        return out.ok(text="x" * draft_calls["n"])

    strategy = guard.GuardRetryStrategy(
        {"guard": guard.GuardRetryPolicy(retry_stage="draft", max_attempts=5)}
    )
    graph = unified(
        side, [("draft", (), draft), ("guard", ("draft",), check)], guard_retry_strategy=strategy
    )
    return outputs(await graph.run(stage_ctx(side)))


@scenario("engine", *UNIFIED_EVENTS, raises="UnifiedStageExecutionError")
async def unified_guard_retry_exhausted(side: Side) -> Any:
    guard = side.mod("pipeline.guard_retry")
    calls = {"n": 0}

    def draft(ctx: Any, out: Any) -> Any:
        calls["n"] += 1
        return out.ok(text="x" * calls["n"])

    strategy = guard.GuardRetryStrategy(
        {"guard": guard.GuardRetryPolicy(retry_stage="draft", max_attempts=2)}
    )
    graph = unified(
        side,
        [("draft", (), draft), ("guard", ("draft",), lambda ctx, out: out.fail(error="never"))],
        guard_retry_strategy=strategy,
    )
    return await graph.run(stage_ctx(side))


EARLY_VALIDATION = "Missing dependency or cycle in `UnifiedStageGraph(...)` / `StageGraph(...)`"


@scenario(
    "engine",
    Divergence(
        ENGINE,
        EARLY_VALIDATION,
        swap_outcome(
            {
                "raised": "PipelineValidationError",
                "message": "Stage 'a' depends on 'ghost' which does not exist",
            },
            {
                "raised": "RuntimeError",
                "message": "Deadlocked stage graph; remaining stages: ['a']",
            },
        ),
    ),
    raises="RuntimeError",
)
async def unified_missing_dependency(side: Side) -> Any:
    return await unified(side, [("a", ("ghost",), ok())]).run(stage_ctx(side))


@scenario("engine", *UNIFIED_EVENTS, raises="UnifiedStageExecutionError")
async def unified_undeclared_input_reads_none(side: Side) -> Any:
    graph = unified(side, [("a", (), ok(n=1)), ("b", (), add_one("a"))])
    return await graph.run(stage_ctx(side))


# --- contexts and values --------------------------------------------------------------------


@scenario("contexts")
async def snapshot_to_dict(side: Side) -> Any:
    context = side.mod("context")
    snap = snapshot(
        side,
        conversation=context.Conversation(messages=[context.Message(role="user", content="hi")]),
        enrichments=context.Enrichments(
            profile=context.ProfileEnrichment(user_id=USER_ID, display_name="Ada")
        ),
        input_text="hello",
    )
    return snap.to_dict()


@scenario("contexts")
async def snapshot_round_trip(side: Side) -> Any:
    context = side.mod("context")
    snap = snapshot(side, input_text="hello", metadata={"k": [1, 2]})
    back = context.ContextSnapshot.from_dict(snap.to_dict())
    return {"same": back.to_dict() == snap.to_dict(), "run": str(back.pipeline_run_id)}


@scenario("contexts")
async def snapshot_with_methods(side: Side) -> Any:
    context = side.mod("context")
    snap = snapshot(side)
    newer = snap.with_conversation(
        context.Conversation(messages=[context.Message(role="user", content="x")])
    )
    return [snap.to_dict()["conversation"], newer.to_dict()["conversation"], newer.topology]


@scenario("contexts")
async def run_identity_values(side: Side) -> Any:
    context = side.mod("context")
    rid = context.RunIdentity(pipeline_run_id=RUN_ID, org_id=None)
    return {"dict": rid.to_dict() if hasattr(rid, "to_dict") else None, "run": rid.pipeline_run_id}


@scenario("contexts")
async def conversation_values(side: Side) -> Any:
    context = side.mod("context")
    conv = context.Conversation(
        messages=[
            context.Message(role="user", content="a"),
            context.Message(role="assistant", content="b"),
        ],
        routing_decision=context.RoutingDecision(agent_id="a1", pipeline_name="p", topology="t"),
    )
    return conv.to_dict()


@scenario("contexts")
async def stage_context_try_emit_event(side: Side) -> Any:
    ctx = stage_ctx(side)
    ctx.try_emit_event("custom.thing", {"x": 1})
    return ctx.stage_name


def _without_1_2_context_keys(result: Result) -> Result:
    """Our ``PipelineContext.to_dict()`` has 1.2.0's keys: check their values, drop them."""
    outcome = dict(result["outcome"])
    added = {k: outcome.pop(k) for k in ("input_text", "input_audio_duration_ms", "metadata")}
    added["cancellation_reason"] = outcome.pop("cancellation_reason")
    assert added == {
        "input_text": None,
        "input_audio_duration_ms": None,
        "metadata": {},
        "cancellation_reason": None,
    }
    return {**result, "outcome": outcome}


@scenario(
    "contexts",
    Divergence(
        "Contexts and stages (1.2.0)", "`PipelineContext` fields", _without_1_2_context_keys
    ),
)
async def pipeline_context_try_emit_event(side: Side) -> Any:
    ctx = pipeline_ctx(side)
    ctx.try_emit_event("custom.pipeline", {"y": 2})
    return ctx.to_dict()


@scenario("contexts")
async def pipeline_context_fork(side: Side) -> Any:
    ctx = pipeline_ctx(side, data={"k": 1})
    child = ctx.fork(
        child_run_id=SESSION_ID, parent_stage_id="tool", correlation_id=USER_ID, topology="child"
    )
    return {
        "parent": child.parent_run_id,
        "stage": child.parent_stage_id,
        "is_child": child.is_child_run,
        "parent_data": child.get_parent_data("k"),
        "topology": child.topology,
    }


@scenario("contexts")
async def pipeline_context_mark_canceled(side: Side) -> Any:
    ctx = pipeline_ctx(side)
    before = ctx.is_canceled
    ctx.mark_canceled()
    return [before, ctx.is_canceled, ctx.canceled]


@scenario("contexts")
async def context_bag_conflict(side: Side) -> Any:
    context = side.mod("context")
    bag = context.ContextBag()
    await bag.write("k", 1, "a")
    try:
        await bag.write("k", 2, "b")
    except context.DataConflictError as exc:
        return [str(exc), bag.to_dict(), bag.get_writer("k")]
    raise AssertionError("no conflict")


@scenario("contexts")
async def output_bag_retry_overwrite(side: Side) -> Any:
    context, core = side.mod("context"), side.mod("core")
    bag = context.OutputBag()
    await bag.write("s", core.StageOutput.ok(v=1))
    await bag.write("s", core.StageOutput.ok(v=2), allow_overwrite=True)
    entry = bag.get("s")
    try:
        await bag.write("s", core.StageOutput.ok(v=3))
    except context.OutputConflictError as exc:
        return [entry.attempt, dict(entry.output.data), str(exc)]
    raise AssertionError("no conflict")


@scenario("contexts")
async def stage_inputs_undeclared(side: Side) -> Any:
    core, stages = side.mod("core"), side.mod("stages")
    inputs = stages.StageInputs(
        snapshot=snapshot(side),
        prior_outputs={"a": core.StageOutput.ok(x=1)},
        declared_deps=frozenset({"a"}),
        stage_name="b",
    )
    try:
        inputs.get_from("c", "x")
    except stages.UndeclaredDependencyError as exc:
        return [inputs.get_from("a", "x"), inputs.get("x"), str(exc)]
    raise AssertionError("no error")


@scenario("contexts")
async def stage_output_factories(side: Side) -> Any:
    out = side.mod("core").StageOutput
    made = [
        out.ok(a=1),
        out.skip(reason="r"),
        out.cancel(reason="c"),
        out.fail(error="e"),
        out.retry(error="t"),
    ]
    return [[o.status.value, dict(o.data), o.error] for o in made]


# --- builders and specs ---------------------------------------------------------------------


class _Runner:
    async def execute(self, ctx: Any) -> Any:  # pragma: no cover - built, never run
        raise AssertionError("not run")


def _builder_error(exc: Any) -> Any:
    info = getattr(exc, "error_info", None)
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "code": info.code if info is not None else None,
        # Sorted: the reference builds a cycle's stages from a set (parity.md
        # "Specs, contracts and builders", `CycleDetectedError.stages` (d19)).
        "stages": sorted(getattr(exc, "stages", [])),
    }


@scenario("builders")
async def builder_missing_dependency(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    try:
        pipeline.PipelineBuilder("p").with_stage("a", _Runner, dependencies=("ghost",))
    except pipeline.PipelineValidationError as exc:
        return _builder_error(exc)
    raise AssertionError("no error")


@scenario("builders")
async def builder_cycle(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    try:
        pipeline.PipelineBuilder(
            "p",
            stages={
                "a": pipeline.PipelineSpec(name="a", runner=_Runner, dependencies=("b",)),
                "b": pipeline.PipelineSpec(name="b", runner=_Runner, dependencies=("a",)),
            },
        )
    except pipeline.CycleDetectedError as exc:
        return {**_builder_error(exc), "cycle": list(exc.cycle_path)}
    raise AssertionError("no error")


@scenario("builders")
async def builder_compose(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    left = pipeline.PipelineBuilder("left").with_stage("a", _Runner)
    right = (
        pipeline.PipelineBuilder("right")
        .with_stage("a", _Runner)
        .with_stage("b", _Runner, dependencies=("a",))
    )
    both = left.compose(right)
    return [both.name, sorted(both.stages)]


@scenario("builders")
async def builder_compose_conflict(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    left = pipeline.PipelineBuilder("left").with_stage("a", _Runner)
    right = (
        pipeline.PipelineBuilder("right")
        .with_stage("x", _Runner)
        .with_stage("a", _Runner, dependencies=("x",))
    )
    try:
        left.compose(right)
    except pipeline.PipelineValidationError as exc:
        return _builder_error(exc)
    raise AssertionError("no error")


@scenario("builders")
async def builder_empty_build(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    try:
        pipeline.PipelineBuilder("p").build()
    except pipeline.PipelineValidationError as exc:
        return _builder_error(exc)
    raise AssertionError("no error")


@scenario(
    "builders",
    Divergence(
        "Specs, contracts and builders",
        "Wrong-typed input",
        rename_types({"StageDefinitionError": "ValueError"}),
    ),
)
async def spec_validation(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    found = []
    for kwargs in ({"name": ""}, {"name": "  "}, {"name": "a", "dependencies": ("a",)}):
        try:
            pipeline.PipelineSpec(runner=_Runner, **kwargs)
        except Exception as exc:
            found.append(_builder_error(exc))
    return found


def _shape(builder: Any) -> Any:
    return {
        name: [list(spec.dependencies), spec.conditional]
        for name, spec in sorted(builder.stages.items())
    }


@scenario("builders")
async def helpers_linear_chain(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    builder = pipeline.with_linear_chain(
        pipeline.PipelineBuilder("p").with_stage("start", _Runner),
        3,
        lambda i: (f"s{i}", _Runner),
        first_depends_on=("start",),
    )
    same = pipeline.with_linear_chain(builder, 0, lambda i: (f"z{i}", _Runner))
    return [_shape(builder), same is builder]


@scenario("builders")
async def helpers_parallel_and_fan(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    par = pipeline.with_parallel_stages(
        pipeline.PipelineBuilder("p"), 3, lambda i: (f"p{i}", _Runner)
    )
    fan = pipeline.with_fan_out_fan_in(
        pipeline.PipelineBuilder("f"),
        ("out", _Runner),
        2,
        lambda i: (f"w{i}", _Runner),
        ("in", _Runner),
    )
    return [_shape(par), _shape(fan)]


@scenario("builders")
async def helpers_conditional_branch(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    builder = pipeline.with_conditional_branch(
        pipeline.PipelineBuilder("p"),
        ("router", _Runner),
        {"x": ("bx", _Runner), "y": ("by", _Runner)},
        ("merge", _Runner),
    )
    return _shape(builder)


@scenario("builders")
async def fluent_builder(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    fluent = (
        pipeline.FluentPipelineBuilder("p")
        .stage("a", _Runner)
        .stage("b", _Runner)
        .stage("c", _Runner, depends_on=("a",))
    )
    return [
        _shape(fluent.builder if hasattr(fluent, "builder") else fluent.build_builder()),
        fluent._last_stage,
    ]


@scenario("builders")
async def contract_error_info(side: Side) -> Any:
    contracts = side.mod("contracts")
    info = contracts.ContractErrorInfo(
        code="X-1", summary="s", fix_hint="f", doc_url=None, context={"a": 1}
    )
    suggestion = contracts.get_contract_suggestion("CONTRACT-004-CYCLE")
    return [
        info.with_context(b=2).to_dict(),
        [suggestion.code, suggestion.title, suggestion.summary, list(suggestion.fix_steps)],
    ]


# --- the legacy StageGraph ------------------------------------------------------------------


def legacy(side: Side, stages: list[tuple[str, tuple[str, ...], str]]) -> Any:
    """A legacy StageGraph of (name, deps, behaviour) stage classes."""
    dag, core = side.mod("pipeline.dag"), side.mod("core")

    def stage_class(behaviour: str) -> type:
        class Stage:
            async def execute(self, ctx: Any) -> Any:
                await side.checkpoint()
                if behaviour == "raise":
                    raise ValueError("exploded")
                if behaviour == "fail":
                    return core.StageOutput.fail(error="refused")
                return core.StageOutput.ok(value=behaviour)

        return Stage

    return dag.StageGraph(
        [
            dag.StageSpec(name=name, runner=stage_class(behaviour), dependencies=deps)
            for name, deps, behaviour in stages
        ]
    )


def legacy_results(results: Any) -> Any:
    return {name: [r.status, dict(r.data), r.error] for name, r in sorted(results.items())}


@scenario("engine", TERMINAL_EVENTS)
async def legacy_graph_chain(side: Side) -> Any:
    graph = legacy(side, [("a", (), "one"), ("b", ("a",), "two")])
    return legacy_results(await graph.run(pipeline_ctx(side)))


@scenario("engine", TERMINAL_EVENTS)
async def legacy_graph_stage_fails(side: Side) -> Any:
    graph = legacy(side, [("a", (), "one"), ("b", ("a",), "fail"), ("c", ("b",), "three")])
    try:
        return legacy_results(await graph.run(pipeline_ctx(side)))
    except side.mod("pipeline.dag").StageExecutionError as exc:
        return {"stage": exc.stage, "message": str(exc)}
