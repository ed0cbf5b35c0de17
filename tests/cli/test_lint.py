"""``stageflow_trio.cli.lint`` against the reference's ``stageflow.cli.lint``, and ``stageflow-trio lint``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stageflow_trio.cli import lint_pipeline, lint_pipeline_file
from stageflow_trio.cli.lint import (
    ContractIssue,
    DependencyIssue,
    DependencyLintResult,
    IssueSeverity,
    analyze_stage_source,
    contract_issues,
)
from stageflow_trio.cli.main import main
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline

from .sources import HEADER, write

# name -> [(stage, dependencies)]: the shapes the linter tells apart.
SHAPES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "chain": [("a", ()), ("b", ("a",)), ("c", ("b",))],
    "missing": [("a", ()), ("b", ("a", "ghost"))],
    "self": [("a", ("a",)), ("b", ("a",))],
    "cycle": [("a", ("c",)), ("b", ("a",)), ("c", ("b",)), ("d", ("a",))],
    "two cycles": [("a", ("b",)), ("b", ("a",)), ("c", ("d",)), ("d", ("c",))],
    "isolated": [("a", ()), ("b", ("a",)), ("lonely", ())],
    "single": [("a", ())],
    "empty": [],
}


async def noop(ctx: StageContext) -> StageOutput:
    return StageOutput.ok()


def ours(shape: list[tuple[str, tuple[str, ...]]]) -> Pipeline:
    pipeline = Pipeline()
    for name, deps in shape:
        pipeline = pipeline.with_stage(name, noop, StageKind.TRANSFORM, dependencies=deps)
    return pipeline


def theirs(reference: ModuleType, shape: list[tuple[str, tuple[str, ...]]]) -> Any:
    from stageflow.core import StageKind as RefKind
    from stageflow.pipeline.pipeline import Pipeline as RefPipeline

    pipeline: Any = RefPipeline()
    for name, deps in shape:
        pipeline = pipeline.with_stage(name, noop, RefKind.TRANSFORM, dependencies=deps)
    return pipeline


def issues(result: Any) -> list[tuple[Any, ...]]:
    """The issues as comparable tuples, sorted (the reference's order follows set order)."""
    return sorted(
        (i.stage_name, i.message, i.severity.value, i.accessed_stage, i.suggestion, i.line_number)
        for i in result.issues
    )


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lint_pipeline_matches_the_reference(reference: ModuleType, shape: str) -> None:
    from stageflow.cli.lint import lint_pipeline as ref_lint

    expected = ref_lint(theirs(reference, SHAPES[shape]))
    got = lint_pipeline(ours(SHAPES[shape]))
    assert (got.valid, got.stage_count, got.dependency_count) == (
        expected.valid,
        expected.stage_count,
        expected.dependency_count,
    )
    assert issues(got) == issues(expected)
    if len(got.issues) <= 1:  # the same text, where the order cannot differ
        assert str(got) == str(expected)


def test_the_issues_in_detail() -> None:
    result = lint_pipeline(ours(SHAPES["cycle"]))
    assert not result.valid
    assert result.errors == [
        DependencyIssue(
            "a",
            "Circular dependency detected: a -> c -> b -> a",
            IssueSeverity.ERROR,
            suggestion="Break the cycle by removing one of the dependencies",
        ),
        DependencyIssue(
            "b",
            "Circular dependency detected: b -> a -> c -> b",
            IssueSeverity.ERROR,
            suggestion="Break the cycle by removing one of the dependencies",
        ),
        DependencyIssue(
            "c",
            "Circular dependency detected: c -> b -> a -> c",
            IssueSeverity.ERROR,
            suggestion="Break the cycle by removing one of the dependencies",
        ),
    ]
    assert result.warnings == []
    isolated = lint_pipeline(ours(SHAPES["isolated"]))
    assert isolated.valid
    assert [i.stage_name for i in isolated.warnings] == ["lonely"]
    assert str(isolated) == (
        "✓ Pipeline dependencies are valid\n  Stages: 3\n  Dependencies: 1\n\nIssues:\n"
        "  [WARNING] lonely: Stage 'lonely' is isolated (no dependencies and nothing depends on it)\n"
        "  Suggestion: Consider adding dependencies or removing if unused"
    )
    assert str(DependencyIssue("a", "m", IssueSeverity.INFO, line_number=7)) == (
        "[INFO] a: m\n  Line: 7"
    )


def test_lint_pipeline_takes_a_pipeline() -> None:
    with pytest.raises(TypeError, match=r"^lint_pipeline: pipeline must be a Pipeline; got dict$"):
        lint_pipeline({})  # type: ignore[arg-type]


FILE = (
    HEADER
    + """
async def a(ctx):
    return StageOutput.ok()

def create_chat_pipeline():
    return (
        Pipeline(name="chat")
        .with_stage("a", a, StageKind.TRANSFORM)
        .with_stage("b", a, StageKind.TRANSFORM, dependencies=("a", "ghost"))
    )

def needs_arguments_pipeline(x):
    return Pipeline()

def create_settings():
    return {"not": "a pipeline"}

loose = Pipeline().with_stage("x", a, StageKind.WORK).with_stage("y", a, StageKind.WORK)
"""
)


def test_lint_pipeline_file_matches_the_reference(reference: ModuleType, tmp_path: Path) -> None:
    from stageflow.cli.lint import lint_pipeline_file as ref_lint_file

    ref_file = write(
        tmp_path,
        "ref.py",
        FILE.replace("stageflow_trio.", "stageflow.").replace(
            "from stageflow.pipeline import Pipeline",
            "from stageflow.pipeline.pipeline import Pipeline",
        ),
    )
    path = write(tmp_path, "ours.py", FILE)
    expected = ref_lint_file(ref_file)
    got = lint_pipeline_file(path)
    assert (got.valid, got.stage_count, got.dependency_count) == (
        expected.valid,
        expected.stage_count,
        expected.dependency_count,
    )
    assert issues(got) == issues(expected)
    empty = write(tmp_path, "empty.py", "x = 1\n")
    assert issues(lint_pipeline_file(empty)) == issues(ref_lint_file(empty))
    assert str(lint_pipeline_file(empty)) == str(ref_lint_file(empty))


def test_lint_pipeline_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"^Pipeline file not found: .*absent\.py$"):
        lint_pipeline_file(tmp_path / "absent.py")
    broken = write(tmp_path, "broken.py", "1 / 0\n")
    with pytest.raises(
        ImportError, match=r"^Error executing module .*broken\.py: division by zero$"
    ):
        lint_pipeline_file(broken)
    with pytest.raises(ImportError, match=r"^Could not load module from: .*notes\.txt$"):
        lint_pipeline_file(write(tmp_path, "notes.txt", ""))


