"""stageflow_trio.cli.lint and ``python -m stageflow_trio.cli``.

Lint results are compared with the reference's on the same topologies (its
issue order follows set iteration, so issues are compared as sorted lists).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from stageflow_trio.cli import __main__ as cli_main
from stageflow_trio.cli.lint import (
    DependencyAccessVisitor,
    DependencyIssue,
    DependencyLintResult,
    IssueSeverity,
    analyze_stage_source,
    lint_pipeline,
    lint_pipeline_file,
    main,
)
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.pipeline import Pipeline

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

Topology = dict[str, tuple[str, ...]]


class NoopStage:
    """Built into pipelines, never run."""

    async def execute(self, ctx: StageContext) -> StageOutput:
        return StageOutput.ok()


TOPOLOGIES: list[Topology] = [
    {},
    {"only": ()},
    {"a": (), "b": ("a",), "c": ("b",)},
    {"a": (), "b": (), "c": ()},
    {"a": ("a",)},
    {"a": ("b", "zz"), "b": ("a",)},
    {"a": ("b",), "b": ("c",), "c": ("a",), "d": ("a",)},
    {"a": ("missing",), "lonely": ()},
    {"x": ("y",), "y": ("x",), "z": ("x", "x")},
]


def _ours(topology: Topology) -> Pipeline:
    pipeline = Pipeline()
    for name, deps in topology.items():
        pipeline = pipeline.with_stage(name, NoopStage, StageKind.TRANSFORM, dependencies=deps)
    return pipeline


def _theirs(reference: ModuleType, topology: Topology) -> Any:
    pipeline = reference.Pipeline()
    for name, deps in topology.items():
        pipeline = pipeline.with_stage(
            name, NoopStage, reference.StageKind.TRANSFORM, dependencies=deps
        )
    return pipeline


def _shape(result: Any) -> tuple[Any, ...]:
    return (
        result.valid,
        result.stage_count,
        result.dependency_count,
        sorted(
            (i.stage_name, i.message, i.severity.value, i.accessed_stage, i.suggestion)
            for i in result.issues
        ),
    )


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=repr)
def test_lint_matches_the_reference(reference: ModuleType, topology: Topology) -> None:
    from stageflow.cli.lint import lint_pipeline as reference_lint

    assert _shape(lint_pipeline(_ours(topology))) == _shape(
        reference_lint(_theirs(reference, topology))
    )


def test_issue_order_is_the_pipeline_order() -> None:
    result = lint_pipeline(_ours({"a": ("b", "zz"), "b": ("a",), "c": ()}))
    assert [(i.stage_name, i.message) for i in result.issues] == [
        ("a", "Dependency 'zz' does not exist in pipeline"),
        ("a", "Circular dependency detected: a -> b -> a"),
        ("b", "Circular dependency detected: b -> a -> b"),
        ("c", "Stage 'c' is isolated (no dependencies and nothing depends on it)"),
    ]
    assert [i.stage_name for i in result.errors] == ["a", "a", "b"]
    assert [i.stage_name for i in result.warnings] == ["c"]
    assert result.valid is False


def test_a_long_diamond_lattice_lints_in_linear_time() -> None:
    # 60 layers of two stages each depending on both of the layer below: 2**60
    # paths, which a path-enumerating search would never finish.
    topology: Topology = {"l0a": (), "l0b": ()}
    for layer in range(1, 60):
        below = (f"l{layer - 1}a", f"l{layer - 1}b")
        topology[f"l{layer}a"] = below
        topology[f"l{layer}b"] = below
    result = lint_pipeline(_ours(topology))
    assert (result.valid, result.issues, result.stage_count) == (True, [], 120)


def test_lint_rejects_a_non_pipeline() -> None:
    with pytest.raises(TypeError, match=r"^lint_pipeline: pipeline must be a Pipeline; got dict$"):
        lint_pipeline({})  # type: ignore[arg-type]


def test_issue_and_result_text(reference: ModuleType) -> None:
    from stageflow.cli import lint as ref_lint

    issue = DependencyIssue("s", "broken", IssueSeverity.ERROR, suggestion="fix", line_number=3)
    ref_issue = ref_lint.DependencyIssue(
        "s", "broken", ref_lint.IssueSeverity.ERROR, suggestion="fix", line_number=3
    )
    assert str(issue) == str(ref_issue) == "[ERROR] s: broken\n  Suggestion: fix\n  Line: 3"
    assert str(DependencyIssue("s", "m", IssueSeverity.INFO)) == "[INFO] s: m"
    for valid, issues in ((True, []), (False, [issue])):
        ours = DependencyLintResult(valid=valid, issues=issues, stage_count=2, dependency_count=1)
        theirs = ref_lint.DependencyLintResult(
            valid=valid,
            issues=[ref_issue] if issues else [],
            stage_count=2,
            dependency_count=1,
        )
        assert str(ours) == str(theirs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        issue.message = "x"  # type: ignore[misc]


# --- files ----------------------------------------------------------------------------


PIPELINE_FILE = """
from stageflow_trio import Pipeline, StageKind, StageOutput


class Noop:
    async def execute(self, ctx):
        return StageOutput.ok()


chat = Pipeline().with_stage("a", Noop, StageKind.TRANSFORM).with_stage(
    "b", Noop, StageKind.TRANSFORM, dependencies=("a", "ghost")
)


