"""Guard-retry policies for :class:`~stageflow_trio.pipeline.dag.UnifiedStageGraph`.

A GUARD stage that returns ``StageOutput.fail`` can send the run back to one of
its dependencies (the *retry stage*) and then run again. A policy bounds that
loop by attempts, by stagnation (the guard failing with the same payload again
and again) and by time on the trio clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs

from stageflow_trio._args import unfit_for_float
from stageflow_trio._engine._guard_retry import hash_retry_payload as hash_retry_payload
from stageflow_trio._exports import publish
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.core.stage_enums import StageKind

__all__ = ["GuardRetryPolicy", "GuardRetryStrategy", "hash_retry_payload"]


def _check_at_least_one(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1")


def _check_timeout(_: object, __: attrs.Attribute[float | None], value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"timeout_seconds must be a number of seconds or None, got {type(value).__name__}"
        )
    # NaN compares false with everything, so `value <= 0` alone let it through
    # (and a NaN deadline never fires). Infinity means "no time limit", as in trio.
    if (size := unfit_for_float(value)) is not None:
        raise ValueError(
            "timeout_seconds must be a number of seconds a float can hold (math.inf for no "
            f"limit), got {size}"
        )
    if math.isnan(value):
        raise ValueError("timeout_seconds must be a number of seconds, got nan")
    if value <= 0:
        raise ValueError("timeout_seconds must be positive when provided")


def _check_retry_stage(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"retry_stage must be a stage name (str), got {type(value).__name__}")
    if not value.strip():
        raise ValueError("retry_stage must be a non-empty stage name")


def _to_fields(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        raise TypeError(
            f"hash_fields must be a str, an iterable of str or None, got {type(value).__name__}"
        )
    fields = tuple(value)
    for field in fields:
        if not isinstance(field, str):
            raise TypeError(f"hash_fields must contain only str keys, got {type(field).__name__}")
    return fields


def _check_policies(
    _: object, __: attrs.Attribute[dict[str, GuardRetryPolicy]], value: object
) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(
            "policies must be a mapping of guard stage name to GuardRetryPolicy,"
            f" got {type(value).__name__}"
        )
    for name, policy in value.items():
        if not isinstance(name, str):
            raise TypeError(
                f"policies keys must be guard stage names (str), got {type(name).__name__}"
            )
        if not isinstance(policy, GuardRetryPolicy):
            raise TypeError(
                f"policies[{name!r}] must be a GuardRetryPolicy, got {type(policy).__name__}"
            )


@frozen_compat
@attrs.frozen
class GuardRetryPolicy:
    """How a failing guard stage is retried.

    Args:
        retry_stage: The stage to run again before the guard re-runs. It must be
            one of the guard's declared dependencies.
        max_attempts: Guard failures allowed before giving up (the first counts).
        stagnation_limit: How many times in a row a failure may repeat the
            previous failure's payload hash before the retries end (with the
            default 2, the third identical failure ends them, as in the reference).
        hash_fields: Only these keys of the guard's output data are hashed for
            stagnation detection (all data when ``None``).
        timeout_seconds: Give up once this long has passed (on the trio clock)
            since the guard's first failure.
    """

    retry_stage: str = attrs.field(validator=_check_retry_stage)
    max_attempts: int = attrs.field(default=2, validator=_check_at_least_one)
    stagnation_limit: int = attrs.field(default=2, validator=_check_at_least_one)
    hash_fields: tuple[str, ...] | None = attrs.field(default=None, converter=_to_fields)
    timeout_seconds: float | None = attrs.field(default=None, validator=_check_timeout)


@attrs.define
class GuardRetryStrategy:
    """Guard-retry policies keyed by guard stage name."""

    policies: dict[str, GuardRetryPolicy] = attrs.field(factory=dict, validator=_check_policies)

    def get_policy(self, guard_stage: str) -> GuardRetryPolicy | None:
        """The policy for ``guard_stage``, or ``None``."""
        return self.policies.get(guard_stage)

    def validate(self, stages: Mapping[str, object]) -> None:
        """Check every policy against the graph's stage specs.

        Raises:
            TypeError: ``stages`` is not a mapping.
            ValueError: the guard is unknown or not a GUARD stage, the retry stage
                is unknown or is the guard itself, or the guard does not declare
                the retry stage as a dependency.
        """
        if not isinstance(stages, Mapping):
            raise TypeError(
                f"stages must be a mapping of stage name to stage spec, got {type(stages).__name__}"
            )
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
