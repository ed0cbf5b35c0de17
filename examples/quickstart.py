"""Quickstart: a five-stage pipeline run under trio.

A launcher: the example's code is ``stageflow_trio/examples/quickstart.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run quickstart``).
Run it from a checkout with ``python examples/quickstart.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.quickstart import build_pipeline as build_pipeline

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples quickstart`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["quickstart"]))