def create_other_pipeline():
    return Pipeline().with_stage("x", Noop, StageKind.TRANSFORM)


def create_needs_args(value):
    return Pipeline()


def build_pipeline():
    return "not a pipeline"
"""


def _write(tmp_path: Path, text: str, name: str = "pipes.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_lint_pipeline_file_prefixes_and_sums(tmp_path: Path) -> None:
    result = lint_pipeline_file(_write(tmp_path, PIPELINE_FILE))
    assert [(i.stage_name, i.message) for i in result.issues] == [
        ("chat.b", "Dependency 'ghost' does not exist in pipeline")
    ]
    assert (result.valid, result.stage_count, result.dependency_count) == (False, 3, 2)


def test_a_file_without_pipelines_is_valid_with_a_warning(tmp_path: Path) -> None:
    result = lint_pipeline_file(str(_write(tmp_path, "VALUE = 1\n")))
    assert result.valid is True
    assert [(i.stage_name, i.message, i.severity) for i in result.issues] == [
        ("<module>", "No Pipeline instances found in file", IssueSeverity.WARNING)
    ]


def test_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"
    with pytest.raises(FileNotFoundError, match=r"^Pipeline file not found: .*nope\.py$"):
        lint_pipeline_file(missing)
    broken = _write(tmp_path, "raise RuntimeError('boom')\n", "broken.py")
    with pytest.raises(ImportError, match=r"^Error executing module .*broken\.py: boom$"):
        lint_pipeline_file(broken)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ImportError, match=r"^Could not load module from: .*folder$"):
        lint_pipeline_file(folder)


# --- source analysis ------------------------------------------------------------------


def test_analyze_stage_source() -> None:
    source = textwrap.dedent(
        """
        async def execute(self, ctx):
            a = ctx.inputs.get_from("router", "route")
            ctx.inputs.require_from("fetch", "doc")
            if ctx.inputs.has_output(name):
                ctx.inputs.get_output("summary")
            other.get_from(1)
            get_from("plain")
        """
    )
    assert analyze_stage_source(source) == [("router", 3), ("fetch", 4), ("summary", 6)]
    assert analyze_stage_source("def broken(:") == []
    visitor = DependencyAccessVisitor()
    assert visitor.accessed_stages == []


def test_analysis_matches_the_reference(reference: ModuleType) -> None:
    from stageflow.cli.lint import analyze_stage_source as reference_analyze

    source = "x.get_from('a')\ny.has_output('b', 2)\nz.require_from(v)\n"
    assert analyze_stage_source(source) == reference_analyze(source)


# --- command line ---------------------------------------------------------------------


@pytest.mark.parametrize("entry", [main, lambda argv: cli_main.main(["lint", *argv])])
def test_command_line_text_json_and_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: Any
) -> None:
    path = str(_write(tmp_path, PIPELINE_FILE))
    assert entry([path]) == 1
    out = capsys.readouterr().out
    assert out.startswith("✗ Found 1 error(s)\n  Stages: 3\n  Dependencies: 2\n\nIssues:\n")
    assert entry([path, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["valid"], data["stage_count"], len(data["issues"])) == (False, 3, 1)
    assert data["issues"][0]["severity"] == "error"

    clean = str(_write(tmp_path, "VALUE = 1\n", "clean.py"))
    assert entry([clean]) == 0
    assert "✓ Pipeline dependencies are valid" in capsys.readouterr().out
    assert entry([clean, "--strict", "-v"]) == 1
    assert "No Pipeline instances found" in capsys.readouterr().out


@pytest.mark.parametrize("entry", [main, lambda argv: cli_main.main(["lint", *argv])])
def test_command_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: Any
) -> None:
    assert entry([str(tmp_path / "nope.py")]) == 1
    assert capsys.readouterr().err.startswith("Error: Pipeline file not found: ")
    broken = str(_write(tmp_path, "import nowhere_at_all\n", "broken.py"))
    assert entry([broken]) == 1
    assert capsys.readouterr().err.startswith("Error importing file: Error executing module ")


def test_info_issues_show_only_when_verbose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info = DependencyIssue("s", "just so you know", IssueSeverity.INFO)
    monkeypatch.setattr(
        "stageflow_trio.cli.lint.lint_pipeline_file",
        lambda _: DependencyLintResult(valid=True, issues=[info]),
    )
    assert main(["f.py"]) == 0
    assert "just so you know" not in capsys.readouterr().out
    assert main(["f.py", "--verbose", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["issues"][0]["severity"] == "info"
    assert main(["f.py", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["issues"] == []


def test_cli_without_a_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main([]) == 0
    assert "Stageflow command-line tools" in capsys.readouterr().out


def test_cli_contracts_is_not_available(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["contracts", "list"]) == 2
    assert capsys.readouterr().err == (
        "Error: the contracts command is not available; "
        "use stageflow_trio.contracts.registry (see docs/contracts.md)\n"
    )


def test_python_dash_m(tmp_path: Path) -> None:
    path = str(_write(tmp_path, "VALUE = 1\n"))
    for module in ("stageflow_trio.cli", "stageflow_trio.cli.lint"):
        args = [sys.executable, "-m", module]
        if module == "stageflow_trio.cli":
            args.append("lint")
        done = subprocess.run([*args, path, "--json"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["valid"] is True
