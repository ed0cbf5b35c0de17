"""Differential tests: the same pipelines on stageflow-core 0.9.1 (asyncio) and stageflow_trio.

Same outputs (status, data, error), the same event types in a comparable order (per stage)
and the same payloads, ids included (both sides get the same snapshot ids);
only durations and timestamps are normalized. The reference's UnifiedStageGraph
emits only ``stage.*.skipped`` and ``guard_retry.*`` to the sink, so our extra
lifecycle events are filtered out before comparing (see docs/parity.md).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import trio

from tests.fakes import import_reference, payload

reference = import_reference()
ref_core = reference.core
ref_dag = reference.pipeline.dag
ref_guard = reference.pipeline.guard_retry
ref_context = reference.context
ref_stages = reference.stages

from stageflow_trio import context as our_context  # noqa: E402
from stageflow_trio import core as our_core  # noqa: E402
from stageflow_trio import stages as our_stages  # noqa: E402
from stageflow_trio.pipeline import dag as our_dag  # noqa: E402
from stageflow_trio.pipeline import guard_retry as our_guard  # noqa: E402
from tests.fakes import RefRecorder  # noqa: E402

RUN_ID = uuid.UUID("44444444-4444-4444-8444-444444444444")
REQUEST_ID = uuid.UUID("55555555-5555-4555-8555-555555555555")

# A stage body: (inputs-reader, attempt number) -> (status, data, error)
Body = Callable[[Callable[[str, str], Any], int], tuple[str, dict[str, Any], str | None]]


def _runner(core: Any, body: Body, calls: dict[str, int], name: str, checkpoint: Any) -> Any:
    async def run(ctx: Any) -> Any:
        calls[name] = calls.get(name, 0) + 1
        await checkpoint()
        status, data, error = body(lambda stage, key: ctx.inputs.get_from(stage, key), calls[name])
        if status == "ok":
            return core.StageOutput.ok(data)
        if status == "skip":
            return core.StageOutput.skip(reason=data["reason"])
        if status == "cancel":
            return core.StageOutput.cancel(reason=data["reason"])
        return core.StageOutput.fail(error=error, data=data)

    return run


Stage = tuple[str, tuple[str, ...], str, bool, Body]  # name, deps, kind, conditional, body


def _run_side(
    side: str, stages: list[Stage], policies: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    core, dag, guard, context, stages_mod = (
        (ref_core, ref_dag, ref_guard, ref_context, ref_stages)
        if side == "ref"
        else (our_core, our_dag, our_guard, our_context, our_stages)
    )
    calls: dict[str, int] = {}
    checkpoint = (lambda: asyncio.sleep(0)) if side == "ref" else trio.lowlevel.checkpoint
    specs = [
        dag.UnifiedStageSpec(
            name=name,
            runner=_runner(core, body, calls, name, checkpoint),
            kind=core.StageKind(kind),
            dependencies=deps,
            conditional=conditional,
        )
        for name, deps, kind, conditional, body in stages
    ]
    strategy = (
        guard.GuardRetryStrategy({g: guard.GuardRetryPolicy(**p) for g, p in policies.items()})
        if policies
        else None
    )
    graph = dag.UnifiedStageGraph(specs, guard_retry_strategy=strategy)
    sink = RefRecorder()
    snapshot = context.ContextSnapshot(
        run_id=context.RunIdentity(pipeline_run_id=RUN_ID, request_id=REQUEST_ID),
        topology="diff",
        execution_mode="diff",
    )
    ctx = core.StageContext(
        snapshot=snapshot,
        inputs=stages_mod.StageInputs(snapshot=snapshot),
        stage_name="diff",
        timer=core.PipelineTimer(),
        event_sink=sink,
    )

    async def main() -> dict[str, Any]:
        try:
            results = await graph.run(ctx)
        except (ref_dag.UnifiedStageExecutionError, our_dag.UnifiedStageExecutionError) as exc:
            return {"error": ("execution", exc.stage, str(exc))}
        except (ref_dag.UnifiedPipelineCancelled, our_dag.UnifiedPipelineCancelled) as exc:
            return {"error": ("cancelled", exc.stage, exc.reason, sorted(exc.results))}
        return {
            "outputs": {
                name: (out.status.value, dict(out.data), out.error)
                for name, out in sorted(results.items())
            }
        }

    outcome = asyncio.run(main()) if side == "ref" else trio.run(main)
    comparable = [
        (kind, {k: v for k, v in payload(data).items() if k != "duration_ms"})
        for kind, data in sink.events
        if kind.startswith("guard_retry.") or kind.endswith(".skipped")
    ]
    # Stages on independent branches may interleave differently: compare each
    # stage's own events in order (a stable sort by the stage they are about).
    comparable.sort(key=lambda event: str(event[1].get("guard") or event[1].get("stage")))
    outcome["events"] = comparable
    outcome["calls"] = calls
    return outcome


def assert_same(
    stages: list[Stage], policies: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    ref = _run_side("ref", stages, policies or {})
    ours = _run_side("ours", stages, policies or {})
    assert ours["calls"] == ref["calls"]
    assert ours.get("outputs") == ref.get("outputs")
    assert ours.get("error") == ref.get("error")
    assert ours["events"] == ref["events"]
    return ours


def ok(**data: Any) -> Body:
    return lambda get, attempt: ("ok", data, None)


def test_chain() -> None:
    def add(stage: str) -> Body:
        return lambda get, attempt: ("ok", {"n": get(stage, "n") + 1}, None)

    out = assert_same(
        [
            ("a", (), "transform", False, ok(n=1)),
            ("b", ("a",), "transform", False, add("a")),
            ("c", ("b",), "enrich", False, add("b")),
        ]
    )
    assert out["outputs"]["c"] == ("ok", {"n": 3}, None)


def test_fan_out_fan_in() -> None:
    def total(get: Any, attempt: int) -> tuple[str, dict[str, Any], None]:
        return "ok", {"sum": sum(get(f"w{i}", "v") for i in range(5))}, None

    stages: list[Stage] = [("root", (), "route", False, ok(v=0))]
    stages += [(f"w{i}", ("root",), "work", False, ok(v=i)) for i in range(5)]
    stages += [("join", tuple(f"w{i}" for i in range(5)), "transform", False, total)]
    out = assert_same(stages)
    assert out["outputs"]["join"][1] == {"sum": 10}


def test_conditional_skip_and_returned_skip() -> None:
    out = assert_same(
        [
            ("router", (), "route", False, ok(skip_reason="no branch")),
            ("branch", ("router",), "work", True, ok(ran=True)),
            ("skipper", (), "work", False, lambda get, a: ("skip", {"reason": "nothing"}, None)),
        ]
    )
    assert sorted(kind for kind, _ in out["events"]) == [
        "stage.branch.skipped",
        "stage.skipper.skipped",
    ]
    assert out["outputs"]["branch"] == ("skip", {"reason": "no branch"}, None)


def test_guard_retry_recovery() -> None:
    def guard(get: Any, attempt: int) -> tuple[str, dict[str, Any], str | None]:
        if attempt < 3:
            return "fail", {"attempt": attempt}, "too short"
        return "ok", {"passed": True}, None

    def draft(get: Any, attempt: int) -> tuple[str, dict[str, Any], None]:
        return "ok", {"text": "x" * attempt}, None

    out = assert_same(
        [
            ("draft", (), "transform", False, draft),
            ("guard", ("draft",), "guard", False, guard),
            ("publish", ("guard",), "work", False, ok(done=True)),
        ],
        {"guard": {"retry_stage": "draft", "max_attempts": 5}},
    )
    assert [kind for kind, _ in out["events"]].count("guard_retry.recovered") == 1


@pytest.mark.parametrize(
    ("policy", "fail_data"),
    [
        ({"retry_stage": "draft", "max_attempts": 3}, "varying"),
        ({"retry_stage": "draft", "max_attempts": 9, "stagnation_limit": 2}, "same"),
    ],
)
def test_guard_retry_exhaustion(policy: dict[str, Any], fail_data: str) -> None:
    expected_reason = "max_attempts" if fail_data == "varying" else "stagnation"

    def guard(get: Any, attempt: int) -> tuple[str, dict[str, Any], str]:
        data = {"attempt": attempt} if fail_data == "varying" else {"issue": "same"}
        return "fail", data, "still bad"

    out = assert_same(
        [
            ("draft", (), "transform", False, ok(text="t")),
            ("guard", ("draft",), "guard", False, guard),
        ],
        {"guard": policy},
    )
    [exhausted] = [data for kind, data in out["events"] if kind == "guard_retry.exhausted"]
    assert exhausted["reason"] == expected_reason


def test_fail_output() -> None:
    assert_same(
        [
            ("a", (), "transform", False, ok(v=1)),
            ("b", ("a",), "work", False, lambda get, a: ("fail", {}, "exploded")),
        ]
    )


def test_cancel_output() -> None:
    assert_same(
        [
            ("a", (), "transform", False, ok(v=1)),
            (
                "stop",
                ("a",),
                "guard",
                False,
                lambda get, a: ("cancel", {"reason": "user left"}, None),
            ),
            ("after", ("stop",), "work", False, ok(v=2)),
        ]
    )
