"""The interceptor chain: order, short-circuit, errors, retries, timeouts, after-hooks."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Awaitable, Callable

import pytest
import trio

from stageflow_trio._engine._stage_call import ABORT_HOOK_TIMEOUT, MAX_CHAIN_RETRIES
from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageExecutionError
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CircuitBreakerInterceptor,
    CriticalInterceptorError,
    ErrorAction,
    InterceptorContext,
    InterceptorResult,
    TimeoutInterceptor,
    get_default_interceptors,
    run_with_interceptors,
)
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context


class Recorder(BaseInterceptor):
    def __init__(
        self,
        name: str,
        priority: int,
        log: list[str],
        *,
        before_result: InterceptorResult | None = None,
        action: ErrorAction = ErrorAction.FAIL,
        raise_in: str | None = None,
        critical: bool = False,
    ) -> None:
        self.name = name
        self.priority = priority
        self.log = log
        self.before_result = before_result
        self.action = action
        self.raise_in = raise_in
        self.critical = critical

    def _maybe_raise(self, hook: str) -> None:
        if self.raise_in == hook:
            if self.critical:
                raise CriticalInterceptorError(f"{self.name} {hook}", self.name)
            raise RuntimeError(f"{self.name} {hook}")

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        self.log.append(f"before:{self.name}")
        self._maybe_raise("before")
        return self.before_result

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        self.log.append(f"after:{self.name}:{result.status}")
        self._maybe_raise("after")

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        self.log.append(f"on_error:{self.name}:{type(error).__name__}")
        self._maybe_raise("on_error")
        return self.action


def stage(
    log: list[str], *, fail_times: int = 0, exc: Exception | None = None
) -> Callable[[], Awaitable[StageResult]]:
    calls = {"n": 0}

    async def run() -> StageResult:
        calls["n"] += 1
        log.append("stage")
        if calls["n"] <= fail_times:
            raise exc or ValueError("flaky")
        now = utc_now()
        return StageResult(
            name="s", status="completed", started_at=now, ended_at=now, data={"ok": 1}
        )

    return run


async def test_hooks_run_in_priority_order_and_after_in_reverse() -> None:
    log: list[str] = []
    chain = [Recorder("late", 30, log), Recorder("early", 1, log), Recorder("mid", 10, log)]
    result = await run_with_interceptors("s", stage(log), create_test_pipeline_context(), chain)
    assert result.status == "completed"
    assert log == [
        "before:early",
        "before:mid",
        "before:late",
        "stage",
        "after:late:completed",
        "after:mid:completed",
        "after:early:completed",
    ]


async def test_short_circuit_skips_the_stage_and_later_befores() -> None:
    log: list[str] = []
    chain = [
        Recorder("a", 1, log),
        Recorder(
            "b",
            2,
            log,
            before_result=InterceptorResult(stage_ran=False, result={"cached": 1}, error="e"),
        ),
        Recorder("c", 3, log),
    ]
    result = await run_with_interceptors("s", stage(log), create_test_pipeline_context(), chain)
    assert result.status == "completed"
    assert result.data == {"cached": 1}
    assert result.error == "e"
    assert "stage" not in log
    assert "before:c" not in log
    assert log[-3:] == ["after:c:completed", "after:b:completed", "after:a:completed"]


async def test_errors_in_hooks_are_isolated() -> None:
    log: list[str] = []
    chain = [Recorder("a", 1, log, raise_in="before"), Recorder("b", 2, log, raise_in="after")]
    result = await run_with_interceptors("s", stage(log), create_test_pipeline_context(), chain)
    assert result.status == "completed"
    assert log == ["before:a", "before:b", "stage", "after:b:completed", "after:a:completed"]


@pytest.mark.parametrize("hook", ["before", "after"])
async def test_critical_errors_escape(hook: str) -> None:
    log: list[str] = []
    chain = [Recorder("a", 1, log, raise_in=hook, critical=True)]
    with pytest.raises(CriticalInterceptorError, match=f"^a {hook}$"):
        await run_with_interceptors("s", stage(log), create_test_pipeline_context(), chain)


async def test_stage_error_asks_on_error_in_reverse_and_fails() -> None:
    log: list[str] = []
    chain = [Recorder("a", 1, log), Recorder("b", 2, log)]
    result = await run_with_interceptors(
        "s", stage(log, fail_times=1), create_test_pipeline_context(), chain
    )
    assert result.status == "failed"
    assert result.error == "flaky"
    assert log[3:5] == ["on_error:b:ValueError", "on_error:a:ValueError"]


async def test_retry_reruns_until_the_stage_succeeds() -> None:
    log: list[str] = []
    chain = [Recorder("retry", 1, log, action=ErrorAction.RETRY)]
    result = await run_with_interceptors(
        "s", stage(log, fail_times=3), create_test_pipeline_context(), chain
    )
    assert result.status == "completed"
    assert log.count("stage") == 4
    assert log.count("before:retry") == 1


async def test_endless_retry_is_capped() -> None:
    log: list[str] = []
    chain = [Recorder("retry", 1, log, action=ErrorAction.RETRY)]
    result = await run_with_interceptors(
        "s", stage(log, fail_times=10**6), create_test_pipeline_context(), chain
    )
    assert result.status == "failed"
    assert log.count("stage") == MAX_CHAIN_RETRIES + 1


async def test_fallback_counts_as_fail() -> None:
    log: list[str] = []
    chain = [Recorder("fb", 1, log, action=ErrorAction.FALLBACK)]
    result = await run_with_interceptors(
        "s", stage(log, fail_times=1), create_test_pipeline_context(), chain
    )
    assert result.status == "failed"
    assert log.count("stage") == 1


async def test_timeout_uses_a_cancel_scope_on_the_trio_clock(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    ctx = create_test_pipeline_context()
    ctx.data["_timeout_ms"] = 1500

    async def slow() -> StageResult:
        await trio.sleep(60)
        raise AssertionError("not reached")  # pragma: no cover

    chain = [TimeoutInterceptor(), Recorder("r", 50, log)]
    start = trio.current_time()
    result = await run_with_interceptors("s", slow, ctx, chain)
    assert trio.current_time() - start == 1.5
    assert result.status == "failed"
    assert result.error == "Stage timed out after 1500ms"
    assert "on_error:r:TimeoutError" in log
    assert "_timeout.s" not in ctx.data


async def test_timeout_error_raised_by_the_stage_maps_to_the_timeout_result() -> None:
    log: list[str] = []
    result = await run_with_interceptors(
        "s", stage(log, fail_times=1, exc=TimeoutError("inner")), create_test_pipeline_context(), []
    )
    assert result.error == "Stage timed out after 30000ms"


async def test_non_positive_timeout_means_none(autojump_clock: trio.abc.Clock) -> None:
    ctx = create_test_pipeline_context()
    ctx.data["_timeout.s"] = 0

    async def slow() -> StageResult:
        await trio.sleep(86_000)  # far beyond the default 30 s timeout
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    result = await run_with_interceptors("s", slow, ctx, [])
    assert result.status == "completed"


async def test_cancellation_is_not_caught_and_skips_after(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []

    async def forever() -> StageResult:
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    with trio.move_on_after(1) as scope:
        await run_with_interceptors(
            "s", forever, create_test_pipeline_context(), [Recorder("r", 1, log)]
        )
    assert scope.cancelled_caught
    assert log == ["before:r"]


async def test_circuit_breaker_opens_after_five_failures_and_half_opens_after_30s(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    breaker = CircuitBreakerInterceptor()
    ctx = create_test_pipeline_context()
    for _ in range(5):
        result = await run_with_interceptors("s", stage(log, fail_times=1), ctx, [breaker])
        assert result.status == "failed"
    before = log.count("stage")
    result = await run_with_interceptors("s", stage(log), ctx, [breaker])
    assert log.count("stage") == before
    assert result.status == "completed"
    assert result.error == "Circuit breaker open for s"
    await trio.sleep(30.5)
    result = await run_with_interceptors("s", stage(log), ctx, [breaker])
    assert log.count("stage") == before + 1
    assert result.error is None


def test_default_interceptors_are_sorted_by_priority() -> None:
    chain = get_default_interceptors(include_idempotency=False)
    assert [(i.name, i.priority) for i in chain] == [
        ("timeout", 5),
        ("circuit_breaker", 10),
        ("tracing", 20),
        ("metrics", 40),
        ("child_tracker_metrics", 45),
        ("logging", 50),
    ]


# --- aborted calls: on_abort --------------------------------------------------------------


class Aborting(Recorder):
    """A Recorder that also records on_abort (optionally awaiting or raising there)."""

    def __init__(
        self,
        name: str,
        priority: int,
        log: list[str],
        *,
        abort_sleep: float = 0,
        abort_raises: bool = False,
        before_result: InterceptorResult | None = None,
        raise_in: str | None = None,
        critical: bool = False,
    ) -> None:
        super().__init__(
            name, priority, log, before_result=before_result, raise_in=raise_in, critical=critical
        )
        self.abort_sleep = abort_sleep
        self.abort_raises = abort_raises

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        self.log.append(f"on_abort:{self.name}")
        if self.abort_sleep:
            await trio.sleep(self.abort_sleep)
            self.log.append(f"on_abort_done:{self.name}")
        if self.abort_raises:
            raise RuntimeError("abort hook failed")


async def forever() -> StageResult:
    await trio.sleep_forever()
    raise AssertionError  # pragma: no cover


async def test_a_cancelled_call_gets_on_abort_in_reverse_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    chain = [Aborting("a", 1, log), Aborting("b", 2, log)]
    with trio.move_on_after(1):
        await run_with_interceptors("s", forever, create_test_pipeline_context(), chain)
    assert log == ["before:a", "before:b", "on_abort:b", "on_abort:a"]


async def test_on_abort_runs_shielded_and_its_errors_are_swallowed(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    chain = [Aborting("a", 1, log, abort_sleep=2), Aborting("b", 2, log, abort_raises=True)]
    with trio.move_on_after(1) as scope:
        await run_with_interceptors("s", forever, create_test_pipeline_context(), chain)
    assert scope.cancelled_caught
    assert log == ["before:a", "before:b", "on_abort:b", "on_abort:a", "on_abort_done:a"]
    assert trio.current_time() == 3.0


class _Interrupting(Aborting):
    """An on_abort hook that a Ctrl-C (or SystemExit) interrupts."""

    def __init__(self, name: str, priority: int, log: list[str], exc: BaseException) -> None:
        super().__init__(name, priority, log)
        self.exc = exc

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        self.log.append(f"on_abort:{self.name}")
        raise self.exc


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
async def test_an_interrupted_on_abort_hook_leaves_the_others_to_run(
    autojump_clock: trio.abc.Clock, exc_type: type[BaseException]
) -> None:
    # Audit 18: the loop over the hooks ended at the first KeyboardInterrupt, so the
    # hooks after it (the idempotency claim's release runs last) never ran.
    log: list[str] = []
    first = _Interrupting("c", 3, log, exc_type())  # its hook runs first
    chain = [Aborting("a", 1, log, abort_sleep=1), _Interrupting("b", 2, log, exc_type()), first]
    with pytest.raises(exc_type) as caught, trio.move_on_after(1):
        await run_with_interceptors("s", forever, create_test_pipeline_context(), chain)
    assert caught.value is first.exc
    assert log == [
        "before:a",
        "before:b",
        "before:c",
        "on_abort:c",
        "on_abort:b",
        "on_abort:a",
        "on_abort_done:a",
    ]


async def test_on_abort_hooks_are_bounded(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    chain = [Aborting("a", 1, log, abort_sleep=10**6)]
    with trio.move_on_after(1):
        await run_with_interceptors("s", forever, create_test_pipeline_context(), chain)
    assert trio.current_time() == 1 + ABORT_HOOK_TIMEOUT
    assert log == ["before:a", "on_abort:a"]


async def test_each_on_abort_hook_has_its_own_slot(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    chain = [
        Aborting("a", 1, log, abort_sleep=1),
        Aborting("b", 2, log, abort_sleep=10**6),
    ]
    with trio.move_on_after(1):
        await run_with_interceptors("s", forever, create_test_pipeline_context(), chain)
    # b overran its slot; a still got a whole slot of its own afterwards.
    assert log == ["before:a", "before:b", "on_abort:b", "on_abort:a", "on_abort_done:a"]
    assert trio.current_time() == 1 + ABORT_HOOK_TIMEOUT + 1


async def test_a_critical_before_aborts_only_the_earlier_interceptors() -> None:
    log: list[str] = []
    chain = [
        Aborting("a", 1, log),
        Aborting("b", 2, log, raise_in="before", critical=True),
        Aborting("c", 3, log),
    ]
    with pytest.raises(CriticalInterceptorError, match=r"^b before$"):
        await run_with_interceptors("s", stage(log), create_test_pipeline_context(), chain)
    assert log == ["before:a", "before:b", "on_abort:a"]


async def test_a_critical_after_aborts_the_interceptors_whose_after_did_not_run() -> None:
    log: list[str] = []
    chain = [
        Aborting("a", 1, log),
        Aborting("b", 2, log, raise_in="after", critical=True),
        Aborting("c", 3, log),
    ]
    with pytest.raises(CriticalInterceptorError, match=r"^b after$"):
        await run_with_interceptors("s", stage(log), create_test_pipeline_context(), chain)
    assert log == [
        "before:a",
        "before:b",
        "before:c",
        "stage",
        "after:c:completed",
        "after:b:completed",
        "on_abort:a",
    ]


async def test_a_short_circuited_call_aborts_only_the_entered_interceptors(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []

    class SlowAfter(Aborting):
        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            await super().after(stage_name, result, ctx)
            await trio.sleep_forever()

    chain = [
        Aborting("a", 1, log),
        Aborting("b", 2, log, before_result=InterceptorResult(stage_ran=False)),
        SlowAfter("c", 3, log),
    ]
    with trio.move_on_after(1):
        await run_with_interceptors("s", stage(log), create_test_pipeline_context(), chain)
    # c's before never ran; c's after was called (and hung); a and b get on_abort.
    assert log == ["before:a", "before:b", "after:c:completed", "on_abort:b", "on_abort:a"]


async def test_interceptors_without_on_abort_are_skipped(autojump_clock: trio.abc.Clock) -> None:
    class Minimal:
        name = "minimal"
        priority = 1

        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            return None

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            return None

    with trio.move_on_after(1) as scope:
        # A duck interceptor without on_abort, on purpose.
        chain = [Minimal()]
        await run_with_interceptors("s", forever, create_test_pipeline_context(), chain)  # type: ignore[arg-type]
    assert scope.cancelled_caught


async def test_a_short_circuit_with_a_stage_result_uses_its_payload() -> None:
    now = utc_now()
    cached = StageResult(name="s", status="completed", started_at=now, ended_at=now, data={"v": 1})
    log: list[str] = []
    chain = [
        Recorder("cache", 1, log, before_result=InterceptorResult(stage_ran=False, result=cached))
    ]
    result = await run_with_interceptors("s", stage(log), create_test_pipeline_context(), chain)
    assert result.data == {"v": 1}
    assert result.error is None
    assert "stage" not in log


async def test_a_stage_error_is_passed_to_on_error_and_the_result_keeps_its_message() -> None:
    log: list[str] = []
    result = await run_with_interceptors(
        "s",
        stage(log, fail_times=1, exc=KeyError("k")),
        create_test_pipeline_context(),
        [Recorder("r", 1, log)],
    )
    assert "on_error:r:KeyError" in log
    assert result.error == "'k'"


def test_interceptor_context_is_a_namespaced_view_of_the_pipeline_context() -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    ctx = create_test_pipeline_context(
        pipeline_run_id=ids[0],
        request_id=ids[1],
        session_id=ids[2],
        user_id=ids[3],
        org_id=ids[4],
        topology="chat_fast",
        execution_mode="practice",
        data={"lang": "en"},
    )
    view = InterceptorContext(ctx, "timing")
    assert view.name == "timing"
    assert (view.pipeline_run_id, view.request_id, view.session_id) == tuple(ids[:3])
    assert (view.user_id, view.org_id) == tuple(ids[3:])
    assert (view.topology, view.execution_mode) == ("chat_fast", "practice")
    copy = view.data
    copy["lang"] = "fr"  # a copy: the pipeline's data is untouched
    assert ctx.data["lang"] == "en"
    view.add_observation("started", 1.5)
    assert view.get_observation("started") == 1.5
    assert InterceptorContext(ctx, "other").get_observation("started") is None
    assert ctx.data["_interceptor.timing"] == {"started": 1.5}


# --- short-circuit values that are not mappings ----------------------------------------


@pytest.mark.parametrize(
    ("value", "data"),
    [
        ("cached", {"result": "cached"}),
        ([1, 2], {"result": [1, 2]}),
        (5, {"result": 5}),
        ({"a": 1}, {"a": 1}),
        (None, {}),
        ("", {}),
        (0, {}),
        ([], {}),
    ],
)
async def test_a_short_circuit_result_that_is_not_a_mapping_is_wrapped(
    value: object, data: dict[str, object]
) -> None:
    # It raised "TypeError: data must be a mapping, got str" out of the chain; the
    # reference completes with the value itself as data (`or {}` for a falsy one).
    log: list[str] = []
    chain = [Recorder("sc", 1, log, before_result=InterceptorResult(stage_ran=False, result=value))]
    result = await run_with_interceptors("s", stage(log), create_test_pipeline_context(), chain)
    assert result.status == "completed"
    assert result.data == data
    assert result.error is None
    assert log == ["before:sc", "after:sc:completed"]


async def test_a_legacy_graph_completes_a_stage_short_circuited_with_a_string() -> None:
    class Cached(BaseInterceptor):
        name = "cached"
        priority = 1

        async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult:
            return InterceptorResult(stage_ran=False, result="cached")

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            pass

    async def runner(ctx: PipelineContext) -> dict[str, object]:
        raise AssertionError("not reached")  # pragma: no cover

    graph = StageGraph([StageSpec(name="s", runner=runner)], [Cached()])
    results = await graph.run(create_test_pipeline_context())
    assert results["s"].status == "completed"
    assert results["s"].data == {"result": "cached"}


# --- bad timeout values --------------------------------------------------------------------

_TIMEOUT_RULE = "must be a number of milliseconds (int or float; <= 0: no timeout)"


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (None, TypeError, f"Stage 's': ctx.data['_timeout_ms'] {_TIMEOUT_RULE}; got NoneType None"),
        ("2500", TypeError, f"Stage 's': ctx.data['_timeout_ms'] {_TIMEOUT_RULE}; got str '2500'"),
        (True, TypeError, f"Stage 's': ctx.data['_timeout_ms'] {_TIMEOUT_RULE}; got bool True"),
        (
            float("nan"),
            ValueError,
            "Stage 's': ctx.data['_timeout_ms'] must be a number of milliseconds, not NaN",
        ),
    ],
)
async def test_a_bad_timeout_ms_fails_the_call_naming_the_key(
    value: object, error: type[Exception], message: str
) -> None:
    # It escaped as "unsupported operand type(s) for /" or "deadline must not be NaN",
    # or (True) became a 1 ms timeout.
    log: list[str] = []
    ctx = create_test_pipeline_context()
    ctx.data["_timeout_ms"] = value
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        await run_with_interceptors("s", stage(log), ctx, [TimeoutInterceptor()])
    assert log == []  # the stage never started
    assert ctx.data == {"_timeout_ms": value}  # on_abort put the data back


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("100", TypeError, f"Stage 's': ctx.data['_timeout.s'] {_TIMEOUT_RULE}; got str '100'"),
        (
            float("nan"),
            ValueError,
            "Stage 's': ctx.data['_timeout.s'] must be a number of milliseconds, not NaN",
        ),
    ],
)
@pytest.mark.parametrize("with_timeout_interceptor", [False, True])
async def test_a_bad_per_stage_timeout_fails_the_call_naming_the_key(
    value: object, error: type[Exception], message: str, with_timeout_interceptor: bool
) -> None:
    ctx = create_test_pipeline_context()
    ctx.data["_timeout.s"] = value
    chain = [TimeoutInterceptor()] if with_timeout_interceptor else []
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        await run_with_interceptors("s", stage([]), ctx, chain)
    assert ctx.data == {"_timeout.s": value}


@pytest.mark.parametrize("value", [0, -1, -0.5, math.inf])
async def test_a_zero_negative_or_infinite_timeout_ms_means_none(
    autojump_clock: trio.abc.Clock, value: float
) -> None:
    # <= 0 means no timeout, as in the reference (asyncio.wait_for is skipped there).
    ctx = create_test_pipeline_context()
    ctx.data["_timeout_ms"] = value

    async def slow() -> StageResult:
        await trio.sleep(86_000)
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    start = trio.current_time()
    result = await run_with_interceptors("s", slow, ctx, [TimeoutInterceptor()])
    assert result.status == "completed"
    assert trio.current_time() - start == 86_000


async def test_a_float_timeout_ms_is_honoured(autojump_clock: trio.abc.Clock) -> None:
    ctx = create_test_pipeline_context()
    ctx.data["_timeout_ms"] = 250.0

    async def slow() -> StageResult:
        await trio.sleep(60)
        raise AssertionError("not reached")  # pragma: no cover

    start = trio.current_time()
    result = await run_with_interceptors("s", slow, ctx, [TimeoutInterceptor()])
    assert trio.current_time() - start == 0.25
    assert result.error == "Stage timed out after 250.0ms"


async def test_a_bad_timeout_ms_in_a_unified_run_names_the_key() -> None:
    async def work(ctx: StageContext) -> dict[str, int]:
        return {"x": 1}

    pipeline = Pipeline("p").with_stage("w", work, "work")
    # Pipeline.run refuses it at the call, before any stage runs (audit 15) ...
    with pytest.raises(TypeError) as refused:
        await pipeline.run(data={"_timeout_ms": "2500"})
    assert (
        str(refused.value) == f"Pipeline.run: data['_timeout_ms'] {_TIMEOUT_RULE}; got str '2500'"
    )
    # ... and a graph run directly names it when the stage starts.
    ctx = create_test_pipeline_context(data={"_timeout_ms": "2500"})
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await pipeline.build(interceptors=[TimeoutInterceptor()]).run(ctx)
    cause = caught.value.__cause__
    assert isinstance(cause, TypeError)
    assert str(cause) == f"Stage 'w': ctx.data['_timeout_ms'] {_TIMEOUT_RULE}; got str '2500'"


# --- interceptor classes --------------------------------------------------------------------

_CLASS_MESSAGE = (
    "interceptors[1] must be a BaseInterceptor instance; got the class TimeoutInterceptor "
    "(pass TimeoutInterceptor())"
)


async def test_an_interceptor_class_is_refused_by_run_with_interceptors() -> None:
    # A class has name, priority and (unbound) hooks: the duck check let it through and
    # every hook then failed, logged and swallowed.
    chain = [CircuitBreakerInterceptor(), TimeoutInterceptor]
    with pytest.raises(
        TypeError, match=f"^{re.escape('run_with_interceptors: ' + _CLASS_MESSAGE)}$"
    ):
        await run_with_interceptors("s", stage([]), create_test_pipeline_context(), chain)  # type: ignore[arg-type]


async def test_an_interceptor_class_is_refused_by_the_graphs_and_the_pipeline() -> None:
    async def legacy(ctx: PipelineContext) -> dict[str, int]:
        return {}  # pragma: no cover

    async def work(ctx: StageContext) -> dict[str, int]:
        return {}  # pragma: no cover

    chain = [CircuitBreakerInterceptor(), TimeoutInterceptor]
    pattern = f"^{re.escape('StageGraph: ' + _CLASS_MESSAGE)}$"
    with pytest.raises(TypeError, match=pattern):
        StageGraph([StageSpec(name="s", runner=legacy)], chain)  # type: ignore[arg-type]
    pipeline = Pipeline("p").with_stage("w", work, "work")
    pattern = f"^{re.escape('UnifiedStageGraph: ' + _CLASS_MESSAGE)}$"
    with pytest.raises(TypeError, match=pattern):
        pipeline.build(interceptors=chain)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=pattern):
        await pipeline.run(interceptors=chain)  # type: ignore[arg-type]


def test_a_duck_interceptor_instance_is_still_accepted() -> None:
    class Duck:
        name = "duck"
        priority = 7

        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            return None

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            return None

    async def legacy(ctx: PipelineContext) -> dict[str, int]:
        return {}  # pragma: no cover

    StageGraph([StageSpec(name="s", runner=legacy)], [Duck()])  # type: ignore[list-item]
    with pytest.raises(
        TypeError,
        match=r"^StageGraph: interceptors\[0\] must be a BaseInterceptor instance; got the class Duck \(pass Duck\(\)\)$",
    ):
        StageGraph([StageSpec(name="s", runner=legacy)], [Duck])  # type: ignore[list-item]
