"""Subpipelines and a cancellation cascade, in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/subpipelines.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run subpipelines``).
Run it from a checkout with ``python examples/subpipelines.py``.
"""

from __future__ import annotations

from stageflow_trio.examples import run_example

if __name__ == "__main__":
    run_example("subpipelines")
