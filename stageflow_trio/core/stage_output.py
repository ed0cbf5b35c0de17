"""The value every stage returns, plus the artifacts and events it may carry.

:class:`StageOutput` is an immutable ``attrs`` class. Its ``data`` is a
:class:`~stageflow_trio.utils.frozen.FrozenDict` and its ``artifacts`` and
``events`` are :class:`~stageflow_trio.utils.frozen.FrozenList` values: real
``dict``/``list`` subclasses, so ``out.data == {"a": 1}``, ``out.artifacts == []``
and ``json.dumps(out.data)`` work as with the reference, while mutation raises
``TypeError``. The freeze is shallow, like the reference's ``FrozenDict``.
"""

from __future__ import annotations

from ._stage_output import StageOutput as StageOutput
from ._stage_parts import StageArtifact as StageArtifact
from ._stage_parts import StageEvent as StageEvent

__all__ = ["StageArtifact", "StageEvent", "StageOutput"]
