"""Streaming audio with backpressure, shown in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/streaming.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run streaming``).
Run it from a checkout with ``python examples/streaming.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.streaming import stream as stream

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples streaming`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["streaming"]))
