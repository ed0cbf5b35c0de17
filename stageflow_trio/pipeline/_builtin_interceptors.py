"""The built-in interceptors other than tracing, and the default chain."""

# Hooks implement a fixed interface, so unused hook arguments are expected.
# ruff: noqa: ARG002

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from stageflow_trio._args import check_flag
from stageflow_trio._engine._interceptors import (
    BaseInterceptor,
    InterceptorResult,
    _duration_ms,
    _run_id,
)
from stageflow_trio._engine._stage_call import (
    DEFAULT_TIMEOUT_MS,
    before_ran,
    stage_short_circuited,
)
from stageflow_trio._time import RunClock
from stageflow_trio.pipeline._tracing_interceptor import TracingInterceptor

if TYPE_CHECKING:
    from types import ModuleType

    from stageflow_trio.pipeline.idempotency import IdempotencyStore, _ResultStore
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult


def _public_subpipeline() -> ModuleType:
    """``stageflow_trio.pipeline.subpipeline``, whose ``get_child_tracker`` is read per call.

    Read there, not bound at import, so that a test patching the public name (as the
    reference's own tests patch ``stageflow.pipeline.subpipeline.get_child_tracker``)
    reaches the interceptor.
    """
    from stageflow_trio.pipeline import subpipeline

    return subpipeline


_stage_logger = logging.getLogger("stageflow_trio.stage_interceptor")
_metrics_logger = logging.getLogger("stageflow_trio.stage_metrics")


class ChildTrackerMetricsInterceptor(BaseInterceptor):
    """Logs ChildRunTracker metrics after stages of child runs."""

    name: str = "child_tracker_metrics"
    priority: int = 45

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        if not getattr(ctx, "is_child_run", False):
            return
        tracker_logger = logging.getLogger("stageflow_trio.child_tracker_metrics")
        try:
            # Shielded: a log line must not be where a pending cancellation of a call
            # whose stage completed is delivered, skipping the after hooks still to
            # run (the idempotency interceptor's would cache the stage's result).
            with trio.CancelScope(shield=True):
                metrics = await _public_subpipeline().get_child_tracker().get_metrics()
            tracker_logger.info(
                "ChildRunTracker metrics",
                extra={
                    "component": "ChildRunTracker",
                    "pipeline_run_id": _run_id(ctx),
                    "is_child_run": True,
                    **metrics,
                },
            )
        except Exception as exc:  # noqa: BLE001 - metrics must never break a stage
            tracker_logger.warning("Failed to log ChildRunTracker metrics: %s", exc)


class LoggingInterceptor(BaseInterceptor):
    """Structured log lines when a stage starts and completes."""

    name: str = "logging"
    priority: int = 50

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        if _stage_logger.isEnabledFor(logging.INFO):
            _stage_logger.info(
                "Stage starting: %s",
                stage_name,
                extra={
                    "stage": stage_name,
                    "pipeline_run_id": _run_id(ctx),
                    "topology": ctx.topology,
                },
            )

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        if _stage_logger.isEnabledFor(logging.INFO):
            _stage_logger.info(
                "Stage completed: %s - %s",
                stage_name,
                result.status,
                extra={
                    "stage": stage_name,
                    "status": result.status,
                    "duration_ms": _duration_ms(result),
                },
            )


class MetricsInterceptor(BaseInterceptor):
    """Records the stage start time and logs the stage's duration."""

    name: str = "metrics"
    priority: int = 40

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        ctx.data["_metrics.stage_start_time"] = ctx.now()

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        ctx.data.pop("_metrics.stage_start_time", None)
        if _metrics_logger.isEnabledFor(logging.INFO):
            _metrics_logger.info(
                "Stage metrics: %s",
                stage_name,
                extra={
                    "stage": stage_name,
                    "status": result.status,
                    "duration_ms": _duration_ms(result),
                    "pipeline_run_id": _run_id(ctx),
                },
            )

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        ctx.data.pop("_metrics.stage_start_time", None)


class CircuitBreakerInterceptor(BaseInterceptor):
    """Opens a per-stage breaker after 5 failed calls; it half-opens 30 s later.

    While open, the stage is short-circuited as "completed" with the error
    "Circuit breaker open for {stage}" (parity with the reference). A failed
    call counts once (the reference counted a raised exception twice, in
    ``on_error`` and in ``after``), and the breaker stays open until the reset
    time has passed (the reference closed it again in the ``after`` of the
    very call it had short-circuited). A success closes it and resets the
    count. A call whose stage did not run (short-circuited by another
    interceptor, such as an idempotency replay) neither counts nor resets.
    Time is read on one trio clock for the breaker's life (that of the run it
    is made or first used in: see :class:`stageflow_trio._time.RunClock`), so
    ``MockClock`` drives the reset, and a breaker used in several ``trio.run``
    calls opens for 30 s, not for as long as the runs' clock origins differ.
    """

    name: str = "circuit_breaker"
    priority: int = 10

    FAILURE_THRESHOLD: int = 5
    RESET_SECONDS: float = 30.0

    def __init__(self) -> None:
        self._breaker_states: dict[str, str] = {}
        self._failure_counts: dict[str, int] = {}
        self._last_failure: dict[str, float] = {}
        self._clock = RunClock()

    def state(self, stage_name: str) -> str:
        """The breaker state of ``stage_name``: ``"closed"``, ``"open"`` or ``"half_open"``."""
        return self._breaker_states.get(stage_name, "closed")

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        if self._breaker_states.get(stage_name, "closed") == "open":
            if self._clock() - self._last_failure.get(stage_name, 0.0) > self.RESET_SECONDS:
                self._breaker_states[stage_name] = "half_open"
            else:
                return InterceptorResult(
                    stage_ran=False, result=None, error=f"Circuit breaker open for {stage_name}"
                )
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        if self._breaker_states.get(stage_name) == "open" or stage_short_circuited():
            # A call the breaker short-circuited, one that started before it opened, or
            # one another interceptor short-circuited (an idempotency replay): the stage
            # did not run, so the call says nothing about its health.
            return
        if result.status == "failed":
            self._record_failure(stage_name)
        else:
            self._breaker_states[stage_name] = "closed"
            self._failure_counts[stage_name] = 0

    def _record_failure(self, stage_name: str) -> None:
        count = self._failure_counts.get(stage_name, 0) + 1
        self._failure_counts[stage_name] = count
        self._last_failure[stage_name] = self._clock()
        if count >= self.FAILURE_THRESHOLD:
            self._breaker_states[stage_name] = "open"