def test_contract_issues_carry_the_builder_code_and_fix_hint() -> None:
    found = contract_issues(
        [("ok", ours(SHAPES["chain"])), ("cyc", ours(SHAPES["cycle"])), ("none", Pipeline())]
    )
    assert [(c.pipeline, c.code) for c in found] == [
        ("cyc", "CONTRACT-004-CYCLE"),
        ("none", None),
    ]
    assert found[0].fix_hint
    assert found[1].summary == "UnifiedStageGraph requires at least one UnifiedStageSpec"
    assert (
        str(ContractIssue("p", "X-1", "bad", "do this")) == "[CONTRACT X-1] p: bad\n  Fix: do this"
    )
    assert str(ContractIssue("p", None, "bad")) == "[CONTRACT] p: bad"
    assert ContractIssue("p", "X-1", "bad").to_dict() == {
        "pipeline": "p",
        "code": "X-1",
        "summary": "bad",
        "fix_hint": None,
        "doc_url": None,
    }


def test_analyze_stage_source() -> None:
    source = 'x = inputs.get_from("a", "k")\ny = ctx.inputs.require_from("b", "k")\nz = f(c)\nw = o.has_output(v)\n'
    assert analyze_stage_source(source) == [("a", 1), ("b", 2)]
    assert analyze_stage_source("def (") == []


def test_the_command_exit_statuses_and_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "ours.py", FILE)
    assert main(["lint", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("✗ Found 1 error(s)\n  Stages: 4\n  Dependencies: 2\n\nIssues:\n")
    assert "[ERROR] create_chat_pipeline.b: Dependency 'ghost' does not exist in pipeline" in out
    assert out.endswith(
        "\nContract errors (from build()):\n"
        "  [CONTRACT CONTRACT-004-MISSING_DEP] create_chat_pipeline:"
        + out.split("[CONTRACT CONTRACT-004-MISSING_DEP] create_chat_pipeline:")[1]
    )
    assert "\n    Fix: " in out
    assert main(["lint", str(path), "--json", "--verbose"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert [i["severity"] for i in report["issues"]] == ["error", "warning", "warning"]
    assert [c["code"] for c in report["contract_errors"]] == ["CONTRACT-004-MISSING_DEP"]

    loose = write(
        tmp_path,
        "loose.py",
        FILE.split("def create_chat")[0] + FILE.split("return Pipeline()\n")[1],
    )
    assert main(["lint", str(loose)]) == 0
    assert capsys.readouterr().out.startswith("✓ Pipeline dependencies are valid")
    assert main(["lint", str(loose), "--strict"]) == 1
    assert capsys.readouterr().out.startswith("✗ Found 0 error(s)")
    assert main(["lint", str(loose), "--strict", "--json"]) == 1
    strict = json.loads(capsys.readouterr().out)
    assert strict["valid"] is False
    assert [i["severity"] for i in strict["issues"]] == ["warning", "warning"]


def test_the_command_on_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(tmp_path / "absent.py")]) == 1
    assert capsys.readouterr().err == f"Error: Pipeline file not found: {tmp_path / 'absent.py'}\n"
    broken = write(tmp_path, "broken.py", "1 / 0\n")
    assert main(["lint", str(broken)]) == 1
    assert capsys.readouterr().err == (
        f"Error importing file: Error executing module {broken}: division by zero\n"
    )
    assert main(["--debug", "lint", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error importing file: ")
    assert "Traceback (most recent call last):" in err
    assert "ZeroDivisionError: division by zero" in err


def test_info_issues_are_shown_only_when_verbose(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # No check yields INFO today (as in the reference); the filter is still applied.
    result = DependencyLintResult(
        valid=True, issues=[DependencyIssue("a", "note", IssueSeverity.INFO)]
    )
    assert result.errors == result.warnings == []
    path = write(
        tmp_path,
        "one.py",
        HEADER
        + "async def a(ctx):\n    return StageOutput.ok()\n\npipeline = Pipeline().with_stage('a', a, StageKind.WORK)\n",
    )
    assert main(["lint", str(path), "-v"]) == 0
    assert (
        capsys.readouterr().out
        == "✓ Pipeline dependencies are valid\n  Stages: 1\n  Dependencies: 0\n"
    )


def test_the_reference_entry_point_at_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``stageflow_trio.cli.lint.main`` is ``stageflow-trio lint`` with the same arguments."""
    from stageflow_trio.cli import lint

    path = write(tmp_path, "ours.py", FILE)
    assert lint.main([str(path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["valid"] is False
    monkeypatch.setattr(sys, "argv", ["lint", str(tmp_path / "absent.py")])
    assert lint.main() == 1
    assert capsys.readouterr().err == f"Error: Pipeline file not found: {tmp_path / 'absent.py'}\n"
