"""The DSL helpers and FluentPipelineBuilder: dependency shapes, edge cases, parity."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.pipeline.builder import PipelineBuilder
from stageflow_trio.pipeline.builder_helpers import (
    FluentPipelineBuilder,
    with_conditional_branch,
    with_fan_out_fan_in,
    with_linear_chain,
    with_parallel_stages,
)
from stageflow_trio.pipeline.spec import PipelineValidationError, StageDefinitionTypeError
from tests.fakes import NoopStage

if TYPE_CHECKING:
    from stageflow_trio.pipeline.spec import LegacyRunnerLike


def shape(builder: Any) -> dict[str, tuple[tuple[str, ...], bool]]:
    """``{name: (dependencies, conditional)}``; works for the reference's builders too."""
    return {n: (tuple(s.dependencies), s.conditional) for n, s in builder.stages.items()}


def named(prefix: str) -> Any:
    return lambda i: (f"{prefix}{i}", NoopStage)


BASE = PipelineBuilder("p").with_stage("in", NoopStage)
OURS: dict[str, Any] = {
    fn.__name__: fn
    for fn in (
        with_linear_chain,
        with_parallel_stages,
        with_fan_out_fan_in,
        with_conditional_branch,
    )
}
counts = st.integers(min_value=-2, max_value=8)


@pytest.mark.parametrize("count", [0, -1])
def test_non_positive_counts_return_the_builder_unchanged(count: int) -> None:
    assert with_linear_chain(BASE, count, named("c")) is BASE
    assert with_parallel_stages(BASE, count, named("w")) is BASE


@given(counts, st.booleans())
def test_linear_chain_shape(count: int, anchored: bool) -> None:
    first = ("in",) if anchored else None
    built = with_linear_chain(BASE, count, named("c"), first_depends_on=first)
    expected: dict[str, tuple[tuple[str, ...], bool]] = {"in": ((), False)}
    for i in range(count):
        expected[f"c{i}"] = ((f"c{i - 1}",) if i else (first or ()), False)
    assert shape(built) == expected


@given(counts, st.booleans())
def test_parallel_shape(count: int, anchored: bool) -> None:
    deps = ("in",) if anchored else None
    built = with_parallel_stages(BASE, count, named("w"), depends_on=deps)
    expected = {"in": ((), False)} | {f"w{i}": (deps or (), False) for i in range(count)}
    assert shape(built) == expected


@given(counts, st.booleans())
def test_fan_out_fan_in_shape(count: int, anchored: bool) -> None:
    deps = ("in",) if anchored else None
    built = with_fan_out_fan_in(
        BASE, ("split", NoopStage), count, named("w"), ("join", NoopStage), fan_out_depends_on=deps
    )
    workers = tuple(f"w{i}" for i in range(max(count, 0)))
    expected: dict[str, tuple[tuple[str, ...], bool]] = {
        "in": ((), False),
        "split": (deps or (), False),
    }
    expected |= dict.fromkeys(workers, (("split",), False))
    expected["join"] = (workers, False)
    assert shape(built) == expected


@given(st.integers(min_value=0, max_value=5), st.booleans(), st.booleans())
def test_conditional_branch_shape(count: int, merge: bool, anchored: bool) -> None:
    deps = ("in",) if anchored else None
    branches: dict[str, tuple[str, LegacyRunnerLike]] = {
        f"label{i}": (f"b{i}", NoopStage) for i in range(count)
    }
    built = with_conditional_branch(
        BASE,
        ("route", NoopStage),
        branches,
        ("merge", NoopStage) if merge else None,
        router_depends_on=deps,
    )
    names = tuple(f"b{i}" for i in range(count))
    expected: dict[str, tuple[tuple[str, ...], bool]] = {
        "in": ((), False),
        "route": (deps or (), False),
    }
    expected |= dict.fromkeys(names, (("route",), True))
    if merge:
        expected["merge"] = (names, False)
    assert shape(built) == expected


def test_helpers_match_the_reference(reference: ModuleType) -> None:
    ref_builder = reference.pipeline.builder
    ref = reference.pipeline.builder_helpers

    def both(fn_name: str, *args: Any, **kwargs: Any) -> None:
        ours = OURS[fn_name](BASE, *args, **kwargs)
        theirs = getattr(ref, fn_name)(
            ref_builder.PipelineBuilder("p").with_stage("in", NoopStage), *args, **kwargs
        )
        assert shape(ours) == shape(theirs)

    both("with_linear_chain", 3, named("c"), first_depends_on=("in",))
    both("with_parallel_stages", 3, named("w"), depends_on=("in",))
    both(
        "with_fan_out_fan_in",
        ("f", NoopStage),
        2,
        named("w"),
        ("j", NoopStage),
        fan_out_depends_on=("in",),
    )
    both("with_fan_out_fan_in", ("f", NoopStage), 0, named("w"), ("j", NoopStage))
    both(
        "with_conditional_branch",
        ("r", NoopStage),
        {"x": ("bx", NoopStage), "y": ("by", NoopStage)},
        ("m", NoopStage),
    )
    both(
        "with_conditional_branch",
        ("r", NoopStage),
        {"x": ("bx", NoopStage)},
        None,
        router_depends_on=("in",),
    )


