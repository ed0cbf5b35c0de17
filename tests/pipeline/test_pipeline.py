"""Pipeline and its UnifiedStageSpec: stages, config, compose, validating build, docs."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given

from stageflow_trio.core import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.pipeline import Pipeline, UnifiedStageSpec
from stageflow_trio.pipeline.spec import (
    CycleDetectedError,
    PipelineValidationError,
    StageDefinitionError,
    StageDefinitionTypeError,
)
from tests.doc_blocks import python_blocks

from .strategies import Graph, dags_with_back_edge, is_cycle, shuffled_dags

T = StageKind.TRANSFORM
DOCS = Path(__file__).parents[2] / "docs" / "builders.md"


class Tagged:
    made = 0

    def __init__(self, tag: str = "plain") -> None:
        self.tag = tag
        Tagged.made += 1

    async def execute(self, ctx: Any) -> StageOutput:
        return StageOutput.ok(tag=self.tag)


async def noop(ctx: Any) -> None:
    return None


def pipeline_from(graph: Graph) -> Pipeline:
    pipeline = Pipeline("p")
    for name, deps in graph.items():
        pipeline = pipeline.with_stage(name, noop, T, deps)
    return pipeline


def test_with_stage_returns_a_copy_and_stores_the_spec() -> None:
    empty = Pipeline()
    # A kind's value and a list of dependencies, as the reference's callers pass them: coerced.
    one: Pipeline = empty.with_stage("a", Tagged, "enrich", ["x"], True, {"tag": "t"})
    assert (empty.name, len(empty.stages), list(one.stages)) == ("pipeline", 0, ["a"])
    spec = one.stages["a"]
    assert spec == UnifiedStageSpec("a", Tagged, StageKind.ENRICH, ("x",), True, {"tag": "t"})
    assert spec.kind is StageKind.ENRICH
    with pytest.raises(TypeError):
        spec.config["tag"] = "u"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.name = "b"  # type: ignore[misc]


def test_replacing_keeps_the_position() -> None:
    p = Pipeline().with_stage("a", noop, T).with_stage("b", noop, T).with_stage("a", Tagged, T)
    assert list(p.stages) == ["a", "b"]
    assert p.stages["a"].runner is Tagged


def test_config_needs_a_stage_class(reference: ModuleType) -> None:
    message = r"^config can only be used with stage classes$"
    with pytest.raises(ValueError, match=message) as caught:
        Pipeline().with_stage("a", Tagged(), T, config={"tag": "x"})  # type: ignore[dict-item]
    assert isinstance(caught.value, StageDefinitionError)
    with pytest.raises(ValueError, match=message):
        Pipeline().with_stage("", noop, T, config={"tag": "x"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=message):
        UnifiedStageSpec("a", noop, T, config={"k": 1})
    assert Pipeline().with_stage("a", Tagged(), T, config={}).stages["a"].config == {}
    ref = reference.pipeline.pipeline
    with pytest.raises(ValueError, match=message):
        ref.Pipeline().with_stage("a", Tagged(), T, config={"tag": "x"})


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("", noop, T), StageDefinitionError, r"UnifiedStageSpec name cannot be empty"),
        ((7, noop, T), StageDefinitionTypeError, r"UnifiedStageSpec name must be a str; got int"),
        (
            ("a", noop, "router"),
            StageDefinitionTypeError,
            r"UnifiedStageSpec 'a': kind must be a StageKind \(one of transform, enrich, route, "
            r"guard, work, agent\); got 'router'",
        ),
        (
            ("a", "noop", T),
            StageDefinitionTypeError,
            r"UnifiedStageSpec 'a': runner must be a stage class, a stage instance with an "
            r"execute\(\) method, or an async callable; got str",
        ),
        (
            ("a", noop, T, "b"),
            StageDefinitionTypeError,
            r"UnifiedStageSpec 'a': dependencies must be a tuple or list of stage names; got str 'b'",
        ),
        (
            ("a", noop, T, (), "no"),
            StageDefinitionTypeError,
            r"UnifiedStageSpec 'a': conditional must be a bool; got str",
        ),
    ],
)
def test_invalid_stages_name_the_stage_and_rule(
    args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{message}$"):
        Pipeline().with_stage(*args)


def test_invalid_pipeline_arguments() -> None:
    with pytest.raises(
        StageDefinitionTypeError, match=r"^Pipeline name must be a str; got NoneType$"
    ):
        Pipeline(None)  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Pipeline stages\['a'\] must be a UnifiedStageSpec; got function$",
    ):
        Pipeline("p", {"a": noop})  # type: ignore[dict-item]
    with pytest.raises(
        StageDefinitionError,
        match=r"^Pipeline stages\['a'\] holds stage 'b'; each key must be its spec's name$",
    ):
        Pipeline("p", {"a": UnifiedStageSpec("b", noop, T)})
    with pytest.raises(
        StageDefinitionTypeError, match=r"^Pipeline.compose expects a Pipeline; got str$"
    ):
        Pipeline().compose("p")  # type: ignore[arg-type]


def test_compose_right_wins_and_left_name_is_kept(reference: ModuleType) -> None:
    left = Pipeline("left").with_stage("a", noop, T).with_stage("b", noop, T)
    right = Pipeline("right").with_stage("c", noop, T).with_stage("a", Tagged, StageKind.GUARD)
    composed = left.compose(right)
    assert composed.name == "left"
    assert list(composed.stages) == ["a", "b", "c"]
    assert composed.stages["a"].kind is StageKind.GUARD
    assert list(left.stages) == ["a", "b"]
    ref = reference.pipeline.pipeline
    ref_left = ref.Pipeline("left").with_stage("a", noop, T).with_stage("b", noop, T)
    ref_right = (
        ref.Pipeline("right").with_stage("c", noop, T).with_stage("a", Tagged, StageKind.GUARD)
    )
    ref_composed = ref_left.compose(ref_right)
    assert ref_composed.name == composed.name
    assert list(ref_composed.stages) == list(composed.stages)


def test_equality_and_repr() -> None:
    assert pipeline_from({"a": ()}) == pipeline_from({"a": ()})
    assert pipeline_from({"a": ()}) != pipeline_from({"b": ()})
    # The reference's dataclass repr, stages as a {name: spec} dict (audit 26: was a list).
    pipeline = pipeline_from({"a": (), "b": ("a",)})
    assert repr(pipeline) == f"Pipeline(name='p', stages={dict(pipeline.stages.items())!r})"
    assert repr(Pipeline("p")) == "Pipeline(name='p', stages={})"


def test_build_empty_matches_the_reference(reference: ModuleType) -> None:
    message = r"^UnifiedStageGraph requires at least one UnifiedStageSpec$"
    with pytest.raises(ValueError, match=message):
        Pipeline().build()
    ref = reference.pipeline.pipeline
    with pytest.raises(ValueError, match=message):
        ref.Pipeline().build()


def test_build_reports_a_missing_dependency() -> None:
    with pytest.raises(PipelineValidationError) as caught:
        pipeline_from({"a": (), "b": ("a", "ghost")}).build()
    err = caught.value
    assert err.to_dict()["message"] == "Stage 'b' depends on 'ghost' which does not exist"
    assert err.error_info is not None
    assert err.error_info.code == "CONTRACT-004-MISSING_DEP"
    assert err.stages == ["b", "ghost"]


def test_build_reports_a_cycle_and_a_self_dependency() -> None:
    with pytest.raises(CycleDetectedError) as caught:
        pipeline_from({"a": ("c",), "b": ("a",), "c": ("b",)}).build()
    assert caught.value.cycle_path == ["a", "c", "b", "a"]
    with pytest.raises(CycleDetectedError, match=r"^Pipeline contains a cycle: a -> a$"):
        pipeline_from({"a": ("a",)}).build()


def test_the_reference_does_not_validate_at_build_time(reference: ModuleType) -> None:
    # The divergence this port makes on purpose (see the parity table).
    ref = reference.pipeline.pipeline
    graph = ref.Pipeline().with_stage("b", noop, T, ("a",)).build()
    assert [spec.name for spec in graph.stage_specs] == ["b"]


@given(dags_with_back_edge())
def test_a_back_edge_fails_the_build_with_a_real_cycle(case: tuple[Graph, str, str]) -> None:
    graph, _source, _target = case
    with pytest.raises(CycleDetectedError) as caught:
        pipeline_from(graph).build()
    assert is_cycle(caught.value.cycle_path, graph)


@given(shuffled_dags())
def test_any_dag_in_any_order_builds(graph: Graph) -> None:
    built = pipeline_from(graph).build()
    assert {s.name: s.dependencies for s in built.stage_specs} == graph


@given(shuffled_dags())
def test_stage_names_put_every_stage_after_its_dependencies(graph: Graph) -> None:
    pipeline = pipeline_from(graph)
    names = pipeline.stage_names()
    assert sorted(names) == sorted(graph)
    for position, name in enumerate(names):
        assert set(graph[name]) <= set(names[:position])


def test_stage_lookups() -> None:
    pipeline = (
        Pipeline()
        .with_stage("late", noop, StageKind.WORK, dependencies=("early",))
        .with_stage("early", noop, StageKind.WORK)
        .with_stage("free", noop, StageKind.WORK)
        .with_stage("orphan", noop, StageKind.WORK, dependencies=("missing",))
    )
    # Ties keep insertion order; a stage that could never run is left out.
    assert pipeline.stage_names() == ["early", "free", "late"]
    assert pipeline.has_stage("late")
    assert not pipeline.has_stage("missing")
    spec = pipeline.get_stage("late")
    assert spec is pipeline.stages["late"]
    assert pipeline.stages["late"].dependencies == ("early",)
    assert pipeline.get_stage("missing") is None
    assert Pipeline().stage_names() == []
    for method in (pipeline.get_stage, pipeline.has_stage):
        with pytest.raises(TypeError, match=r"^Pipeline\.\w+: name must be a str; got int$"):
            method(1)  # type: ignore[arg-type]


def test_module_exports_the_real_graph_class() -> None:
    import stageflow_trio.pipeline.pipeline as module
    from stageflow_trio.pipeline.dag import UnifiedStageGraph

    assert module.UnifiedStageGraph is UnifiedStageGraph
    with pytest.raises(AttributeError, match=r"has no attribute 'Nope'$"):
        _ = module.Nope  # type: ignore[attr-defined]


async def test_built_graph_runs_class_instance_and_callable_runners() -> None:
    from .graph_helpers import stage_ctx

    async def fn(ctx: Any) -> StageOutput:
        return StageOutput.ok(upstream=ctx.inputs.get_from("cls", "tag"))

    instance = Tagged("same")
    graph = (
        Pipeline()
        .with_stage("fn", fn, T, ("cls",))
        .with_stage("cls", Tagged, T, config={"tag": "configured"})
        .with_stage("inst", instance, StageKind.WORK)
        .build()
    )
    Tagged.made = 0
    first = await graph.run(stage_ctx())
    second = await graph.run(stage_ctx())
    assert Tagged.made == 2
    assert first["cls"].data == {"tag": "configured"}
    assert first["inst"].data == {"tag": "same"}
    assert second["fn"].data == {"upstream": "configured"}
    kinds = {spec.name: spec.kind for spec in graph.stage_specs}
    assert kinds == {"fn": T, "cls": T, "inst": StageKind.WORK}


def test_build_passes_the_guard_retry_strategy() -> None:
    from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy

    strategy = GuardRetryStrategy({"guard": GuardRetryPolicy(retry_stage="work")})
    Pipeline().with_stage("work", noop, T).with_stage(
        "guard", noop, StageKind.GUARD, ("work",)
    ).build(guard_retry_strategy=strategy)
    with pytest.raises(
        ValueError, match=r"^Guard retry policy requires 'guard' to be a GUARD stage$"
    ):
        Pipeline().with_stage("work", noop, T).with_stage("guard", noop, T, ("work",)).build(
            guard_retry_strategy=strategy
        )


async def test_docs_example_pipeline_runs() -> None:
    from .graph_helpers import stage_ctx

    namespace: dict[str, Any] = {}
    exec(compile(_doc_blocks()[0], str(DOCS), "exec"), namespace)
    results = await namespace["graph"].run(stage_ctx())
    assert results["shout"].data == {"text": "HI, WORLD"}


@pytest.mark.parametrize("index", range(1, 5))
def test_docs_examples_run(index: int) -> None:
    exec(compile(_doc_blocks()[index], str(DOCS), "exec"), {})


def _doc_blocks() -> list[str]:
    blocks = python_blocks(DOCS)
    assert len(blocks) == 5
    return blocks


async def test_build_passes_graph_options_through() -> None:
    from stageflow_trio.testing import RecordingEventSink, create_test_stage_context

    async def stage_a(ctx: object) -> StageOutput:
        return StageOutput.ok(x=1)

    graph = (
        Pipeline()
        .with_stage("a", stage_a, StageKind.TRANSFORM)
        .build(emit_pipeline_wide_event=True, cleanup_timeout=2.0)
    )
    sink = RecordingEventSink()
    await graph.run(create_test_stage_context(event_sink=sink))
    [wide] = sink.of_type("pipeline.wide")
    assert wide is not None
    assert wide["stage_counts"] == {"completed": 1}
    # As in stageflow 1.2, the event names the pipeline, not the context's topology.
    assert wide["pipeline_name"] == "pipeline"
    named = Pipeline("orders").with_stage("a", stage_a, StageKind.TRANSFORM)
    await named.build(emit_pipeline_wide_event=True).run(create_test_stage_context(event_sink=sink))
    assert [e["pipeline_name"] for e in sink.of_type("pipeline.wide") if e] == [
        "pipeline",
        "orders",
    ]
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such_option'"):
        Pipeline().with_stage("a", stage_a, StageKind.TRANSFORM).build(no_such_option=1)  # type: ignore[call-arg]


def test_a_stages_mapping_is_checked_key_by_key() -> None:
    async def run(ctx: Any) -> None:
        return None

    spec = UnifiedStageSpec(name="a", runner=run, kind=StageKind.TRANSFORM)
    assert list(Pipeline(stages={"a": spec}).stages) == ["a"]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Pipeline stages must be a mapping of stage name to UnifiedStageSpec; got list$",
    ):
        Pipeline(stages=[spec])  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Pipeline stages\['a'\] must be a UnifiedStageSpec; got int$",
    ):
        Pipeline(stages={"a": 5})  # type: ignore[dict-item]
    with pytest.raises(
        StageDefinitionError,
        match=r"^Pipeline stages\['b'\] holds stage 'a'; each key must be its spec's name$",
    ):
        Pipeline(stages={"b": spec})
    assert Pipeline().__eq__(5) is NotImplemented


def test_build_gives_the_graph_the_specs_a_checked_construction_would() -> None:
    # Pipeline.build makes the graph's specs without checking their fields again
    # (its own specs were checked): they must equal specs made the checked way.
    from stageflow_trio.pipeline.dag import UnifiedStageSpec as GraphSpec

    async def work(ctx: StageContext) -> StageOutput:
        return StageOutput.ok()

    pipeline = (
        Pipeline("p")
        .with_stage("a", work, StageKind.WORK)
        .with_stage("b", work, "transform", ("a",), True)
    )
    graph = pipeline.build()
    assert graph.stage_specs == [
        GraphSpec(name="a", runner=work, kind=StageKind.WORK),
        GraphSpec(
            name="b",
            runner=work,
            kind=StageKind.TRANSFORM,
            dependencies=("a",),
            conditional=True,
        ),
    ]
