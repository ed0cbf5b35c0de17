"""Cancellation semantics of a graph run, shown in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/cancellation.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run cancellation``).
Run it from a checkout with ``python examples/cancellation.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.cancellation import deadline_stops_the_run as deadline_stops_the_run
from stageflow_trio.examples.cancellation import (
    failure_cancels_siblings as failure_cancels_siblings,
)
from stageflow_trio.examples.cancellation import (
    token_interrupts_a_blocked_stage as token_interrupts_a_blocked_stage,
)

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples cancellation`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["cancellation"]))
