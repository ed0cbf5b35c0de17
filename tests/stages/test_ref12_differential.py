"""stageflow_trio against stageflow 1.2.0: payload helpers and context derivation.

The 1.2.0 side is recorded golden JSON (``ref12_golden.json``), produced by
``make_ref12_golden.py`` from the same cases (``ref12_cases.py``) under
stageflow-core 1.2.0, and reviewed when committed: 1.2.0 runs on asyncio in its
own venv, so it cannot be imported next to the 0.9.1 reference here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.stages.ref12_cases import run_cases

GOLDEN: dict[str, Any] = json.loads(
    Path(__file__).with_name("ref12_golden.json").read_text(encoding="utf-8")
)
OURS = run_cases("stageflow_trio")

# Where stageflow_trio words a message differently on purpose (docs/parity.md).
KNOWN = {
    ("context", "fork_inherit_str"): {
        "raises": "TypeError",
        "message": "PipelineContext.fork: inherit_data must be a bool or an iterable of keys;"
        " got str",
    },
}


def _cases() -> list[tuple[str, str]]:
    return [(group, name) for group, cases in GOLDEN.items() for name in sorted(cases)]


def test_the_same_cases_ran() -> None:
    assert {g: sorted(c) for g, c in OURS.items()} == {g: sorted(c) for g, c in GOLDEN.items()}


@pytest.mark.parametrize(("group", "name"), _cases())
def test_matches_stageflow_1_2(group: str, name: str) -> None:
    ours = json.loads(json.dumps(OURS[group][name]))
    expected = KNOWN.get((group, name), GOLDEN[group][name])
    assert ours == expected


def test_known_divergences_are_real() -> None:
    # The 1.2.0 message for a str inherit_data, which stageflow_trio words differently.
    assert GOLDEN["context"]["fork_inherit_str"] == {
        "raises": "TypeError",
        "message": "inherit_data must be a bool or iterable of keys",
    }
