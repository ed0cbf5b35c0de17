"""Quickstart: a five-stage pipeline run under trio.

A launcher: the example's code is ``stageflow_trio/examples/quickstart.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run quickstart``).
Run it from a checkout with ``python examples/quickstart.py``.
"""

from __future__ import annotations

from stageflow_trio.examples import run_example
from stageflow_trio.examples.quickstart import build_pipeline as build_pipeline

if __name__ == "__main__":
    run_example("quickstart")
