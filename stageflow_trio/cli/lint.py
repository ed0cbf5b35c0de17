"""Dependency linting for pipelines: a library API and ``python -m stageflow_trio.cli.lint``.

:func:`lint_pipeline` checks a :class:`~stageflow_trio.pipeline.pipeline.Pipeline`
without running it: a stage that depends on itself or on a stage the pipeline
lacks, and dependency cycles, are errors; with more than one stage, a stage
that neither depends on anything nor is depended upon is a warning.
:func:`lint_pipeline_file` lints every pipeline a Python file defines.
:func:`analyze_stage_source` lists the stages a stage's source reads through
``inputs.get_from(...)`` and friends.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from stageflow_trio._args import type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.utils.frozen import FrozenList

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DependencyAccessVisitor",
    "DependencyIssue",
    "DependencyLintResult",
    "IssueSeverity",
    "analyze_stage_source",
    "lint_pipeline",
    "lint_pipeline_file",
    "main",
]

# The name a linted file is imported under (as the reference does).
_MODULE_NAME = "pipeline_module"
_ACCESS_METHODS = frozenset({"get_from", "require_from", "get_output", "has_output"})


class IssueSeverity(Enum):
    """How serious a lint issue is."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@frozen_compat
@attrs.frozen
class DependencyIssue:
    """One dependency problem.

    Attributes:
        stage_name: The stage it was found on (``"{pipeline}.{stage}"`` from a file).
        message: What is wrong.
        severity: An :class:`IssueSeverity`.
        accessed_stage: The stage involved, if any.
        suggestion: How to fix it, if known.
        line_number: The source line, if known.
    """

    stage_name: str
    message: str
    severity: IssueSeverity
    accessed_stage: str | None = None
    suggestion: str | None = None
    line_number: int | None = None

    def __str__(self) -> str:
        parts = [f"[{self.severity.value.upper()}] {self.stage_name}: {self.message}"]
        if self.suggestion:
            parts.append(f"  Suggestion: {self.suggestion}")
        if self.line_number:
            parts.append(f"  Line: {self.line_number}")
        return "\n".join(parts)


def _issue_list(value: Iterable[DependencyIssue]) -> FrozenList[DependencyIssue]:
    return value if isinstance(value, FrozenList) else FrozenList(value)


@frozen_compat
@attrs.frozen
class DependencyLintResult:
    """What linting found.

    Attributes:
        valid: No error-level issue (warnings are allowed).
        issues: Every issue, in the order found (read-only list).
        stage_count: Stages examined.
        dependency_count: Distinct dependency names declared.
    """

    valid: bool
    issues: FrozenList[DependencyIssue] = attrs.field(factory=FrozenList, converter=_issue_list)
    stage_count: int = 0
    dependency_count: int = 0

    @property
    def errors(self) -> list[DependencyIssue]:
        """The error-level issues."""
        return [issue for issue in self.issues if issue.severity is IssueSeverity.ERROR]

    @property
    def warnings(self) -> list[DependencyIssue]:
        """The warning-level issues."""
        return [issue for issue in self.issues if issue.severity is IssueSeverity.WARNING]

    def __str__(self) -> str:
        status = (
            "✓ Pipeline dependencies are valid"
            if self.valid
            else f"✗ Found {len(self.errors)} error(s)"
        )
        lines = [
            status,
            f"  Stages: {self.stage_count}",
            f"  Dependencies: {self.dependency_count}",
        ]
        if self.issues:
            lines.append("\nIssues:")
            lines.extend(f"  {issue}" for issue in self.issues)
        return "\n".join(lines)


def _cycle_through(start: str, depends_on: Mapping[str, Sequence[str]]) -> list[str] | None:
    # A dependency path from ``start`` back to itself (declared order first), or None.
    # Iterative DFS; each stage is expanded once, so the cost is linear.
    stack: list[tuple[str, int]] = [(start, 0)]
    path = [start]
    seen = {start}
    while stack:
        node, index = stack[-1]
        deps = depends_on.get(node, ())
        if index == len(deps):
            stack.pop()
            path.pop()
            continue
        stack[-1] = (node, index + 1)
        dep = deps[index]
        if dep == start:
            return [*path, start]
        if dep in depends_on and dep not in seen:
            seen.add(dep)
            stack.append((dep, 0))
            path.append(dep)
    return None


