"""StageKind and StageStatus: the reference's members, values and str behaviour."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from stageflow_trio.core import stage_enums
from stageflow_trio.core.stage_enums import StageKind, StageStatus


def test_exports() -> None:
    assert sorted(stage_enums.__all__) == ["StageKind", "StageStatus"]


def test_values() -> None:
    assert [(m.name, m.value) for m in StageKind] == [
        ("TRANSFORM", "transform"),
        ("ENRICH", "enrich"),
        ("ROUTE", "route"),
        ("GUARD", "guard"),
        ("WORK", "work"),
        ("AGENT", "agent"),
    ]
    assert [(m.name, m.value) for m in StageStatus] == [
        ("OK", "ok"),
        ("SKIP", "skip"),
        ("CANCEL", "cancel"),
        ("FAIL", "fail"),
        ("RETRY", "retry"),
    ]


def test_members_are_strings() -> None:
    as_str: str = StageStatus.OK  # compared as the str it is, not as an enum member
    assert as_str == "ok"
    assert isinstance(StageKind.GUARD, str)
    assert StageStatus("fail") is StageStatus.FAIL
    assert StageKind("work") is StageKind.WORK
    with pytest.raises(ValueError, match=r"^'nope' is not a valid StageStatus$"):
        StageStatus("nope")


@pytest.mark.parametrize("name", ["StageKind", "StageStatus"])
def test_differential_against_reference(reference: ModuleType, name: str) -> None:
    ref = reference.core.stage_enums
    ours, theirs = getattr(stage_enums, name), getattr(ref, name)
    assert [(m.name, m.value) for m in ours] == [(m.name, m.value) for m in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        # StrEnum since the 1.2.0 port: str() and format() give the value, where
        # 0.9.1's (str, Enum) gives "StageKind.GUARD"; everything else is unchanged.
        assert str(mine) == other.value
        assert f"{mine}" == other.value
        assert str(other) == f"{name}.{other.name}"
        assert repr(mine) == repr(other)
        assert mine == other.value
        assert hash(mine) == hash(other)
        assert json.dumps({"k": mine}) == json.dumps({"k": other})
