"""The legacy stage result and stage error.

:class:`StageResult` is what the legacy :class:`~stageflow_trio.pipeline.dag.StageGraph`
records per stage (status ``"completed"`` or ``"failed"``) and what its
interceptors receive in ``after``. New code returns
:class:`~stageflow_trio.core.stage_output.StageOutput` instead.
"""

from __future__ import annotations

from ._result import LegacyStageStatus as LegacyStageStatus
from ._result import StageError as StageError
from ._result import StageResult as StageResult

__all__ = [
    "LegacyStageStatus",
    "StageError",
    "StageResult",
]
