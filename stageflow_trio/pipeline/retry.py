"""Automatic retries of failed stage calls, with backoff and jitter.

:class:`RetryInterceptor` answers ``on_error`` with RETRY for retryable
errors until ``max_attempts`` calls of the stage have been made, sleeping
(``trio.sleep``, so ``MockClock`` drives it) for the computed delay first.

Delay of retry number ``a`` (0 for the first retry), in whole milliseconds:

- backoff: EXPONENTIAL ``base * 2**a``, LINEAR ``base * (a + 1)``, CONSTANT
  ``base``; then capped at ``max_delay_ms``;
- jitter on that value ``d``: NONE ``d``; FULL ``randint(0, d)``; EQUAL
  ``d // 2 + randint(0, d // 2)``; DECORRELATED
  ``min(max_delay_ms, randint(base, 3 * previous))`` where ``previous`` is the
  previous delay of this call (``base`` at first), ignoring the backoff.

Events, through ``ctx.try_emit_event`` (which adds the run's ids):

- ``stage.retry_scheduled {stage, attempt, delay_ms, error, backoff_strategy}``
  before each sleep (``attempt`` is the number of the retry, from 1);
- ``stage.retry_exhausted {stage, attempts, error, reason}`` when the
  interceptor gives up on a retryable error: ``reason`` is
  ``"max_attempts"``, or ``"deadline"`` when the retry could not start before
  the enclosing deadline (``trio.current_effective_deadline()``), in which
  case no sleep happens.

The per-call state lives in ``ctx.data["_retry.{stage}"]`` (``attempt``,
``last_error``) while the stage runs, so the stage can read it, and is
removed when the call ends, also when it is cancelled.
"""

# Hooks implement a fixed interface, so unused hook arguments are expected.
# ruff: noqa: ARG002

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from stageflow_trio._args import error_text
from stageflow_trio._engine._stage_call import MAX_CHAIN_RETRIES
from stageflow_trio.errors import StageflowError
from stageflow_trio.pipeline.interceptors import BaseInterceptor, ErrorAction, InterceptorResult

if TYPE_CHECKING:
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult

