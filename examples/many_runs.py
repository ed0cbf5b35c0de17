"""A trio application that runs many pipelines in its own nursery, in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/many_runs.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run many_runs``).
Run it from a checkout with ``python examples/many_runs.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.many_runs import build_graph as build_graph

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples many_runs`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["many_runs"]))
