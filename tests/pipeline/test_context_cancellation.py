"""Graph runs started with a PipelineContext: its cancellation, hooks and interceptor view.

Everything runs on the virtual clock, so interrupt times are exact.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.lowlevel import checkpoint_budget, cooperative_checkpoint
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import (
    StageGraph,
    StageSpec,
    UnifiedPipelineCancelled,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.interceptors import BaseInterceptor, InterceptorResult
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink

from .graph_helpers import spec


def pctx(**kwargs: Any) -> PipelineContext:
    kwargs.setdefault("event_sink", RecordingEventSink())
    return PipelineContext.create(topology="chat_fast", input_text="hi", **kwargs)


async def test_run_with_a_pipeline_context_derives_the_root_context() -> None:
    seen: list[tuple[str, str | None, bool]] = []

    async def read(ctx: StageContext) -> StageOutput:
        seen.append((ctx.stage_name, ctx.snapshot.input_text, ctx.is_cancelled))
        return StageOutput.ok(text=ctx.snapshot.input_text)

    ctx = pctx()
    results = await UnifiedStageGraph([spec("a", read), spec("b", read, ["a"])]).run(ctx)
    assert results["b"].data == {"text": "hi"}
    assert seen == [("a", "hi", False), ("b", "hi", False)]
    assert ctx.canceled is False


@pytest.mark.parametrize("with_sink", [False, True])
async def test_mark_canceled_interrupts_running_stages_at_their_next_checkpoint(
    autojump_clock: trio.abc.Clock, with_sink: bool
) -> None:
    ctx = pctx()
    if not with_sink:
        ctx.event_sink = None  # type: ignore[assignment]  # the engine's plain path
    interrupted: list[tuple[str, float, str | None]] = []

    async def slow(stage: StageContext) -> StageOutput:
        try:
            await trio.sleep(60)
        except trio.Cancelled as exc:
            interrupted.append((stage.stage_name, trio.current_time(), exc.reason))
            raise
        return StageOutput.ok()

    async def canceller(stage: StageContext) -> StageOutput:
        await trio.sleep(1.5)
        ctx.mark_canceled("user left")
        return StageOutput.ok()

    graph = UnifiedStageGraph([spec("slow", slow), spec("canceller", canceller)])
    with pytest.raises(UnifiedPipelineCancelled) as info:
        await graph.run(ctx)
    assert info.value.stage == "<external>"
    assert info.value.reason == "user left"
    assert interrupted == [("slow", 1.5, "user left")]
    assert trio.current_time() == 1.5
    assert ctx.cancellation_reason == "user left"


async def test_mark_canceled_from_outside_the_run(autojump_clock: trio.abc.Clock) -> None:
    ctx = pctx()
    started: list[float] = []

    async def forever(stage: StageContext) -> StageOutput:
        started.append(trio.current_time())
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    graph = UnifiedStageGraph([spec("a", forever)])
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            with pytest.raises(UnifiedPipelineCancelled) as info:
                await graph.run(ctx)
            assert (info.value.stage, info.value.reason) == ("<external>", "shutdown")
            assert trio.current_time() == 4

        nursery.start_soon(run)
        await trio.sleep(4)
        ctx.mark_canceled("shutdown")
    assert started == [0]


async def test_a_context_canceled_before_the_run_starts_no_stage() -> None:
    ctx = pctx()
    ctx.mark_canceled("too late")
    ran: list[str] = []

    async def stage(s: StageContext) -> StageOutput:
        ran.append(s.stage_name)
        await trio.lowlevel.checkpoint()
        return StageOutput.ok()

    with pytest.raises(UnifiedPipelineCancelled) as info:
        await UnifiedStageGraph([spec("a", stage)]).run(ctx)
    assert (info.value.stage, info.value.reason) == ("<external>", "too late")
    assert ran == []


def _interceptor() -> BaseInterceptor:
    class Passthrough(BaseInterceptor):
        name = "passthrough"

        async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
            return None

        async def after(self, stage_name: str, result: Any, ctx: PipelineContext) -> None:
            return None

    return Passthrough()


@pytest.mark.parametrize("mode", ["plain", "sink", "interceptors"])
async def test_raise_if_cancelled_in_a_stage_ends_the_run_as_that_stages_cancel(
    mode: str,
) -> None:
    sink = RecordingEventSink() if mode != "plain" else None
    ctx = PipelineContext.create(event_sink=sink) if sink else pctx()
    if mode == "plain":
        ctx.event_sink = None  # type: ignore[assignment]  # a run with nothing to report

    async def stopper(stage: StageContext) -> StageOutput:
        ctx.mark_canceled("enough")
        stage.raise_if_cancelled()  # no checkpoint in between
        raise AssertionError("unreachable")

    graph = UnifiedStageGraph(
        [spec("stopper", stopper)],
        interceptors=[_interceptor()] if mode == "interceptors" else None,
    )
    with pytest.raises(UnifiedPipelineCancelled) as info:
        await graph.run(ctx)
    assert (info.value.stage, info.value.reason) == ("stopper", "enough")
    assert info.value.results["stopper"].data == {"cancel_reason": "enough"}


async def test_cancellation_checkpoint_in_a_stage_raises_cancelled() -> None:
    ctx = pctx()
    seen: list[str] = []

    async def stage(s: StageContext) -> StageOutput:
        ctx.mark_canceled("stop")
        try:
            await s.cancellation_checkpoint()
        except trio.Cancelled as exc:
            seen.append(f"cancelled:{exc.reason}")
            raise
        return StageOutput.ok()

    with pytest.raises(UnifiedPipelineCancelled) as info:
        await UnifiedStageGraph([spec("a", stage)]).run(ctx)
    assert info.value.stage == "<external>"
    assert seen == ["cancelled:stop"]


async def test_before_stage_start_hooks_run_in_order_before_each_stage() -> None:
    ctx = pctx()
    calls: list[tuple[str, str, Any, str, bool]] = []

    def sync_hook(name: str, kind: Any, stage: StageContext, owner: PipelineContext) -> None:
        calls.append(("sync", name, kind, stage.stage_name, owner is ctx))

    async def async_hook(name: str, kind: Any, stage: StageContext, owner: PipelineContext) -> None:
        await trio.lowlevel.checkpoint()
        calls.append(("async", name, kind, stage.stage_name, owner is ctx))

    ctx.add_before_stage_start_hook(sync_hook)
    ctx.add_before_stage_start_hook(async_hook)
    graph = UnifiedStageGraph(
        [spec("a"), spec("b", deps=["a"], kind=StageKind.GUARD, conditional=True)]
    )
    await graph.run(ctx)
    assert calls == [
        ("sync", "a", StageKind.TRANSFORM, "a", True),
        ("async", "a", StageKind.TRANSFORM, "a", True),
        ("sync", "b", StageKind.GUARD, "b", True),
        ("async", "b", StageKind.GUARD, "b", True),
    ]


async def test_a_hook_that_cancels_turns_the_stage_into_a_cancel() -> None:
    ctx = pctx()
    ran: list[str] = []

    def veto(name: str, kind: Any, stage: StageContext, owner: PipelineContext) -> None:
        if name == "b":
            owner.mark_canceled(f"vetoed {name}")

    async def record(stage: StageContext) -> StageOutput:
        ran.append(stage.stage_name)
        return StageOutput.ok()

    ctx.add_before_stage_start_hook(veto)
    graph = UnifiedStageGraph([spec("a", record), spec("b", record, ["a"])])
    with pytest.raises(UnifiedPipelineCancelled) as info:
        await graph.run(ctx)
    assert (info.value.stage, info.value.reason) == ("b", "vetoed b")
    assert ran == ["a"]


async def test_interceptors_see_the_pipeline_context_itself() -> None:
    ctx = pctx()
    views: list[PipelineContext] = []

    class Recorder(BaseInterceptor):
        name = "recorder"

        async def before(self, stage_name: str, view: PipelineContext) -> InterceptorResult | None:
            views.append(view)
            view.data[f"seen.{stage_name}"] = True
            return None

        async def after(self, stage_name: str, result: Any, view: PipelineContext) -> None:
            return None

    await UnifiedStageGraph([spec("a")], interceptors=[Recorder()]).run(ctx)
    assert views == [ctx]
    assert views[0] is ctx
    assert ctx.data == {"seen.a": True}


async def test_the_run_lets_go_of_the_context_when_it_ends() -> None:
    ctx = pctx()
    token = CancellationToken()
    await UnifiedStageGraph([spec("a")]).run(ctx, cancel_token=token)
    ctx.mark_canceled("after the run")
    assert token.is_cancelled is False


async def test_a_stage_context_derived_from_a_pipeline_context_follows_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    ctx = pctx()
    root = ctx.derive_root_stage_context()

    async def forever(stage: StageContext) -> StageOutput:
        assert stage.is_cancelled is False
        try:
            await trio.sleep_forever()
        finally:
            assert (stage.is_cancelled, stage.cancellation_reason) == (True, "bye")
        raise AssertionError("unreachable")

    async with trio.open_nursery() as nursery:

        async def run() -> None:
            with pytest.raises(UnifiedPipelineCancelled) as info:
                await UnifiedStageGraph([spec("a", forever)]).run(root)
            assert info.value.reason == "bye"

        nursery.start_soon(run)
        await trio.sleep(2)
        ctx.mark_canceled("bye")
    assert trio.current_time() == 2


async def test_a_plain_stage_context_run_is_unchanged() -> None:
    flags: list[tuple[bool, str | None]] = []

    async def look(stage: StageContext) -> StageOutput:
        flags.append((stage.is_cancelled, stage.cancellation_reason))
        stage.raise_if_cancelled()
        return StageOutput.ok()

    from .graph_helpers import stage_ctx

    results = await UnifiedStageGraph([spec("a", look)]).run(stage_ctx())
    assert results["a"].status.value == "ok"
    assert flags == [(False, None)]


async def test_a_cancelled_token_is_visible_to_polling_stages(
    autojump_clock: trio.abc.Clock,
) -> None:
    token = CancellationToken()
    polls: list[tuple[float, bool, str | None]] = []

    async def poller(stage: StageContext) -> StageOutput:
        polls.append((trio.current_time(), stage.is_cancelled, stage.cancellation_reason))
        with trio.CancelScope(shield=True):  # a stage that only polls
            await trio.sleep(2)
        polls.append((trio.current_time(), stage.is_cancelled, stage.cancellation_reason))
        stage.raise_if_cancelled()
        raise AssertionError("unreachable")

    async def cancel_later() -> None:
        await trio.sleep(1)
        token.cancel("token says stop")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(UnifiedPipelineCancelled) as info:
            await UnifiedStageGraph([spec("p", poller)]).run(pctx(), cancel_token=token)
    # The stage's own cancel output (what stageflow 1.2 also reports), not "<external>".
    assert (info.value.stage, info.value.reason) == ("p", "token says stop")
    assert polls == [(0, False, None), (2, True, "token says stop")]


async def test_mark_canceled_interrupts_a_legacy_run_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()
    ctx = PipelineContext.create(event_sink=sink)
    interrupted: list[tuple[float, str | None]] = []

    async def slow(c: PipelineContext) -> None:
        try:
            await trio.sleep(60)
        except trio.Cancelled as exc:
            interrupted.append((trio.current_time(), exc.reason))
            raise

    async def quick(c: PipelineContext) -> dict[str, int]:
        await trio.sleep(1)
        return {"n": 1}

    graph = StageGraph(
        [StageSpec(name="slow", runner=slow), StageSpec(name="quick", runner=quick)],
        interceptors=[],
    )
    async with trio.open_nursery() as nursery:

        async def cancel_later() -> None:
            await trio.sleep(2.5)
            ctx.mark_canceled("user hung up")

        nursery.start_soon(cancel_later)
        results = await graph.run(ctx)
    assert interrupted == [(2.5, "user hung up")]
    assert trio.current_time() == 2.5
    assert (results["quick"].status, results["quick"].data) == ("completed", {"n": 1})
    assert (results["slow"].status, results["slow"].error) == ("failed", "Pipeline canceled")
    [cancelled] = [data for kind, data in sink.events if kind == "pipeline_cancelled"]
    assert cancelled is not None
    assert cancelled["stage"] == "<external>"


async def test_a_pipeline_context_subclass_is_accepted() -> None:
    class AppContext(PipelineContext):
        pass

    ctx = AppContext(topology="chat_fast", input_text="sub")
    seen: list[str | None] = []

    async def read(stage: StageContext) -> StageOutput:
        seen.append(stage.snapshot.input_text)
        return StageOutput.ok()

    await UnifiedStageGraph([spec("a", read)]).run(ctx)
    assert seen == ["sub"]


@pytest.mark.parametrize("calls", [1, 1_000_000])
async def test_a_mark_before_a_queued_stage_starts_is_not_blamed_on_that_stage(
    autojump_clock: trio.abc.Clock, calls: int
) -> None:
    # "late" is released with "marks" but queued in a task of its own. With a
    # schedule point at every budgeted call it starts first and is interrupted;
    # without, it comes up after the mark. Either way the run ends "<external>",
    # and a stage that never started has no output and no event.
    sink = RecordingEventSink()
    ctx = PipelineContext(event_sink=sink)

    async def marks(stage_ctx: StageContext) -> StageOutput:
        ctx.mark_canceled("caller hung up")
        await trio.sleep(5)
        return StageOutput.ok()

    async def late(stage_ctx: StageContext) -> StageOutput:
        await trio.sleep(5)
        return StageOutput.ok()

    graph = UnifiedStageGraph(
        [spec("root"), spec("marks", marks, ["root"]), spec("late", late, ["root"])]
    )
    with checkpoint_budget(calls=calls, seconds=3600):
        await cooperative_checkpoint()  # the fresh budget's first schedule point
        with pytest.raises(UnifiedPipelineCancelled) as cancelled:
            await graph.run(ctx)
    assert (cancelled.value.stage, cancelled.value.reason) == ("<external>", "caller hung up")
    assert set(cancelled.value.results) == {"root"}
    types = sink.types()
    assert types[-1] == "pipeline_cancelled"
    for name in ("marks", "late"):
        started = types.count(f"stage.{name}.started")
        assert types.count(f"stage.{name}.cancelled") == started
    if calls == 1_000_000:
        assert "stage.late.started" not in types  # came up after the mark
    assert trio.current_time() == 0
