"""A voice turn: speech to text, guardrails, memory, a streamed spoken reply, in virtual time.

A launcher: the example's code is ``stageflow_trio/examples/voice_turn.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run voice_turn``).
Run it from a checkout with ``python examples/voice_turn.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.voice_turn import build_pipeline as build_pipeline

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples voice_turn`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["voice_turn"]))
