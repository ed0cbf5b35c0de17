"""A run under a deadline that stays clean under Ctrl-C, in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/deadline.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run deadline``).
Run it from a checkout with ``python examples/deadline.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.deadline import build_graph as build_graph
from stageflow_trio.examples.deadline import run_safely as run_safely

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples deadline`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["deadline"]))
