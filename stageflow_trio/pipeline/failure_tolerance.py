"""Failure tolerance for DAG runs: failure records, a collector, backpressure, conditions.

:class:`FailureCollector` records stage failures and completions and decides,
per :class:`FailureMode`, whether a stage should still run;
:class:`BackpressureMonitor` bounds how many stages run at once (a
``trio.Semaphore``) and can shed load when overloaded;
:class:`ConditionalDependency` evaluates a skip predicate against upstream
outputs. The graphs do not use them on their own: they are building blocks for
runners and interceptors.
"""

from __future__ import annotations

import collections
import importlib
import logging
import time
from collections.abc import Iterable, Mapping
from enum import Enum, auto
from typing import Any

import attrs
import trio

from stageflow_trio._args import check_flag, check_int, check_number, error_text, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

__all__ = [
    "BackpressureConfig",
    "BackpressureMonitor",
    "ConditionalDependency",
    "FailureCollector",
    "FailureMode",
    "FailureRecord",
    "FailureSummary",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.pipeline.failure_tolerance")

# How many latency samples the monitor keeps for its p95.
_LATENCY_SAMPLES = 1000


class FailureMode(Enum):
    """How a run treats stage failures."""

    FAIL_FAST = auto()
    """Stop at the first failure (the default)."""
    CONTINUE_ON_FAILURE = auto()
    """Record the failure; skip only the stages that depend on a failed one."""
    BEST_EFFORT = auto()
    """Run every stage and collect all failures."""


def _frozen_context(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    if isinstance(value, FrozenDict):
        return value
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise TypeError(f"FailureRecord: context must be a mapping; got {type_of(value)}")
    return FrozenDict(value)


@frozen_compat
@attrs.frozen
class FailureRecord:
    """One stage failure.

    Attributes:
        stage: The stage that failed.
        error: The error message.
        error_type: The exception's class name (``"Error"`` for a message).
        recoverable: Whether the run may continue past it.
        timestamp: When it was recorded (``time.time()``).
        context: Extra details (a read-only mapping).
    """

    stage: str
    error: str
    error_type: str
    recoverable: bool
    timestamp: float = attrs.field(factory=lambda: time.time())
    context: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_frozen_context)


def _failure_list(value: Iterable[FailureRecord]) -> FrozenList[FailureRecord]:
    return value if isinstance(value, FrozenList) else FrozenList(value)


def _frozen_results(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    if isinstance(value, FrozenDict):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"FailureSummary: partial_results must be a mapping; got {type_of(value)}")
    return FrozenDict(value)


@frozen_compat
@attrs.frozen
class FailureSummary:
    """What failed in a run, and what completed.

    Attributes:
        total_stages: Stages in the run.
        completed_stages: Stages that completed.
        failed_stages: Distinct stages that failed.
        failures: Every failure record, in order (read-only).
        partial_results: The outputs that exist (read-only mapping).
    """

    total_stages: int
    completed_stages: int
    failed_stages: int
    failures: FrozenList[FailureRecord] = attrs.field(converter=_failure_list)
    partial_results: FrozenDict[str, Any] = attrs.field(converter=_frozen_results)

    @property
    def success_rate(self) -> float:
        """``completed_stages / total_stages``; 0.0 for an empty run."""
        if self.total_stages == 0:
            return 0.0
        return self.completed_stages / self.total_stages

    @property
    def has_failures(self) -> bool:
        """Whether any failure was recorded."""
        return len(self.failures) > 0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (without ``partial_results`` or failure contexts)."""
        return {
            "total_stages": self.total_stages,
            "completed_stages": self.completed_stages,
            "failed_stages": self.failed_stages,
            "success_rate": self.success_rate,
            "failures": [
                {
                    "stage": record.stage,
                    "error": record.error,
                    "error_type": record.error_type,
                    "recoverable": record.recoverable,
                    "timestamp": record.timestamp,
                }
                for record in self.failures
            ],
        }


class FailureCollector:
    """Collects the failures and completions of one run.

    Args:
        mode: How :meth:`should_continue` decides.

    Raises:
        TypeError: ``mode`` is not a FailureMode.
    """

    def __init__(self, mode: FailureMode = FailureMode.FAIL_FAST) -> None:
        if not isinstance(mode, FailureMode):
            raise TypeError(f"FailureCollector: mode must be a FailureMode; got {type_of(mode)}")
        self.mode: FailureMode = mode
        self._failures: list[FailureRecord] = []
        self._failed_stages: set[str] = set()
        self._completed_stages: set[str] = set()

    def record_failure(
        self,
        stage: str,
        error: Exception | str,
        recoverable: bool = False,
        context: dict[str, Any] | None = None,
    ) -> None:
        """Record that ``stage`` failed with ``error`` (an exception or a message); logs a warning.

        Raises:
            TypeError: ``stage`` is not a str, ``error`` not an exception or a str,
                ``recoverable`` not a bool.
        """
        owner = "FailureCollector.record_failure"
        if not isinstance(stage, str):
            raise TypeError(f"{owner}: stage must be a str; got {type_of(stage)}")
        if not isinstance(error, Exception | str):
            raise TypeError(f"{owner}: error must be an Exception or a str; got {type_of(error)}")
        check_flag(owner, "recoverable", recoverable)
        error_str = error if isinstance(error, str) else error_text(error)
        error_type = type(error).__name__ if isinstance(error, Exception) else "Error"
        self._failures.append(
            FailureRecord(
                stage=stage,
                error=error_str,
                error_type=error_type,
                recoverable=recoverable,
                context=context,
            )
        )
        self._failed_stages.add(stage)
        logger.warning(
            "Stage failure recorded: %s",
            stage,
            extra={
                "event": "failure_recorded",
                "stage": stage,
                "error": error_str,
                "error_type": error_type,
                "recoverable": recoverable,
                "mode": self.mode.name,
            },
        )

    def record_completion(self, stage: str) -> None:
        """Record that ``stage`` completed.

        Raises:
            TypeError: ``stage`` is not a str.
        """
        if not isinstance(stage, str):
            raise TypeError(
                f"FailureCollector.record_completion: stage must be a str; got {type_of(stage)}"
            )
        self._completed_stages.add(stage)

    def should_continue(self, _stage: str, dependent_on: Iterable[str]) -> bool:
        """Whether a stage depending on ``dependent_on`` should run.

        FAIL_FAST: only while nothing has failed. CONTINUE_ON_FAILURE: unless
        one of its dependencies failed. BEST_EFFORT: always.

        ``dependent_on`` may be any collection of stage names (a set in the
        reference; a spec's dependency tuple works too).

        Raises:
            TypeError: ``dependent_on`` is a str or not iterable.
        """
        if isinstance(dependent_on, str) or not isinstance(dependent_on, Iterable):
            raise TypeError(
                "FailureCollector.should_continue: dependent_on must be a collection of"
                f" stage names; got {type_of(dependent_on)}"
            )
        if self.mode is FailureMode.FAIL_FAST:
            return not self._failures
        if self.mode is FailureMode.CONTINUE_ON_FAILURE:
            return self._failed_stages.isdisjoint(dependent_on)
        return True

    def get_summary(self, total_stages: int, partial_results: dict[str, Any]) -> FailureSummary:
        """A :class:`FailureSummary` of what has been recorded so far.

        Raises:
            TypeError: ``total_stages`` is not an int or ``partial_results`` not a mapping.
            ValueError: ``total_stages`` is negative.
        """
        check_int("FailureCollector.get_summary", "total_stages", total_stages, minimum=0)
        return FailureSummary(
            total_stages=total_stages,
            completed_stages=len(self._completed_stages),
            failed_stages=len(self._failed_stages),
            failures=self._failures,
            partial_results=partial_results,
        )

    @property
    def has_failures(self) -> bool:
        """Whether any failure was recorded."""
        return len(self._failures) > 0

    @property
    def failed_stages(self) -> set[str]:
        """The names of the failed stages (a copy)."""
        return self._failed_stages.copy()


def _int_at_least(minimum: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check_int("BackpressureConfig", attribute.name, value, minimum=minimum)

    return check


def _non_negative_number(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_number("BackpressureConfig", attribute.name, value, minimum=0)


def _bool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_flag("BackpressureConfig", attribute.name, value)


@frozen_compat
@attrs.frozen
class BackpressureConfig:
    """Limits for a :class:`BackpressureMonitor`.

    Attributes:
        max_active_stages: Stages that may run at once (an int, at least 1).
        high_watermark: Utilization (active / max) at which the monitor counts as overloaded.
        low_watermark: Utilization at which scheduling would resume (kept for parity; unused).
        latency_threshold_ms: A p95 latency above this counts as overloaded.
        queue_size_limit: Waiting acquirers at which the monitor counts as overloaded.
        shed_on_overload: Whether :meth:`BackpressureMonitor.acquire` refuses when overloaded.

    Raises:
        TypeError / ValueError: a field has the wrong type or is out of range.
    """

    max_active_stages: int = attrs.field(default=10, validator=_int_at_least(1))
    high_watermark: float = attrs.field(default=0.8, validator=_non_negative_number)
    low_watermark: float = attrs.field(default=0.3, validator=_non_negative_number)
    latency_threshold_ms: int = attrs.field(default=5000, validator=_non_negative_number)
    queue_size_limit: int = attrs.field(default=100, validator=_int_at_least(0))
    shed_on_overload: bool = attrs.field(default=False, validator=_bool)


class BackpressureMonitor:
    """Bounds concurrent stage executions and measures load.

    Each execution calls ``await monitor.acquire()`` before it starts and
    ``monitor.release(latency_ms)`` when it ends (only if ``acquire`` returned
    True).

    Args:
        config: The limits; None means the defaults.

    Raises:
        TypeError: ``config`` is not a BackpressureConfig or None.
    """

    def __init__(self, config: BackpressureConfig | None = None) -> None:
        if config is not None and not isinstance(config, BackpressureConfig):
            raise TypeError(
                f"BackpressureMonitor: config must be a BackpressureConfig or None; got {type_of(config)}"
            )
        self.config: BackpressureConfig = config or BackpressureConfig()
        self._semaphore = trio.Semaphore(self.config.max_active_stages)
        self._active_count = 0
        self._queued_count = 0
        self._latencies: collections.deque[float] = collections.deque(maxlen=_LATENCY_SAMPLES)
        self._shed_count = 0

    @property
    def utilization(self) -> float:
        """Active executions over ``max_active_stages``."""
        return self._active_count / self.config.max_active_stages

    @property
    def is_overloaded(self) -> bool:
        """Utilization at the high watermark, the queue at its limit, or p95 latency over the threshold."""
        return (
            self.utilization >= self.config.high_watermark
            or self._queued_count >= self.config.queue_size_limit
            or (bool(self._latencies) and self._p95_latency() > self.config.latency_threshold_ms)
        )

    def _p95_latency(self) -> float:
        if not self._latencies:
            return 0.0
        ordered = sorted(self._latencies)
        return ordered[min(int(len(ordered) * 0.95), len(ordered) - 1)]

    async def acquire(self) -> bool:
        """Wait for an execution slot; False (at once) if load is shed.

        A checkpoint; a cancelled wait takes no slot.

        Returns:
            True when a slot was taken (call :meth:`release` later), False when
            ``shed_on_overload`` is set and the monitor is overloaded.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._queued_count += 1
        try:
            if self.config.shed_on_overload and self.is_overloaded:
                self._shed_count += 1
                logger.warning(
                    "Shedding load due to backpressure",
                    extra={
                        "event": "load_shed",
                        "utilization": self.utilization,
                        "queued": self._queued_count,
                        "shed_count": self._shed_count,
                    },
                )
                await trio.lowlevel.cancel_shielded_checkpoint()
                return False
            await self._semaphore.acquire()
            self._active_count += 1
            return True
        finally:
            self._queued_count -= 1

    def release(self, latency_ms: float | None = None) -> None:
        """Free a slot taken by :meth:`acquire`; record ``latency_ms`` if given (the last 1000 count).

        Raises:
            TypeError / ValueError: ``latency_ms`` is not a finite number >= 0 (or None).
            RuntimeError: no slot is taken (more releases than successful acquires).
        """
        owner = "BackpressureMonitor.release"
        if latency_ms is not None:
            check_number(owner, "latency_ms", latency_ms, minimum=0)
        # trio's (and asyncio's) Semaphore has no upper bound: an unmatched release
        # would raise the limit for good and drive the active count negative.
        if self._active_count <= 0:
            raise RuntimeError(
                f"{owner}: release() without a matching acquire() that returned True"
            )
        self._semaphore.release()
        self._active_count -= 1
        if latency_ms is not None:
            self._latencies.append(latency_ms)

    def get_metrics(self) -> dict[str, Any]:
        """``active_count``, ``queued_count``, ``utilization``, ``p95_latency_ms``, ``shed_count``, ``is_overloaded``."""
        return {
            "active_count": self._active_count,
            "queued_count": self._queued_count,
            "utilization": self.utilization,
            "p95_latency_ms": self._p95_latency(),
            "shed_count": self._shed_count,
            "is_overloaded": self.is_overloaded,
        }


def _str_field(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # A non-str predicate used to make evaluate() log a warning and return True.
    if not isinstance(value, str):
        raise TypeError(
            f"ConditionalDependency: {attribute.name} must be a str; got {type_of(value)}"
        )


def _flag_field(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_flag("ConditionalDependency", attribute.name, value)


@frozen_compat
@attrs.frozen
class ConditionalDependency:
    """Whether a stage should run, from a predicate over upstream outputs.

    Attributes:
        stage: The stage the condition guards.
        predicate: ``"stage:key"`` (the truth of that output's ``data[key]``),
            or a JMESPath expression (needs the ``jmespath`` package).
        skip_on_false: Kept for parity; the result is the predicate's truth either way.
    """

    stage: str = attrs.field(validator=_str_field)
    predicate: str = attrs.field(validator=_str_field)
    skip_on_false: bool = attrs.field(default=True, validator=_flag_field)

    def evaluate(self, outputs: dict[str, Any]) -> bool:
        """True if the stage should run.

        ``"stage:key"`` reads ``outputs[stage].data[key]`` (or ``outputs[stage][key]``
        for a mapping). Anything the predicate cannot decide (a missing stage,
        no ``:``, jmespath not installed, an error while evaluating) gives True,
        with a warning logged for the last two.
        """
        try:
            if "." not in self.predicate and "[" not in self.predicate:
                parts = self.predicate.split(":")
                if len(parts) == 2 and parts[0] in outputs:
                    output = outputs[parts[0]]
                    holder = output.data if hasattr(output, "data") else output
                    return bool(holder.get(parts[1]))
                return True
            try:
                # Optional: only complex predicates need it.
                jmespath = importlib.import_module("jmespath")
            except ImportError:
                logger.warning(
                    "jmespath not available for complex predicate evaluation",
                    extra={"predicate": self.predicate},
                )
                return True
            return bool(jmespath.search(self.predicate, outputs))
        except Exception as exc:  # noqa: BLE001 - an undecidable predicate runs the stage
            text = error_text(exc)  # even one whose error cannot be printed
            logger.warning(
                "Predicate evaluation failed: %s",
                text,
                extra={"predicate": self.predicate, "error": text},
            )
            return True