def test_missing_dependency_surfaces_from_the_helpers() -> None:
    with pytest.raises(
        PipelineValidationError, match=r"^Stage 'c0' depends on 'nope' which does not exist$"
    ):
        with_linear_chain(BASE, 2, named("c"), first_depends_on=("nope",))


def test_bad_helper_arguments_name_the_helper_and_rule() -> None:
    with pytest.raises(
        StageDefinitionTypeError, match=r"^with_linear_chain: count must be an int; got '3'$"
    ):
        with_linear_chain(BASE, "3", named("c"))  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^with_parallel_stages: stage_factory must be a callable index -> \(name, runner\); got str$",
    ):
        with_parallel_stages(BASE, 1, "factory")  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^with_linear_chain: stage_factory\(0\) must be a \(name, runner\) pair; got 'c0'$",
    ):
        with_linear_chain(BASE, 1, lambda i: f"c{i}")  # type: ignore[arg-type,return-value]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^with_fan_out_fan_in: fan_in_stage must be a \(name, runner\) pair; got 'join'$",
    ):
        with_fan_out_fan_in(BASE, ("f", NoopStage), 1, named("w"), "join")  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^with_conditional_branch: branches must be a mapping of branch label to \(name, runner\); got list$",
    ):
        with_conditional_branch(BASE, ("r", NoopStage), [("b", NoopStage)])  # type: ignore[arg-type]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^with_conditional_branch: branches\['x'\] must be a \(name, runner\) pair; got 'bx'$",
    ):
        with_conditional_branch(BASE, ("r", NoopStage), {"x": "bx"})  # type: ignore[dict-item]


def test_fluent_stage_adds_no_dependency_unless_given() -> None:
    fluent = FluentPipelineBuilder("f").stage("a", NoopStage).stage("b", NoopStage)
    assert shape(fluent.builder) == {"a": ((), False), "b": ((), False)}
    assert fluent._last_stage == "b"
    fluent.stage("c", NoopStage, depends_on=["a", "b"], conditional=True)
    assert shape(fluent.builder)["c"] == (("a", "b"), True)
    assert fluent.builder.name == "f"


def test_fluent_tracks_the_last_stage() -> None:
    fluent = FluentPipelineBuilder("f")
    # Collected, then compared: asserting each step would narrow _last_stage for mypy.
    last = [fluent._last_stage]
    fluent.linear_chain(2, named("c"))
    last.append(fluent._last_stage)
    fluent.linear_chain(0, named("z"))
    last.append(fluent._last_stage)
    fluent.fan_out_fan_in(("split", NoopStage), 2, named("w"), ("join", NoopStage))
    last.append(fluent._last_stage)
    fluent.parallel(2, named("p"))
    last.append(fluent._last_stage)
    assert last == [None, "c1", "c1", "join", None]
    fluent.linear_chain(1, named("tail"), first_depends_on=("p0", "p1"))
    assert shape(fluent.builder) == {
        "c0": ((), False),
        "c1": (("c0",), False),
        "split": (("c1",), False),
        "w0": (("split",), False),
        "w1": (("split",), False),
        "join": (("w0", "w1"), False),
        "p0": (("join",), False),
        "p1": (("join",), False),
        "tail0": (("p0", "p1"), False),
    }


def test_fluent_explicit_dependencies_override_the_last_stage() -> None:
    fluent = FluentPipelineBuilder("f").stage("a", NoopStage).stage("b", NoopStage)
    fluent.parallel(1, named("p"), depends_on=("a",)).stage("x", NoopStage)
    fluent.linear_chain(1, named("c"), first_depends_on=())
    assert shape(fluent.builder)["p0"] == (("a",), False)
    assert shape(fluent.builder)["c0"] == ((), False)


def test_fluent_calls_the_chain_factory_once_per_stage() -> None:
    calls: list[int] = []

    def factory(i: int) -> tuple[str, Any]:
        calls.append(i)
        return f"c{len(calls)}", NoopStage

    fluent = FluentPipelineBuilder("f").linear_chain(3, factory)
    assert calls == [0, 1, 2]
    # The name the chain really ended with, even from a stateful factory.
    assert fluent._last_stage == "c3"


def test_fluent_stage_rejects_a_bare_string_dependency() -> None:
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^PipelineSpec 'b': dependencies must be a tuple or list of stage names; got str 'a'$",
    ):
        FluentPipelineBuilder("f").stage("a", NoopStage).stage("b", NoopStage, depends_on="a")  # type: ignore[arg-type]


def test_fluent_build_returns_a_stage_graph() -> None:
    from stageflow_trio.pipeline.dag import StageGraph

    graph = FluentPipelineBuilder("f").stage("a", NoopStage).linear_chain(2, named("c")).build()
    assert isinstance(graph, StageGraph)
    assert [spec.name for spec in graph.stage_specs] == ["a", "c0", "c1"]
