"""Command-line tools: dependency linting (``python -m stageflow_trio.cli lint FILE``)."""

from __future__ import annotations

from stageflow_trio.cli.lint import DependencyIssue as DependencyIssue
from stageflow_trio.cli.lint import DependencyLintResult as DependencyLintResult
from stageflow_trio.cli.lint import lint_pipeline as lint_pipeline
from stageflow_trio.cli.lint import lint_pipeline_file as lint_pipeline_file

__all__ = [
    "DependencyIssue",
    "DependencyLintResult",
    "lint_pipeline",
    "lint_pipeline_file",
]
