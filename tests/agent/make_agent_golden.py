"""Record stageflow 1.2.0's agent loop on the scenarios, as reviewed golden JSON.

Run from the repository root with a Python that has stageflow-core 1.2.0 installed
(not this repo's venv):

    /path/to/venv-with-stageflow-1.2.0/bin/python -m tests.agent.make_agent_golden

It writes ``tests/agent/golden/agent_loop.json``, which
``test_agent_differential.py`` compares stageflow_trio against. Review the diff
before committing it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json

import stageflow.agent as agent
import stageflow.tools as tools

from .agent_harness import GOLDEN, UUID, load_scenarios, run


async def main() -> None:
    version = importlib.metadata.version("stageflow-core")
    if version != "1.2.0":
        raise SystemExit(f"needs stageflow-core 1.2.0, found {version}")
    outcomes = {s["name"]: await run(s, agent, tools) for s in load_scenarios()}
    text = json.dumps({"stageflow-core": version, "outcomes": outcomes}, indent=1, sort_keys=True)
    # Generated call ids change on every run; blanked, the file is stable.
    GOLDEN.write_text(UUID.sub("<uuid>", text) + "\n", encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
