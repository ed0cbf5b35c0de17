"""stageflow_trio.api and stageflow_trio.advanced re-export the objects of their home modules.

Their ``__all__`` is compared with 1.2.0's in tests/pipeline/test_curated_differential.py.
"""

from __future__ import annotations

import json
from enum import StrEnum
from types import ModuleType

import pytest

import stageflow_trio
import stageflow_trio.advanced
import stageflow_trio.api
from stageflow_trio.core import StageKind, StageStatus
from stageflow_trio.tools.approval import ApprovalStatus


@pytest.mark.parametrize("module", [stageflow_trio.api, stageflow_trio.advanced])
def test_names_are_the_home_modules_objects(module: ModuleType) -> None:
    for name in module.__all__:
        value = getattr(module, name)
        if name == "StageReturn":
            # A type alias (a union), which has no module of its own.
            assert value is stageflow_trio.core.stage_output.StageReturn
            continue
        home = getattr(value, "__module__", "")
        assert home.startswith("stageflow_trio."), name
        assert not any(part.startswith("_") for part in home.split(".")[1:]), (name, home)
        if name in stageflow_trio.__all__:
            assert getattr(stageflow_trio, name) is value


def test_top_level_gains_the_curated_names() -> None:
    for name in ("PipelineResults", "run_stage", "stage", "stage_metadata"):
        assert name in stageflow_trio.__all__
        assert getattr(stageflow_trio, name) is getattr(stageflow_trio.api, name)


@pytest.mark.parametrize("enum", [StageKind, StageStatus, ApprovalStatus])
def test_enums_are_str_enums_that_serialize_as_before(
    enum: type[StrEnum], reference: ModuleType
) -> None:
    import stageflow.tools.approval

    theirs = {
        "StageKind": reference.core.StageKind,
        "StageStatus": reference.core.StageStatus,
        "ApprovalStatus": stageflow.tools.approval.ApprovalStatus,
    }[enum.__name__]
    assert issubclass(enum, StrEnum)
    for mine, other in zip(enum, theirs, strict=True):
        assert str(mine) == f"{mine}" == mine.value  # 0.9.1 gives "Enum.MEMBER"
        assert mine == other == other.value
        assert json.dumps({"s": mine, mine: 1}) == json.dumps({"s": other, other: 1})
        assert repr(mine) == repr(other)
