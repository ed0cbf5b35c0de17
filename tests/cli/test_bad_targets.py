"""Targets that cannot run are bad input for every command, with the same status.

A file whose import calls ``sys.exit(0)`` used to end ``run`` with status 0 and no
output, as if a run had completed; ``graph`` drew a pipeline that ``run`` refused to
build (an empty one) and exited 0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stageflow_trio.cli.main import main

from .sources import HEADER, write

EXITS_ON_IMPORT = "import sys\nsys.exit(0)\n"

EMPTY = HEADER + '\npipeline = Pipeline(name="empty")\n'

MISSING_DEP = (
    HEADER
    + """
async def a(ctx):
    return StageOutput.ok()

pipeline = Pipeline(name="broken").with_stage("a", a, StageKind.WORK, dependencies=("ghost",))
"""
)

FACTORY_EXITS = (
    HEADER
    + """
def create_pipeline():
    raise SystemExit(3)
"""
)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", ["run", "graph"])
def test_sys_exit_while_importing_the_target_is_bad_input(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "exits.py", EXITS_ON_IMPORT)
    code, out, err = run_cli([command, str(path)], capsys)
    assert (code, out) == (2, "")
    assert err == f"stageflow-trio {command}: error: importing {path} raised SystemExit: 0\n"


@pytest.mark.parametrize("command", ["run", "graph"])
def test_sys_exit_in_the_factory_is_bad_input(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "factory.py", FACTORY_EXITS)
    code, out, err = run_cli([command, str(path)], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"stageflow-trio {command}: error: calling {path}:create_pipeline() raised SystemExit: 3\n"
    )


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (EMPTY, "UnifiedStageGraph requires at least one UnifiedStageSpec"),
        (MISSING_DEP, None),
    ],
)
@pytest.mark.parametrize("command", ["run", "graph"])
def test_a_pipeline_that_does_not_build_is_bad_input_for_run_and_graph(
    command: str,
    source: str,
    reason: str | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, "p.py", source)
    code, out, err = run_cli(
        [command, str(path), "--format", "text"] if command == "graph" else [command, str(path)],
        capsys,
    )
    assert (code, out) == (2, "")
    prefix = f"stageflow-trio {command}: error: {path}: the pipeline does not build"
    assert err.startswith(prefix)
    if reason is not None:
        assert err == f"{prefix}: {reason}\n"


def test_run_and_graph_agree_on_every_bad_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, source in [("e.py", EMPTY), ("x.py", EXITS_ON_IMPORT), ("m.py", MISSING_DEP)]:
        path = str(write(tmp_path, name, source))
        run_code, _, run_err = run_cli(["run", path], capsys)
        graph_code, _, graph_err = run_cli(["graph", path], capsys)
        assert run_code == graph_code == 2
        assert run_err.removeprefix("stageflow-trio run") == graph_err.removeprefix(
            "stageflow-trio graph"
        )


def test_lint_reports_sys_exit_as_an_import_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "exits.py", EXITS_ON_IMPORT)
    code, out, err = run_cli(["lint", str(path)], capsys)
    assert (code, out) == (1, "")
    assert err == f"Error importing file: Error executing module {path}: SystemExit: 0\n"
