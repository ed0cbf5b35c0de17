"""Hardening interceptors: they really fire (the reference's never did, d9)."""

from __future__ import annotations

import asyncio
import json
import logging
from types import ModuleType
from typing import Any

import pytest
import trio

from stageflow_trio._time import utc_now
from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.pipeline.dag import StageExecutionError, StageGraph, StageSpec
from stageflow_trio.pipeline.interceptors import (
    CriticalInterceptorError,
    get_default_interceptors,
    run_with_interceptors,
)
from stageflow_trio.pipeline.interceptors_hardening import (
    SNAPSHOT_DATA_KEY,
    ContextSizeInterceptor,
    ContextSizeMetric,
    ImmutabilityInterceptor,
    ImmutabilityViolationError,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context, create_test_snapshot

HARDENING_LOGGER = "stageflow_trio.hardening"


class Cart:
    """A mutable extension (any object with ``to_dict()`` is accepted)."""

    def __init__(self, items: list[str]) -> None:
        self.items = items

    def to_dict(self) -> dict[str, Any]:
        return {"items": list(self.items)}


def snapshot() -> ContextSnapshot[Cart]:
    return create_test_snapshot(extensions=Cart(items=["apple"]), topology="shop")


def make_ctx(snap: Any = None) -> PipelineContext:
    ctx = create_test_pipeline_context()
    if snap is not None:
        ctx.data[SNAPSHOT_DATA_KEY] = snap
    return ctx


async def mutate_cart(ctx: PipelineContext) -> dict[str, int]:
    ctx.data[SNAPSHOT_DATA_KEY].extensions.items.append("stolen")
    return {"ok": 1}


async def read_cart(ctx: PipelineContext) -> dict[str, int]:
    return {"items": len(ctx.data[SNAPSHOT_DATA_KEY].extensions.items)}


async def test_a_mutating_stage_fails_a_legacy_run() -> None:
    graph = StageGraph(
        [StageSpec(name="thief", runner=mutate_cart)],
        [*get_default_interceptors(), ImmutabilityInterceptor()],
    )
    ctx = make_ctx(snapshot())
    with pytest.raises(StageExecutionError) as info:
        await graph.run(ctx)
    cause = info.value.__cause__
    assert isinstance(cause, ImmutabilityViolationError)
    assert isinstance(cause, RuntimeError)
    assert isinstance(cause, CriticalInterceptorError)
    assert str(cause) == "Immutability violation: Stage 'thief' mutated the input ContextSnapshot."
    assert cause.stage_name == "thief"
    # Interceptors whose after() did not run got on_abort: no per-call keys are left behind.
    assert sorted(ctx.data) == [SNAPSHOT_DATA_KEY]


async def test_a_reading_stage_passes() -> None:
    graph = StageGraph(
        [StageSpec(name="reader", runner=read_cart)],
        [*get_default_interceptors(), ImmutabilityInterceptor()],
    )
    results = await graph.run(make_ctx(snapshot()))
    assert results["reader"].status == "completed"
    assert results["reader"].data == {"items": 1}


async def test_without_crash_the_violation_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger=HARDENING_LOGGER)
    graph = StageGraph(
        [StageSpec(name="thief", runner=mutate_cart)],
        [ImmutabilityInterceptor(crash_on_violation=False)],
    )
    results = await graph.run(make_ctx(snapshot()))
    assert results["thief"].status == "completed"
    assert [r.getMessage() for r in caplog.records if r.name == HARDENING_LOGGER] == [
        "Immutability violation: Stage 'thief' mutated the input ContextSnapshot."
    ]


async def test_the_snapshot_attribute_and_a_custom_getter_are_used() -> None:
    class CtxWithSnapshot:
        def __init__(self, snap: ContextSnapshot[Cart]) -> None:
            self.snapshot = snap
            self.data: dict[str, Any] = {}

    snap = snapshot()
    cart = snap.extensions
    assert cart is not None

    async def mutate() -> StageResult:
        cart.items.clear()
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    # Any context with a ``snapshot`` attribute will do, not only a PipelineContext.
    ctx = CtxWithSnapshot(snap)
    with pytest.raises(ImmutabilityViolationError):
        await run_with_interceptors("s", mutate, ctx, [ImmutabilityInterceptor()])  # type: ignore[arg-type]

    other = snapshot()
    other_cart = other.extensions
    assert other_cart is not None
    checker = ImmutabilityInterceptor(snapshot_getter=lambda ctx: other)

    async def mutate_other() -> StageResult:
        other_cart.items.append("x")
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    with pytest.raises(ImmutabilityViolationError):
        await run_with_interceptors("s", mutate_other, make_ctx(), [checker])


async def test_no_snapshot_means_no_check() -> None:
    async def stage(ctx: PipelineContext) -> dict[str, int]:
        ctx.data["anything"] = 1
        return {}

    results = await StageGraph(
        [StageSpec(name="s", runner=stage)], [ImmutabilityInterceptor()]
    ).run(make_ctx())
    assert results["s"].status == "completed"


async def test_an_unserializable_snapshot_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def to_dict(self) -> dict[str, Any]:
            raise AttributeError("no")

    caplog.set_level(logging.WARNING, logger=HARDENING_LOGGER)
    results = await StageGraph(
        [StageSpec(name="s", runner=read_cart)], [ImmutabilityInterceptor()]
    ).run(make_ctx(Broken()))
    assert results["s"].status == "failed"  # read_cart itself fails on the fake snapshot
    assert any("could not serialize" in r.getMessage() for r in caplog.records)


