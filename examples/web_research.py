"""Web research: crawl a small site, keep the relevant pages, outline and summarize them.

A launcher: the example's code is ``stageflow_trio/examples/web_research.py``, inside the
package, so that an installed wheel has it too (``stageflow-trio examples run web_research``).
Run it from a checkout with ``python examples/web_research.py``.
"""

from __future__ import annotations

import sys

from stageflow_trio.examples.__main__ import main
from stageflow_trio.examples.web_research import build_pipeline as build_pipeline

if __name__ == "__main__":
    # As `python -m stageflow_trio.examples web_research`: a reader that goes away (| head)
    # ends it quietly with status 141.
    sys.exit(main(["web_research"]))
