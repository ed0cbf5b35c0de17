"""PipelineSpec, StageRunner, PipelineValidationError, CycleDetectedError and runner wrappers."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import attrs
import pytest

from stageflow_trio.contracts import ContractErrorInfo
from stageflow_trio.errors import StageflowError
from stageflow_trio.pipeline.spec import (
    CycleDetectedError,
    PipelineSpec,
    PipelineValidationError,
    StageDefinitionError,
    StageDefinitionTypeError,
    StageRunner,
    as_async_runner,
)
from tests.fakes import NoopStage


def test_defaults_and_normalization() -> None:
    deps = ["a", "b"]
    spec = PipelineSpec("s", NoopStage, deps, inputs=["i"], outputs=("o",), args={"k": 1})
    deps.append("c")
    assert spec.dependencies == ("a", "b")
    assert (spec.inputs, spec.outputs, dict(spec.args)) == (("i",), ("o",), {"k": 1})
    bare = PipelineSpec("t", NoopStage)
    assert (bare.dependencies, bare.inputs, bare.outputs, bare.conditional, dict(bare.args)) == (
        (),
        (),
        (),
        False,
        {},
    )
    assert PipelineSpec("u", NoopStage, None).dependencies == ()


def test_is_frozen() -> None:
    spec = PipelineSpec("s", NoopStage, args={"k": 1})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.name = "t"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.args["k"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "deps", "message"),
    [
        ("", (), "PipelineSpec name cannot be empty"),
        ("  ", (), "PipelineSpec name cannot be whitespace-only"),
        ("a", ("b", "a"), "PipelineSpec 'a' cannot depend on itself"),
    ],
)
def test_invalid_values_match_the_reference(
    reference: ModuleType, name: str, deps: tuple[str, ...], message: str
) -> None:
    with pytest.raises(StageDefinitionError, match=f"^{message}$"):
        PipelineSpec(name, NoopStage, deps)
    ref = reference.pipeline.spec
    with pytest.raises(ValueError, match=f"^{message}$"):
        ref.PipelineSpec(name, NoopStage, deps)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": 1}, r"PipelineSpec name must be a str; got int"),
        (
            {"runner": 42},
            r"PipelineSpec 's': runner must be a stage class, a stage instance with an "
            r"execute\(\) method, or an async callable; got int",
        ),
        (
            {"dependencies": "a"},
            r"PipelineSpec 's': dependencies must be a tuple or list of stage names; got str 'a'",
        ),
        (
            {"inputs": [1]},
            r"PipelineSpec 's': inputs must contain only str stage names; got int 1",
        ),
        ({"conditional": "yes"}, r"PipelineSpec 's': conditional must be a bool; got str"),
        (
            {"args": ["k"]},
            r"PipelineSpec 's': args must be a mapping of keyword arguments; got list",
        ),
    ],
)
def test_wrong_types_name_the_stage_and_the_rule(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"name": "s", "runner": NoopStage, **kwargs}
    with pytest.raises(StageDefinitionTypeError, match=f"^{message}$"):
        PipelineSpec(**arguments)


def test_hash_uses_runner_identity_and_ignores_args() -> None:
    a = PipelineSpec("s", NoopStage, ("x",), args={"k": 1})
    b = PipelineSpec("s", NoopStage, ("x",), args={"k": 2})
    assert hash(a) == hash(b)
    assert a != b
    assert a == PipelineSpec("s", NoopStage, ["x"], args={"k": 1})
    assert hash(PipelineSpec("s", NoopStage())) != hash(PipelineSpec("s", NoopStage()))
    assert len({a, PipelineSpec("s", NoopStage, ("x",), args={"k": 1})}) == 1


def test_stage_runner_protocol() -> None:
    assert isinstance(NoopStage(), StageRunner)
    assert not isinstance(object(), StageRunner)


def test_validation_error_shape() -> None:
    err = PipelineValidationError("boom")
    assert (str(err), err.stages, err.error_info) == ("boom", [], None)
    assert err.to_dict() == {"message": "boom", "stages": [], "error_info": None}
    assert err.with_context(x=1) is err
    assert err.error_info is None
    assert isinstance(err, StageflowError)


def test_validation_error_with_info_and_context() -> None:
    info = ContractErrorInfo("C", "S", context={"a": 1})
    err = PipelineValidationError("boom", ["x"], error_info=info)
    assert err.with_context(b=2) is err
    assert err.to_dict() == {
        "message": "boom",
        "stages": ["x"],
        "error_info": {
            "code": "C",
            "summary": "S",
            "fix_hint": None,
            "doc_url": None,
            "context": {"a": 1, "b": 2},
        },
    }


def test_validation_error_to_dict_matches_the_reference(reference: ModuleType) -> None:
    ref_spec = reference.pipeline.spec
    ref_contracts = reference.contracts
    ours = PipelineValidationError(
        "m", ["a"], error_info=ContractErrorInfo("C", "S", "h", "u", {"k": [1]})
    ).with_context(z=0)
    theirs = ref_spec.PipelineValidationError(
        "m", ["a"], error_info=ref_contracts.ContractErrorInfo("C", "S", "h", "u", {"k": [1]})
    ).with_context(z=0)
    assert ours.to_dict() == theirs.to_dict()
    assert PipelineValidationError("m").to_dict() == ref_spec.PipelineValidationError("m").to_dict()


def test_cycle_detected_error() -> None:
    err = CycleDetectedError(["a", "b", "c", "a"])
    assert str(err) == "Pipeline contains a cycle: a -> b -> c -> a"
    assert repr(err) == "CycleDetectedError(cycle_path=['a', 'b', 'c', 'a'])"
    assert err.stages == ["a", "b", "c", "a"]
    assert err.to_dict() == {
        "message": "Pipeline contains a cycle: a -> b -> c -> a",
        "stages": ["a", "b", "c", "a"],
        "error_info": {
            "code": "CONTRACT-004-CYCLE",
            "summary": "Pipeline contains a dependency cycle",
            "fix_hint": "Break the cycle by removing one dependency in the loop.",
            "doc_url": "https://github.com/stageflow/stageflow/blob/main/docs/guides/stages.md#contract-troubleshooting",
            "context": {"cycle_path": ["a", "b", "c", "a"]},
        },
    }
    assert CycleDetectedError(["a", "a"], stages=["a"]).stages == ["a"]
    assert isinstance(err, PipelineValidationError)


def test_cycle_detected_error_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.spec
    for args in ((["x", "y", "x"],), (["x", "y", "x"], ["y", "x"])):
        ours, theirs = CycleDetectedError(*args), ref.CycleDetectedError(*args)
        assert ours.to_dict() == theirs.to_dict()
        assert repr(ours) == repr(theirs)


class Counting:
    made: list[Counting] = []  # noqa: RUF012 - a test probe shared by instances

    def __init__(self, tag: str = "none") -> None:
        self.tag = tag
        Counting.made.append(self)

    async def execute(self, ctx: Any) -> str:
        return f"{self.tag}:{ctx}"


async def test_class_runner_is_instantiated_with_config_per_execution() -> None:
    Counting.made = []
    runner = as_async_runner(Counting, {"tag": "t"})
    assert await runner("c1") == "t:c1"
    assert await runner("c2") == "t:c2"
    assert len(Counting.made) == 2
    assert Counting.made[0] is not Counting.made[1]
    assert await as_async_runner(Counting, {})("c3") == "none:c3"


async def test_instance_runner_reuses_the_instance() -> None:
    Counting.made = []
    stage = Counting("i")
    runner = as_async_runner(stage, {})
    assert await runner(1) == "i:1"
    assert await runner(2) == "i:2"
    assert Counting.made == [stage]


async def test_plain_async_callable_is_used_directly() -> None:
    async def fn(ctx: Any) -> str:
        return f"fn:{ctx}"

    assert as_async_runner(fn, {}) is fn
    assert await as_async_runner(fn, {})(3) == "fn:3"
