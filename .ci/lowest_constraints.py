"""Print .ci/constraints.txt with the library's dependencies pinned at their declared floors.

Usage: python .ci/lowest_constraints.py > lowest.txt

Every ``[project].dependencies`` entry must read ``name>=version`` (the floor is what the
lowest-dependencies run installs, so a dependency without one is an error here). The tools
keep their pins from .ci/constraints.txt.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _normalize(name: str) -> str:
    # PEP 503: typing-extensions, typing_extensions and Typing.Extensions are one project.
    return re.sub(r"[-_.]+", "-", name).lower()


def floors(pyproject: Path) -> dict[str, str]:
    """``{normalized name: floor version}`` from pyproject's ``[project].dependencies``."""
    with pyproject.open("rb") as f:
        dependencies: list[str] = tomllib.load(f)["project"]["dependencies"]
    found: dict[str, str] = {}
    for requirement in dependencies:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([^\s,;]+)\s*", requirement)
        if match is None:
            raise SystemExit(f"lowest_constraints: no plain 'name>=floor' in {requirement!r}")
        found[_normalize(match[1])] = match[2]
    return found


def main() -> None:
    lowest = floors(ROOT / "pyproject.toml")
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        project = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if project is None or _normalize(project[0]) not in lowest:
            print(line)
    for name, version in sorted(lowest.items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
