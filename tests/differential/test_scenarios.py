"""Run every differential scenario on the reference (asyncio) and on stageflow_trio (trio).

The scenarios live in ``scenarios_*.py`` beside this file (see harness.py for how one is
written). Each must give the same normalized outcome and event stream on both sides once its
listed divergences are applied; each divergence must point at a parity.md row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.differential import scenarios_core as scenarios_core
from tests.differential import scenarios_runtime as scenarios_runtime
from tests.differential import scenarios_tools_helpers as scenarios_tools_helpers
from tests.differential.harness import PHASES, SCENARIOS, Scenario, compare, normalize

MODULES = (scenarios_core, scenarios_runtime, scenarios_tools_helpers)
PARITY = (Path(__file__).resolve().parent.parent.parent / "docs" / "parity.md").read_text(
    encoding="utf-8"
)


@pytest.mark.parametrize("item", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_same_outcome_and_events(item: Scenario) -> None:
    ref, ours = compare(item)
    raised = ref["outcome"].get("raised") if isinstance(ref["outcome"], dict) else None
    assert raised == item.raises, ref["outcome"]
    # Plain data only: an object left in would compare by identity, or not at all.
    json.dumps(ref)
    json.dumps(ours)
    assert ours == ref


def test_enough_scenarios_in_every_phase() -> None:
    assert len(SCENARIOS) >= 60
    assert {s.phase for s in SCENARIOS} == set(PHASES)
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


def test_every_divergence_points_at_a_parity_row() -> None:
    for item in SCENARIOS:
        for divergence in item.divergences:
            assert f"## {divergence.section}\n" in PARITY, (item.name, divergence.section)
            section = PARITY.split(f"## {divergence.section}\n", 1)[1].split("\n## ", 1)[0]
            assert f"| {divergence.row}" in section, (item.name, divergence.row)


def test_normalize_replaces_ids_timestamps_and_durations() -> None:
    import uuid
    from datetime import UTC, datetime

    raw = {
        "id": uuid.UUID(int=1),
        "sid": "00000000-0000-0000-0000-000000000002",
        "at": "2026-01-01T00:00:00.123456+00:00",
        "when": datetime(2026, 1, 1, tzinfo=UTC),
        "duration_ms": 12.5,
        "delay_ms": 100,
        "none": None,
        "nested": ({"latency_ms": 3},),
    }
    assert normalize(raw) == {
        "id": "<uuid>",
        "sid": "<uuid>",
        "at": "<timestamp>",
        "when": "<timestamp>",
        "duration_ms": "<number>",
        "delay_ms": 100,
        "none": None,
        "nested": [{"latency_ms": "<number>"}],
    }
