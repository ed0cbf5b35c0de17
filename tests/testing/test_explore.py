"""explore_cancellation on deliberately broken pipelines (caught) and on correct ones (passes)."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events.sink import BackpressureAwareEventSink
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.testing import (
    DEFAULT_INVARIANTS,
    ExplorationReport,
    RecordingEventSink,
    RunRecord,
    create_test_stage_context,
    current_run,
    explore_cancellation,
    invariant,
    tracked_cleanup,
)
from stageflow_trio.testing.explore import (
    CANCELLED,
    RETURNED,
    interrupted_stages_end_cancelled,
    stages_terminated,
)


async def fetch(ctx: StageContext) -> StageOutput:
    await trio.sleep(0.5)
    return StageOutput.ok(rows=3)


def two_stages(second: Any) -> Pipeline:
    return (
        Pipeline()
        .with_stage("fetch", fetch, StageKind.ENRICH)
        .with_stage("save", second, StageKind.WORK, dependencies=("fetch",))
    )


async def run(pipeline: Pipeline) -> dict[str, StageOutput]:
    return await pipeline.build().run(create_test_stage_context(event_sink=current_run().sink))


FAILURE = re.compile(
    r"^explore_cancellation\((?P<fn>[\w.<>]+)\): invariant '(?P<invariant>[^']+)' broke at"
    r" checkpoint (?P<index>\d+) of (?P<total>\d+): (?P<what>.*?)"
    r"(?:; stages running at the cancel: \[(?P<stages>[^\]]*)\])?\."
    r" Rerun just this one: explore_cancellation\(run_fn, seed=0, at=\[(?P=index)\], deadlines=\(\)\)$"
)


async def caught(run_fn: Any, **kwargs: Any) -> re.Match[str]:
    """The explorer's failure, parsed; also checks that its rerun hint reproduces it."""
    with pytest.raises(AssertionError) as info:
        await explore_cancellation(run_fn, **kwargs)
    message = str(info.value)
    found = FAILURE.match(message)
    assert found is not None, message
    with pytest.raises(AssertionError) as again:
        await explore_cancellation(run_fn, seed=0, at=[int(found["index"])], deadlines=(), **kwargs)
    assert str(again.value) == message
    return found


# -- broken pipelines ------------------------------------------------------------


