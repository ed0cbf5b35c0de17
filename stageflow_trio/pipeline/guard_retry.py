"""Guard-retry policies for :class:`~stageflow_trio.pipeline.dag.UnifiedStageGraph`.

A GUARD stage that returns ``StageOutput.fail`` can send the run back to one of
its dependencies (the *retry stage*) and then run again. A policy bounds that
loop by attempts, by stagnation (the guard failing with the same payload again
and again) and by time on the trio clock.
"""

from __future__ import annotations

from ._guard_retry import GuardRetryPolicy as GuardRetryPolicy
from ._guard_retry import GuardRetryStrategy as GuardRetryStrategy
from ._guard_retry import hash_retry_payload as hash_retry_payload

__all__ = ["GuardRetryPolicy", "GuardRetryStrategy", "hash_retry_payload"]
