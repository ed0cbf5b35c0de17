"""RealtimeStageBus against stageflow 1.2.0's, on one recorded session.

1.2.0 cannot share this venv with 0.9.1: ``realtime_bus_scenario.py`` recorded
its outcome (``golden/realtime_bus.json``, reviewed) and this test runs the same
session on stageflow_trio's bus, under trio.
"""

from __future__ import annotations

import json

import stageflow_trio.helpers.streaming as streaming

from .realtime_bus_scenario import GOLDEN, session


async def test_session_matches_stageflow_1_2_0() -> None:
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert recorded["stageflow-core"] == "1.2.0"
    theirs = recorded["outcome"]
    ours = json.loads(json.dumps(await session(streaming)))
    # close_all closes the already closed channel "a" a second time: the
    # reference's ChunkQueue then queues a second end marker, ours does not
    # (parity.md, "ChunkQueue second close").
    assert (theirs["stats_after_close"]["a"]["size"], ours["stats_after_close"]["a"]["size"]) == (
        1,
        0,
    )
    ours["stats_after_close"]["a"]["size"] = 1
    assert ours == theirs
