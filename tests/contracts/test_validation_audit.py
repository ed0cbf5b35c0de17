"""Audit: the stage-graph validation helpers refuse malformed input at the call."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from stageflow_trio.pipeline.spec import validate_dependencies
from stageflow_trio.pipeline.validation import (
    ensure_compatible_stage_specs,
    ensure_non_empty,
    topologically_sorted_stage_names,
    validate_stage_dependencies,
)


@attrs.frozen
class Spec:
    name: str
    dependencies: Any = ()


def test_a_str_of_dependencies_is_not_read_per_character() -> None:
    # "ab" used to be read as the stages "a" and "b", which exist: no error at all.
    deps: Any = {"a": (), "b": (), "c": "ab"}
    with pytest.raises(
        TypeError,
        match=(
            r"^validate_dependencies: the dependencies of stage 'c' must be a tuple or "
            r"list of str; got str$"
        ),
    ):
        validate_dependencies(deps)
    stages = {"a": Spec("a"), "b": Spec("b"), "c": Spec("c", "ab")}
    with pytest.raises(
        TypeError,
        match=(
            r"^validate_stage_dependencies: stages\['c'\]\.dependencies must be a tuple or "
            r"list of str; got str$"
        ),
    ):
        validate_stage_dependencies(stages)
    with pytest.raises(
        TypeError,
        match=(
            r"^topologically_sorted_stage_names: stages\['c'\]\.dependencies must be a tuple "
            r"or list of str; got str$"
        ),
    ):
        topologically_sorted_stage_names(stages)


def test_dependency_items_must_be_str() -> None:
    with pytest.raises(
        TypeError,
        match=(
            r"^validate_dependencies: the dependencies of stage 'a' must be a tuple or list "
            r"of str; got an item of type list$"
        ),
    ):
        validate_dependencies({"a": [["b"]]})  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: validate_dependencies(None),  # type: ignore[arg-type]
            "validate_dependencies: deps must be a mapping of stage name to dependencies; "
            "got NoneType",
        ),
        (
            lambda: validate_stage_dependencies(None),  # type: ignore[arg-type]
            "validate_stage_dependencies: stages must be a mapping of stage name to spec; "
            "got NoneType",
        ),
        (
            lambda: topologically_sorted_stage_names(["a"]),  # type: ignore[arg-type]
            "topologically_sorted_stage_names: stages must be a mapping of stage name to spec; "
            "got list",
        ),
        (
            lambda: ensure_non_empty(None, message="empty"),  # type: ignore[arg-type]
            "ensure_non_empty: stages must be a mapping of stage name to spec; got NoneType",
        ),
        (
            lambda: ensure_non_empty({"a": Spec("a")}, message=5),  # type: ignore[arg-type]
            "ensure_non_empty: message must be a str; got int",
        ),
        (
            lambda: validate_stage_dependencies({"a": 5}),  # type: ignore[dict-item]
            "validate_stage_dependencies: stages['a'] must be a spec with name and "
            "dependencies; got int",
        ),
        (
            lambda: ensure_compatible_stage_specs(
                name="a",
                existing=Spec("a"),
                incoming=Spec("a"),
                attrs="dependencies",  # type: ignore[arg-type]
            ),
            "ensure_compatible_stage_specs: attrs must be a tuple or list of attribute names; "
            "got str",
        ),
        (
            lambda: ensure_compatible_stage_specs(
                name="a", existing=Spec("a"), incoming=Spec("a"), attrs=("runner",)
            ),
            "ensure_compatible_stage_specs: existing has no attribute 'runner' "
            "(attrs must name attributes of both specs)",
        ),
    ],
)
def test_bad_arguments_name_the_parameter(call: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        call()
    assert str(info.value) == message


def test_good_input_still_validates() -> None:
    stages = {"b": Spec("b", ["a"]), "a": Spec("a")}
    validate_stage_dependencies(stages)
    assert topologically_sorted_stage_names(stages) == ["a", "b"]
    ensure_compatible_stage_specs(
        name="a", existing=Spec("a"), incoming=Spec("a"), attrs=("dependencies",)
    )
