"""Audit regressions: guard-retry helpers refuse wrong argument types at the call."""

from __future__ import annotations

import pytest

from stageflow_trio.pipeline.guard_retry import (
    GuardRetryPolicy,
    GuardRetryStrategy,
    hash_retry_payload,
)


def test_validate_needs_a_mapping_of_stages() -> None:
    strategy = GuardRetryStrategy({"guard": GuardRetryPolicy("draft")})
    with pytest.raises(
        TypeError, match=r"^stages must be a mapping of stage name to stage spec, got list$"
    ):
        strategy.validate(["guard"])  # type: ignore[arg-type]


def test_hash_retry_payload_needs_a_stage_output() -> None:
    with pytest.raises(TypeError, match=r"^output must be a StageOutput or None, got dict$"):
        hash_retry_payload({"a": 1})  # type: ignore[arg-type]
    assert hash_retry_payload(None) is None
