"""``python -m tests.golden --update``: rewrite tests/golden/events/*.json from the producers."""

from __future__ import annotations

import argparse
import sys

from tests.golden.golden import ROOT, write_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__)
    parser.add_argument("--update", action="store_true", help="rewrite the golden files")
    args = parser.parse_args(argv)
    if not args.update:
        parser.print_help()
        return 2
    for path in write_all():
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
