"""Shared test set-up: Hypothesis profiles, a clean slate for global singletons, the reference."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from tests.fakes import import_reference

if TYPE_CHECKING:
    from types import ModuleType

# The library's own pytest plugin: reset_globals around every test (its autouse
# reset_stageflow_globals fixture), virtual_clock, recording_sink and the builders;
# pytest's pytester, to run the plugin in a project of its own (tests/testing/test_plugin.py).
pytest_plugins = ["stageflow_trio.testing.plugin", "pytester"]

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def reference() -> ModuleType:
    """The reference ``stageflow`` package (stageflow-core 0.9.1); skips when not installed."""
    return import_reference()
