"""The v1 ToolOutput (tools.base) checks its fields when it is built, naming the field.

It used to take ``success=1``, ``error=5``, ``data=[("a", 1)]`` (turned into a
dict) and ``artifacts="abc"`` (split into characters) without a word.
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from stageflow_trio.tools.base import ToolOutput
from stageflow_trio.tools.registry import ToolRegistry
from stageflow_trio.utils.frozen import FrozenDict, FrozenList


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"success": 1}, "ToolOutput: success must be a bool; got int"),
        ({"success": 0}, "ToolOutput: success must be a bool; got int"),
        ({"success": "yes"}, "ToolOutput: success must be a bool; got str"),
        ({"success": None}, "ToolOutput: success must be a bool; got NoneType"),
        ({"success": True, "error": 5}, "ToolOutput: error must be a str or None; got int"),
        ({"success": False, "error": b"x"}, "ToolOutput: error must be a str or None; got bytes"),
        ({"success": True, "data": 5}, "ToolOutput: data must be a mapping or None; got int"),
        (
            {"success": True, "data": [("a", 1)]},
            "ToolOutput: data must be a mapping or None; got list",
        ),
        ({"success": True, "data": "ab"}, "ToolOutput: data must be a mapping or None; got str"),
        (
            {"success": True, "artifacts": 5},
            "ToolOutput: artifacts must be a list of mappings or None; got int",
        ),
        (
            {"success": True, "artifacts": "abc"},
            "ToolOutput: artifacts must be a list of mappings or None; got str",
        ),
        (
            {"success": True, "artifacts": {"a": 1}},
            "ToolOutput: artifacts must be a list of mappings or None; got dict",
        ),
        (
            {"success": True, "artifacts": [{"a": 1}, 5]},
            "ToolOutput: artifacts[1] must be a mapping; got int",
        ),
        (
            {"success": True, "artifacts": ({"a": 1}, "x")},
            "ToolOutput: artifacts[1] must be a mapping; got str",
        ),
    ],
)
def test_a_wrong_field_is_a_type_error_naming_it(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError) as info:
        ToolOutput(**fields)
    assert str(info.value) == message


def test_the_shapes_a_tool_returns_are_still_accepted() -> None:
    assert ToolOutput(success=True) == ToolOutput(True)
    out = ToolOutput(success=False, data=None, error="boom", artifacts=None)
    assert (out.success, out.error) == (False, "boom")
    proxy = types.MappingProxyType({"k": 1})
    assert ToolOutput(success=True, data=proxy).data == {"k": 1}
    frozen = FrozenDict({"k": 1})
    assert ToolOutput(success=True, data=frozen).data is frozen
    # Non-str keys are not looked at (no per-key cost).
    int_keys: Any = {1: 2}
    assert ToolOutput(success=True, data=int_keys).data == int_keys

    def artifacts() -> Iterator[dict[str, Any]]:
        yield {"n": 1}
        yield {"n": 2}

    for given in ([{"n": 1}, {"n": 2}], ({"n": 1}, {"n": 2}), artifacts()):
        built = ToolOutput(success=True, artifacts=given)  # type: ignore[arg-type]
        assert built.artifacts == [{"n": 1}, {"n": 2}]
        assert isinstance(built.artifacts, FrozenList)
    kept = FrozenList([{"n": 1}])
    assert ToolOutput(success=True, artifacts=kept).artifacts is kept
    mapped: Any = [proxy]
    assert ToolOutput(success=True, artifacts=mapped).artifacts == [{"k": 1}]
    assert ToolOutput(success=True, artifacts=[]).artifacts == []


def test_evolve_checks_too() -> None:
    out = ToolOutput(success=True)
    with pytest.raises(TypeError, match=r"^ToolOutput: success must be a bool; got int$"):
        attrs.evolve(out, success=1)  # type: ignore[arg-type]


async def test_the_registry_output_for_a_missing_tool_still_builds() -> None:
    action = types.SimpleNamespace(id=uuid.uuid4(), type="nothing", payload={})
    out = await ToolRegistry().execute(action, {})
    assert out == ToolOutput(success=False, error="No tool registered for action type: nothing")


def test_the_reference_takes_anything(reference: Any) -> None:
    # The reference's frozen dataclass has no checks: the divergence is deliberate.
    from stageflow.tools.base import ToolOutput as RefToolOutput

    assert RefToolOutput(success=1, error=5).success == 1  # type: ignore[arg-type]
