"""Audit regression: a wrong ``builder`` fails at the call, naming it."""

from __future__ import annotations

from typing import Any

import pytest

from stageflow_trio.core import StageOutput
from stageflow_trio.pipeline._checks import StageDefinitionTypeError
from stageflow_trio.pipeline.builder_helpers import (
    with_conditional_branch,
    with_fan_out_fan_in,
    with_linear_chain,
    with_parallel_stages,
)


async def _runner(ctx: Any) -> StageOutput:
    return StageOutput.ok()


def _factory(index: int) -> tuple[str, Any]:
    return f"w{index}", _runner


@pytest.mark.parametrize(
    ("helper", "call"),
    [
        ("with_linear_chain", lambda b: with_linear_chain(b, 2, _factory)),
        ("with_linear_chain", lambda b: with_linear_chain(b, 0, _factory)),
        ("with_parallel_stages", lambda b: with_parallel_stages(b, 2, _factory)),
        (
            "with_fan_out_fan_in",
            lambda b: with_fan_out_fan_in(b, ("a", _runner), 2, _factory, ("z", _runner)),
        ),
        ("with_conditional_branch", lambda b: with_conditional_branch(b, ("r", _runner), {})),
    ],
)
def test_builder_must_be_a_pipeline_builder(helper: str, call: Any) -> None:
    with pytest.raises(
        StageDefinitionTypeError,
        match=rf"^{helper}: builder must be a PipelineBuilder; got NoneType$",
    ):
        call(None)
