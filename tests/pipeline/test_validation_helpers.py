"""stageflow_trio.pipeline.validation: checks over any {name: spec} mapping."""

from __future__ import annotations

import attrs
import pytest

from stageflow_trio.pipeline.spec import CycleDetectedError, PipelineValidationError
from stageflow_trio.pipeline.validation import (
    ensure_compatible_stage_specs,
    ensure_non_empty,
    topologically_sorted_stage_names,
    validate_stage_dependencies,
)


@attrs.frozen
class Spec:
    name: str
    dependencies: tuple[str, ...] = ()
    runner: object = None


def table(**deps: tuple[str, ...]) -> dict[str, Spec]:
    return {name: Spec(name, d) for name, d in deps.items()}


def test_ensure_non_empty() -> None:
    ensure_non_empty(table(a=()), message="unused")
    with pytest.raises(PipelineValidationError, match=r"^nothing to run$") as info:
        ensure_non_empty({}, message="nothing to run")
    assert info.value.error_info is not None
    assert info.value.error_info.code == "CONTRACT-004-EMPTY"


def test_validate_stage_dependencies() -> None:
    validate_stage_dependencies(table(a=(), b=("a",)))
    with pytest.raises(PipelineValidationError, match=r"^Stage 'b' depends on 'x'") as info:
        validate_stage_dependencies(table(a=(), b=("x",)))
    assert info.value.stages == ["b", "x"]
    with pytest.raises(CycleDetectedError) as cycle:
        validate_stage_dependencies(table(a=("b",), b=("a",)))
    assert cycle.value.cycle_path == ["a", "b", "a"]


def test_ensure_compatible_stage_specs() -> None:
    same, other = Spec("s", ("a",), runner=1), Spec("s", ("a",), runner=2)
    ensure_compatible_stage_specs(name="s", existing=same, incoming=same, attrs=("runner",))
    ensure_compatible_stage_specs(name="s", existing=same, incoming=other, attrs=("dependencies",))
    with pytest.raises(
        PipelineValidationError, match=r"^Cannot compose pipelines: stage 's' has different specs$"
    ) as info:
        ensure_compatible_stage_specs(name="s", existing=same, incoming=other, attrs=("runner",))
    assert info.value.error_info is not None
    assert info.value.error_info.code == "CONTRACT-004-CONFLICT"
    assert info.value.error_info.context == {"stage": "s"}


def test_topological_order_keeps_mapping_order_for_ties() -> None:
    stages = table(c=("a", "a"), a=(), b=(), d=("c", "b"))
    assert topologically_sorted_stage_names(stages) == ["a", "b", "c", "d"]
    assert topologically_sorted_stage_names({}) == []


def test_topological_order_leaves_out_stages_that_cannot_run() -> None:
    stages = table(a=(), b=("c",), c=("b",), d=("missing",), e=("a",))
    assert topologically_sorted_stage_names(stages) == ["a", "e"]
