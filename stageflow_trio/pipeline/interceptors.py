"""Interceptors: middleware around legacy stage calls.

An interceptor has a ``priority`` (lower runs first, i.e. outermost) and
hooks: ``before`` (may short-circuit the stage), ``on_error`` (may ask for a
retry), ``after`` (runs when the call finished) and the optional
``on_abort`` (runs, shielded, when a cancelled or aborted call skips
``after``). The chain itself is :func:`run_with_interceptors`; its exact
order is documented in ``stageflow_trio._engine._stage_call`` and in
docs/interceptors.md, with every difference from the reference.

Built-ins (priority): TimeoutInterceptor (5), CircuitBreakerInterceptor (10),
TracingInterceptor (20), MetricsInterceptor (40),
ChildTrackerMetricsInterceptor (45), LoggingInterceptor (50); the
idempotency (4), retry (15) and hardening (10, 42) interceptors live in
their own modules.

Checkpoints: :func:`run_with_interceptors` is always a checkpoint. The hooks
are callbacks the chain awaits, not calls an application makes, and the
built-in hooks that do no I/O are not checkpoints of their own: with six
interceptors a stage calls twelve hooks, and a schedule point in each would
cost more than the whole rest of the chain (2.5 µs each on a 2-core machine).
Hooks that wait (idempotency, retry backoff) checkpoint as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio._engine._interceptors import BaseInterceptor as BaseInterceptor
from stageflow_trio._engine._interceptors import (
    CriticalInterceptorError as CriticalInterceptorError,
)
from stageflow_trio._engine._interceptors import ErrorAction as ErrorAction
from stageflow_trio._engine._interceptors import InterceptorContext as InterceptorContext
from stageflow_trio._engine._interceptors import InterceptorError as InterceptorError
from stageflow_trio._engine._interceptors import InterceptorResult as InterceptorResult
from stageflow_trio._engine._stage_call import DEFAULT_TIMEOUT_MS as DEFAULT_TIMEOUT_MS
from stageflow_trio._engine._stage_call import run_with_interceptors as _run_with_interceptors
from stageflow_trio._exports import publish
from stageflow_trio.pipeline._entry_checks import check_interceptors

from ._builtin_interceptors import ChildTrackerMetricsInterceptor as ChildTrackerMetricsInterceptor
from ._builtin_interceptors import CircuitBreakerInterceptor as CircuitBreakerInterceptor
from ._builtin_interceptors import LoggingInterceptor as LoggingInterceptor
from ._builtin_interceptors import MetricsInterceptor as MetricsInterceptor
from ._builtin_interceptors import TimeoutInterceptor as TimeoutInterceptor
from ._builtin_interceptors import get_default_interceptors as get_default_interceptors
from ._tracing_interceptor import TracingInterceptor as TracingInterceptor

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult

__all__ = [
    "BaseInterceptor",
    "ChildTrackerMetricsInterceptor",
    "CircuitBreakerInterceptor",
    "CriticalInterceptorError",
    "ErrorAction",
    "InterceptorContext",
    "InterceptorError",
    "InterceptorResult",
    "LoggingInterceptor",
    "MetricsInterceptor",
    "TimeoutInterceptor",
    "TracingInterceptor",
    "get_default_interceptors",
    "run_with_interceptors",
]


async def run_with_interceptors(
    stage_name: str,
    stage_run: Callable[[], Awaitable[StageResult]],
    ctx: PipelineContext,
    interceptors: Sequence[BaseInterceptor],
) -> StageResult:
    """Run ``stage_run`` wrapped by ``interceptors``. A checkpoint.

    The order of the hooks is documented in ``stageflow_trio._engine._stage_call``.
    The graphs call the engine's chain directly (their interceptors were checked
    when the graph was built); this public entry checks its arguments first.

    Raises:
        TypeError: ``interceptors`` is not a sequence of BaseInterceptor, or
            ``stage_run`` is not callable.
        CriticalInterceptorError: raised by a ``before`` or ``after`` hook.
    """
    if interceptors is None:
        raise TypeError(
            "run_with_interceptors: interceptors must be a list of BaseInterceptor instances; "
            "got NoneType"
        )
    check_interceptors("run_with_interceptors", interceptors)
    if not callable(stage_run):
        raise TypeError(
            f"run_with_interceptors: stage_run must be an async callable; "
            f"got {type(stage_run).__name__}"
        )
    return await _run_with_interceptors(stage_name, stage_run, ctx, interceptors)


publish(__name__)