class TimeoutInterceptor(BaseInterceptor):
    """Sets each stage's timeout from ``ctx.data["_timeout_ms"]`` (default 30000 ms).

    The chain enforces it with a cancel scope; a timed-out stage raises the
    builtin ``TimeoutError("Stage timed out after {ms}ms")`` into ``on_error``
    (so a RetryInterceptor can retry it) and, unless retried, fails with that
    message. ``<= 0`` means no timeout.

    A per-stage ``ctx.data["_timeout.{stage}"]`` the caller set is kept (the
    reference overwrote it, then deleted it): the stage runs under it, and
    the key is still there after the call. Only a value ``<= 0`` there (no
    limit: what a UnifiedStageGraph puts there when nobody set one) gives way
    to ``_timeout_ms``, and is put back after the call. A value that is not a
    number fails the call with a TypeError naming the key (see
    ``stageflow_trio._engine._stage_call``).
    """

    name: str = "timeout"
    priority: int = 5

    DEFAULT_TIMEOUT_MS: int = DEFAULT_TIMEOUT_MS

    # (id(ctx), stage) -> what ``_timeout.{stage}`` held before this interceptor set it,
    # or _KEPT for a caller's timeout left in place; only for calls in flight that
    # found the key set (when it was absent, after just removes it). Made on first
    # use, so a subclass with an __init__ of its own needs no super().__init__().
    _found: dict[tuple[int, str], object] | None = None

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        data = ctx.data
        key = f"_timeout.{stage_name}"
        previous = data.get(key, _ABSENT)
        if previous is not _ABSENT:
            found = self._found
            if found is None:
                found = self._found = {}
            if not _no_limit(previous):
                found[(id(ctx), stage_name)] = _KEPT  # the caller's per-stage timeout
                return None
            found[(id(ctx), stage_name)] = previous
        data[key] = data.get("_timeout_ms", self.DEFAULT_TIMEOUT_MS)
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        self._restore(stage_name, ctx)

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        self._restore(stage_name, ctx)

    def _restore(self, stage_name: str, ctx: PipelineContext) -> None:
        key = f"_timeout.{stage_name}"
        found = self._found
        if found:
            previous = found.pop((id(ctx), stage_name), _ABSENT)
            if previous is _KEPT:
                return  # the caller's value was left in place
            if previous is not _ABSENT:
                ctx.data[key] = previous
                return
        if not before_ran(self):
            # An interceptor earlier in the chain short-circuited the call (an
            # idempotency replay): this before set nothing, and a caller's key stays.
            return
        ctx.data.pop(key, None)


_ABSENT = object()
_KEPT = object()


def _no_limit(value: object) -> bool:
    return type(value) in (int, float) and value <= 0  # type: ignore[operator]


def get_default_interceptors(
    *,
    include_auth: bool = False,
    include_idempotency: bool = True,
    idempotency_store: IdempotencyStore | _ResultStore | None = None,
) -> list[BaseInterceptor]:
    """The default chain, sorted by priority.

    Idempotency (4, unless ``include_idempotency=False``; with
    ``idempotency_store`` when given), Timeout (5), CircuitBreaker (10),
    Tracing (20), Metrics (40), ChildTrackerMetrics (45), Logging (50).

    Raises:
        TypeError: ``include_auth`` or ``include_idempotency`` is not a bool (a
            truthy ``"no"`` would silently turn idempotency on).
        ValueError: ``include_auth=True``. 0.9.1's default auth chain names
            interceptors that do not exist (ImportError); 1.2.0's is
            ``AuthInterceptor()`` with its ``MockJwtValidator``, which accepts
            any token, so a service that turned it on is not authenticating
            anyone. List :mod:`stageflow_trio.auth`'s interceptors yourself, with
            your validator.
    """
    # Imported here: the idempotency module builds on this one.
    from stageflow_trio.pipeline.idempotency import IdempotencyInterceptor

    check_flag("get_default_interceptors", "include_auth", include_auth)
    check_flag("get_default_interceptors", "include_idempotency", include_idempotency)
    if include_auth:
        raise ValueError(
            "get_default_interceptors: include_auth=True is refused: stageflow 1.2.0's chain "
            "authenticates with MockJwtValidator, which accepts any token (0.9.1's does not "
            "import); add AuthInterceptor(jwt_validator=<your validator>) and "
            "OrgEnforcementInterceptor() from stageflow_trio.auth to the list yourself"
        )
    interceptors: list[BaseInterceptor] = [
        TimeoutInterceptor(),
        CircuitBreakerInterceptor(),
        TracingInterceptor(),
        MetricsInterceptor(),
        ChildTrackerMetricsInterceptor(),
        LoggingInterceptor(),
    ]
    if include_idempotency:
        interceptors.insert(0, IdempotencyInterceptor(store=idempotency_store))
    return interceptors
