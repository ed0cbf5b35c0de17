"""The ``stageflow-trio`` command line, and the reference's dependency linter.

``stageflow-trio`` (also ``python -m stageflow_trio`` and ``python -m
stageflow_trio.cli``) runs a pipeline with a live view, draws its DAG, lints a
pipeline file, renders a run's events as an HTML timeline, and runs the bundled
examples; :func:`stageflow_trio.cli.main.main` is the entry point. This package
gathers the linter's names, as the reference's ``stageflow.cli`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio._lazy import lazy_exports

if TYPE_CHECKING:
    from stageflow_trio.cli.lint import DependencyIssue as DependencyIssue
    from stageflow_trio.cli.lint import DependencyLintResult as DependencyLintResult
    from stageflow_trio.cli.lint import lint_pipeline as lint_pipeline
    from stageflow_trio.cli.lint import lint_pipeline_file as lint_pipeline_file

__all__ = ["DependencyIssue", "DependencyLintResult", "lint_pipeline", "lint_pipeline_file"]

# Loaded on first use: importing ``lint`` here made ``python -m stageflow_trio.cli.lint``
# (the command the reference documents) print runpy's RuntimeWarning that the module was
# already imported before it ran as ``__main__``. Hidden from type checkers, which read the
# imports above: a visible module __getattr__ would make a misspelt name `Any`.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__, {".lint": "DependencyIssue DependencyLintResult lint_pipeline lint_pipeline_file"}
    )