__all__ = [
    "BackoffStrategy",
    "JitterStrategy",
    "RateLimitError",
    "RetryInterceptor",
    "ServiceUnavailableError",
    "TransientError",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.pipeline.retry")

MAX_DELAY_MS: int = 10**300
"""The largest ``base_delay_ms`` / ``max_delay_ms``: every delay is capped by ``max_delay_ms``,
and ``delay_ms / 1000`` (the seconds ``trio.sleep`` takes) must be a float."""


class BackoffStrategy(Enum):
    """How the delay grows from one retry to the next."""

    EXPONENTIAL = "exponential"
    LINEAR = "linear"
    CONSTANT = "constant"


class JitterStrategy(Enum):
    """How the delay is randomized, so that many callers do not retry in lockstep."""

    NONE = "none"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"


class TransientError(StageflowError):
    """A temporary failure worth retrying (not retried by default: add it to ``retryable_errors``)."""


class RateLimitError(TransientError):
    """A rate limit was hit; ``retry_after`` says when to try again (seconds), if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailableError(TransientError):
    """A downstream service is temporarily unavailable."""


class RetryInterceptor(BaseInterceptor):
    """Retries stage calls that raised a retryable error (see the module docstring).

    Priority 15: inside the circuit breaker, outside tracing.

    Args:
        max_attempts: Calls of the stage in total, the first included
            (at most ``MAX_CHAIN_RETRIES + 1``; 0 or 1 means no retry).
        base_delay_ms: The base delay, whole milliseconds (>= 0).
        max_delay_ms: The cap on every delay, whole milliseconds (>= 0); both
            delays at most :data:`MAX_DELAY_MS` (10**300).
        backoff_strategy: How delays grow: a :class:`BackoffStrategy`, or its
            value as a string (``"linear"``), converted to the member.
        jitter_strategy: How delays are randomized: a :class:`JitterStrategy`,
            or its value as a string (``"full"``).
        retryable_errors: The exception classes that are retried (a tuple or
            another iterable of them, or a single class); None means
            :attr:`DEFAULT_RETRYABLE`. An empty collection is rejected: to
            retry nothing, leave the interceptor out.
        retry_on_status: Kept for API compatibility. Legacy results are only
            "completed" or "failed" and the chain cannot re-run a stage from
            ``after``, so it has no effect.
        rng: Where jitter comes from (a ``random.Random``); a new
            ``random.Random()`` by default. Pass a seeded one for
            reproducible delays.

    Raises:
        TypeError: a parameter has the wrong type (the message names it).
        ValueError: a parameter is out of range or not a known strategy
            (the message names it).
    """

    name = "retry"
    priority = 15

    DEFAULT_RETRYABLE: tuple[type[Exception], ...] = (
        TimeoutError,
        ConnectionError,
        OSError,
        trio.TooSlowError,
    )
    """The chain's stage timeout arrives as the builtin TimeoutError, so it is retried."""

    def __init__(
        self,
        max_attempts: int = 3,
        base_delay_ms: int = 1000,
        max_delay_ms: int = 30000,
        backoff_strategy: BackoffStrategy | str = BackoffStrategy.EXPONENTIAL,
        jitter_strategy: JitterStrategy | str = JitterStrategy.FULL,
        retryable_errors: tuple[type[Exception], ...] | type[Exception] | None = None,
        retry_on_status: tuple[str, ...] = ("retry",),
        *,
        rng: random.Random | None = None,
    ) -> None:
        _check_int("max_attempts", max_attempts)
        if max_attempts < 0:
            raise ValueError(f"max_attempts must be >= 0, got {max_attempts}")
        if max_attempts > MAX_CHAIN_RETRIES + 1:
            raise ValueError(
                f"max_attempts must be at most {MAX_CHAIN_RETRIES + 1}"
                f" (the chain's retry limit), got {max_attempts}"
            )
        for label, delay in (("base_delay_ms", base_delay_ms), ("max_delay_ms", max_delay_ms)):
            _check_int(label, delay, " (whole milliseconds)")
            if delay < 0:
                raise ValueError(f"{label} must be >= 0, got {delay}")
            if delay > MAX_DELAY_MS:
                # trio.sleep takes float seconds: a larger delay cannot be slept, and
                # on_error would fail (logged) instead of retrying.
                raise ValueError(
                    f"{label} must be at most 10**300 (whole milliseconds), got a larger int"
                )
        if rng is not None and not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random or None, got {type(rng).__name__}")
        self.max_attempts = max_attempts
        self.base_delay_ms = base_delay_ms
        self.max_delay_ms = max_delay_ms
        self.backoff_strategy: BackoffStrategy = _strategy(
            "backoff_strategy", BackoffStrategy, backoff_strategy
        )
        self.jitter_strategy: JitterStrategy = _strategy(
            "jitter_strategy", JitterStrategy, jitter_strategy
        )
        self.retryable_errors: tuple[type[Exception], ...] = _retryable(
            retryable_errors, self.DEFAULT_RETRYABLE
        )
        self.retry_on_status = retry_on_status
        self._rng = rng if rng is not None else random.Random()

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        """Start this call's retry state (attempt 0)."""
        ctx.data[f"_retry.{stage_name}"] = {"attempt": 0, "last_error": None}
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        """Drop this call's retry state."""
        ctx.data.pop(f"_retry.{stage_name}", None)

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        """Drop the retry state of a cancelled or aborted call."""
        ctx.data.pop(f"_retry.{stage_name}", None)

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        """RETRY after the backoff delay, or FAIL (not retryable, attempts used, deadline).

        A checkpoint when it retries (the backoff sleep).

        Raises:
            trio.Cancelled: cancelled during the backoff sleep.
        """
        if not isinstance(error, self.retryable_errors):
            logger.debug(
                "Error %s is not retryable",
                type(error).__name__,
                extra={
                    "event": "retry_skip_error_type",
                    "stage": stage_name,
                    "error_type": type(error).__name__,
                },
            )
            return ErrorAction.FAIL
        state_key = f"_retry.{stage_name}"
        state = ctx.data.get(state_key)
        if not isinstance(state, dict):
            state = {"attempt": 0, "last_error": None}
        attempt: int = state.get("attempt", 0)
        message = error_text(error)
        if attempt >= self.max_attempts - 1:
            return self._exhausted(ctx, stage_name, attempt, message, "max_attempts")
        delay_ms = self._calculate_delay(attempt, state.get("previous_delay_ms"))
        deadline = trio.current_effective_deadline()
        if deadline != math.inf and trio.current_time() + delay_ms / 1000 >= deadline:
            return self._exhausted(ctx, stage_name, attempt, message, "deadline")
        logger.info(
            "Retrying stage %s in %sms (attempt %s/%s)",
            stage_name,
            delay_ms,
            attempt + 2,
            self.max_attempts,
            extra={
                "event": "retry_scheduled",
                "stage": stage_name,
                "attempt": attempt + 1,
                "delay_ms": delay_ms,
                "error": message,
            },
        )
        _emit(
            ctx,
            "stage.retry_scheduled",
            {
                "stage": stage_name,
                "attempt": attempt + 1,
                "delay_ms": delay_ms,
                "error": message,
                "backoff_strategy": self.backoff_strategy.value,
            },
        )
        await trio.sleep(delay_ms / 1000)
        ctx.data[state_key] = {
            "attempt": attempt + 1,
            "last_error": message,
            "previous_delay_ms": delay_ms,
        }
        return ErrorAction.RETRY

    def _exhausted(
        self, ctx: PipelineContext, stage_name: str, attempt: int, message: str, reason: str
    ) -> ErrorAction:
        logger.warning(
            "Stage %s exhausted its retries after %s attempts (%s)",
            stage_name,
            attempt + 1,
            reason,
            extra={
                "event": "retry_exhausted",
                "stage": stage_name,
                "attempts": attempt + 1,
                "error": message,
                "reason": reason,
            },
        )
        _emit(
            ctx,
            "stage.retry_exhausted",
            {"stage": stage_name, "attempts": attempt + 1, "error": message, "reason": reason},
        )
        return ErrorAction.FAIL

    def _calculate_delay(self, attempt: int, previous_delay_ms: int | None) -> int:
        """The delay in ms before retry number ``attempt`` (0-based)."""
        base = self.base_delay_ms
        cap = self.max_delay_ms
        jitter = self.jitter_strategy
        if jitter is JitterStrategy.DECORRELATED:
            previous = base if previous_delay_ms is None else previous_delay_ms
            # max(): when the cap is below the base, 3 * previous may fall under base.
            return min(cap, self._rng.randint(base, max(base, previous * 3)))
        backoff = self.backoff_strategy
        if backoff is BackoffStrategy.EXPONENTIAL:
            delay = base * (1 << attempt)
        elif backoff is BackoffStrategy.LINEAR:
            delay = base * (attempt + 1)
        else:
            delay = base
        delay = min(delay, cap)
        if jitter is JitterStrategy.FULL:
            return self._rng.randint(0, delay)
        if jitter is JitterStrategy.EQUAL:
            half = delay // 2
            return half + self._rng.randint(0, half)
        return delay


def _check_int(name: str, value: object, unit: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int{unit}, got {type(value).__name__}")


_E = TypeVar("_E", BackoffStrategy, JitterStrategy)


def _strategy(name: str, enum: type[_E], value: object) -> _E:
    if isinstance(value, enum):
        return value
    values = [member.value for member in enum]
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            raise ValueError(
                f"{name} must be a {enum.__name__} or one of {values}, got {value!r}"
            ) from None
    raise TypeError(
        f"{name} must be a {enum.__name__} or one of {values}, got {type(value).__name__}"
    )


def _retryable(value: object, default: tuple[type[Exception], ...]) -> tuple[type[Exception], ...]:
    if value is None:
        return default
    if isinstance(value, type):
        entries: tuple[object, ...] = (value,)
    elif isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(
            "retryable_errors must be exception classes (a tuple of them, or one) or None,"
            f" got {type(value).__name__}"
        )
    else:
        entries = tuple(value)
    if not entries:
        raise ValueError(
            "retryable_errors must name at least one exception class (None means the"
            " defaults; to retry nothing, leave the interceptor out), got an empty collection"
        )
    checked: list[type[Exception]] = []
    for entry in entries:
        if isinstance(entry, type) and issubclass(entry, Exception):
            checked.append(entry)
            continue
        shown = entry.__name__ if isinstance(entry, type) else f"{entry!r} ({type(entry).__name__})"
        raise TypeError(f"retryable_errors must contain Exception subclasses, got {shown}")
    return tuple(checked)


def _emit(ctx: Any, event_type: str, data: dict[str, Any]) -> None:
    # Events must never break the retry decision (the reference suppressed sink errors too).
    try:
        emit = getattr(ctx, "try_emit_event", None)
        if emit is not None:
            emit(type=event_type, data=data)
        else:
            ctx.event_sink.try_emit(type=event_type, data=data)
    except Exception:
        logger.exception("Failed to emit %s", event_type)
