"""The package's docstrings and comments speak of the code, not of how the work was organized.

Checklist item ids (``CL12``), reference-notes ids (``d1``), phase numbers and
issue numbers belong in docs/parity.md, which maps them to the code; in the
package they mean nothing to a user reading a traceback or ``help()``.
"""

from __future__ import annotations

import re
from pathlib import Path

import stageflow_trio

PACKAGE = Path(stageflow_trio.__file__).parent
PLANNING_IDS = re.compile(
    r"\bCL\d+\b|\(d\d+\)|\bd\d+:|\bPhase \d+\b|\b[Ii]ssue \d+\b|\bchecklist\b|spec README"
)


def _hits(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if PLANNING_IDS.search(line)]


def test_the_pattern_finds_planning_ids() -> None:
    sample = "x  # the checklist's CL12\n(d1): names\nPhase 7 soon\nok line\nsee issue 13\n"
    assert _hits(sample) == [
        "x  # the checklist's CL12",
        "(d1): names",
        "Phase 7 soon",
        "see issue 13",
    ]
    assert _hits("CLI tools, d10 as a name, phase out, the 12th tissue") == []


def test_no_module_of_the_package_names_planning_ids() -> None:
    found = {
        str(path.relative_to(PACKAGE)): hits
        for path in sorted(PACKAGE.rglob("*.py"))
        if (hits := _hits(path.read_text(encoding="utf-8")))
    }
    assert found == {}
