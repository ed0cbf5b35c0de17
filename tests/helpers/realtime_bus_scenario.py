"""One RealtimeStageBus session, run by stageflow 1.2.0 and by stageflow_trio.

``python -m tests.helpers.realtime_bus_scenario``, run from the repository root
with a Python that has stageflow-core 1.2.0, records 1.2.0's outcome in
``golden/realtime_bus.json``; ``test_streaming_realtime_bus_differential.py``
runs the same session here. The session only awaits the bus, so it runs under
asyncio and under trio alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

GOLDEN = Path(__file__).parent / "golden" / "realtime_bus.json"


async def session(streaming: ModuleType) -> dict[str, Any]:
    events: list[list[Any]] = []
    bus = streaming.RealtimeStageBus(
        default_max_size=2,
        default_drop_on_overflow=True,
        event_emitter=lambda kind, data: events.append([kind, data]),
    )
    published = [await bus.publish("a", item) for item in (1, 2, 3)]
    await bus.channel("b", max_size=5, drop_on_overflow=False)
    published.append(await bus.publish("b", "x"))
    before = await bus.stats()
    await bus.close_channel("a")
    published.append(await bus.publish("a", 4))
    drained = [item async for item in bus.subscribe("a")]
    await bus.close_channel("missing")
    await bus.close_all()
    after = await bus.stats()
    try:
        await bus.channel("")
    except ValueError as exc:
        empty_name = str(exc)
    return {
        "published": published,
        "drained": drained,
        "stats_before_close": before,
        "stats_after_close": after,
        "empty_name_error": empty_name,
        "events": events,
    }


if __name__ == "__main__":
    import asyncio
    import importlib.metadata

    import stageflow.helpers.streaming as reference_streaming

    version = importlib.metadata.version("stageflow-core")
    if version != "1.2.0":
        raise SystemExit(f"needs stageflow-core 1.2.0, found {version}")
    outcome = asyncio.run(session(reference_streaming))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(
        json.dumps({"stageflow-core": version, "outcome": outcome}, indent=1, sort_keys=True)
        + "\n",
        encoding="utf-8",
    )