def lint_pipeline(pipeline: Pipeline) -> DependencyLintResult:
    """Check ``pipeline``'s dependencies without building or running it.

    Errors: a self-dependency, a dependency on a missing stage, each stage on
    a dependency cycle (``"Circular dependency detected: a -> b -> a"``).
    Warnings (pipelines of two or more stages): an isolated stage. Issues come
    in that order, stages in pipeline order; an issue repeated for the same
    stage is reported once.

    Raises:
        TypeError: ``pipeline`` is not a Pipeline.
    """
    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"lint_pipeline: pipeline must be a Pipeline; got {type_of(pipeline)}")
    stages = pipeline.stages
    depends_on = {name: tuple(dict.fromkeys(spec.dependencies)) for name, spec in stages.items()}
    depended_by: dict[str, set[str]] = {name: set() for name in stages}
    all_deps: set[str] = set()
    issues: list[DependencyIssue] = []
    for name, deps in depends_on.items():
        all_deps.update(deps)
        if name in deps:
            issues.append(
                DependencyIssue(
                    stage_name=name,
                    message=f"Stage '{name}' depends on itself",
                    severity=IssueSeverity.ERROR,
                    accessed_stage=name,
                    suggestion=f"Remove '{name}' from its own dependencies",
                )
            )
        for dep in deps:
            if dep in stages:
                depended_by[dep].add(name)
                continue
            issues.append(
                DependencyIssue(
                    stage_name=name,
                    message=f"Dependency '{dep}' does not exist in pipeline",
                    severity=IssueSeverity.ERROR,
                    accessed_stage=dep,
                    suggestion=f"Add stage '{dep}' to the pipeline or remove it from dependencies",
                )
            )
    for name in stages:
        cycle = _cycle_through(name, depends_on)
        if cycle is not None:
            issues.append(
                DependencyIssue(
                    stage_name=name,
                    message=f"Circular dependency detected: {' -> '.join(cycle)}",
                    severity=IssueSeverity.ERROR,
                    suggestion="Break the cycle by removing one of the dependencies",
                )
            )
    if len(stages) > 1:
        issues.extend(
            DependencyIssue(
                stage_name=name,
                message=f"Stage '{name}' is isolated (no dependencies and nothing depends on it)",
                severity=IssueSeverity.WARNING,
                suggestion="Consider adding dependencies or removing if unused",
            )
            for name in stages
            if not depends_on[name] and not depended_by[name]
        )
    unique = list({(issue.stage_name, issue.message): issue for issue in reversed(issues)}.values())
    unique.reverse()
    return DependencyLintResult(
        valid=not any(issue.severity is IssueSeverity.ERROR for issue in unique),
        issues=unique,
        stage_count=len(stages),
        dependency_count=len(all_deps),
    )


def _pipelines_in(module: Any) -> list[tuple[str, Pipeline]]:
    found: list[tuple[str, Pipeline]] = []
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if isinstance(value, Pipeline):
            found.append((name, value))
        elif callable(value) and (name.startswith("create_") or name.endswith("_pipeline")):
            try:
                made = value()
            except Exception:  # noqa: BLE001 - a factory that needs arguments is skipped
                continue
            if isinstance(made, Pipeline):
                found.append((name, made))
    return found


