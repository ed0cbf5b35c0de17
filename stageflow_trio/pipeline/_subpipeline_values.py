"""The subpipeline values: the nesting limit, its error, the four lifecycle events, the result.

Gathered with the tracker and the spawner by :mod:`stageflow_trio.pipeline.subpipeline`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final
from uuid import UUID

import attrs

from stageflow_trio._errors import StageflowError
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now_iso as _timestamp
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.utils.frozen import FrozenDict

logger: logging.Logger = logging.getLogger("stageflow_trio.subpipeline")

DEFAULT_MAX_SUBPIPELINE_DEPTH: Final = 5
"""How deeply subpipelines may nest by default: a run at depth 5 cannot spawn."""

SubpipelineRunner = Callable[[PipelineContext], Awaitable[Any]]


def _id_str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _check_fields(owner: str, rules: tuple[tuple[str, object, str], ...]) -> None:
    """Raise TypeError naming the first field whose value breaks its rule.

    Each rule is ``(name, value, kind)`` with kind ``"uuid"``, ``"uuid?"``,
    ``"str"``, ``"str?"``, ``"bool"``, ``"number"`` or ``"int"``.
    """
    for name, value, kind in rules:
        if kind.endswith("?"):
            if value is None:
                continue
            kind = kind[:-1]
            rule_suffix = " or None"
        else:
            rule_suffix = ""
        if kind == "uuid":
            ok, rule = isinstance(value, UUID), "a UUID"
        elif kind == "str":
            ok, rule = isinstance(value, str), "a str"
        elif kind == "bool":
            ok, rule = isinstance(value, bool), "a bool"
        elif kind == "int":
            ok, rule = isinstance(value, int) and not isinstance(value, bool), "an int"
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            rule = "a number"
        if not ok:
            raise TypeError(
                f"{owner}: {name} must be {rule}{rule_suffix}, got {type(value).__name__}"
            )


# The payload builders are shared by the event classes' to_dict and the spawner,
# which builds the payloads directly (no event object per spawn) and passes the
# run ids as the strings it made once per child.


def _spawned_payload(
    parent_run_id: UUID | str,
    child_run_id: UUID | str,
    parent_stage_id: str,
    pipeline_name: str,
    correlation_id: UUID | str | None,
    timestamp: str,
) -> dict[str, Any]:
    return {
        "parent_run_id": str(parent_run_id),
        "child_run_id": str(child_run_id),
        "parent_stage_id": parent_stage_id,
        "pipeline_name": pipeline_name,
        "correlation_id": None if correlation_id is None else str(correlation_id),
        "timestamp": timestamp,
    }


def _completed_payload(
    parent_run_id: UUID | str,
    child_run_id: UUID | str,
    pipeline_name: str,
    duration_ms: float,
    timestamp: str,
) -> dict[str, Any]:
    return {
        "parent_run_id": str(parent_run_id),
        "child_run_id": str(child_run_id),
        "pipeline_name": pipeline_name,
        "duration_ms": duration_ms,
        "timestamp": timestamp,
    }


def _failed_payload(
    parent_run_id: UUID | str,
    child_run_id: UUID | str,
    pipeline_name: str,
    error_message: str,
    duration_ms: float,
    timestamp: str,
) -> dict[str, Any]:
    return {
        "parent_run_id": str(parent_run_id),
        "child_run_id": str(child_run_id),
        "pipeline_name": pipeline_name,
        "error_message": error_message,
        "duration_ms": duration_ms,
        "timestamp": timestamp,
    }


class MaxDepthExceededError(StageflowError):
    """A spawn would nest subpipelines deeper than the spawner's ``max_depth``.

    Attributes:
        current_depth: The depth of the parent run that tried to spawn.
        max_depth: The spawner's limit.
        parent_run_id: The parent run's id.
    """

    def __init__(self, current_depth: int, max_depth: int, parent_run_id: UUID | None) -> None:
        self.current_depth = current_depth
        self.max_depth = max_depth
        self.parent_run_id = parent_run_id
        super().__init__(
            f"Subpipeline depth {current_depth} exceeds maximum allowed depth {max_depth}. "
            f"Parent run: {parent_run_id}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.current_depth, self.max_depth, self.parent_run_id))


# -- events ------------------------------------------------------------------


@frozen_compat
@attrs.frozen
class PipelineSpawnedChildEvent:
    """The payload of ``pipeline.spawned_child``: a child run is about to start."""

    parent_run_id: UUID
    child_run_id: UUID
    parent_stage_id: str
    pipeline_name: str
    correlation_id: UUID | None
    timestamp: str = attrs.field(factory=_timestamp)

    def __attrs_post_init__(self) -> None:
        _check_fields(
            "PipelineSpawnedChildEvent",
            (
                ("parent_run_id", self.parent_run_id, "uuid"),
                ("child_run_id", self.child_run_id, "uuid"),
                ("parent_stage_id", self.parent_stage_id, "str"),
                ("pipeline_name", self.pipeline_name, "str"),
                ("correlation_id", self.correlation_id, "uuid?"),
                ("timestamp", self.timestamp, "str"),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Ids as strings; keys in the reference's order."""
        return _spawned_payload(
            self.parent_run_id,
            self.child_run_id,
            self.parent_stage_id,
            self.pipeline_name,
            self.correlation_id,
            self.timestamp,
        )


