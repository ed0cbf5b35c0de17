"""Guard retries: the per-guard state machine and one run's retry bookkeeping.

The policies themselves (``GuardRetryPolicy``, ``GuardRetryStrategy``) are
pipeline-level configuration in :mod:`stageflow_trio.pipeline.guard_retry`;
the engine reads a policy only through :class:`GuardPolicy`. The payload hash
lives here because the state machine computes it on every guard failure; its
public path is :func:`stageflow_trio.pipeline.guard_retry.hash_retry_payload`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from stageflow_trio.core.stage_output import StageOutput

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

logger: logging.Logger = logging.getLogger("stageflow_trio.dag")


class GuardPolicy(Protocol):
    """What the engine reads of a guard's retry policy (``GuardRetryPolicy`` has it)."""

    @property
    def retry_stage(self) -> str: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def stagnation_limit(self) -> int: ...
    @property
    def hash_fields(self) -> tuple[str, ...] | None: ...
    @property
    def timeout_seconds(self) -> float | None: ...


def hash_retry_payload(
    output: StageOutput | None, fields: tuple[str, ...] | None = None
) -> str | None:
    """A stable sha256 of a guard output's data (or of ``fields`` of it).

    Used to detect stagnation: the same hash twice in a row means the retry
    changed nothing the guard looks at. ``None`` for no output.

    Raises:
        TypeError: ``output`` is not a StageOutput or None.
    """
    if output is None:
        return None
    if not isinstance(output, StageOutput):
        raise TypeError(f"output must be a StageOutput or None, got {type(output).__name__}")
    payload: Mapping[str, object] = output.data
    if fields:
        payload = {name: payload.get(name) for name in fields}
    try:
        serialized = json.dumps(payload, sort_keys=True, default=str)
    except TypeError:
        # Keys of mixed types cannot be sorted; fall back to a repr, as the reference does.
        serialized = repr(payload)
    return hashlib.sha256(serialized.encode("utf-8")).hexdigest()


class GuardRetryState:
    """Per-run, per-guard retry bookkeeping: pure, no I/O, no events."""

    __slots__ = ("attempts", "last_hash", "stagnation_hits", "started_at")

    def __init__(self) -> None:
        self.attempts = 0
        self.stagnation_hits = 0
        self.last_hash: str | None = None
        self.started_at: float | None = None

    def record_failure(self, policy: GuardPolicy, output: StageOutput, now: float) -> str | None:
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


class GuardRetries:
    """One run's guard retries: each guard's state and the guards waiting on a retry stage.

    Args:
        emit: Emits ``guard_retry.{event}`` with its payload (the run's reporter).
    """

    __slots__ = ("_active_targets", "_emit", "_pending", "_states")

    def __init__(self, emit: Callable[[str, dict[str, Any]], None]) -> None:
        self._emit = emit
        self._states: dict[str, GuardRetryState] = {}
        # Retry stage -> the guards to run again once it completes.
        self._pending: dict[str, list[str]] = {}
        self._active_targets: set[str] = set()

    def failed(
        self, name: str, policy: GuardPolicy, output: StageOutput, now: float
    ) -> Sequence[str] | None:
        """Record that guard ``name`` failed at time ``now``.

        Returns:
            The stages to start now (the retry stage, or none while it is
            already running), or ``None`` when the retries are exhausted.
        """
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = GuardRetryState()
        reason = state.record_failure(policy, output, now)
        self._emit(
            "attempt",
            {
                "guard": name,
                "attempt": state.attempts,
                "retry_stage": policy.retry_stage,
                "max_attempts": policy.max_attempts,
                "stagnation_hits": state.stagnation_hits,
                "timeout_seconds": policy.timeout_seconds,
            },
        )
        if reason is not None:
            logger.error(
                "Guard retry limits exceeded for %s after %d attempts (%s)",
                name,
                state.attempts,
                reason,
                extra={
                    "event": "guard_retry_exhausted",
                    "guard": name,
                    "attempts": state.attempts,
                    "stagnation_hits": state.stagnation_hits,
                    "timeout": reason == "timeout",
                    "reason": reason,
                },
            )
            self._emit(
                "exhausted",
                {
                    "guard": name,
                    "attempts": state.attempts,
                    "stagnation_hits": state.stagnation_hits,
                    "retry_stage": policy.retry_stage,
                    "timeout_seconds": policy.timeout_seconds,
                    "reason": reason,
                },
            )
            return None
        logger.info(
            "Scheduling guard retry",
            extra={
                "event": "guard_retry",
                "guard": name,
                "attempt": state.attempts,
                "retry_stage": policy.retry_stage,
            },
        )
        self._emit(
            "scheduled",
            {
                "guard": name,
                "attempt": state.attempts,
                "retry_stage": policy.retry_stage,
                "stagnation_hits": state.stagnation_hits,
                "timeout_seconds": policy.timeout_seconds,
            },
        )
        target = policy.retry_stage
        self._pending.setdefault(target, []).append(name)
        if target in self._active_targets:
            return ()
        self._active_targets.add(target)
        return (target,)

    def completed(self, name: str) -> list[str]:
        """Record that stage ``name`` completed; return the guards to run again now."""
        if self._states:
            state = self._states.pop(name, None)
            if state is not None and state.attempts:
                self._emit("recovered", {"guard": name, "attempts": state.attempts})
        if not self._active_targets:
            return []
        self._active_targets.discard(name)
        return self._pending.pop(name, [])
