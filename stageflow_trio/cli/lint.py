"""Dependency linting for pipelines, as the reference's ``stageflow.cli.lint``.

:func:`lint_pipeline` checks a :class:`~stageflow_trio.pipeline.Pipeline`'s
declared dependencies without building it: a stage that depends on itself or on a
stage the pipeline lacks, and cycles, are errors; a stage that neither depends on
nor feeds another (in a pipeline of several) is a warning.
:func:`lint_pipeline_file` does it for every pipeline a Python file defines.

The command line adds the builder's own verdict (``stageflow-trio lint FILE``): the
contract error :meth:`Pipeline.build` raises, with its code, summary and fix hint.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.pipeline import Pipeline

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import ModuleType

    from stageflow_trio.contracts import ContractErrorInfo

__all__ = [
    "ContractIssue",
    "DependencyAccessVisitor",
    "DependencyIssue",
    "DependencyLintResult",
    "IssueSeverity",
    "analyze_stage_source",
    "contract_issues",
    "find_pipelines",
    "lint_file",
    "lint_pipeline",
    "lint_pipeline_file",
    "main",
]


class IssueSeverity(Enum):
    """How serious a :class:`DependencyIssue` is."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@frozen_compat
@attrs.frozen
class DependencyIssue:
    """One problem found by the linter.

    Attributes:
        stage_name: The stage it concerns (``pipeline.stage`` from a file).
        message: What is wrong.
        severity: Its :class:`IssueSeverity`.
        accessed_stage: The stage named by the faulty dependency, if any.
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
        text = f"[{self.severity.value.upper()}] {self.stage_name}: {self.message}"
        if self.suggestion:
            text += f"\n  Suggestion: {self.suggestion}"
        if self.line_number:
            text += f"\n  Line: {self.line_number}"
        return text


@attrs.define
class DependencyLintResult:
    """The linter's verdict (mutable, as the reference's dataclass).

    Attributes:
        valid: No error was found (warnings allowed).
        issues: Every issue found.
        stage_count: The number of stages linted.
        dependency_count: The number of distinct stage names depended on.
    """

    valid: bool
    issues: list[DependencyIssue] = attrs.field(factory=list)
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
        head = (
            "✓ Pipeline dependencies are valid"
            if self.valid
            else f"✗ Found {len(self.errors)} error(s)"
        )
        lines = [head, f"  Stages: {self.stage_count}", f"  Dependencies: {self.dependency_count}"]
        if self.issues:
            lines.append("\nIssues:")
            lines.extend(f"  {issue}" for issue in self.issues)
        return "\n".join(lines)


def _cycle_from(start: str, depends_on: dict[str, list[str]]) -> list[str] | None:
    """The first cycle through ``start`` found depth-first (``[start, ..., start]``), or None.

    As the reference, it reports only cycles that return to ``start``: a cycle
    reached from ``start`` but not through it is found again from its own members.
    """
    path = [start]
    on_path = {start}
    # An explicit stack of iterators: a long chain must not hit the recursion limit.
    stack = [iter(depends_on[start])]
    while stack:
        dep = next(stack[-1], None)
        if dep is None:
            stack.pop()
            on_path.discard(path.pop())
            continue
        if dep == start:
            return [*path, start]
        if dep in on_path or dep not in depends_on:
            continue
        path.append(dep)
        on_path.add(dep)
        stack.append(iter(depends_on[dep]))
    return None


def _on_cycles(depends_on: dict[str, list[str]]) -> set[str]:
    """The stages that lie on a cycle (Tarjan's strongly connected components, iterative).

    A stage is on a cycle when its component has more than one stage or it depends
    on itself. Dependencies that name no stage are ignored.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cyclic: set[str] = set()
    for root in depends_on:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(depends_on[root]))]
        while work:
            node, deps = work[-1]
            dep = next(deps, None)
            if dep is not None:
                if dep not in depends_on:
                    continue
                if dep not in index:
                    index[dep] = low[dep] = len(index)
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(depends_on[dep])))
                elif dep in on_stack:
                    low[node] = min(low[node], index[dep])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in depends_on[node]:
                    cyclic.update(component)
    return cyclic


