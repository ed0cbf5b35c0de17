"""@stage_metadata(name=..., kind=...)."""

from __future__ import annotations

from typing import Any

import pytest

from stageflow_trio.core import StageKind, stage_metadata


def test_sets_name_and_kind_on_the_class() -> None:
    @stage_metadata(name="router", kind="route")
    class Router:
        pass

    cls: Any = Router
    assert (cls.name, cls.kind) == ("router", StageKind.ROUTE)
    assert cls.kind is StageKind.ROUTE

    @stage_metadata(name="w", kind=StageKind.WORK)
    class Work:
        pass

    assert getattr(Work, "kind") is StageKind.WORK  # noqa: B009 - set by the decorator


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"^stage_metadata: name must be a str; got int$"):
        stage_metadata(name=1, kind="work")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^stage_metadata: name must be a non-blank str$"):
        stage_metadata(name="  ", kind="work")
    with pytest.raises(
        ValueError,
        match=r"^stage_metadata: kind must be one of transform, enrich, route, guard, work, "
        r"agent; got 'nope'$",
    ):
        stage_metadata(name="x", kind="nope")
    with pytest.raises(
        TypeError, match=r"^stage_metadata: kind must be a StageKind or str; got int$"
    ):
        stage_metadata(name="x", kind=3)  # type: ignore[arg-type]
    decorate: Any = stage_metadata(name="x", kind="work")
    with pytest.raises(TypeError, match=r"^stage_metadata: decorates a class; got function$"):
        decorate(lambda: None)