async def test_a_cancelled_mutating_stage_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.abc.Clock
) -> None:
    caplog.set_level(logging.ERROR, logger=HARDENING_LOGGER)
    ctx = make_ctx(snapshot())

    async def mutate_then_hang() -> StageResult:
        ctx.data[SNAPSHOT_DATA_KEY].extensions.items.append("x")
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    with trio.move_on_after(1) as scope:
        await run_with_interceptors("s", mutate_then_hang, ctx, [ImmutabilityInterceptor()])
    assert scope.cancelled_caught
    assert len([r for r in caplog.records if "Immutability violation" in r.getMessage()]) == 1


def test_the_reference_check_never_fires(reference: ModuleType) -> None:
    # d9: the reference reads ctx.snapshot, which PipelineContext lacks, so nothing is checked.
    ref_hardening = reference.pipeline.interceptors_hardening
    ref_interceptors = reference.pipeline.interceptors
    ref_context = reference.stages.context
    ref_result = reference.stages.result
    ctx = ref_context.PipelineContext(
        pipeline_run_id=None,
        request_id=None,
        session_id=None,
        user_id=None,
        org_id=None,
        interaction_id=None,
    )
    cart = Cart(items=["apple"])
    ctx.data["snapshot"] = cart

    async def mutate() -> Any:
        cart.items.append("stolen")
        now = utc_now()
        return ref_result.StageResult(name="s", status="completed", started_at=now, ended_at=now)

    checker = ref_hardening.ImmutabilityInterceptor()
    result = asyncio.run(ref_interceptors.run_with_interceptors("s", mutate, ctx, [checker]))
    assert result.status == "completed"
    assert checker._snapshots == {}


# --- context size -------------------------------------------------------------------------


async def test_a_large_context_warns_before_the_stage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=HARDENING_LOGGER)
    ctx = make_ctx()
    ctx.data["blob"] = "x" * 3000
    size = ContextSizeInterceptor(max_size_bytes=2048)

    async def noop() -> StageResult:
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    await run_with_interceptors("s", noop, ctx, [size])
    messages = [r.getMessage() for r in caplog.records if r.name == HARDENING_LOGGER]
    assert len(messages) == 1
    # The data plus the context's own snapshot (PipelineContext.snapshot, as in stageflow 1.2).
    assert messages[0].startswith(
        "Context size warning: 3.9KB exceeds limit 2.0KB before stage 's'"
    )


async def test_growth_warns_and_metrics_are_recorded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=HARDENING_LOGGER)
    recorded: list[tuple[str, int, dict[str, str]]] = []

    class MetricCtx:
        def __init__(self) -> None:
            self.data: dict[str, Any] = {}

        def record_metric(self, name: str, value: int, tags: dict[str, str]) -> None:
            recorded.append((name, value, tags))

    ctx = MetricCtx()
    size = ContextSizeInterceptor(warn_on_growth_bytes=1000)

    async def grow() -> StageResult:
        ctx.data["blob"] = "y" * 2000
        now = utc_now()
        return StageResult(name="grow", status="completed", started_at=now, ended_at=now)

    await run_with_interceptors("grow", grow, ctx, [size])  # type: ignore[arg-type]  # a duck context
    total = len("{}") + len('{"blob": "' + "y" * 2000 + '"}')
    assert size.metrics == {
        "grow": ContextSizeMetric(stage="grow", size_bytes=total, growth_bytes=total - 4)
    }
    assert recorded == [("context_size_bytes", total, {"stage": "grow"})]
    messages = [r.getMessage() for r in caplog.records if r.name == HARDENING_LOGGER]
    assert messages == [
        f"Significant context growth: Stage 'grow' added {(total - 4) / 1024:.1f}KB"
        f" (Total: {total / 1024:.1f}KB)"
    ]


async def test_size_counts_the_snapshot_once() -> None:
    snap = snapshot()
    ctx = make_ctx(snap)
    ctx.data["note"] = "hi"
    size = ContextSizeInterceptor()

    async def noop() -> StageResult:
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    await run_with_interceptors("s", noop, ctx, [size])
    expected = len(json.dumps(snap.to_dict(), default=str)) + len(json.dumps({"note": "hi"}))
    assert size.metrics["s"] == ContextSizeMetric(stage="s", size_bytes=expected, growth_bytes=0)


async def test_size_problems_never_break_the_stage() -> None:
    ctx = make_ctx()
    loop: dict[str, Any] = {}
    loop["self"] = loop
    ctx.data["loop"] = loop  # json.dumps raises ValueError on the cycle
    size = ContextSizeInterceptor()

    async def noop() -> StageResult:
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    result = await run_with_interceptors("s", noop, ctx, [size])
    assert result.status == "completed"
    assert size.metrics == {}


async def test_an_aborted_call_forgets_its_measurement(autojump_clock: trio.abc.Clock) -> None:
    size = ContextSizeInterceptor()

    async def hang() -> StageResult:
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    with trio.move_on_after(1):
        await run_with_interceptors("s", hang, make_ctx(), [size])
    assert size._sizes == {}
    assert size.metrics == {}


def test_priorities_and_names_match_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.interceptors_hardening
    for ours, theirs in (
        (ImmutabilityInterceptor(), ref.ImmutabilityInterceptor()),
        (ContextSizeInterceptor(), ref.ContextSizeInterceptor()),
    ):
        assert (ours.name, ours.priority) == (theirs.name, theirs.priority)
    assert ContextSizeInterceptor().max_size_bytes == ref.ContextSizeInterceptor().max_size_bytes
    assert (
        ContextSizeInterceptor().warn_on_growth_bytes
        == ref.ContextSizeInterceptor().warn_on_growth_bytes
    )
