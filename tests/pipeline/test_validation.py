"""validate_dependencies and the stage-field checks shared by the builders and graphs."""

from __future__ import annotations

from itertools import pairwise
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given

from stageflow_trio.errors import StageflowError
from stageflow_trio.pipeline import _validation
from stageflow_trio.pipeline._checks import (
    check_bool,
    check_kind,
    check_kwargs,
    check_name,
    check_names,
    check_runner,
)
from stageflow_trio.pipeline.spec import (
    CycleDetectedError,
    PipelineValidationError,
    StageDefinitionError,
    StageDefinitionTypeError,
    validate_dependencies,
)
from tests.fakes import NoopStage

from .strategies import Graph, dags, dags_with_back_edge, graphs, is_cycle, shuffled_dags


def _error(graph: Graph) -> PipelineValidationError:
    with pytest.raises(PipelineValidationError) as caught:
        validate_dependencies(graph)
    return caught.value


def test_a_valid_graph_passes() -> None:
    validate_dependencies({})
    validate_dependencies({"a": (), "b": ("a",), "c": ("a", "b", "a")})


def test_missing_dependency() -> None:
    err = _error({"a": (), "b": ("a", "ghost")})
    assert type(err) is PipelineValidationError
    assert str(err) == "Stage 'b' depends on 'ghost' which does not exist"
    assert err.to_dict() == {
        "message": "Stage 'b' depends on 'ghost' which does not exist",
        "stages": ["b", "ghost"],
        "error_info": {
            "code": "CONTRACT-004-MISSING_DEP",
            "summary": "Stage depends on an undefined dependency",
            "fix_hint": "Add the missing stage or remove it from the dependency list.",
            "doc_url": "https://github.com/stageflow/stageflow/blob/main/docs/advanced/error-messages.md#missing-stage-dependencies",
            "context": {"stage": "b", "dependency": "ghost"},
        },
    }


def test_missing_dependency_is_reported_before_a_cycle() -> None:
    err = _error({"a": ("b",), "b": ("a",), "c": ("nope",)})
    assert err.error_info is not None
    assert err.error_info.code == "CONTRACT-004-MISSING_DEP"


def test_first_missing_dependency_in_mapping_order_wins() -> None:
    err = _error({"x": ("m2",), "y": ("m1",)})
    assert err.stages == ["x", "m2"]


def test_two_stage_cycle() -> None:
    err = _error({"a": ("b",), "b": ("a",)})
    assert isinstance(err, CycleDetectedError)
    assert err.cycle_path == ["a", "b", "a"]
    assert err.stages == ["a", "b"]
    assert str(err) == "Pipeline contains a cycle: a -> b -> a"


def test_self_loop_is_a_cycle() -> None:
    err = _error({"a": ("a",)})
    assert isinstance(err, CycleDetectedError)
    assert err.cycle_path == ["a", "a"]
    assert err.stages == ["a"]


def test_cycle_path_follows_mapping_then_declaration_order() -> None:
    graph = {"root": (), "p": ("q", "root"), "q": ("r",), "r": ("root", "p")}
    err = _error(graph)
    assert isinstance(err, CycleDetectedError)
    assert err.cycle_path == ["p", "q", "r", "p"]
    assert err.stages == ["p", "q", "r"]


def test_deep_graph_in_reverse_order_does_not_recurse() -> None:
    n = 20_000
    graph: dict[str, tuple[str, ...]] = {
        f"s{i}": ((f"s{i - 1}",) if i else ()) for i in reversed(range(n))
    }
    validate_dependencies(graph)
    graph["s0"] = (f"s{n - 1}",)
    err = _error(graph)
    assert isinstance(err, CycleDetectedError)
    assert len(err.cycle_path) == n + 1
    assert is_cycle(err.cycle_path, graph)


@given(dags())
def test_every_dag_validates(graph: Graph) -> None:
    validate_dependencies(graph)


@given(shuffled_dags())
def test_every_dag_validates_in_any_order(graph: Graph) -> None:
    validate_dependencies(graph)


@given(dags_with_back_edge())
def test_a_back_edge_is_reported_as_a_real_cycle(case: tuple[Graph, str, str]) -> None:
    graph, source, target = case
    err = _error(graph)
    assert isinstance(err, CycleDetectedError)
    assert is_cycle(err.cycle_path, graph)
    # The graph was acyclic without the added edge, so every cycle uses it.
    assert (source, target) in set(pairwise(err.cycle_path))
    assert err.stages == err.cycle_path[:-1]
    assert len(set(err.stages)) == len(err.stages)
    assert err.error_info is not None
    assert err.error_info.context["cycle_path"] == err.cycle_path


@given(graphs() | graphs(missing=False))
def test_same_error_as_the_reference_builder(reference: ModuleType, graph: Graph) -> None:
    ref_builder = reference.pipeline.builder
    ref_spec = reference.pipeline.spec
    specs = {name: ref_spec.PipelineSpec(name, NoopStage, deps) for name, deps in graph.items()}
    try:
        ref_builder.PipelineBuilder("p", stages=specs)
    except ref_spec.PipelineValidationError as exc:
        expected: Any = exc
    else:
        expected = None
    if expected is None:
        validate_dependencies(graph)
        return
    err = _error(graph)
    assert type(err).__name__ == type(expected).__name__
    ours, theirs = err.to_dict(), expected.to_dict()
    if isinstance(err, CycleDetectedError):
        # The reference builds `stages` from a set (d19); ours is the path order.
        assert sorted(ours.pop("stages")) == sorted(theirs.pop("stages"))
        assert err.cycle_path == expected.cycle_path
    assert ours == theirs


