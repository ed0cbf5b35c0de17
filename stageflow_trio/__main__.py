"""``python -m stageflow_trio``: the ``stageflow-trio`` command."""

from __future__ import annotations

import sys

from stageflow_trio.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
