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

from __future__ import annotations

from ._retry import BackoffStrategy as BackoffStrategy
from ._retry import JitterStrategy as JitterStrategy
from ._retry import RateLimitError as RateLimitError
from ._retry import RetryInterceptor as RetryInterceptor
from ._retry import ServiceUnavailableError as ServiceUnavailableError
from ._retry import TransientError as TransientError

__all__ = [
    "BackoffStrategy",
    "JitterStrategy",
    "RateLimitError",
    "RetryInterceptor",
    "ServiceUnavailableError",
    "TransientError",
]