def test_check_name() -> None:
    assert check_name("Spec", "a") == "a"
    with pytest.raises(StageDefinitionTypeError, match=r"^Spec name must be a str; got int$"):
        check_name("Spec", 3)
    with pytest.raises(StageDefinitionError, match=r"^Spec name cannot be empty$"):
        check_name("Spec", "")
    with pytest.raises(StageDefinitionError, match=r"^Spec name cannot be whitespace-only$"):
        check_name("Spec", " \t")


def test_check_names() -> None:
    assert check_names("Spec", "s", "dependencies", None) == ()
    assert check_names("Spec", "s", "dependencies", ["a", "b"]) == ("a", "b")
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Spec 's': dependencies must be a tuple or list of stage names; got str 'ab'$",
    ):
        check_names("Spec", "s", "dependencies", "ab")
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Spec 's': inputs must be a tuple or list of stage names; got int 5$",
    ):
        check_names("Spec", "s", "inputs", 5)
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Spec 's': dependencies must contain only str stage names; got int 1$",
    ):
        check_names("Spec", "s", "dependencies", ("a", 1))


async def _callable(ctx: object) -> None:
    return None


def test_check_runner() -> None:
    check_runner("Spec", "s", NoopStage)
    check_runner("Spec", "s", NoopStage())
    check_runner("Spec", "s", _callable)

    class NoExecute:
        pass

    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Spec 's': runner class NoExecute has no execute\(\) method$",
    ):
        check_runner("Spec", "s", NoExecute)
    with pytest.raises(
        StageDefinitionTypeError,
        match=(
            r"^Spec 's': runner must be a stage class, a stage instance with an execute\(\) "
            r"method, or an async callable; got str$"
        ),
    ):
        check_runner("Spec", "s", "Stage")


def test_check_bool_and_kwargs() -> None:
    assert check_bool("Spec", "s", "conditional", True) is True
    with pytest.raises(
        StageDefinitionTypeError, match=r"^Spec 's': conditional must be a bool; got int$"
    ):
        check_bool("Spec", "s", "conditional", 1)
    assert dict(check_kwargs("Spec", "s", "args", None)) == {}
    frozen = check_kwargs("Spec", "s", "args", {"k": 1})
    with pytest.raises(TypeError):
        frozen["k"] = 2  # type: ignore[index]
    with pytest.raises(
        StageDefinitionTypeError,
        match=r"^Spec 's': args must be a mapping of keyword arguments; got list$",
    ):
        check_kwargs("Spec", "s", "args", [("k", 1)])
    with pytest.raises(
        StageDefinitionTypeError, match=r"^Spec 's': config keys must be str keyword names; got 1$"
    ):
        check_kwargs("Spec", "s", "config", {1: "x"})


def test_check_kind() -> None:
    from stageflow_trio.core.stage_enums import StageKind

    assert check_kind("Spec", "s", StageKind.GUARD) is StageKind.GUARD
    assert check_kind("Spec", "s", "route") is StageKind.ROUTE
    message = (
        r"^Spec 's': kind must be a StageKind \(one of transform, enrich, route, guard, work, "
        r"agent\); got {}$"
    )
    with pytest.raises(StageDefinitionTypeError, match=message.format("'router'")):
        check_kind("Spec", "s", "router")
    with pytest.raises(StageDefinitionTypeError, match=message.format("None")):
        check_kind("Spec", "s", None)


def test_error_classes() -> None:
    assert issubclass(StageDefinitionError, ValueError)
    assert issubclass(StageDefinitionError, StageflowError)
    assert issubclass(StageDefinitionTypeError, TypeError)
    assert issubclass(StageDefinitionTypeError, StageflowError)
    assert issubclass(PipelineValidationError, StageflowError)


@given(graphs())
def test_the_dependency_order_shortcut_accepts_only_what_the_full_check_accepts(
    graph: Graph,
) -> None:
    # validate_dependencies first tries a one-pass check (every dependency names an
    # earlier stage); when it says yes, the full check must agree.
    if _validation._in_dependency_order(graph):
        _validation._check_all_dependencies(graph)


@given(dags())
def test_the_dependency_order_shortcut_takes_every_dag_in_dependency_order(graph: Graph) -> None:
    assert _validation._in_dependency_order(graph)


@pytest.mark.parametrize(
    "graph",
    [
        {"a": ("a",)},  # a stage after itself
        {"a": ("b",), "b": ()},  # valid, but out of order: the full check decides
        {"a": ["b"], "b": []},  # lists: the full check reads them
        {"a": (), "b": ("a", ["x"])},  # an unhashable dependency
        {"a": (), "b": ("a", 1)},
        {1: (), "b": (1,)},  # a name that is not a str
    ],
)
def test_the_dependency_order_shortcut_leaves_the_rest_to_the_full_check(
    graph: dict[str, Any],
) -> None:
    assert not _validation._in_dependency_order(graph)
