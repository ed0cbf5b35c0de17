"""Retries with exponential backoff against a flaky provider, in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/flaky_retry.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run flaky_retry``).
Run it from a checkout with ``python examples/flaky_retry.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.flaky_retry import FlakyProvider as FlakyProvider
from stageflow_trio.examples.flaky_retry import build_graph as build_graph

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples flaky_retry`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["flaky_retry"]))
