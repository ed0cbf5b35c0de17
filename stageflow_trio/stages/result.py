"""The legacy stage result and stage error.

:class:`StageResult` is what the legacy :class:`~stageflow_trio.pipeline.dag.StageGraph`
records per stage (status ``"completed"`` or ``"failed"``) and what its
interceptors receive in ``after``. New code returns
:class:`~stageflow_trio.core.stage_output.StageOutput` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, get_args

import attrs

from stageflow_trio._args import error_text
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.errors import StageflowError
from stageflow_trio.utils.frozen import FrozenDict

__all__ = [
    "LegacyStageStatus",
    "StageError",
    "StageResult",
]

LegacyStageStatus = Literal["started", "completed", "failed"]
"""The statuses a legacy :class:`StageResult` (and ``PipelineContext.record_stage_event``) uses."""

_STATUSES: tuple[str, ...] = get_args(LegacyStageStatus)


def _check_status(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value not in _STATUSES:
        raise ValueError(f"status must be one of {list(_STATUSES)}, got {value!r}")


def _check_datetime(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{attribute.name} must be a datetime, got {type(value).__name__}")


def _frozen_data(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    if isinstance(value, FrozenDict):
        return value
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise TypeError(f"data must be a mapping, got {type(value).__name__}")
    return FrozenDict(value)


@frozen_compat
@attrs.frozen
class StageResult:
    """What one stage of a legacy graph produced.

    Args:
        name: The stage name.
        status: ``"started"``, ``"completed"`` or ``"failed"``.
        started_at: When the stage started.
        ended_at: When it ended.
        data: The stage's output data (stored as a read-only mapping; None means empty).
        error: The error message of a failed stage.

    Raises:
        ValueError: ``status`` is not one of the three legacy statuses.
        TypeError: ``started_at``/``ended_at`` is not a datetime, or ``data`` is not a mapping.
    """

    name: str
    status: LegacyStageStatus = attrs.field(validator=_check_status)
    started_at: datetime = attrs.field(validator=_check_datetime)
    ended_at: datetime = attrs.field(validator=_check_datetime)
    data: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_frozen_data)
    error: str | None = None


class StageError(StageflowError):
    """A stage failed; wraps the exception it raised.

    The message is ``"Stage {stage} failed: {original}"``.

    Attributes:
        stage: The name of the stage.
        original: The exception the stage raised.
    """

    def __init__(self, stage: str, original: Exception) -> None:
        # error_text: an error whose __str__ raises is still this stage's failure.
        super().__init__(f"Stage {stage} failed: {error_text(original)}")
        self.stage = stage
        self.original = original

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the two constructor arguments (the default reduction passes
        # the message alone); the attributes of a subclass (StageExecutionError's
        # ``recoverable``) come back with the instance's __dict__.
        return (type(self), (self.stage, self.original), self.__dict__)
