"""Record stageflow 1.2.0's results of ``ref12_cases`` as ``ref12_golden.json``.

Run with the interpreter that has stageflow-core 1.2.0 installed, from the repository root::

    /tmp/ref12/bin/python tests/stages/make_ref12_golden.py

(``python -m venv /tmp/ref12 && /tmp/ref12/bin/pip install stageflow-core==1.2.0``
makes one.) Review the diff of the JSON before committing it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import stageflow  # stageflow-core 1.2.0, not stageflow_trio
from ref12_cases import run_cases  # type: ignore[import-not-found]  # this script's folder

if __name__ == "__main__":
    version = getattr(stageflow, "__version__", None)
    from importlib.metadata import version as dist_version

    if dist_version("stageflow-core") != "1.2.0":
        sys.exit(f"needs stageflow-core 1.2.0; found {dist_version('stageflow-core')} ({version})")
    target = Path(__file__).with_name("ref12_golden.json")
    target.write_text(json.dumps(run_cases("stageflow"), indent=2, sort_keys=True) + "\n")
    print(f"wrote {target}")
