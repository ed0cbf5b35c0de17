"""Audit 10: the hardening interceptors check their arguments when they are made.

Before, ``ContextSizeInterceptor(max_size_bytes="1MB")`` or
``ImmutabilityInterceptor(snapshot_getter=5)`` were accepted and then failed inside
every stage call (a logged hook error or warning), so the check silently never ran.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.interceptors_hardening import (
    ContextSizeInterceptor,
    ImmutabilityInterceptor,
)


async def _stage(ctx: StageContext) -> StageOutput:
    return StageOutput.ok(x=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"max_size_bytes": "1MB"},
            TypeError,
            "ContextSizeInterceptor: max_size_bytes must be a number of bytes; got str",
        ),
        (
            {"max_size_bytes": True},
            TypeError,
            "ContextSizeInterceptor: max_size_bytes must be a number of bytes; got bool",
        ),
        (
            {"warn_on_growth_bytes": None},
            TypeError,
            "ContextSizeInterceptor: warn_on_growth_bytes must be a number of bytes; got NoneType",
        ),
        (
            {"max_size_bytes": math.nan},
            ValueError,
            "ContextSizeInterceptor: max_size_bytes must be >= 0; got nan",
        ),
        (
            {"warn_on_growth_bytes": -1},
            ValueError,
            "ContextSizeInterceptor: warn_on_growth_bytes must be >= 0; got -1",
        ),
        (
            {"snapshot_getter": 5},
            TypeError,
            "ContextSizeInterceptor: snapshot_getter must be a callable or None; got int",
        ),
    ],
)
def test_context_size_interceptor_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        ContextSizeInterceptor(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"crash_on_violation": "no"},
            "ImmutabilityInterceptor: crash_on_violation must be a bool; got str",
        ),
        (
            {"crash_on_violation": 0},
            "ImmutabilityInterceptor: crash_on_violation must be a bool; got int",
        ),
        (
            {"snapshot_getter": "snapshot"},
            "ImmutabilityInterceptor: snapshot_getter must be a callable or None; got str",
        ),
    ],
)
def test_immutability_interceptor_rejects_bad_arguments(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError) as info:
        ImmutabilityInterceptor(**kwargs)
    assert str(info.value) == message


def test_good_arguments_are_kept() -> None:
    size = ContextSizeInterceptor(max_size_bytes=0, warn_on_growth_bytes=math.inf)
    assert (size.max_size_bytes, size.warn_on_growth_bytes) == (0, math.inf)
    assert ContextSizeInterceptor(max_size_bytes=1.5e6).max_size_bytes == 1.5e6
    checker = ImmutabilityInterceptor(crash_on_violation=False, snapshot_getter=None)
    assert checker.crash_on_violation is False


async def test_infinite_thresholds_never_warn(caplog: pytest.LogCaptureFixture) -> None:
    size = ContextSizeInterceptor(max_size_bytes=math.inf, warn_on_growth_bytes=math.inf)
    pipeline = Pipeline("p").with_stage("a", _stage, StageKind.TRANSFORM)
    with caplog.at_level(logging.DEBUG, logger="stageflow_trio"):
        results = await pipeline.run(interceptors=[size], input_text="hi")
    assert results["a"].data["x"] == 1
    assert size.metrics["a"].size_bytes > 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
