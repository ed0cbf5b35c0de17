"""The reference's auth package, for the differential tests."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def ref_auth(reference: ModuleType) -> ModuleType:
    """The reference's ``stageflow.auth`` package, with its submodules imported."""
    for name in ("context", "errors", "events", "interceptors", "tenant"):
        importlib.import_module(f"stageflow.auth.{name}")
    return importlib.import_module("stageflow.auth")
