"""``python -m stageflow_trio.cli``: the command-line tools (``lint``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from stageflow_trio.cli.lint import _add_lint_options, _report

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the command; the exit status.

    ``lint FILE [--verbose] [--json] [--strict]`` lints the pipelines of a file
    (0 when valid, 1 otherwise). ``contracts`` is not available here (status 2).
    Without a command, prints the help and returns 0.
    """
    parser = argparse.ArgumentParser(
        prog="stageflow_trio",
        description="Stageflow command-line tools",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""
Commands:
  lint       Check pipeline dependencies for issues

Examples:
  python -m stageflow_trio.cli lint pipeline.py
        """,
    )
    commands = parser.add_subparsers(dest="command", help="Available commands")
    lint = commands.add_parser(
        "lint",
        help="Lint pipeline dependencies",
        description="Check pipeline definitions for dependency issues",
    )
    _add_lint_options(lint)
    commands.add_parser(
        "contracts",
        help="Not available: use stageflow_trio.contracts.registry",
        description="Not available: use stageflow_trio.contracts.registry",
    )
    args, _ = parser.parse_known_args(argv)
    if args.command == "lint":
        return _report(args)
    if args.command == "contracts":
        print(
            "Error: the contracts command is not available; "
            "use stageflow_trio.contracts.registry (see docs/contracts.md)",
            file=sys.stderr,
        )
        return 2
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    sys.exit(main())
