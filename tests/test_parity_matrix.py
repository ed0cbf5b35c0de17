"""docs/parity_matrix.md stays honest: one row per checklist item CL1-CL109, in order.

A row's test cells must name files that exist under tests/ and that pytest collects
(``test_*.py``); a ``path::name`` must name a test function or class defined at the top of
that file. A **done** row must name at least one test; CL109 (porting completion) may be
done only when every other row is.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "docs" / "parity_matrix.md"
ITEMS = 109
STATUSES = ("done", "partial", "not done")


@attrs.frozen
class Row:
    number: int
    item: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]
    status: str
    note: str


def _cells(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"`([^`]+)`", text))


def parse(text: str) -> list[Row]:
    rows = []
    for line in text.splitlines():
        if not re.match(r"\| CL\d+ ", line):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 6, f"a matrix row needs 6 cells: {line}"
        number, item, modules, tests, status, note = cells
        rows.append(
            Row(int(number.removeprefix("CL")), item, _cells(modules), _cells(tests), status, note)
        )
    return rows


ROWS = parse(MATRIX.read_text(encoding="utf-8"))


@functools.cache
def _top_level_tests(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name.startswith(("test_", "Test"))
    )


def problems_of(row: Row, root: Path = ROOT) -> list[str]:
    """What is wrong with one row's test references and status (empty when it is sound)."""
    found = []
    if row.status not in STATUSES:
        found.append(f"CL{row.number}: status {row.status!r} is not one of {STATUSES}")
    if row.status == "done" and not row.tests:
        found.append(f"CL{row.number}: done but names no test")
    if row.status != "done" and not row.note:
        found.append(f"CL{row.number}: {row.status} needs a word why")
    for module in row.modules:
        if not (root / module).exists():
            found.append(f"CL{row.number}: {module} does not exist")
    for ref in row.tests:
        path_text, _, name = ref.partition("::")
        path = root / path_text
        if not (path_text.startswith("tests/") and path.name.startswith("test_")):
            found.append(f"CL{row.number}: {ref} is not a test module pytest collects")
        elif not path.is_file():
            found.append(f"CL{row.number}: {path_text} does not exist")
        elif not _top_level_tests(path):
            found.append(f"CL{row.number}: {path_text} defines no test")
        elif name and name.split("::")[0] not in _top_level_tests(path):
            found.append(f"CL{row.number}: {path_text} defines no test {name!r}")
    return found


def test_every_item_is_listed_once_in_order() -> None:
    assert [row.number for row in ROWS] == list(range(1, ITEMS + 1))


@pytest.mark.parametrize("row", ROWS, ids=[f"CL{row.number}" for row in ROWS])
def test_row_names_real_tests(row: Row) -> None:
    assert problems_of(row) == []


def test_done_rows_name_their_modules() -> None:
    assert [row.number for row in ROWS if row.status == "done" and not row.modules] == []


def test_ci_formats_lints_types_and_tests() -> None:
    """The workspace item: CI runs the formatter, the linter, strict mypy and the suite."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    for command in (".venv/bin/ruff format --check .", ".venv/bin/ruff check .", ".venv/bin/mypy"):
        assert any(step.endswith(command) for step in steps), command
    assert any(
        "coverage run -m pytest" in line for line in lines if not line.lstrip().startswith("#")
    )
    assert "strict = true" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_completion_follows_the_rows() -> None:
    open_items = [row.number for row in ROWS[:-1] if row.status != "done"]
    completion = ROWS[-1]
    assert completion.status == ("partial" if open_items else "done")


def test_the_checks_catch_bad_rows(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "fakes.py").write_text("def test_not_collected(): pass\n", encoding="utf-8")
    (tests / "test_ok.py").write_text("def test_a(): pass\n", encoding="utf-8")
    (tests / "test_empty.py").write_text("def helper(): pass\n", encoding="utf-8")
    (tmp_path / "m.py").write_text("", encoding="utf-8")
    text = (
        "| CL1 | a | `m.py` | | done | |\n"
        "| CL2 | b | `m.py` | `tests/nowhere/test_x.py` | done | |\n"
        "| CL3 | c | `m.py` | `tests/fakes.py` | maybe | |\n"
        "| CL4 | d | `m.py` | `tests/test_ok.py::test_missing` | partial | |\n"
        "| CL5 | e | `m.py` | `tests/test_empty.py` | not done | no tests |\n"
        "| CL6 | f | `m.py` | `tests/test_ok.py::test_a`, `tests/test_ok.py` | done | |\n"
        "| CL7 | g | `gone.py` | `tests/test_ok.py` | done | |\n"
    )
    problems = [problem for row in parse(text) for problem in problems_of(row, tmp_path)]
    assert problems == [
        "CL1: done but names no test",
        "CL2: tests/nowhere/test_x.py does not exist",
        "CL3: status 'maybe' is not one of ('done', 'partial', 'not done')",
        "CL3: maybe needs a word why",
        "CL3: tests/fakes.py is not a test module pytest collects",
        "CL4: partial needs a word why",
        "CL4: tests/test_ok.py defines no test 'test_missing'",
        "CL5: tests/test_empty.py defines no test",
        "CL7: gone.py does not exist",
    ]