@frozen_compat
@attrs.frozen
class PipelineChildCompletedEvent:
    """The payload of ``pipeline.child_completed``: a child run returned."""

    parent_run_id: UUID
    child_run_id: UUID
    pipeline_name: str
    duration_ms: float = 0.0
    timestamp: str = attrs.field(factory=_timestamp)

    def __attrs_post_init__(self) -> None:
        _check_fields(
            "PipelineChildCompletedEvent",
            (
                ("parent_run_id", self.parent_run_id, "uuid"),
                ("child_run_id", self.child_run_id, "uuid"),
                ("pipeline_name", self.pipeline_name, "str"),
                ("duration_ms", self.duration_ms, "number"),
                ("timestamp", self.timestamp, "str"),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Ids as strings; keys in the reference's order."""
        return _completed_payload(
            self.parent_run_id,
            self.child_run_id,
            self.pipeline_name,
            self.duration_ms,
            self.timestamp,
        )


@frozen_compat
@attrs.frozen
class PipelineChildFailedEvent:
    """The payload of ``pipeline.child_failed``: a child run raised an exception."""

    parent_run_id: UUID
    child_run_id: UUID
    pipeline_name: str
    error_message: str
    duration_ms: float = 0.0
    timestamp: str = attrs.field(factory=_timestamp)

    def __attrs_post_init__(self) -> None:
        _check_fields(
            "PipelineChildFailedEvent",
            (
                ("parent_run_id", self.parent_run_id, "uuid"),
                ("child_run_id", self.child_run_id, "uuid"),
                ("pipeline_name", self.pipeline_name, "str"),
                ("error_message", self.error_message, "str"),
                ("duration_ms", self.duration_ms, "number"),
                ("timestamp", self.timestamp, "str"),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Ids as strings; keys in the reference's order."""
        return _failed_payload(
            self.parent_run_id,
            self.child_run_id,
            self.pipeline_name,
            self.error_message,
            self.duration_ms,
            self.timestamp,
        )


@frozen_compat
@attrs.frozen
class PipelineCanceledEvent:
    """The payload of ``pipeline.canceled``: a run was cancelled by ``cancel_with_children``.

    ``cascade_depth`` is 0 for the run named in the call, 1 for its children, and so on.
    """

    pipeline_run_id: UUID
    parent_run_id: UUID | None = None
    reason: str = "user_requested"
    cascade_depth: int = 0
    timestamp: str = attrs.field(factory=_timestamp)

    def __attrs_post_init__(self) -> None:
        _check_fields(
            "PipelineCanceledEvent",
            (
                ("pipeline_run_id", self.pipeline_run_id, "uuid"),
                ("parent_run_id", self.parent_run_id, "uuid?"),
                ("reason", self.reason, "str"),
                ("cascade_depth", self.cascade_depth, "int"),
                ("timestamp", self.timestamp, "str"),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Ids as strings (``parent_run_id`` None for a root); keys in the reference's order."""
        return {
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "parent_run_id": _id_str(self.parent_run_id),
            "reason": self.reason,
            "cascade_depth": self.cascade_depth,
            "timestamp": self.timestamp,
        }


# -- result ------------------------------------------------------------------


def _freeze_data(value: Mapping[str, Any] | None) -> FrozenDict[str, Any] | None:
    if value is None or isinstance(value, FrozenDict):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"data must be a mapping or None, got {type(value).__name__}")
    return FrozenDict(value)


@frozen_compat
@attrs.frozen
class SubpipelineResult:
    """The outcome of one child run.

    Attributes:
        success: True when the child's runner returned.
        child_run_id: The child run's id.
        data: What the runner returned (a dict as is, anything else under
            ``"result"``), read-only; None when the child did not succeed.
        error: Why the child did not succeed, else None.
        duration_ms: How long the child ran, on the trio clock.

    Raises:
        TypeError: ``success`` is not a bool, ``child_run_id`` not a UUID,
            ``data`` not a mapping or None, ``error`` not a str or None, or
            ``duration_ms`` not a number.
    """

    success: bool
    child_run_id: UUID
    data: FrozenDict[str, Any] | None = attrs.field(default=None, converter=_freeze_data)
    error: str | None = None
    duration_ms: float = 0.0

    def __attrs_post_init__(self) -> None:
        # The spawner builds one per child: the common case costs four type() tests.
        success: object = self.success
        error: object = self.error
        if (
            type(success) is bool
            and type(self.child_run_id) is UUID
            and type(self.duration_ms) is float
            and (error is None or type(error) is str)
        ):
            return
        _check_fields(
            "SubpipelineResult",
            (
                ("success", self.success, "bool"),
                ("child_run_id", self.child_run_id, "uuid"),
                ("error", self.error, "str?"),
                ("duration_ms", self.duration_ms, "number"),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """``success``, ``child_run_id`` (str) and ``duration_ms``, plus ``data`` and
        ``error`` when they are not empty (as the reference)."""
        result: dict[str, Any] = {
            "success": self.success,
            "child_run_id": str(self.child_run_id),
            "duration_ms": self.duration_ms,
        }
        if self.data:
            result["data"] = dict(self.data)
        if self.error:
            result["error"] = self.error
        return result
