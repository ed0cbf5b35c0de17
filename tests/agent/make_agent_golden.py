"""Record stageflow 1.2.0's agent loop on the scenarios, as reviewed golden JSON.

Run with a Python that has stageflow-core 1.2.0 installed (not this repo's venv):

    /path/to/venv-with-stageflow-1.2.0/bin/python tests/agent/make_agent_golden.py

It writes ``tests/agent/golden/agent_loop.json``, which
``test_agent_differential.py`` compares stageflow_trio against. Review the diff
before committing it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import stageflow.agent as agent
import stageflow.tools as tools
from agent_harness import GOLDEN, load_scenarios, run


async def main() -> None:
    version = importlib.metadata.version("stageflow-core")
    if version != "1.2.0":
        raise SystemExit(f"needs stageflow-core 1.2.0, found {version}")
    outcomes = {s["name"]: await run(s, agent, tools) for s in load_scenarios()}
    GOLDEN.write_text(
        json.dumps({"stageflow-core": version, "outcomes": outcomes}, indent=1, sort_keys=True)
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    asyncio.run(main())
