"""Differential tests of the legacy StageGraph against stageflow-core 0.9.1.

The reference's StageGraph runs when it is built directly with stage classes
(only the PipelineBuilder wrapper is broken, d2), so the same pipelines run on
both sides with their default interceptors: same results (status, data, error),
the same lifecycle event types per stage, and the same payload keys.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import trio

from tests.fakes import import_reference, payload

reference = import_reference()
ref_core = reference.core
ref_dag = reference.pipeline.dag
ref_stages = reference.stages

from stageflow_trio import core as our_core  # noqa: E402
from stageflow_trio import stages as our_stages  # noqa: E402
from stageflow_trio.pipeline import dag as our_dag  # noqa: E402
from tests.fakes import RefRecorder  # noqa: E402

RUN_ID = uuid.UUID("66666666-6666-4666-8666-666666666666")


def _stage_class(core: Any, behaviour: str, pause: Any) -> type:
    class Stage:
        async def execute(self, ctx: Any) -> Any:
            await pause()
            if behaviour == "raise":
                raise ValueError("exploded")
            if behaviour == "fail":
                return core.StageOutput.fail(error="refused")
            if behaviour == "dict":
                return {"from": "dict"}
            if behaviour == "none":
                return None
            return core.StageOutput.ok(value=behaviour)

    return Stage


def _run(side: str, stages: list[tuple[str, tuple[str, ...], str]]) -> dict[str, Any]:
    core, dag, stages_mod = (
        (ref_core, ref_dag, ref_stages) if side == "ref" else (our_core, our_dag, our_stages)
    )
    pause = (lambda: asyncio.sleep(0)) if side == "ref" else trio.lowlevel.checkpoint
    graph = dag.StageGraph(
        [
            dag.StageSpec(name=name, runner=_stage_class(core, behaviour, pause), dependencies=deps)
            for name, deps, behaviour in stages
        ]
    )
    sink = RefRecorder()
    ctx = stages_mod.PipelineContext(
        pipeline_run_id=RUN_ID,
        request_id=None,
        session_id=None,
        user_id=None,
        org_id=None,
        interaction_id=None,
        topology="legacy_diff",
        execution_mode="diff",
        event_sink=sink,
    )

    async def main() -> Any:
        return await graph.run(ctx)

    results = asyncio.run(main()) if side == "ref" else trio.run(main)
    by_stage: dict[str, list[tuple[str, list[str]]]] = {}
    for kind, data in sink.events:
        if kind.startswith("pipeline_"):
            continue  # only stageflow_trio emits pipeline-level terminal events (parity.md)
        by_stage.setdefault(payload(data)["stage"], []).append((kind, sorted(payload(data))))
    return {
        "results": {name: (r.status, dict(r.data), r.error) for name, r in sorted(results.items())},
        "events": by_stage,
    }


@pytest.mark.parametrize(
    "stages",
    [
        [("a", (), "x"), ("b", ("a",), "y"), ("c", ("b",), "z")],
        [
            ("root", (), "r"),
            ("w1", ("root",), "dict"),
            ("w2", ("root",), "none"),
            ("j", ("w1", "w2"), "j"),
        ],
        [("bad", (), "raise"), ("after", ("bad",), "ok"), ("other", (), "fail")],
    ],
    ids=["chain", "fan-out", "failures"],
)
def test_same_results_and_events(stages: list[tuple[str, tuple[str, ...], str]]) -> None:
    ref = _run("ref", stages)
    ours = _run("ours", stages)
    assert ours["results"] == ref["results"]
    assert ours["events"] == ref["events"]
    assert ours["events"]  # every stage emitted its lifecycle events
