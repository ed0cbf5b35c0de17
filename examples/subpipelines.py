"""Subpipelines and a cancellation cascade, in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/subpipelines.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run subpipelines``).
Run it from a checkout with ``python examples/subpipelines.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples subpipelines`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["subpipelines"]))
