"""The curated API's one-shot calls, stageflow_trio vs stageflow-core 1.2.0.

Workloads, each in seconds per call:
    run_one_shot: ``await Pipeline.run(input_text=...)`` of a three-stage chain
        (a -> b -> c): build, run, PipelineResults; both sides run their default
        interceptor chain (``interceptors=None``).
    run_stage: ``await run_stage("a", fn, "transform", input_text=...)``.
    run_one_shot_no_chain: ``Pipeline.run(interceptors=[])``; 1.2.0 cannot run
        without its chain (``[]`` means its defaults), so its column is the same
        call with the default chain.

1.2.0 (asyncio) is not importable beside 0.9.1, so its side runs in a
subprocess with its own Python (``STAGEFLOW_REF12_PYTHON``, default
``/tmp/ref12/bin/python``) that times N calls in a loop (``_ref12_worker.py``);
subprocess runs and in-process trio runs alternate, and each row is the median.
Without that Python the reference column is empty.
Run: ``python -m benchmarks curated`` (``--smoke`` for a quick pass).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

from stageflow_trio.api import Pipeline, StageContext, run_stage

Row = dict[str, object]
WORKER = Path(__file__).with_name("_ref12_worker.py")
REF12_PYTHON = os.environ.get("STAGEFLOW_REF12_PYTHON", "/tmp/ref12/bin/python")


async def _upper(ctx: StageContext) -> dict[str, Any]:
    return {"text": str(ctx.inputs.get_from("a", "text")).upper()}


async def _echo(ctx: StageContext) -> dict[str, Any]:
    return {"text": ctx.snapshot.input_text}


PIPELINE = (
    Pipeline()
    .with_stage("a", _echo, "transform")
    .with_stage("b", _upper, "transform", after="a")
    .with_stage("c", _echo, "work", after="b")
)


async def _run_one_shot() -> None:
    await PIPELINE.run(input_text="hi")


async def _run_one_shot_no_chain() -> None:
    await PIPELINE.run(input_text="hi", interceptors=[])


async def _run_stage() -> None:
    await run_stage("a", _echo, "transform", input_text="hi")


OURS = {
    "run_one_shot": _run_one_shot,
    "run_stage": _run_stage,
    "run_one_shot_no_chain": _run_one_shot_no_chain,
}
THEIRS = {
    "run_one_shot": "run_one_shot",
    "run_stage": "run_stage",
    "run_one_shot_no_chain": "run_one_shot",
}


def _trio_seconds(workload: str, n: int) -> float:
    op = OURS[workload]

    async def main() -> float:
        await op()  # warm up
        started = time.perf_counter()
        for _ in range(n):
            await op()
        return time.perf_counter() - started

    return trio.run(main) / n


def _ref12_seconds(workload: str, n: int) -> float | None:
    if not Path(REF12_PYTHON).exists():
        return None
    out = subprocess.run(
        [REF12_PYTHON, str(WORKER), THEIRS[workload], str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(out.stdout)) / n


def run(smoke: bool = False) -> list[Row]:
    n, reps = (20, 1) if smoke else (2000, 5)
    rows: list[Row] = []
    for workload in OURS:
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(reps):
            ours.append(_trio_seconds(workload, n))
            ref = _ref12_seconds(workload, n)
            if ref is not None:
                theirs.append(ref)
        row: Row = {
            "workload": f"curated.{workload}",
            "reference_s": statistics.median(theirs) if theirs else None,
            "trio_s": statistics.median(ours),
            "note": "reference: stageflow 1.2.0" if theirs else "1.2.0 not available",
        }
        if theirs:
            row["note"] = (
                f"{row['note']}; rate x{statistics.median(theirs) / statistics.median(ours):.2f}"
            )
        rows.append(row)
    return rows


if __name__ == "__main__":
    for result in run(smoke="--smoke" in sys.argv):
        print(result)
