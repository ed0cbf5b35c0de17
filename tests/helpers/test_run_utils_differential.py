"""Differential tests: PipelineRunner and run_simple_pipeline of stageflow-core 0.9.1 (asyncio)
and of stageflow_trio, on the same pipelines, give the same RunResult (durations and
events aside: the reference's unified graph emits no lifecycle events to the sink)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio import core as our_core
from stageflow_trio.helpers import run_utils as our_run_utils
from stageflow_trio.pipeline import pipeline as our_pipeline
from tests.fakes import import_reference

reference = import_reference()
ref_core = reference.core
ref_run_utils = reference.helpers.run_utils
ref_pipeline = reference.pipeline.pipeline

RUN_ID = uuid.UUID("66666666-6666-4666-8666-666666666666")

# name -> (kind, dependencies, behaviour)
SHAPES: dict[str, list[tuple[str, str, tuple[str, ...], str]]] = {
    "chain": [
        ("a", "TRANSFORM", (), "ok"),
        ("b", "TRANSFORM", ("a",), "echo"),
        ("c", "ENRICH", ("a",), "ok"),
    ],
    "cancel": [("a", "TRANSFORM", (), "ok"), ("g", "GUARD", ("a",), "cancel")],
    "fail": [("a", "TRANSFORM", (), "ok"), ("b", "WORK", ("a",), "fail")],
    "raise": [("a", "TRANSFORM", (), "raise")],
    "skip": [("a", "TRANSFORM", (), "skip")],
}


def _pipeline(core: Any, module: Any, shape: str, sleep: Any) -> Any:
    pipeline = module.Pipeline()
    for name, kind, deps, behaviour in SHAPES[shape]:

        async def run(ctx: Any, name: str = name, behaviour: str = behaviour) -> Any:
            await sleep(0)
            if behaviour == "ok":
                return core.StageOutput.ok(stage=name, text=ctx.snapshot.input_text)
            if behaviour == "echo":
                return core.StageOutput.ok(got=ctx.inputs.get_from("a", "stage"))
            if behaviour == "cancel":
                return core.StageOutput.cancel(reason="guard said no", data={"why": 1})
            if behaviour == "skip":
                return core.StageOutput.skip(reason="nothing to do")
            if behaviour == "fail":
                return core.StageOutput.fail(error="work failed")
            raise ValueError("stage raised")

        pipeline = pipeline.with_stage(
            name, run, getattr(core.StageKind, kind), dependencies=deps or None
        )
    return pipeline


def _shape(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = result.to_dict()
    data.pop("duration_ms")
    data["stages"] = {name: dict(value) for name, value in data["stages"].items()}
    return data


def _reference_run(shape: str, simple: bool) -> dict[str, Any]:
    async def main() -> Any:
        pipeline = _pipeline(ref_core, ref_pipeline, shape, asyncio.sleep)
        if simple:
            return await ref_run_utils.run_simple_pipeline(pipeline, "hello")
        runner = ref_run_utils.PipelineRunner(verbose=False)
        return await runner.run(pipeline, input_text="hello", pipeline_run_id=RUN_ID)

    return _shape(asyncio.run(main()))


def _our_run(shape: str, simple: bool) -> dict[str, Any]:
    async def main() -> Any:
        pipeline = _pipeline(our_core, our_pipeline, shape, trio.sleep)
        if simple:
            return await our_run_utils.run_simple_pipeline(pipeline, "hello")
        runner = our_run_utils.PipelineRunner(verbose=False)
        return await runner.run(pipeline, input_text="hello", pipeline_run_id=RUN_ID)

    return _shape(trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)))


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("simple", [False, True])
def test_same_run_result(shape: str, simple: bool) -> None:
    theirs, mine = _reference_run(shape, simple), _our_run(shape, simple)
    if simple:  # fresh run ids on both sides
        assert uuid.UUID(theirs.pop("pipeline_run_id")).version == 4
        assert uuid.UUID(mine.pop("pipeline_run_id")).version == 4
    assert mine == theirs


def test_the_cases_cover_every_outcome() -> None:
    outcomes = {
        shape: (r["success"], r.get("cancelled", False), r.get("error_type"))
        for shape in SHAPES
        for r in [_our_run(shape, False)]
    }
    assert outcomes == {
        "cancel": (True, True, None),
        "chain": (True, False, None),
        "fail": (False, False, "UnifiedStageExecutionError"),
        "raise": (False, False, "UnifiedStageExecutionError"),
        "skip": (True, False, None),
    }


def test_create_snapshot_matches() -> None:
    kwargs: dict[str, Any] = {
        "input_text": "x",
        "pipeline_run_id": RUN_ID,
        "request_id": RUN_ID,
        "session_id": RUN_ID,
        "user_id": RUN_ID,
        "interaction_id": RUN_ID,
        "channel": "sms",
    }
    mine = our_run_utils.PipelineRunner().create_snapshot(**kwargs).to_dict()
    theirs = ref_run_utils.PipelineRunner().create_snapshot(**kwargs).to_dict()
    for data in (mine, theirs):
        data.pop("created_at")
        data["run_id"].pop("created_at", None)
    assert mine == theirs


def test_the_reference_cannot_pass_metadata() -> None:
    """The parity row's evidence: run_simple_pipeline(metadata=...) fails in 0.9.1."""

    async def main() -> Any:
        pipeline = _pipeline(ref_core, ref_pipeline, "chain", asyncio.sleep)
        return await ref_run_utils.run_simple_pipeline(pipeline, "x", metadata={"k": 1})

    with pytest.raises(TypeError, match="multiple values for keyword argument 'metadata'"):
        asyncio.run(main())
