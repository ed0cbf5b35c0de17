"""The guard-retry state machine: pure bookkeeping, no I/O, no events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio.pipeline.guard_retry import hash_retry_payload

if TYPE_CHECKING:
    from stageflow_trio.core.stage_output import StageOutput
    from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy


class GuardRetryState:
    """Per-run, per-guard retry bookkeeping."""

    __slots__ = ("attempts", "last_hash", "stagnation_hits", "started_at")

    def __init__(self) -> None:
        self.attempts = 0
        self.stagnation_hits = 0
        self.last_hash: str | None = None
        self.started_at: float | None = None

    def record_failure(
        self, policy: GuardRetryPolicy, output: StageOutput, now: float
    ) -> str | None:
        """Count one guard failure at time ``now``.

        Returns:
            ``None`` when another retry is allowed, else why the retries are
            exhausted: ``"timeout"``, then ``"stagnation"``, then
            ``"max_attempts"`` when more than one limit is reached.
        """
        if self.started_at is None:
            self.started_at = now
        self.attempts += 1
        digest = hash_retry_payload(output, policy.hash_fields)
        if digest and digest == self.last_hash:
            self.stagnation_hits += 1
        else:
            self.stagnation_hits = 0
        self.last_hash = digest
        if policy.timeout_seconds is not None and now - self.started_at >= policy.timeout_seconds:
            return "timeout"
        if self.stagnation_hits >= policy.stagnation_limit:
            return "stagnation"
        if self.attempts >= policy.max_attempts:
            return "max_attempts"
        return None