async def test_a_stage_that_swallows_cancelled_is_caught(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def save(ctx: StageContext) -> StageOutput:
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            return StageOutput.ok(saved=False)  # the bug: the cancellation stops here
        return StageOutput.ok(saved=True)

    async def swallowing_run() -> dict[str, StageOutput]:
        return await run(two_stages(save))

    found = await caught(swallowing_run)
    assert found["invariant"] == "outcome is documented"
    assert found["stages"] == "'save'"
    assert "received trio.Cancelled but the run returned normally" in found["what"]


def three_stages(middle: Any) -> Pipeline:
    return two_stages(middle).with_stage("publish", fetch, StageKind.WORK, dependencies=("save",))


async def test_a_stage_that_swallows_cancelled_mid_chain_is_caught(
    virtual_clock: trio.testing.MockClock,
) -> None:
    """The next stage's checkpoint re-raises, so the outcome is right; the stage is not."""

    async def save(ctx: StageContext) -> StageOutput:
        ctx.try_emit_event(type="save.waiting", data={})  # not a lifecycle event
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            return StageOutput.ok(saved=False)  # the bug
        return StageOutput.ok(saved=True)

    async def swallowing_run() -> dict[str, StageOutput]:
        return await run(three_stages(save))

    found = await caught(swallowing_run)
    assert found["invariant"] == "an interrupted stage ends cancelled"
    assert found["what"] == (
        "stage 'save' received trio.Cancelled when the run was cancelled"
        " and then reported stage.save.completed: it swallowed the cancellation"
    )
    assert found["stages"] == "'save'"


async def test_a_stage_that_replaces_cancelled_with_an_error_is_named(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def save(ctx: StageContext) -> StageOutput:
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            raise RuntimeError("translated") from None  # the bug
        return StageOutput.ok()

    async def translating_run() -> dict[str, StageOutput]:
        return await run(three_stages(save))

    found = await caught(translating_run, invariants=[interrupted_stages_end_cancelled])
    assert found["what"] == (
        "stage 'save' received trio.Cancelled when the run was cancelled"
        " and then reported stage.save.failed: it replaced the cancellation with an error"
    )


async def busy_swallowing(ctx: StageContext) -> StageOutput:
    """Never blocked: each checkpoint finds it runnable, and Cancelled arrives at the next one."""
    try:
        for _ in range(5):
            await trio.lowlevel.checkpoint()  # say, OutputBag writes or a chatty client
    except trio.Cancelled:
        return StageOutput.ok(charged=False)  # the bug
    return StageOutput.ok(charged=True)


async def test_a_runnable_stage_that_swallows_cancelled_is_caught(
    virtual_clock: trio.testing.MockClock,
) -> None:
    graph = Pipeline().with_stage("charge", busy_swallowing, StageKind.WORK).build()
    records: list[RunRecord] = []

    async def run_checkout() -> dict[str, StageOutput]:
        records.append(current_run())
        return await graph.run(create_test_stage_context(event_sink=current_run().sink))

    found = await caught(run_checkout)
    assert (found["invariant"], found["index"], found["total"]) == (
        "outcome is documented",
        "0",
        "6",
    )
    task = trio.lowlevel.current_task().name
    assert found["what"] == (
        f"task(s) {task!r} received trio.Cancelled but the run returned normally: something"
        " swallowed the cancellation (documented: trio.Cancelled propagates)"
    )
    assert found["stages"] == "'charge'"
    cancelled = records[1]  # cancelled at checkpoint 0, while the stage was runnable
    assert cancelled.outcome == RETURNED
    assert cancelled.interrupted == [task]
    assert cancelled.interrupted_stages == ["charge"]
    assert cancelled.result["charge"].data == {"charged": False}


@pytest.mark.parametrize("catch", ["Cancelled", "BaseException"])
async def test_a_runnable_stage_that_swallows_cancelled_mid_chain_is_caught(
    virtual_clock: trio.testing.MockClock, catch: str
) -> None:
    async def save(ctx: StageContext) -> StageOutput:
        if catch == "Cancelled":
            return await busy_swallowing(ctx)
        with contextlib.suppress(BaseException):  # the bug: swallows Cancelled too
            for _ in range(5):
                await trio.lowlevel.checkpoint()
        return StageOutput.ok()

    async def swallowing_run() -> dict[str, StageOutput]:
        return await run(three_stages(save))

    found = await caught(swallowing_run)
    assert found["invariant"] == "an interrupted stage ends cancelled"
    assert found["what"] == (
        "stage 'save' received trio.Cancelled when the run was cancelled"
        " and then reported stage.save.completed: it swallowed the cancellation"
    )
    assert found["stages"] == "'save'"


async def test_a_cleanup_that_runs_twice_is_caught(virtual_clock: trio.testing.MockClock) -> None:
    async def release() -> None:
        await trio.lowlevel.checkpoint()

    async def save(ctx: StageContext) -> StageOutput:
        cleanup = tracked_cleanup(release, name="connection")
        ctx.register_cleanup(cleanup, name="connection")
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await cleanup()  # the bug: the run's cleanup will call it again
            raise
        return StageOutput.ok()

    async def twice_run() -> dict[str, StageOutput]:
        return await run(two_stages(save))

    found = await caught(twice_run)
    assert found["invariant"] == "cleanup ran exactly once"
    assert found["what"] == "cleanup 'connection' registered 1 time(s) ran 2 time(s)"
    assert found["stages"] == "'save'"


async def test_a_task_left_running_is_caught(virtual_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as outside:

        async def save(ctx: StageContext) -> StageOutput:
            try:
                await trio.sleep(1)
            except trio.Cancelled:
                # the bug: work handed to a nursery that outlives the run
                outside.start_soon(trio.sleep_forever, name="retry-later")
                raise
            return StageOutput.ok()

        async def leaking_run() -> dict[str, StageOutput]:
            return await run(two_stages(save))

        found = await caught(leaking_run)
        outside.cancel_scope.cancel()
    assert found["invariant"] == "no orphan tasks"
    assert found["what"] == "task(s) 'retry-later' outlived the run"


class BufferingSink:
    """Buffers events and forwards them at the end of the run, unshielded: loses them on cancel."""

    def __init__(self, target: RecordingEventSink) -> None:
        self.target = target
        self.buffer: list[tuple[str, dict[str, Any] | None]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()
        self.try_emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.buffer.append((type, data))

    async def flush(self) -> None:
        for event_type, data in self.buffer:
            await trio.lowlevel.checkpoint()
            self.target.try_emit(type=event_type, data=data)


async def test_an_event_lost_on_cancellation_is_caught(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def lossy_run() -> dict[str, StageOutput]:
        sink = BufferingSink(current_run().sink)
        try:
            return await two_stages(fetch).build().run(create_test_stage_context(event_sink=sink))
        finally:
            await sink.flush()  # the bug: a cancelled flush drops the rest

    found = await caught(lossy_run)
    assert found["invariant"] == "every started stage has a terminal event"
    assert re.fullmatch(
        r"stage\(s\) '\w+' emitted stage\.\*\.started and no terminal event", found["what"]
    )


async def test_queued_events_lost_by_a_queue_are_caught(
    virtual_clock: trio.testing.MockClock,
) -> None:
    class ForgetfulQueue(BackpressureAwareEventSink):
        """Claims its queued events were delivered when stopped: the bug."""

        async def stop(self, *, drain: bool = True, timeout: float = 5.0) -> None:
            await super().stop(drain=False, timeout=timeout)
            self.metrics.undelivered = 0

    async def queued_run() -> dict[str, StageOutput]:
        downstream = RecordingEventSink()
        async with ForgetfulQueue(downstream, max_queue_size=100) as queue:
            current_run().watch_queue(queue, downstream)
            ctx = create_test_stage_context(event_sink=queue)
            return await two_stages(fetch).build().run(ctx)

    with pytest.raises(AssertionError) as info:
        await explore_cancellation(queued_run, deadlines=())
    found = re.match(
        r"^explore_cancellation\(.*queued_run\): invariant 'queued events delivered or counted"
        r" as dropped' broke at the uncancelled run: the queue accepted 5 event\(s\),"
        r" delivered (\d), counted 0 as undelivered and still holds 0: (\d) lost\.",
        str(info.value),
    )
    assert found is not None, str(info.value)
    assert int(found[1]) + int(found[2]) == 5
    assert int(found[2]) >= 1


async def test_a_run_that_raises_something_else_when_cancelled_is_caught(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def save(ctx: StageContext) -> StageOutput:
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            raise RuntimeError("translated") from None  # the bug: Cancelled replaced
        return StageOutput.ok()

    async def translating_run() -> dict[str, StageOutput]:
        return await run(two_stages(save))

    found = await caught(translating_run)
    assert found["invariant"] == "outcome is documented"
    assert found["what"] == (
        "the run raised UnifiedStageExecutionError (Stage 'save' failed: translated);"
        " documented: trio.Cancelled propagates, or the run ends as the uncancelled one did"
        " (returned)"
    )


async def test_a_broken_uncancelled_run_is_reported_as_such(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def release() -> None:
        await trio.lowlevel.checkpoint()

    async def never_cleans(ctx: StageContext) -> StageOutput:
        tracked_cleanup(release, name="lock")  # registered nowhere: never runs
        return StageOutput.ok()

    async def forgetful_run() -> dict[str, StageOutput]:
        return await run(two_stages(never_cleans))

    with pytest.raises(
        AssertionError,
        match=r"^explore_cancellation\(.*forgetful_run\): invariant 'cleanup ran exactly once'"
        r" broke at the uncancelled run: cleanup 'lock' registered 1 time\(s\) ran 0 time\(s\)\."
        r" Rerun just this one: explore_cancellation\(run_fn, seed=0, at=\[\], deadlines=\(\)\)$",
    ):
        await explore_cancellation(forgetful_run)


async def test_a_deadline_run_names_its_deadline(virtual_clock: trio.testing.MockClock) -> None:
    async def save(ctx: StageContext) -> StageOutput:
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            return StageOutput.ok()
        return StageOutput.ok()

    async def swallowing_run() -> dict[str, StageOutput]:
        return await run(two_stages(save))

    with pytest.raises(
        AssertionError,
        match=r"^explore_cancellation\(.*\): invariant 'outcome is documented' broke at"
        r" deadline \+1 \(after \d+ of \d+ checkpoints\): .*"
        r" Rerun just this one: explore_cancellation\(run_fn, seed=0, at=\[\],"
        r" deadlines=\[1\.0\]\)$",
    ):
        await explore_cancellation(swallowing_run, at=[], deadlines=[1.0])


# -- correct pipelines -----------------------------------------------------------


async def test_a_correct_pipeline_passes_every_checkpoint_and_deadline(
    virtual_clock: trio.testing.MockClock,
) -> None:
    released: list[float] = []

    async def release() -> None:
        released.append(trio.current_time())
        await trio.lowlevel.checkpoint()

    async def save(ctx: StageContext) -> StageOutput:
        ctx.register_cleanup(tracked_cleanup(release, name="connection"), name="connection")
        await trio.sleep(1)
        return StageOutput.ok()

    async def correct_run() -> dict[str, StageOutput]:
        return await run(two_stages(save))

    start = trio.current_time()
    report = await explore_cancellation(correct_run)
    assert isinstance(report, ExplorationReport)
    assert report.checkpoints >= 4
    assert report.explored == tuple(range(report.checkpoints))
    assert report.deadlines == (0.25, 1.0)  # while fetch sleeps, while save sleeps
    assert report.runs == 1 + report.checkpoints + 2
    assert sum(report.outcomes.values()) == report.runs
    assert report.outcomes[CANCELLED] >= report.checkpoints - 2
    assert set(report.outcomes) <= {CANCELLED, RETURNED}
    assert report.seed == 0
    # save registered its cleanup in every run that reached it, and it ran once there.
    assert len(released) >= 2
    assert trio.current_time() - start > 1.5  # the runs' sleeps took virtual time


async def busy(ctx: StageContext) -> StageOutput:
    for _ in range(4):
        await trio.lowlevel.checkpoint()
    return StageOutput.ok()


async def shielded_cleanup_with_its_own_timeout(ctx: StageContext) -> StageOutput:
    try:
        for _ in range(3):
            await trio.lowlevel.checkpoint()
    finally:
        # Its own timeout fires inside the shield: that Cancelled is not the run's.
        with trio.CancelScope(shield=True), trio.move_on_after(0.2):
            await trio.sleep(1)
    return StageOutput.ok()


async def own_timeout(ctx: StageContext) -> StageOutput:
    with trio.move_on_after(0.3):
        await trio.sleep(1)
    await trio.lowlevel.checkpoint()
    return StageOutput.ok(timed_out=True)


async def inner_nursery(ctx: StageContext) -> StageOutput:
    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(trio.sleep, 0.1 * (i + 1))
        nursery.start_soon(busy, ctx)
    return StageOutput.ok()


async def fails(ctx: StageContext) -> StageOutput:
    await trio.lowlevel.checkpoint()
    raise ValueError("boom")


async def no_checkpoint(ctx: StageContext) -> StageOutput:
    return StageOutput.ok()


def chain(*stages: Any, parallel: bool = False) -> Pipeline:
    pipeline = Pipeline()
    for i, stage in enumerate(stages):
        deps = () if parallel or i == 0 else (f"s{i - 1}",)
        pipeline = pipeline.with_stage(f"s{i}", stage, StageKind.WORK, dependencies=deps)
    return pipeline


@pytest.mark.parametrize(
    ("pipeline", "outcomes"),
    [
        pytest.param(chain(busy, busy), {RETURNED: 2, CANCELLED: 9}, id="busy-chain"),
        pytest.param(
            chain(shielded_cleanup_with_its_own_timeout, busy),
            {RETURNED: 2, CANCELLED: 10},
            id="shielded-cleanup",
        ),
        pytest.param(chain(own_timeout, busy), {RETURNED: 2, CANCELLED: 8}, id="own-timeout"),
        pytest.param(
            chain(inner_nursery, busy, own_timeout, parallel=True),
            {RETURNED: 2, CANCELLED: 23},
            id="inner-nursery",
        ),
        pytest.param(
            chain(busy, fails), {"UnifiedStageExecutionError": 2, CANCELLED: 6}, id="failing"
        ),
        pytest.param(
            chain(fails, busy, parallel=True),
            {"UnifiedStageExecutionError": 1, CANCELLED: 5},
            id="failing-parallel",
        ),
        pytest.param(
            chain(busy, no_checkpoint, no_checkpoint), {RETURNED: 2, CANCELLED: 6}, id="instant"
        ),
    ],
)
async def test_correct_runnable_stages_pass(
    virtual_clock: trio.testing.MockClock, pipeline: Pipeline, outcomes: dict[str, int]
) -> None:
    """Stages cancelled while runnable get Cancelled at their next checkpoint, and pass on it."""

    async def correct_run() -> dict[str, StageOutput]:
        return await run(pipeline)

    report = await explore_cancellation(correct_run)
    assert dict(report.outcomes) == outcomes


async def test_a_correct_queue_passes(virtual_clock: trio.testing.MockClock) -> None:
    async def queued_run() -> dict[str, StageOutput]:
        downstream = RecordingEventSink()
        async with BackpressureAwareEventSink(downstream, max_queue_size=100) as queue:
            current_run().watch_queue(queue, downstream)
            ctx = create_test_stage_context(event_sink=queue)
            return await two_stages(fetch).build().run(ctx)

    report = await explore_cancellation(queued_run)
    assert report.outcomes[CANCELLED] >= 1


async def test_max_checkpoints_spreads_the_explored_checkpoints(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def correct_run() -> dict[str, StageOutput]:
        return await run(two_stages(fetch))

    full = await explore_cancellation(correct_run, deadlines=())
    capped = await explore_cancellation(correct_run, deadlines=(), max_checkpoints=3)
    last = full.checkpoints - 1
    assert capped.explored == (0, round(last / 2), last)
    one = await explore_cancellation(correct_run, deadlines=(), max_checkpoints=1)
    assert one.explored == (0,)
    none = await explore_cancellation(correct_run, deadlines=(), max_checkpoints=0)
    assert none.explored == ()
    assert none.runs == 1
    deadlines = await explore_cancellation(
        correct_run, max_checkpoints=0, deadlines=[0.1, 0.2, 0.3, 0.4], max_deadlines=2
    )
    assert deadlines.deadlines == (0.1, 0.4)


async def test_a_user_invariant_runs_after_every_run(virtual_clock: trio.testing.MockClock) -> None:
    seen: list[str] = []

    @invariant("result has save")
    def result_has_save(record: RunRecord) -> str | None:
        seen.append(record.label)
        if record.outcome == RETURNED and "save" not in record.result:
            return "save is missing from the result"
        return None

    async def correct_run() -> dict[str, StageOutput]:
        return await run(two_stages(fetch))

    report = await explore_cancellation(
        correct_run, invariants=[*DEFAULT_INVARIANTS, result_has_save], deadlines=[0.25]
    )
    assert seen == [
        "the uncancelled run",
        *(f"checkpoint {i}" for i in range(report.checkpoints)),
        "deadline +0.25",
    ]

    @invariant("never holds")
    def never(record: RunRecord) -> str | None:
        return f"{record.outcome} is not good enough"

    with pytest.raises(
        AssertionError,
        match=r"^explore_cancellation\(.*correct_run\): invariant 'never holds' broke at the"
        r" uncancelled run: returned is not good enough\.",
    ):
        await explore_cancellation(correct_run, invariants=[never])


async def test_the_run_record_and_current_run(virtual_clock: trio.testing.MockClock) -> None:
    records: list[RunRecord] = []

    async def recording_run() -> dict[str, StageOutput]:
        records.append(current_run())
        return await run(two_stages(fetch))

    report = await explore_cancellation(recording_run, at=[0, 2], deadlines=[0.75])
    baseline, first, third, late = records
    assert [r.label for r in records] == [
        "the uncancelled run",
        "checkpoint 0",
        "checkpoint 2",
        "deadline +0.75",
    ]
    assert baseline.baseline is None
    assert baseline.cancelled is False
    assert baseline.stages_running_at_cancel() == []
    assert baseline.outcome == RETURNED
    assert set(baseline.result) == {"fetch", "save"}
    assert baseline.checkpoints == report.checkpoints
    assert all(r.baseline is baseline for r in (first, third, late))
    assert (first.checkpoint, third.checkpoint, late.deadline) == (0, 2, 0.75)
    assert first.cancelled
    assert first.outcome == CANCELLED
    assert first.error is None
    assert late.outcome == CANCELLED
    assert late.stages_running_at_cancel() == ["save"]


def test_current_run_outside_an_exploration() -> None:
    with pytest.raises(
        RuntimeError, match=r"^current_run\(\) was called outside an explore_cancellation run$"
    ):
        current_run()


async def test_tracked_cleanup_outside_an_exploration_just_calls(
    virtual_clock: trio.testing.MockClock,
) -> None:
    calls: list[str] = []

    async def release() -> str:
        calls.append("released")
        await trio.lowlevel.checkpoint()
        return "done"

    wrapped = tracked_cleanup(release, name="x")
    assert wrapped.__name__ == "release"
    assert await wrapped() == "done"
    assert calls == ["released"]


async def test_the_scheduler_seed_is_restored_per_run(
    virtual_clock: trio.testing.MockClock,
) -> None:
    """Two explorations with one seed see the same checkpoint count and outcomes."""

    async def parallel_run() -> dict[str, StageOutput]:
        pipeline = (
            Pipeline()
            .with_stage("a", fetch, StageKind.ENRICH)
            .with_stage("b", fetch, StageKind.ENRICH)
            .with_stage("c", fetch, StageKind.WORK, dependencies=("a", "b"))
        )
        return await run(pipeline)

    first = await explore_cancellation(parallel_run, seed=7)
    second = await explore_cancellation(parallel_run, seed=7)
    assert first == second


async def test_bad_arguments_are_named(virtual_clock: trio.testing.MockClock) -> None:
    async def correct_run() -> None:
        await trio.lowlevel.checkpoint()

    with pytest.raises(TypeError, match=r"^explore_cancellation: run_fn must be a callable"):
        await explore_cancellation(42)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^explore_cancellation: invariants must hold Invariant objects; got str$"
    ):
        await explore_cancellation(correct_run, invariants=["x"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^explore_cancellation: seed must be an int"):
        await explore_cancellation(correct_run, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^explore_cancellation: max_checkpoints must be"):
        await explore_cancellation(correct_run, max_checkpoints=-1)
    with pytest.raises(ValueError, match=r"^explore_cancellation: max_deadlines must be"):
        await explore_cancellation(correct_run, max_deadlines=-1)
    with pytest.raises(
        ValueError, match=r"^explore_cancellation: at holds 5; the run has 1 checkpoints$"
    ):
        await explore_cancellation(correct_run, at=[5])
    with pytest.raises(ValueError, match=r"^explore_cancellation: deadlines must be >= 0"):
        await explore_cancellation(correct_run, deadlines=[-1])
    with pytest.raises(TypeError, match=r"^invariant: name must be a non-empty str; got ''$"):
        invariant("")
    with pytest.raises(TypeError, match=r"^invariant: check must be a callable"):
        invariant("x")(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^tracked_cleanup: callback must be a callable"):
        tracked_cleanup(None, name="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^tracked_cleanup: name must be a str; got int$"):
        tracked_cleanup(correct_run, name=1)  # type: ignore[arg-type]


async def test_a_run_fn_that_cannot_be_awaited_is_refused(
    virtual_clock: trio.testing.MockClock,
) -> None:
    calls: list[str] = []

    def sync_run() -> int:
        calls.append("called")
        return 5

    async def needs(pipeline: Pipeline) -> None:
        await trio.lowlevel.checkpoint()  # pragma: no cover - never called

    with pytest.raises(
        TypeError,
        match=r"^explore_cancellation: run_fn must return an awaitable \(be an async function\);"
        r" test_a_run_fn_that_cannot_be_awaited_is_refused\.<locals>\.<lambda>\(\) returned"
        r" NoneType$",
    ):
        await explore_cancellation(lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(
        TypeError,
        match=r"^explore_cancellation: run_fn must return an awaitable \(be an async function\);"
        r" test_a_run_fn_that_cannot_be_awaited_is_refused\.<locals>\.sync_run\(\) returned int$",
    ):
        await explore_cancellation(sync_run)  # type: ignore[arg-type]
    assert calls == ["called"]  # refused at its first call, before any cancelled run
    with pytest.raises(
        TypeError,
        match=r"^explore_cancellation: run_fn must be callable with no arguments;"
        r" got test_a_run_fn_that_cannot_be_awaited_is_refused\.<locals>\.needs"
        r"\(pipeline: 'Pipeline'\) -> 'None'$",
    ):
        await explore_cancellation(needs)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^explore_cancellation: run_fn must be callable with no arguments;"
        r" got len\(obj, /\)$",
    ):
        await explore_cancellation(len)  # type: ignore[arg-type]


def test_stages_terminated_reads_only_stage_lifecycle_events() -> None:
    record = RunRecord("r", None, None, 0)
    for event_type in (
        "stage.a.completed",  # no start: ignored
        "stage.a.started",
        "stage.a.progress",  # not terminal
        "pipeline_started",
        "stage.b.c.started",  # a dotted stage name
    ):
        record.sink.try_emit(type=event_type, data=None)
    assert stages_terminated.check(record) == (
        "stage(s) 'a', 'b.c' emitted stage.*.started and no terminal event"
    )
    record.sink.try_emit(type="stage.a.skipped", data=None)
    record.sink.try_emit(type="stage.b.c.failed", data=None)
    assert stages_terminated.check(record) is None


async def test_a_run_without_checkpoints(virtual_clock: trio.testing.MockClock) -> None:
    async def instant() -> int:
        return 42

    report = await explore_cancellation(instant)
    assert (report.checkpoints, report.explored, report.deadlines) == (0, (), ())
    assert report.outcomes == {RETURNED: 1}


async def test_a_run_that_takes_another_path_each_time_is_refused(
    virtual_clock: trio.testing.MockClock,
) -> None:
    runs: list[int] = []

    async def shrinking_run() -> None:
        runs.append(len(runs))
        for _ in range(5 - len(runs)):  # state left by earlier runs changes the path
            await trio.sleep(1)

    with pytest.raises(
        AssertionError,
        match=r"^explore_cancellation\(.*shrinking_run\): the run to cancel at checkpoint 3 ended"
        r" after 3 checkpoints; the uncancelled run passed 4: run_fn must take the same path"
        r" every time \(",
    ):
        await explore_cancellation(shrinking_run, at=[3])


async def test_runs_start_on_the_aligned_virtual_clock(
    virtual_clock: trio.testing.MockClock,
) -> None:
    starts: list[float] = []

    async def ties() -> None:
        # 6 x 0.02 s and 4 x 0.03 s end together on paper; in floats, which comes
        # first depends on where the run starts, unless every run starts alike.
        starts.append(trio.current_time())
        async with trio.open_nursery() as nursery:
            for step in (0.02, 0.03):

                async def ticks(step: float = step) -> None:
                    for _ in range(6):
                        await trio.sleep(step)

                nursery.start_soon(ticks)

    await trio.sleep(0.37)  # an arbitrary, non-integer start
    first = await explore_cancellation(ties)
    await trio.sleep(1234.567)
    second = await explore_cancellation(ties)
    assert first == second
    assert all(start == int(start) and 2**20 <= start < 2**21 for start in starts)
    virtual_clock.jump(2**21)  # past the aligned span: runs start where they are
    late = trio.current_time()
    third = await explore_cancellation(ties, at=[0], deadlines=())
    assert starts[-2] == late  # the uncancelled run started at once, unaligned
    assert third.checkpoints == first.checkpoints


async def test_a_real_clock_is_not_jumped() -> None:
    async def quick() -> None:
        await trio.lowlevel.checkpoint()

    start = trio.current_time()
    report = await explore_cancellation(quick)
    assert report.checkpoints == 1
    assert trio.current_time() - start < 60


async def test_the_record_sink_notes_the_emitting_task() -> None:
    record = RunRecord("r", None, None, 0)
    sink = record.sink
    await sink.emit(type="stage.a.started", data=None)
    sink.try_emit(type="stage.a.progress", data=None)
    assert sink.types() == ["stage.a.started", "stage.a.progress"]
    assert getattr(sink, "tasks") == [trio.lowlevel.current_task()] * 2  # noqa: B009
    sink.clear()
    assert (sink.events, getattr(sink, "tasks")) == ([], [])  # noqa: B009


def test_a_stage_that_completed_before_its_task_saw_cancelled_is_not_blamed() -> None:
    """Runnable at the cancel, a stage may finish before its next checkpoint: it never saw it."""
    record = RunRecord("r", 0, None, 0)
    record.sink.try_emit(type="stage.a.started", data=None)
    record.events_at_cancel = 1
    record.sink.try_emit(type="stage.a.completed", data=None)
    record.interrupted_stages = ["a"]
    record.interrupted_events = {"a": 2}  # its task got Cancelled after stage.a.completed
    assert interrupted_stages_end_cancelled.check(record) is None
    record.interrupted_events = {"a": 1}
    assert interrupted_stages_end_cancelled.check(record) == (
        "stage 'a' received trio.Cancelled when the run was cancelled and then reported"
        " stage.a.completed: it swallowed the cancellation"
    )


def test_an_interrupted_stage_without_a_terminal_event_is_left_to_another_invariant() -> None:
    record = RunRecord("r", 0, None, 0)
    record.sink.try_emit(type="stage.a.started", data=None)
    record.events_at_cancel = 1
    record.interrupted_stages = ["a"]
    record.sink.try_emit(type="stage.a.progress", data=None)
    record.sink.try_emit(type="pipeline_cancelled", data=None)
    assert interrupted_stages_end_cancelled.check(record) is None
    assert stages_terminated.check(record) == (
        "stage(s) 'a' emitted stage.*.started and no terminal event"
    )
