"""``python -m stageflow_trio.examples [NAME]``: list the examples, or run one."""

from __future__ import annotations

import sys

from stageflow_trio.examples import list_examples, run_example


def main(argv: list[str]) -> int:
    """List the examples (no argument) or run the one named; the exit status."""
    if not argv:
        print("\n".join(list_examples()))
        return 0
    if len(argv) > 1 or argv[0] not in list_examples():
        print(
            f"usage: python -m stageflow_trio.examples [{'|'.join(list_examples())}]",
            file=sys.stderr,
        )
        return 2
    run_example(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
