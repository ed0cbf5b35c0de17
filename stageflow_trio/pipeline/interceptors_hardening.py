"""Hardening interceptors: catch stages that mutate their input, watch the context's size.

Both are meant for development and high-reliability set-ups (each serializes
the context twice per stage). Add them to a graph's interceptor list.

Where the snapshot comes from: ``snapshot_getter(ctx)`` when given, else
``ctx.data["snapshot"]`` (the place a legacy run keeps the snapshot it hands
to its stages, and a unified run's view holds its own), else ``ctx.snapshot``
when the context has one (a StageContext). The reference read ``ctx.snapshot``
only, which a PipelineContext does not have, so its checks never ran.

Each call's "before" measurement is kept per context, stage and task (the
chain runs a call's hooks in its task), so concurrent calls of one stage on one
context are each checked against their own.
"""

# Hooks implement a fixed interface, so unused hook arguments are expected.
# ruff: noqa: ARG002

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from stageflow_trio._args import check_callable, check_flag, check_seconds, error_text, type_of
from stageflow_trio._engine._interceptors import call_key
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.pipeline.interceptors import BaseInterceptor, CriticalInterceptorError

if TYPE_CHECKING:
    import trio

    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult

__all__ = [
    "SNAPSHOT_DATA_KEY",
    "ContextSizeInterceptor",
    "ContextSizeMetric",
    "ImmutabilityInterceptor",
    "ImmutabilityViolationError",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.hardening")

SNAPSHOT_DATA_KEY = "snapshot"
"""The pipeline-data key the hardening interceptors read the snapshot from on a PipelineContext."""

SnapshotGetter = Callable[[Any], Any]


def _default_snapshot(ctx: Any) -> Any:
    # The data key first: a PipelineContext also has a ``snapshot`` property (stageflow
    # 1.2), but it derives a new snapshot from the context's fields on every read, not
    # the snapshot object a legacy run hands its stages.
    data = getattr(ctx, "data", None)
    snapshot = data.get(SNAPSHOT_DATA_KEY) if isinstance(data, Mapping) else None
    if snapshot is None:
        snapshot = getattr(ctx, "snapshot", None)
    return snapshot


def _check_bytes(owner: str, param: str, value: object) -> None:
    """A threshold in bytes: an int or float >= 0 (``math.inf``: never warn), not a bool or NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}: {param} must be a number of bytes; got {type_of(value)}")
    check_seconds(owner, param, value)  # NaN, negative or too large for a float: ValueError


def _as_payload(snapshot: Any) -> Any:
    serializer = getattr(snapshot, "to_dict", None)
    return serializer() if callable(serializer) else snapshot


class ImmutabilityViolationError(CriticalInterceptorError, RuntimeError):
    """A stage mutated the snapshot it was given.

    The message is ``"Immutability violation: Stage '{stage}' mutated the
    input ContextSnapshot."``. A critical interceptor error, so it escapes the
    chain (the legacy graph raises it as StageExecutionError); also a
    RuntimeError, what the reference raised (and then swallowed).
    """

    def __init__(self, stage_name: str) -> None:
        super().__init__(
            f"Immutability violation: Stage '{stage_name}' mutated the input ContextSnapshot.",
            "immutability_check",
        )
        self.stage_name = stage_name

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stage_name,), self.__dict__)


class ImmutabilityInterceptor(BaseInterceptor):
    """Fails (or logs) a stage that changed the snapshot's serialized form.

    Compares the sorted JSON of the snapshot's ``to_dict()`` before and after
    the stage. Priority 10.

    Args:
        crash_on_violation: Raise :class:`ImmutabilityViolationError` from
            ``after``; when False, log the violation as an error instead.
        snapshot_getter: ``ctx -> snapshot or None``; see the module docstring
            for the default.

    Raises:
        TypeError: ``crash_on_violation`` is not a bool, or ``snapshot_getter`` is
            neither callable nor None (the reference accepted both, and the check
            then silently never ran or never crashed as asked).
    """

    name: str = "immutability_check"
    priority: int = 10

    def __init__(
        self, crash_on_violation: bool = True, *, snapshot_getter: SnapshotGetter | None = None
    ) -> None:
        owner = "ImmutabilityInterceptor"
        check_flag(owner, "crash_on_violation", crash_on_violation)
        check_callable(owner, "snapshot_getter", snapshot_getter, optional=True)
        self.crash_on_violation = crash_on_violation
        self._snapshot_getter = (
            snapshot_getter if snapshot_getter is not None else _default_snapshot
        )
        # (id(ctx), stage, task) -> the snapshot's JSON before the stage. The hooks of
        # one call run in its task: concurrent calls of a stage on one context are
        # each compared with their own "before".
        self._before: dict[tuple[int, str, trio.lowlevel.Task], str] = {}

    def _serialize(self, stage_name: str, ctx: Any) -> str | None:
        try:
            snapshot = self._snapshot_getter(ctx)
            if snapshot is None:
                return None
            return json.dumps(_as_payload(snapshot), sort_keys=True, default=str)
        except Exception as exc:  # noqa: BLE001 - a check must never break the stage
            text = error_text(exc)  # nor an error whose __str__ raises
            logger.warning(
                "Immutability check could not serialize the snapshot of stage %s: %s",
                stage_name,
                text,
                extra={"stage": stage_name, "error": text},
            )
            return None

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        """Record the snapshot's JSON (nothing when there is no snapshot)."""
        serialized = self._serialize(stage_name, ctx)
        if serialized is None:
            logger.debug("Immutability check: no snapshot before stage %s", stage_name)
            return
        self._before[call_key(stage_name, ctx)] = serialized

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        """Compare with the recorded JSON.

        Raises:
            ImmutabilityViolationError: the snapshot changed and ``crash_on_violation``.
        """
        if self._changed(stage_name, ctx):
            error = ImmutabilityViolationError(stage_name)
            if self.crash_on_violation:
                raise error
            logger.error(str(error), extra={"stage": stage_name})

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        """Check a cancelled or aborted call too, but only log a violation."""
        if self._changed(stage_name, ctx):
            logger.error(str(ImmutabilityViolationError(stage_name)), extra={"stage": stage_name})

    def _changed(self, stage_name: str, ctx: Any) -> bool:
        before = self._before.pop(call_key(stage_name, ctx), None) if self._before else None
        if before is None:
            return False
        after = self._serialize(stage_name, ctx)
        return after is not None and after != before


@frozen_compat
@attrs.frozen
class ContextSizeMetric:
    """The context size measured after one call of a stage.

    Attributes:
        stage: The stage name.
        size_bytes: Length of the JSON of the snapshot plus the pipeline data.
        growth_bytes: ``size_bytes`` minus the size measured before the stage.
    """

    stage: str
    size_bytes: int
    growth_bytes: int


class ContextSizeInterceptor(BaseInterceptor):
    """Warns when the context is large or a stage grows it a lot, and records the sizes.

    The size is the length of the JSON (``default=str``) of the snapshot's
    ``to_dict()`` (when there is a snapshot) plus that of the pipeline data.
    Before a stage it warns when the size exceeds ``max_size_bytes``; after it,
    when the stage added more than ``warn_on_growth_bytes``. After each stage
    it records a :class:`ContextSizeMetric` (see :attr:`metrics`) and calls
    ``ctx.record_metric("context_size_bytes", size, {"stage": name})`` when the
    context has that method. Priority 42.

    Args:
        max_size_bytes: Size above which it warns (default 1 MiB); a number >= 0
            (``math.inf``: never).
        warn_on_growth_bytes: Growth within one stage above which it warns (default
            100 KiB); a number >= 0 (``math.inf``: never).
        snapshot_getter: ``ctx -> snapshot or None``; see the module docstring.

    Raises:
        TypeError: a threshold is not an int or float (a bool or a str such as
            ``"1MB"`` included), or ``snapshot_getter`` is neither callable nor None.
        ValueError: a threshold is negative or NaN.
    """

    name: str = "context_size"
    priority: int = 42

    def __init__(
        self,
        max_size_bytes: float = 1024 * 1024,
        warn_on_growth_bytes: float = 100 * 1024,
        *,
        snapshot_getter: SnapshotGetter | None = None,
    ) -> None:
        owner = "ContextSizeInterceptor"
        _check_bytes(owner, "max_size_bytes", max_size_bytes)
        _check_bytes(owner, "warn_on_growth_bytes", warn_on_growth_bytes)
        check_callable(owner, "snapshot_getter", snapshot_getter, optional=True)
        self.max_size_bytes = max_size_bytes
        self.warn_on_growth_bytes = warn_on_growth_bytes
        self._snapshot_getter = (
            snapshot_getter if snapshot_getter is not None else _default_snapshot
        )
        # (id(ctx), stage, task) -> the size before the stage (see ImmutabilityInterceptor).
        self._sizes: dict[tuple[int, str, trio.lowlevel.Task], int] = {}
        self._metrics: dict[str, ContextSizeMetric] = {}

    @property
    def metrics(self) -> dict[str, ContextSizeMetric]:
        """The latest measurement of each stage, by stage name (a copy)."""
        return dict(self._metrics)

    def _estimate_size(self, ctx: Any) -> int:
        snapshot = self._snapshot_getter(ctx)
        snapshot_payload = {} if snapshot is None else _as_payload(snapshot)
        data = getattr(ctx, "data", None)
        if data is None:
            data = {}
        elif snapshot is not None and data.get(SNAPSHOT_DATA_KEY) is snapshot:
            # Counted once, as the snapshot, not again as a data value.
            data = {key: value for key, value in data.items() if key != SNAPSHOT_DATA_KEY}
        return len(json.dumps(snapshot_payload, default=str)) + len(json.dumps(data, default=str))

    def _measure(self, stage_name: str, ctx: Any) -> int | None:
        try:
            return self._estimate_size(ctx)
        except Exception as exc:  # noqa: BLE001 - monitoring must never break the stage
            logger.debug("Context size of stage %s could not be measured: %s", stage_name, exc)
            return None

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        """Measure, and warn when the context is over ``max_size_bytes``."""
        size = self._measure(stage_name, ctx)
        if size is None:
            return
        self._sizes[call_key(stage_name, ctx)] = size
        if size > self.max_size_bytes:
            logger.warning(
                "Context size warning: %.1fKB exceeds limit %.1fKB before stage '%s'",
                size / 1024,
                self.max_size_bytes / 1024,
                stage_name,
                extra={"stage": stage_name, "size_bytes": size},
            )

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        """Measure again, warn on large growth, record the metric."""
        previous = self._sizes.pop(call_key(stage_name, ctx), None) if self._sizes else None
        if previous is None:
            return
        size = self._measure(stage_name, ctx)
        if size is None:
            return
        growth = size - previous
        if growth > self.warn_on_growth_bytes:
            logger.warning(
                "Significant context growth: Stage '%s' added %.1fKB (Total: %.1fKB)",
                stage_name,
                growth / 1024,
                size / 1024,
                extra={"stage": stage_name, "size_bytes": size, "growth_bytes": growth},
            )
        self._metrics[stage_name] = ContextSizeMetric(
            stage=stage_name, size_bytes=size, growth_bytes=growth
        )
        record_metric = getattr(ctx, "record_metric", None)
        if callable(record_metric):
            try:
                record_metric("context_size_bytes", size, {"stage": stage_name})
            except Exception as exc:  # noqa: BLE001 - monitoring must never break the stage
                logger.debug("record_metric failed for stage %s: %s", stage_name, exc)

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        """Forget the measurement of a cancelled or aborted call."""
        if self._sizes:
            self._sizes.pop(call_key(stage_name, ctx), None)