def lint_pipeline(pipeline: Pipeline) -> DependencyLintResult:
    """Check ``pipeline``'s dependencies without building it.

    Errors: a stage that depends on itself, a dependency that names no stage, a
    cycle (reported once, at the first of its stages in insertion order). Warning: a
    stage with no dependency that nothing depends on, in a pipeline of two or more.

    Raises:
        TypeError: ``pipeline`` is not a Pipeline.
    """
    if not isinstance(pipeline, Pipeline):
        raise TypeError(
            f"lint_pipeline: pipeline must be a Pipeline; got {type(pipeline).__name__}"
        )
    stages = pipeline.stages
    issues: list[DependencyIssue] = []
    depends_on: dict[str, list[str]] = {}
    depended_by: set[str] = set()
    all_deps: set[str] = set()
    for name, spec in stages.items():
        deps = list(dict.fromkeys(spec.dependencies))
        depends_on[name] = deps
        all_deps.update(deps)
        if name in deps:
            issues.append(
                DependencyIssue(
                    name,
                    f"Stage '{name}' depends on itself",
                    IssueSeverity.ERROR,
                    accessed_stage=name,
                    suggestion=f"Remove '{name}' from its own dependencies",
                )
            )
        for dep in deps:
            if dep in stages:
                depended_by.add(dep)
            else:
                issues.append(
                    DependencyIssue(
                        name,
                        f"Dependency '{dep}' does not exist in pipeline",
                        IssueSeverity.ERROR,
                        accessed_stage=dep,
                        suggestion=(
                            f"Add stage '{dep}' to the pipeline or remove it from dependencies"
                        ),
                    )
                )
    cyclic = _on_cycles(depends_on)
    for name in stages:
        # Only a stage on a cycle can find one through itself: the others are
        # skipped, so an acyclic pipeline costs one pass, not one search per stage.
        cycle = _cycle_from(name, depends_on) if name in cyclic else None
        if cycle is not None:
            issues.append(
                DependencyIssue(
                    name,
                    f"Circular dependency detected: {' -> '.join(cycle)}",
                    IssueSeverity.ERROR,
                    suggestion="Break the cycle by removing one of the dependencies",
                )
            )
    if len(stages) > 1:
        issues.extend(
            DependencyIssue(
                name,
                f"Stage '{name}' is isolated (no dependencies and nothing depends on it)",
                IssueSeverity.WARNING,
                suggestion="Consider adding dependencies or removing if unused",
            )
            for name in stages
            if not depends_on[name] and name not in depended_by
        )
    return DependencyLintResult(
        valid=not any(issue.severity is IssueSeverity.ERROR for issue in issues),
        issues=issues,
        stage_count=len(stages),
        dependency_count=len(all_deps),
    )


def _is_factory_name(name: str) -> bool:
    return name.startswith("create_") or name.endswith("_pipeline")


def find_pipelines(module: ModuleType) -> list[tuple[str, Pipeline]]:
    """The module's public Pipelines and what its ``create_*``/``*_pipeline`` functions return.

    A factory that raises (one that needs arguments, say) is passed over, as the
    reference does.
    """
    found: list[tuple[str, Pipeline]] = []
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if isinstance(value, Pipeline):
            found.append((name, value))
        elif callable(value) and _is_factory_name(name):
            try:
                made = value()
            except Exception:  # noqa: BLE001 - the reference skips factories that need arguments
                continue
            if isinstance(made, Pipeline):
                found.append((name, made))
    return found


def lint_pipeline_file(file_path: str | Path) -> DependencyLintResult:
    """Lint every pipeline a Python file defines (see :func:`find_pipelines`).

    Issues are prefixed with the pipeline's attribute name (``create_pipeline.a``).
    A file that defines none gives a valid result with one warning.

    Raises:
        FileNotFoundError: no such file.
        ImportError: executing the file raised (the original is the ``__cause__``).
    """
    return lint_file(file_path)[0]


