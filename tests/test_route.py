"""stageflow_trio.route imports (the reference's does not) and exports nothing."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pytest

import stageflow_trio.route as route

if TYPE_CHECKING:
    from types import ModuleType


def test_route_is_an_empty_namespace(reference: ModuleType) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"stageflow\.route\.confidence_router"):
        importlib.import_module("stageflow.route")
    assert route.__all__ == []
    assert not hasattr(route, "ConfidenceRouterStage")
