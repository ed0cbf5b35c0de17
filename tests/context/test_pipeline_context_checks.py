"""``PipelineContext.create`` and ``from_snapshot`` check their arguments at the call.

(``stageflow_trio.stages.context``; these two methods' checks live with the context
tests.) ``create(data=5)`` used to raise AttributeError from ``5.copy()``, and
``from_snapshot({...})`` AttributeError from reading a dict's ``pipeline_run_id``.
"""

from __future__ import annotations

import uuid
from types import MappingProxyType
from typing import Any

import pytest

from stageflow_trio.context import ContextSnapshot, RunIdentity
from stageflow_trio.stages.context import PipelineContext


@pytest.mark.parametrize("param", ["data", "configuration", "metadata"])
@pytest.mark.parametrize(("value", "kind"), [(5, "int"), ([("a", 1)], "list"), ("ab", "str")])
def test_create_needs_mappings(param: str, value: Any, kind: str) -> None:
    with pytest.raises(
        TypeError, match=rf"^PipelineContext.create: {param} must be a mapping or None; got {kind}$"
    ):
        PipelineContext.create(**{param: value})


def test_create_copies_any_mapping_into_a_new_dict() -> None:
    source = {"a": 1}
    ctx = PipelineContext.create(
        data=source, configuration=MappingProxyType({"c": 2}), metadata=None
    )
    assert (ctx.data, ctx.configuration, ctx.metadata) == ({"a": 1}, {"c": 2}, {})
    assert type(ctx.configuration) is dict
    ctx.data["b"] = 2
    assert source == {"a": 1}


@pytest.mark.parametrize(("value", "kind"), [(5, "int"), ("art", "str"), ({"a": 1}, "dict")])
def test_create_needs_a_list_of_artifacts(value: Any, kind: str) -> None:
    with pytest.raises(
        TypeError,
        match=rf"^PipelineContext.create: artifacts must be a list of StageArtifact or None; "
        rf"got {kind}$",
    ):
        PipelineContext.create(artifacts=value)


@pytest.mark.parametrize(
    ("snapshot", "message"),
    [
        (
            {"a": 1},
            r"got dict \(read a dict with ContextSnapshot.from_dict first\)",
        ),
        (5, "got int"),
        (None, "got NoneType"),
    ],
)
def test_from_snapshot_needs_a_snapshot(snapshot: Any, message: str) -> None:
    with pytest.raises(
        TypeError,
        match=rf"^PipelineContext.from_snapshot: snapshot must be a ContextSnapshot; {message}$",
    ):
        PipelineContext.from_snapshot(snapshot)


def test_from_snapshot_carries_the_snapshot() -> None:
    run_id = uuid.UUID(int=7)
    snapshot: ContextSnapshot[Any] = ContextSnapshot(
        run_id=RunIdentity(pipeline_run_id=run_id), input_text="hi", metadata={"m": 1}
    )
    ctx = PipelineContext.from_snapshot(snapshot, data={"k": 1})
    assert (ctx.pipeline_run_id, ctx.input_text, ctx.metadata, ctx.data) == (
        run_id,
        "hi",
        {"m": 1},
        {"k": 1},
    )
