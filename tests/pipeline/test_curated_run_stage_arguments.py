"""The curated ``run_stage``: wrong-typed arguments get ``Pipeline.with_stage``'s messages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stageflow_trio.api import Pipeline, StageContext, run_stage
from stageflow_trio.pipeline.spec import StageDefinitionTypeError


async def work(ctx: StageContext) -> dict[str, int]:
    return {"x": 1}


def with_stage_message(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(StageDefinitionTypeError) as caught:
        Pipeline().with_stage(*args, **kwargs)
    return str(caught.value)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            ("a", work, ["work"]),
            {},
            "UnifiedStageSpec 'a': kind must be a StageKind (one of transform, enrich, route, "
            "guard, work, agent); got ['work']",
        ),
        (
            ("a", work, "work"),
            {"conditional": []},
            "UnifiedStageSpec 'a': conditional must be a bool; got list",
        ),
        (("a", work, {"work"}), {}, None),
        ((["a"], work, "work"), {}, "UnifiedStageSpec name must be a str; got list"),
    ],
)
async def test_unhashable_arguments_get_the_with_stage_message(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str | None
) -> None:
    # They raised a bare "TypeError: unhashable type: 'list'" from run_stage's cache.
    expected = with_stage_message(*args, **kwargs)
    if message is not None:
        assert expected == message
    with pytest.raises(StageDefinitionTypeError, match=f"^{re.escape(expected)}$"):
        await run_stage(*args, **kwargs)


async def test_run_stage_still_runs_a_stage() -> None:
    output = await run_stage("a", work, "work")
    assert dict(output.data) == {"x": 1}