@frozen_compat
@attrs.frozen
class ContractIssue:
    """The contract error a pipeline's ``build()`` raised.

    Attributes:
        pipeline: The pipeline's attribute name in the file.
        code: The stable error code (``CONTRACT-004-CYCLE``), or None.
        summary: One line saying what is wrong.
        fix_hint: How to fix it, or None.
        doc_url: Where the code is documented, or None.
    """

    pipeline: str
    code: str | None
    summary: str
    fix_hint: str | None = None
    doc_url: str | None = None

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        text = f"[CONTRACT{code}] {self.pipeline}: {self.summary}"
        if self.fix_hint:
            text += f"\n  Fix: {self.fix_hint}"
        return text

    def to_dict(self) -> dict[str, str | None]:
        """``{pipeline, code, summary, fix_hint, doc_url}``."""
        return attrs.asdict(self)


def contract_issues(pipelines: Iterable[tuple[str, Pipeline]]) -> list[ContractIssue]:
    """Build each named pipeline; one :class:`ContractIssue` for each that raises.

    Building runs the builder's own checks (a missing dependency, a cycle, an empty
    pipeline); it reports the first problem it meets, with its contract code.
    """
    found: list[ContractIssue] = []
    for name, pipeline in pipelines:
        try:
            pipeline.build()
        except Exception as exc:  # noqa: BLE001 - whatever build() raises is the verdict
            info: ContractErrorInfo | None = getattr(exc, "error_info", None)
            if info is None:
                found.append(ContractIssue(name, None, str(exc)))
            else:
                found.append(
                    ContractIssue(name, info.code, info.summary, info.fix_hint, info.doc_url)
                )
    return found


def lint_file(file_path: str | Path) -> tuple[DependencyLintResult, list[ContractIssue]]:
    """:func:`lint_pipeline_file`'s result and :func:`contract_issues` for the same pipelines.

    The file is executed once.

    Raises:
        FileNotFoundError, ImportError: as :func:`lint_pipeline_file`.
    """
    found = find_pipelines(_load(file_path))
    return _lint_found(found), contract_issues(found)


def _load(file_path: str | Path) -> ModuleType:
    """Execute ``file_path`` as the module ``pipeline_module`` (the reference's name)."""
    path = Path(file_path)
    if not path.exists():
        raise FileNotFoundError(f"Pipeline file not found: {file_path}")
    spec = importlib.util.spec_from_file_location("pipeline_module", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Could not load module from: {file_path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["pipeline_module"] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        # sys.exit() in the file is a failed import too (the reference exits with
        # the file's status, 0 for sys.exit(0): a lint that "passed").
        detail = f"SystemExit: {exc}" if isinstance(exc, SystemExit) else str(exc)
        raise ImportError(f"Error executing module {file_path}: {detail}") from exc
    return module


def _lint_found(found: list[tuple[str, Pipeline]]) -> DependencyLintResult:
    if not found:
        return DependencyLintResult(
            valid=True,
            issues=[
                DependencyIssue(
                    "<module>",
                    "No Pipeline instances found in file",
                    IssueSeverity.WARNING,
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
    """Collects ``inputs.get_from("stage", ...)``-style calls from stage source.

    The methods looked for are ``get_from``, ``require_from``, ``get_output`` and
    ``has_output`` with a string literal first argument; ``accessed_stages`` holds
    ``(stage name, line number)`` pairs in source order.
    """

    METHODS = frozenset({"get_from", "require_from", "get_output", "has_output"})

    def __init__(self) -> None:
        self.accessed_stages: list[tuple[str, int]] = []

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in self.METHODS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self.accessed_stages.append((node.args[0].value, node.lineno))
        self.generic_visit(node)


def analyze_stage_source(source: str) -> list[tuple[str, int]]:
    """The ``(stage name, line)`` pairs of :class:`DependencyAccessVisitor` in ``source``.

    Source that does not parse gives ``[]``.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    visitor = DependencyAccessVisitor()
    visitor.visit(tree)
    return visitor.accessed_stages


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stageflow_trio.cli.lint FILE [--verbose] [--json] [--strict]``: the exit status.

    The reference's entry point, kept at its path: the same as ``stageflow-trio lint``
    with these arguments (``sys.argv[1:]`` by default).
    """
    # The command line sits above this module: imported here, when the command runs.
    from stageflow_trio.cli.main import main as command_line

    return command_line(["lint", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
