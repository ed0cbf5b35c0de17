"""Every relative link in the guides and the README reaches a file, and its anchor a heading.

Anchors are GitHub's heading slugs (lower case, punctuation but ``-`` and ``_``
dropped, spaces to ``-``, ``-1``, ``-2`` for repeats). Links inside code blocks
and inline code are not links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_CODE = re.compile(r"`[^`]*`")
_HEADING = re.compile(r"#{1,6} (.*)")


def _prose_lines(page: Path) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, inline code removed, with their numbers."""
    lines: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append((number, _CODE.sub("", line)))
    return lines


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for _, line in _prose_lines(page):
        match = _HEADING.match(line)
        if match is None:
            continue
        slug = _slug(match.group(1))
        repeat = seen.get(slug, 0)
        seen[slug] = repeat + 1
        anchors.add(slug if repeat == 0 else f"{slug}-{repeat}")
    return anchors


def test_the_slug_rule() -> None:
    assert _slug("Porting a stageflow 1.2.0 service") == "porting-a-stageflow-120-service"
    assert _slug("Engine (UnifiedStageGraph, StageGraph, the interceptor chain)") == (
        "engine-unifiedstagegraph-stagegraph-the-interceptor-chain"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page: Path) -> None:
    broken: list[str] = []
    for number, line in _prose_lines(page):
        for match in _LINK.finditer(line):
            target = match.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            destination = (page.parent / path).resolve() if path else page
            if not destination.exists():
                broken.append(f"{page.name}:{number}: {target} (no such file)")
            elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
                broken.append(f"{page.name}:{number}: {target} (no such heading)")
    assert broken == []
