"""Cancellation semantics of a graph run, shown in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/cancellation.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run cancellation``).
Run it from a checkout with ``python examples/cancellation.py``.
"""

from __future__ import annotations

from stageflow_trio.examples import run_example
from stageflow_trio.examples.cancellation import deadline_stops_the_run as deadline_stops_the_run
from stageflow_trio.examples.cancellation import (
    failure_cancels_siblings as failure_cancels_siblings,
)
from stageflow_trio.examples.cancellation import (
    token_interrupts_a_blocked_stage as token_interrupts_a_blocked_stage,
)

if __name__ == "__main__":
    run_example("cancellation")
