"""Guard retries: a guard sends a draft back for another attempt until it passes.

A launcher: the example's code is ``stageflow_trio/examples/guard_retry.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run guard_retry``).
Run it from a checkout with ``python examples/guard_retry.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.guard_retry import Drafter as Drafter
from stageflow_trio.examples.guard_retry import build_graph as build_graph

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples guard_retry`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["guard_retry"]))
