"""A tool that waits for a human's approval, runs, and is undone, in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/tool_approval.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run tool_approval``).
Run it from a checkout with ``python examples/tool_approval.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.tool_approval import build_pipeline as build_pipeline

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples tool_approval`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["tool_approval"]))
