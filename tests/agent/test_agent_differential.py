"""stageflow_trio's agent loop against stageflow 1.2.0's, scenario by scenario.

stageflow 1.2.0 runs under asyncio and cannot share this venv with 0.9.1, so its
outcomes are recorded once by ``make_agent_golden.py`` (run in a venv with
stageflow-core 1.2.0) into ``golden/agent_loop.json``, a reviewed file. Each test
runs one scenario here, under trio, and compares the whole outcome: the final
result or the error, and every message list the scripted client received. What
differs by design is blanked by ``normalize`` (generated uuids, the docstring
descriptions inside the JSON schemas, pydantic's versus cattrs' wording of a
validation error).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import stageflow_trio.agent as agent
import stageflow_trio.tools as tools

from .agent_harness import GOLDEN, load_scenarios, normalize, run

SCENARIOS = load_scenarios()
RECORDED: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_golden_file_is_from_1_2_0_and_covers_every_scenario() -> None:
    assert RECORDED["stageflow-core"] == "1.2.0"
    assert sorted(RECORDED["outcomes"]) == sorted(s["name"] for s in SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s["name"])
async def test_outcome_matches_stageflow_1_2_0(scenario: dict[str, Any]) -> None:
    ours = await run(scenario, agent, tools)
    assert normalize(ours) == normalize(RECORDED["outcomes"][scenario["name"]])


def test_normalize_blanks_only_what_differs_by_design() -> None:
    retry = (
        'Your previous response was invalid. Return ONLY ... schema: {"description": "Doc.", '
        '"title": "T"}. Validation error: 1 validation error for T\n  x "q"'
    )
    system = 'Return ONLY JSON:\n{\n  "description": "Doc.",\n  "title": "T"\n}'
    outcome = {"id": "0b4ee9a4-0c56-4d43-9d1c-1f3a5d0e0e4b", "m": [retry, system]}
    assert normalize(outcome) == {
        "id": "<uuid>",
        "m": [
            'Your previous response was invalid. Return ONLY ... schema: {"title": "T"}. '
            "Validation error: <error>",
            'Return ONLY JSON:\n{\n  "title": "T"\n}',
        ],
    }
