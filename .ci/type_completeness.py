"""Fail when too few public symbols are fully typed, reading `pyright --verifytypes --outputjson`.

Usage: python type_completeness.py REPORT.json FLOOR_PERCENT

Prints the score and the public symbols whose types are ambiguous or unknown (they are
what to annotate), then exits 1 when the score is under the floor. Pyright's own exit
status is no guide: it is 1 whenever the score is under 100%.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def main(report_path: str, floor_percent: str) -> int:
    try:
        report: dict[str, Any] = json.loads(Path(report_path).read_text())
        completeness: dict[str, Any] = report["typeCompleteness"]
        score = float(completeness["completenessScore"]) * 100
    except (OSError, ValueError, KeyError) as exc:
        print(f"type completeness: no pyright report in {report_path} ({exc!r})")
        return 1
    counts = completeness["exportedSymbolCounts"]
    total = sum(counts.values())
    print(
        f"type completeness of {completeness['packageName']}: {score:.1f}% "
        f"({counts['withKnownType']} of {total} public symbols fully typed; "
        f"{counts['withAmbiguousType']} ambiguous, {counts['withUnknownType']} unknown)"
    )
    for symbol in completeness["symbols"]:
        # A class or module without diagnostics is incomplete only through its members.
        if symbol["isExported"] and not symbol["isTypeKnown"] and symbol["diagnostics"]:
            first_line = symbol["diagnostics"][0]["message"].splitlines()[0]
            print(f"  {symbol['category']} {symbol['name']}: {first_line}")
    floor = float(floor_percent)
    if score < floor:
        print(f"type completeness {score:.1f}% is under the floor of {floor:g}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