def lint_pipeline_file(file_path: str | Path) -> DependencyLintResult:
    """Lint every pipeline a Python file defines.

    The file is imported as the module ``pipeline_module``. Its pipelines are
    its public Pipeline values and what its public ``create_*`` / ``*_pipeline``
    callables return when called without arguments (a callable that raises is
    skipped). Issues are prefixed with the pipeline's name
    (``"chat.router"``). A file without pipelines gives a valid result with a
    ``<module>`` warning.

    Raises:
        FileNotFoundError: ``"Pipeline file not found: {file_path}"``.
        ImportError: the file cannot be loaded or raises while executing.
    """
    path = Path(file_path)
    if not path.exists():
        raise FileNotFoundError(f"Pipeline file not found: {file_path}")
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Could not load module from: {file_path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ImportError(f"Error executing module {file_path}: {exc}") from exc

    found = _pipelines_in(module)
    if not found:
        return DependencyLintResult(
            valid=True,
            issues=[
                DependencyIssue(
                    stage_name="<module>",
                    message="No Pipeline instances found in file",
                    severity=IssueSeverity.WARNING,
                    suggestion="Define a Pipeline instance or create_*_pipeline() function",
                )
            ],
        )
    issues: list[DependencyIssue] = []
    stage_count = dependency_count = 0
    for name, pipeline in found:
        result = lint_pipeline(pipeline)
        issues.extend(
            attrs.evolve(issue, stage_name=f"{name}.{issue.stage_name}") for issue in result.issues
        )
        stage_count += result.stage_count
        dependency_count += result.dependency_count
    return DependencyLintResult(
        valid=not any(issue.severity is IssueSeverity.ERROR for issue in issues),
        issues=issues,
        stage_count=stage_count,
        dependency_count=dependency_count,
    )


class DependencyAccessVisitor(ast.NodeVisitor):
    """Collects ``x.get_from("stage", ...)``-style reads of other stages' outputs.

    The methods are ``get_from``, ``require_from``, ``get_output`` and
    ``has_output`` with a string literal first argument.

    Attributes:
        accessed_stages: ``(stage name, line number)`` pairs, in source order.
    """

    def __init__(self) -> None:
        self.accessed_stages: list[tuple[str, int]] = []

    def visit_Call(self, node: ast.Call) -> None:
        """Record a matching call, then visit its children."""
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr in _ACCESS_METHODS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self.accessed_stages.append((node.args[0].value, node.lineno))
        self.generic_visit(node)


def analyze_stage_source(source: str) -> list[tuple[str, int]]:
    """The ``(stage name, line)`` reads in ``source``; ``[]`` if it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    visitor = DependencyAccessVisitor()
    visitor.visit(tree)
    return visitor.accessed_stages


def _add_lint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="Python file containing pipeline definition(s)")
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="Show detailed output including info-level issues",
    )
    parser.add_argument("--json", action="store_true", help="Output results as JSON")
    parser.add_argument("--strict", action="store_true", help="Treat warnings as errors")


def _report(args: argparse.Namespace) -> int:
    """Lint ``args.file`` and print the result; the exit status (0 valid, 1 not)."""
    try:
        result = lint_pipeline_file(args.file)
    except FileNotFoundError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        print(f"Error importing file: {exc}", file=sys.stderr)
        return 1
    if args.strict and result.warnings:
        result = attrs.evolve(result, valid=False)
    shown = [
        issue for issue in result.issues if args.verbose or issue.severity is not IssueSeverity.INFO
    ]
    if args.json:
        output = {
            "valid": result.valid,
            "stage_count": result.stage_count,
            "dependency_count": result.dependency_count,
            "issues": [
                {
                    "stage_name": issue.stage_name,
                    "message": issue.message,
                    "severity": issue.severity.value,
                    "accessed_stage": issue.accessed_stage,
                    "suggestion": issue.suggestion,
                    "line_number": issue.line_number,
                }
                for issue in shown
            ],
        }
        print(json.dumps(output, indent=2))
    else:
        print(attrs.evolve(result, issues=shown))
    return 0 if result.valid else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stageflow_trio.cli.lint FILE [--verbose] [--json] [--strict]``; the exit status."""
    parser = argparse.ArgumentParser(
        description="Lint stageflow pipelines for dependency issues",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""
Examples:
  python -m stageflow_trio.cli.lint pipeline.py
  python -m stageflow_trio.cli.lint my_app/pipelines/chat.py --verbose
        """,
    )
    _add_lint_options(parser)
    return _report(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    sys.exit(main())
