"""PipelineBuilder: validation, immutability, compose, build, and parity with the reference."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given

from stageflow_trio.contracts import get_contract_suggestion
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.builder import PipelineBuilder
from stageflow_trio.pipeline.spec import (
    CycleDetectedError,
    PipelineSpec,
    PipelineValidationError,
    StageDefinitionError,
    StageDefinitionTypeError,
)
from stageflow_trio.testing import create_test_pipeline_context

from .strategies import Graph, dags, dags_with_back_edge, is_cycle

if TYPE_CHECKING:
    from stageflow_trio.stages.context import PipelineContext


class A:
    async def execute(self, ctx: PipelineContext) -> StageOutput:
        return StageOutput.ok(stage="A")


class B:
    async def execute(self, ctx: PipelineContext) -> StageOutput:
        return StageOutput.ok(stage="B")


def chain(n: int, name: str = "p") -> PipelineBuilder:
    builder = PipelineBuilder(name)
    for i in range(n):
        builder = builder.with_stage(f"s{i}", A, (f"s{i - 1}",) if i else ())
    return builder


def builder_from(graph: Graph, name: str = "p") -> PipelineBuilder:
    return PipelineBuilder(name, {n: PipelineSpec(n, A, deps) for n, deps in graph.items()})


def code_of(err: PipelineValidationError) -> str:
    assert err.error_info is not None
    return err.error_info.code


def test_with_stage_returns_a_new_builder() -> None:
    empty = PipelineBuilder()
    one = empty.with_stage("a", A)
    two = one.with_stage("b", B, ["a"], inputs=["x"], outputs=("y",), conditional=True, args={})
    assert (empty.name, list(empty.stages), list(one.stages)) == ("pipeline", [], ["a"])
    assert list(two.stages) == ["a", "b"]
    assert two.stages["b"] == PipelineSpec("b", B, ("a",), ("x",), ("y",), True, {})
    assert two.get_stage("b") is two.stages["b"]
    assert two.get_stage("zz") is None
    assert two.has_stage("a")
    assert not one.has_stage("b")


def test_branching_from_an_older_builder_does_not_leak() -> None:
    base = PipelineBuilder().with_stage("a", A)
    left = base.with_stage("l", A, ["a"])
    right = base.with_stage("r", B, ["a"])
    again = base.with_stage("l", B)
    assert list(left.stages) == ["a", "l"]
    assert list(right.stages) == ["a", "r"]
    assert again.stages["l"].runner is B
    assert left.stages["l"].runner is A
    assert "r" not in left.stages
    assert list(base.stages) == ["a"]


def test_appending_to_the_newest_builder_shares_storage() -> None:
    # Linear building: no per-stage copy of the stage table.
    first = chain(3)
    second = first.with_stage("next", A, ["s2"])
    assert second.stages._log is first.stages._log  # type: ignore[attr-defined]


def test_stages_are_read_only() -> None:
    builder = chain(2)
    with pytest.raises(TypeError):
        builder.stages["x"] = PipelineSpec("x", A)  # type: ignore[index]
    with pytest.raises(AttributeError):
        builder.name = "other"  # type: ignore[misc]


def test_missing_dependency_on_with_stage() -> None:
    with pytest.raises(PipelineValidationError) as caught:
        chain(2).with_stage("c", A, ("s1", "ghost"))
    err = caught.value
    assert str(err) == "Stage 'c' depends on 'ghost' which does not exist"
    assert code_of(err) == "CONTRACT-004-MISSING_DEP"
    assert err.stages == ["c", "ghost"]
    assert err.error_info is not None
    assert dict(err.error_info.context) == {"stage": "c", "dependency": "ghost"}


def test_missing_dependency_on_init() -> None:
    with pytest.raises(
        PipelineValidationError, match=r"^Stage 'b' depends on 'a' which does not exist$"
    ):
        PipelineBuilder("p", {"b": PipelineSpec("b", A, ["a"])})


def test_cycle_on_init() -> None:
    stages = {
        "a": PipelineSpec("a", A, ["c"]),
        "b": PipelineSpec("b", A, ["a"]),
        "c": PipelineSpec("c", A, ["b"]),
    }
    with pytest.raises(CycleDetectedError) as caught:
        PipelineBuilder("p", stages)
    err = caught.value
    assert code_of(err) == "CONTRACT-004-CYCLE"
    assert err.cycle_path == ["a", "c", "b", "a"]
    assert err.stages == ["a", "c", "b"]
    assert str(err) == "Pipeline contains a cycle: a -> c -> b -> a"


def test_replacing_a_stage_can_close_a_cycle() -> None:
    with pytest.raises(CycleDetectedError) as caught:
        chain(3).with_stage("s0", A, ["s2"])
    assert caught.value.cycle_path == ["s0", "s2", "s1", "s0"]


def test_replacing_a_stage_keeps_its_position() -> None:
    builder = chain(3).with_stage("s1", B, ["s0"])
    assert list(builder.stages) == ["s0", "s1", "s2"]
    assert builder.stages["s1"].runner is B


def test_compose_names_and_merges() -> None:
    left = PipelineBuilder("left").with_stage("a", A).with_stage("b", A, ["a"])
    right = (
        PipelineBuilder("right").with_stage("a", A, args={"ignored": 1}).with_stage("c", B, ["a"])
    )
    composed = left.compose(right)
    assert composed.name == "left+right"
    assert list(composed.stages) == ["a", "b", "c"]
    assert composed.stages["a"] is left.stages["a"]


@pytest.mark.parametrize(
    "incoming",
    [
        PipelineSpec("a", B),
        PipelineSpec("a", A, ["z"]),
        PipelineSpec("a", A, conditional=True),
    ],
)
def test_compose_conflict(incoming: PipelineSpec) -> None:
    left = PipelineBuilder("l").with_stage("a", A)
    right = PipelineBuilder("r", {"z": PipelineSpec("z", A), "a": incoming})
    with pytest.raises(
        PipelineValidationError, match=r"^Stage 'a' exists in both pipelines with different specs$"
    ) as caught:
        left.compose(right)
    err = caught.value
    assert code_of(err) == "CONTRACT-004-CONFLICT"
    assert err.stages == ["a"]
    assert err.error_info is not None
    assert dict(err.error_info.context) == {
        "stage": "a",
        "existing_runner": "A",
        "incoming_runner": incoming.runner.__name__,  # type: ignore[union-attr]
    }


def test_build_empty() -> None:
    with pytest.raises(PipelineValidationError, match=r"^Cannot build empty pipeline$") as caught:
        PipelineBuilder().build()
    assert caught.value.to_dict() == {
        "message": "Cannot build empty pipeline",
        "stages": [],
        "error_info": {
            "code": "CONTRACT-004-EMPTY",
            "summary": "Cannot build a pipeline with zero stages",
            "fix_hint": "Add at least one stage before calling build().",
            "doc_url": "https://github.com/stageflow/stageflow/blob/main/docs/advanced/error-messages.md#empty-pipelines",
            "context": {},
        },
    }


def _errors() -> list[PipelineValidationError]:
    found: list[PipelineValidationError] = []
    attempts: list[Callable[[], object]] = [
        lambda: chain(1).with_stage("x", A, ["nope"]),
        lambda: chain(2).with_stage("s0", A, ["s1"]),
        lambda: (
            PipelineBuilder("l").with_stage("a", A).compose(PipelineBuilder("r").with_stage("a", B))
        ),
        lambda: PipelineBuilder().build(),
    ]
    for attempt in attempts:
        with pytest.raises(PipelineValidationError) as caught:
            attempt()
        found.append(caught.value)
    return found


def test_every_builder_failure_has_a_suggestion() -> None:
    codes = [code_of(err) for err in _errors()]
    assert codes == [
        "CONTRACT-004-MISSING_DEP",
        "CONTRACT-004-CYCLE",
        "CONTRACT-004-CONFLICT",
        "CONTRACT-004-EMPTY",
    ]
    for code in codes:
        suggestion = get_contract_suggestion(code)
        assert suggestion is not None
        assert suggestion.code == code
        assert suggestion.fix_steps


def test_invalid_arguments() -> None:
    with pytest.raises(
        StageDefinitionTypeError, match=r"^PipelineBuilder name must be a str; got int$"
    ):
        PipelineBuilder(3)  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^PipelineBuilder stages must be a mapping of stage name to PipelineSpec; got list$",
    ):
        PipelineBuilder("p", [PipelineSpec("a", A)])  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^PipelineBuilder stages\['a'\] must be a PipelineSpec; got type$",
    ):
        PipelineBuilder("p", {"a": A})  # type: ignore[dict-item]
    with pytest.raises(
        StageDefinitionError,
        match=r"^PipelineBuilder stages\['a'\] holds stage 'b'; each key must be its spec's name$",
    ):
        PipelineBuilder("p", {"a": PipelineSpec("b", A)})
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^PipelineBuilder.compose expects a PipelineBuilder; got dict$",
    ):
        chain(1).compose({})  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^PipelineSpec 'x': dependencies must be a tuple or list of stage names; got str 's0'$",
    ):
        chain(1).with_stage("x", A, "s0")  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError, match=r"^PipelineSpec 'x': runner must be a stage class"
    ):
        chain(1).with_stage("x", None)  # type: ignore[arg-type]


def test_stage_names_is_topological() -> None:
    builder = (
        PipelineBuilder()
        .with_stage("a", A)
        .with_stage("b", A, ["a"])
        .with_stage("c", A)
        .with_stage("d", A, ["b", "c", "b"])
    )
    assert builder.stage_names() == ["a", "c", "b", "d"]
    assert PipelineBuilder().stage_names() == []


def test_equality_and_repr() -> None:
    assert chain(2) == chain(2)
    assert chain(2) != chain(3)
    assert chain(2, "x") != chain(2, "y")
    assert repr(chain(2)) == "PipelineBuilder(name='p', stages=['s0', 's1'])"
    with pytest.raises(TypeError):
        hash(chain(1))


@given(dags())
def test_any_dag_builds_stage_by_stage_and_at_once(graph: Graph) -> None:
    builder = PipelineBuilder("p")
    for name, deps in graph.items():
        builder = builder.with_stage(name, A, deps)
    assert {n: s.dependencies for n, s in builder.stages.items()} == graph
    assert builder == builder_from(graph)
    order = builder.stage_names()
    assert sorted(order) == sorted(graph)
    position = {name: i for i, name in enumerate(order)}
    assert all(position[dep] < position[n] for n, deps in graph.items() for dep in deps)


@given(dags_with_back_edge())
def test_a_back_edge_is_a_cycle_at_init_and_on_replacement(case: tuple[Graph, str, str]) -> None:
    graph, source, target = case
    with pytest.raises(CycleDetectedError) as caught:
        builder_from(graph)
    assert is_cycle(caught.value.cycle_path, graph)
    acyclic = {n: tuple(d for d in deps if n != source or d != target) for n, deps in graph.items()}
    base = builder_from(acyclic)
    with pytest.raises(CycleDetectedError) as replaced:
        base.with_stage(source, A, graph[source])
    assert is_cycle(replaced.value.cycle_path, graph)


@given(dags())
def test_stage_names_matches_the_reference(reference: ModuleType, graph: Graph) -> None:
    ref = reference.pipeline.builder
    ref_builder = ref.PipelineBuilder("p")
    for name, deps in graph.items():
        ref_builder = ref_builder.with_stage(name, A, deps)
    ours = builder_from(graph)
    assert ours.stage_names() == ref_builder.stage_names()
    assert repr(ours) == repr(ref_builder)


def test_same_errors_as_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.builder
    ref_spec = reference.pipeline.spec

    def ref_chain(n: int) -> Any:
        builder = ref.PipelineBuilder("p")
        for i in range(n):
            builder = builder.with_stage(f"s{i}", A, (f"s{i - 1}",) if i else ())
        return builder

    attempts: list[Callable[[], object]] = [
        lambda: ref_chain(1).with_stage("x", A, ["nope"]),
        lambda: ref_chain(2).with_stage("s0", A, ["s1"]),
        lambda: (
            ref.PipelineBuilder("l")
            .with_stage("a", A)
            .compose(ref.PipelineBuilder("r").with_stage("a", B))
        ),
        lambda: ref.PipelineBuilder().build(),
    ]
    for ours, attempt in zip(_errors(), attempts, strict=True):
        with pytest.raises(ref_spec.PipelineValidationError) as caught:
            attempt()
        theirs = caught.value
        assert type(ours).__name__ == type(theirs).__name__
        expected = theirs.to_dict()
        actual = ours.to_dict()
        if isinstance(ours, CycleDetectedError):
            assert sorted(actual.pop("stages")) == sorted(expected.pop("stages"))
        assert actual == expected


def test_ten_thousand_stages_build_well_under_a_second() -> None:
    # CPU time of this process, not wall time: time spent descheduled on a loaded
    # machine does not count. Typically ~0.04 s; a builder that copied its stages on
    # each with_stage (quadratic) takes seconds.
    started = time.process_time()
    builder = chain(10_000)
    elapsed = time.process_time() - started
    assert len(builder.stages) == 10_000
    assert elapsed < 1.0


class Configured:
    instances = 0

    def __init__(self, label: str = "default") -> None:
        self.label = label
        Configured.instances += 1

    async def execute(self, ctx: PipelineContext) -> StageOutput:
        return StageOutput.ok(label=self.label)


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    async def execute(self, ctx: PipelineContext) -> StageOutput:
        self.calls += 1
        return StageOutput.ok(calls=self.calls)


async def test_built_graph_runs_every_runner_kind() -> None:
    from stageflow_trio.pipeline.dag import StageGraph

    counter = Counter()

    async def plain(ctx: Any) -> dict[str, Any]:
        return {"plain": True}

    graph = (
        PipelineBuilder("p")
        .with_stage("cls", Configured, args={"label": "x"})
        .with_stage("inst", counter, ["cls"])
        .with_stage("fn", plain, ["inst"])
        .build()
    )
    assert isinstance(graph, StageGraph)
    Configured.instances = 0
    first = await graph.run(create_test_pipeline_context())
    second = await graph.run(create_test_pipeline_context())
    assert {name: result.status for name, result in first.items()} == dict.fromkeys(
        ["cls", "inst", "fn"], "completed"
    )
    assert first["cls"].data == {"label": "x"}
    assert first["fn"].data == {"plain": True}
    assert second["inst"].data == {"calls": 2}
    assert Configured.instances == 2
    assert [spec.name for spec in graph.stage_specs] == ["cls", "inst", "fn"]
    assert graph.stage_specs[1].dependencies == ("cls",)
