"""The curated API against stageflow 1.2.0: the same scenarios, the recorded outputs.

1.2.0 runs under asyncio in a separate environment, so its outputs are recorded
by ``record_ref12.py`` (run with 1.2.0's Python) into ``ref12_curated.json``,
reviewed and committed; these tests run the same scenarios
(``curated_scenarios.py``) under trio and compare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import stageflow_trio.advanced
import stageflow_trio.api
from stageflow_trio.tools.approval import ApprovalStatus

from .curated_scenarios import SCENARIOS

GOLDEN: dict[str, Any] = json.loads(
    (Path(__file__).parent / "ref12_curated.json").read_text(encoding="utf-8")
)

# Where stageflow_trio differs on purpose (docs/parity.md, "Curated API (1.2.0)"):
# scenario -> (key path, 1.2.0's value, ours).
DIVERGENCES: dict[str, tuple[tuple[str, ...], Any, Any]] = {
    # An empty pipeline keeps 0.9.1's build() error.
    "run_argument_errors": (
        ("empty",),
        {
            "error": "PipelineValidationError",
            "key_error": False,
            "message": "Cannot build empty pipeline",
            "type_error": False,
            "value_error": False,
        },
        {
            "error": "EmptyPipelineError",
            "key_error": False,
            "message": "UnifiedStageGraph requires at least one UnifiedStageSpec",
            "type_error": False,
            "value_error": True,
        },
    ),
}


def test_golden_is_from_1_2_0() -> None:
    assert GOLDEN["version"] == "1.2.0"
    assert sorted(GOLDEN["scenarios"]) == sorted(SCENARIOS)


@pytest.mark.parametrize("module", ["api", "advanced"])
def test_all_is_1_2_0s(module: str) -> None:
    ours = getattr(stageflow_trio, module)
    assert sorted(ours.__all__) == sorted(GOLDEN[f"{module}_all"])
    assert len(set(ours.__all__)) == len(ours.__all__)
    for name in ours.__all__:
        assert getattr(ours, name) is not None


def test_approval_status_formats_as_1_2_0() -> None:
    assert [[str(m), f"{m}", json.dumps(m)] for m in ApprovalStatus] == GOLDEN["approval_status"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_scenario_matches_1_2_0(name: str) -> None:
    ours = await SCENARIOS[name](stageflow_trio.api)
    ours = json.loads(json.dumps(ours))
    expected = GOLDEN["scenarios"][name]
    if name in DIVERGENCES:
        path, theirs, mine = DIVERGENCES[name]
        expected_node, our_node = expected, ours
        for key in path[:-1]:
            expected_node, our_node = expected_node[key], our_node[key]
        assert expected_node[path[-1]] == theirs
        assert our_node[path[-1]] == mine
        expected_node[path[-1]] = mine
    assert ours == expected
