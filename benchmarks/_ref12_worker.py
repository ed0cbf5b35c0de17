"""The stageflow 1.2.0 side of ``bench_curated``; runs in 1.2.0's own Python (asyncio).

``python benchmarks/_ref12_worker.py WORKLOAD N`` prints the seconds that N
operations took, as JSON. It imports nothing from this repository, so it runs in
an environment that has only stageflow-core 1.2.0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import warnings
from typing import Any


async def _upper(ctx: Any) -> dict[str, Any]:
    return {"text": str(ctx.inputs.get_from("a", "text")).upper()}


async def _echo(ctx: Any) -> dict[str, Any]:
    return {"text": ctx.snapshot.input_text}


async def _measure(workload: str, n: int) -> float:
    from stageflow.api import Pipeline, run_stage  # type: ignore[import-not-found,unused-ignore]

    pipeline = (
        Pipeline()
        .with_stage("a", _echo, "transform")
        .with_stage("b", _upper, "transform", after="a")
        .with_stage("c", _echo, "work", after="b")
    )
    if workload == "run_one_shot":

        async def op() -> None:
            await pipeline.run(input_text="hi")

    elif workload == "run_stage":

        async def op() -> None:
            await run_stage("a", _echo, "transform", input_text="hi")

    else:
        raise SystemExit(f"unknown workload {workload!r}")
    await op()  # warm up imports and caches
    started = time.perf_counter()
    for _ in range(n):
        await op()
    return time.perf_counter() - started


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    print(json.dumps(asyncio.run(_measure(sys.argv[1], int(sys.argv[2])))))
