"""Guard retries in UnifiedStageGraph: recovery, exhaustion, stagnation, timeout, events."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import trio

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError, UnifiedStageGraph
from stageflow_trio.pipeline.guard_retry import (
    GuardRetryPolicy,
    GuardRetryStrategy,
    hash_retry_payload,
)
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import payload

from .graph_helpers import RUN_ID, spec, stage_ctx

IDS = {
    "pipeline_run_id": str(RUN_ID),
    "request_id": "22222222-2222-4222-8222-222222222222",
    "execution_mode": "test",
}


def build(
    guard_outputs: list[StageOutput],
    policy: GuardRetryPolicy,
    *,
    draft_delay: float = 0.0,
    calls: dict[str, int] | None = None,
) -> UnifiedStageGraph:
    counts = calls if calls is not None else {}

    async def draft(ctx: StageContext) -> StageOutput:
        counts["draft"] = counts.get("draft", 0) + 1
        await trio.sleep(draft_delay)
        return StageOutput.ok(text=f"draft {counts['draft']}")

    async def guard(ctx: StageContext) -> StageOutput:
        counts["guard"] = counts.get("guard", 0) + 1
        return guard_outputs[min(counts["guard"], len(guard_outputs)) - 1]

    async def publish(ctx: StageContext) -> StageOutput:
        counts["publish"] = counts.get("publish", 0) + 1
        return StageOutput.ok(published=ctx.inputs.get_from("draft", "text"))

    return UnifiedStageGraph(
        [
            spec("draft", draft),
            spec("guard", guard, ["draft"], kind=StageKind.GUARD),
            spec("publish", publish, ["guard", "draft"]),
        ],
        guard_retry_strategy=GuardRetryStrategy({"guard": policy}),
    )


async def test_guard_recovers_after_retry_and_dependants_wait_for_final_output() -> None:
    sink = RecordingEventSink()
    calls: dict[str, int] = {}
    graph = build(
        [StageOutput.fail(error="too short", data={"n": 1}), StageOutput.ok(passed=True)],
        GuardRetryPolicy(retry_stage="draft", max_attempts=3),
        calls=calls,
    )
    results = await graph.run(stage_ctx(event_sink=sink))
    assert calls == {"draft": 2, "guard": 2, "publish": 1}
    assert results["guard"].data == {"passed": True}
    assert results["publish"].data == {"published": "draft 2"}
    assert sink.types() == [
        "stage.draft.started",
        "stage.draft.completed",
        "stage.guard.started",
        "stage.guard.failed",
        "guard_retry.attempt",
        "guard_retry.scheduled",
        "stage.draft.started",
        "stage.draft.completed",
        "stage.guard.started",
        "stage.guard.completed",
        "guard_retry.recovered",
        "stage.publish.started",
        "stage.publish.completed",
        "pipeline_completed",
    ]
    assert sink.of_type("guard_retry.attempt") == [
        {
            **IDS,
            "guard": "guard",
            "attempt": 1,
            "retry_stage": "draft",
            "max_attempts": 3,
            "stagnation_hits": 0,
            "timeout_seconds": None,
        }
    ]
    assert sink.of_type("guard_retry.scheduled") == [
        {
            **IDS,
            "guard": "guard",
            "attempt": 1,
            "retry_stage": "draft",
            "stagnation_hits": 0,
            "timeout_seconds": None,
        }
    ]
    assert sink.of_type("guard_retry.recovered") == [{**IDS, "guard": "guard", "attempts": 1}]


async def test_exhausted_by_max_attempts_raises() -> None:
    sink = RecordingEventSink()
    calls: dict[str, int] = {}
    fails = [StageOutput.fail(error="bad", data={"n": i}) for i in range(5)]
    graph = build(fails, GuardRetryPolicy(retry_stage="draft", max_attempts=3), calls=calls)
    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'guard' failed: bad$"):
        await graph.run(stage_ctx(event_sink=sink))
    assert calls == {"draft": 3, "guard": 3}
    assert [payload(e)["attempt"] for e in sink.of_type("guard_retry.attempt")] == [1, 2, 3]
    assert sink.of_type("guard_retry.exhausted") == [
        {
            **IDS,
            "guard": "guard",
            "attempts": 3,
            "stagnation_hits": 0,
            "retry_stage": "draft",
            "timeout_seconds": None,
            "reason": "max_attempts",
        }
    ]


async def test_identical_payloads_exhaust_by_stagnation() -> None:
    sink = RecordingEventSink()
    same = StageOutput.fail(error="same", data={"issue": "identical"})
    graph = build(
        [same], GuardRetryPolicy(retry_stage="draft", max_attempts=10, stagnation_limit=2)
    )
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx(event_sink=sink))
    [exhausted] = map(payload, sink.of_type("guard_retry.exhausted"))
    assert exhausted["reason"] == "stagnation"
    assert exhausted["attempts"] == 3
    assert exhausted["stagnation_hits"] == 2


async def test_hash_fields_limit_what_counts_as_progress() -> None:
    sink = RecordingEventSink()
    outputs = [StageOutput.fail(error="x", data={"issue": "same", "noise": i}) for i in range(9)]
    graph = build(
        outputs,
        GuardRetryPolicy(
            retry_stage="draft", max_attempts=10, stagnation_limit=1, hash_fields=("issue",)
        ),
    )
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx(event_sink=sink))
    assert payload(sink.of_type("guard_retry.exhausted")[0])["attempts"] == 2


async def test_timeout_on_the_trio_clock(autojump_clock: trio.abc.Clock) -> None:
    sink = RecordingEventSink()
    outputs = [StageOutput.fail(error="x", data={"n": i}) for i in range(20)]
    graph = build(
        outputs,
        GuardRetryPolicy(retry_stage="draft", max_attempts=20, timeout_seconds=2.5),
        draft_delay=1.0,
    )
    start = trio.current_time()
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(stage_ctx(event_sink=sink))
    # First failure at t=1 starts the window; retries at t=2, 3, 4: the one at 4 is past 2.5 s.
    assert trio.current_time() - start == 4
    [exhausted] = map(payload, sink.of_type("guard_retry.exhausted"))
    assert exhausted["reason"] == "timeout"
    assert exhausted["attempts"] == 4
    assert exhausted["timeout_seconds"] == 2.5


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match=r"^max_attempts must be >= 1$"):
        GuardRetryPolicy(retry_stage="x", max_attempts=0)
    with pytest.raises(ValueError, match=r"^stagnation_limit must be >= 1$"):
        GuardRetryPolicy(retry_stage="x", stagnation_limit=0)
    with pytest.raises(ValueError, match=r"^timeout_seconds must be positive when provided$"):
        GuardRetryPolicy(retry_stage="x", timeout_seconds=0)
    with pytest.raises(TypeError, match=r"^max_attempts must be an int, got bool$"):
        GuardRetryPolicy(retry_stage="x", max_attempts=True)
    with pytest.raises(TypeError, match=r"^stagnation_limit must be an int, got str$"):
        GuardRetryPolicy(retry_stage="x", stagnation_limit="2")  # type: ignore[arg-type]
    # One field name is a one-field tuple, not its characters.
    assert GuardRetryPolicy(retry_stage="x", hash_fields="issue").hash_fields == ("issue",)


def test_payload_hash_with_keys_that_cannot_be_sorted() -> None:
    # json.dumps(sort_keys=True) cannot order 1 and "a": the hash falls back to repr.
    # (Typed dict[Any, Any]: StageOutput.data is declared with str keys; these break that.)
    first: dict[Any, Any] = {1: "a", "a": 1}
    other: dict[Any, Any] = {1: "b", "a": 1}
    mixed = StageOutput.fail("x", data=first)
    assert hash_retry_payload(mixed) == hash_retry_payload(StageOutput.fail("x", data=dict(first)))
    assert hash_retry_payload(mixed) != hash_retry_payload(StageOutput.fail("x", data=other))
    assert hash_retry_payload(None) is None


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        (
            {"nope": GuardRetryPolicy("draft")},
            "Guard retry policy references unknown guard stage 'nope'",
        ),
        (
            {"draft": GuardRetryPolicy("guard")},
            "Guard retry policy requires 'draft' to be a GUARD stage",
        ),
        (
            {"guard": GuardRetryPolicy("ghost")},
            "Guard retry policy for 'guard' references unknown retry stage 'ghost'",
        ),
        (
            {"guard": GuardRetryPolicy("guard")},
            "Guard retry policy for 'guard' cannot target itself",
        ),
        (
            {"guard": GuardRetryPolicy("other")},
            "Guard 'guard' must declare retry stage 'other' as a dependency to enable guard retries",
        ),
    ],
)
def test_strategy_validation(policies: dict[str, GuardRetryPolicy], message: str) -> None:
    specs = [
        spec("draft"),
        spec("other"),
        spec("guard", deps=["draft"], kind=StageKind.GUARD),
    ]
    with pytest.raises(ValueError, match=f"^{message}$"):
        UnifiedStageGraph(specs, guard_retry_strategy=GuardRetryStrategy(policies))


def test_hash_retry_payload_is_stable_and_field_limited() -> None:
    a = StageOutput.ok(x=1, y=2)
    b = StageOutput.ok(y=2, x=1)
    assert hash_retry_payload(a) == hash_retry_payload(b)
    assert hash_retry_payload(a, ("x",)) == hash_retry_payload(StageOutput.ok(x=1, y=3), ("x",))
    assert hash_retry_payload(a) != hash_retry_payload(StageOutput.ok(x=1, y=3))
    assert hash_retry_payload(None) is None


def test_hash_matches_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.guard_retry
    ref_core = reference.core
    data: dict[str, Any] = {"b": [1, 2], "a": {"z": None}}
    assert hash_retry_payload(StageOutput.ok(data)) == ref.hash_retry_payload(
        ref_core.StageOutput.ok(data)
    )
