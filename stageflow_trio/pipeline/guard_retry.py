"""Guard-retry policies for :class:`~stageflow_trio.pipeline.dag.UnifiedStageGraph`.

A GUARD stage that returns ``StageOutput.fail`` can send the run back to one of
its dependencies (the *retry stage*) and then run again. A policy bounds that
loop by attempts, by stagnation (the guard failing with the same payload again
and again) and by time on the trio clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from stageflow_trio._engine._guard_retry import hash_retry_payload as hash_retry_payload
from stageflow_trio._exports import publish
from stageflow_trio.core.stage_enums import StageKind

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["GuardRetryPolicy", "GuardRetryStrategy", "hash_retry_payload"]


def _check_at_least_one(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1")


def _check_timeout(_: object, __: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError("timeout_seconds must be positive when provided")


def _to_fields(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen
class GuardRetryPolicy:
    """How a failing guard stage is retried.

    Args:
        retry_stage: The stage to run again before the guard re-runs. It must be
            one of the guard's declared dependencies.
        max_attempts: Guard failures allowed before giving up (the first counts).
        stagnation_limit: Consecutive failures with an identical payload hash
            that count as "no progress" and end the retries.
        hash_fields: Only these keys of the guard's output data are hashed for
            stagnation detection (all data when ``None``).
        timeout_seconds: Give up once this long has passed (on the trio clock)
            since the guard's first failure.
    """

    retry_stage: str
    max_attempts: int = attrs.field(default=2, validator=_check_at_least_one)
    stagnation_limit: int = attrs.field(default=2, validator=_check_at_least_one)
    hash_fields: tuple[str, ...] | None = attrs.field(default=None, converter=_to_fields)
    timeout_seconds: float | None = attrs.field(default=None, validator=_check_timeout)


@attrs.define
class GuardRetryStrategy:
    """Guard-retry policies keyed by guard stage name."""

    policies: dict[str, GuardRetryPolicy] = attrs.field(factory=dict)

    def get_policy(self, guard_stage: str) -> GuardRetryPolicy | None:
        """The policy for ``guard_stage``, or ``None``."""
        return self.policies.get(guard_stage)

    def validate(self, stages: Mapping[str, object]) -> None:
        """Check every policy against the graph's stage specs.

        Raises:
            ValueError: the guard is unknown or not a GUARD stage, the retry stage
                is unknown or is the guard itself, or the guard does not declare
                the retry stage as a dependency.
        """
        for guard_name, policy in self.policies.items():
            guard_spec = stages.get(guard_name)
            if guard_spec is None:
                raise ValueError(
                    f"Guard retry policy references unknown guard stage '{guard_name}'"
                )
            if getattr(guard_spec, "kind", None) != StageKind.GUARD:
                raise ValueError(f"Guard retry policy requires '{guard_name}' to be a GUARD stage")
            if policy.retry_stage not in stages:
                raise ValueError(
                    f"Guard retry policy for '{guard_name}' references unknown"
                    f" retry stage '{policy.retry_stage}'"
                )
            if policy.retry_stage == guard_name:
                raise ValueError(f"Guard retry policy for '{guard_name}' cannot target itself")
            if policy.retry_stage not in (getattr(guard_spec, "dependencies", ()) or ()):
                raise ValueError(
                    f"Guard '{guard_name}' must declare retry stage '{policy.retry_stage}'"
                    " as a dependency to enable guard retries"
                )


publish(__name__)
