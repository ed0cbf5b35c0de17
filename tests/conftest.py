"""Shared test set-up: Hypothesis profiles and a clean slate for global singletons."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _clean_globals() -> Iterator[None]:
    """Reset the library's process-wide singletons around every test."""
    from stageflow_trio.testing import reset_globals

    reset_globals()
    yield
    reset_globals()
