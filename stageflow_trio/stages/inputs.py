"""What a stage may read: the run's snapshot and its dependencies' outputs.

:class:`StageInputs` is immutable. In strict mode (the default) with a
non-empty ``declared_deps``, the per-stage accessors refuse stages that were
not declared as dependencies; :meth:`StageInputs.get`, which searches every
prior output, is never checked. With no declared dependencies nothing is
checked, exactly as in the reference.
"""

from __future__ import annotations

from ._inputs import StageInputs as StageInputs
from ._inputs import UndeclaredDependencyError as UndeclaredDependencyError
from ._inputs import create_stage_inputs as create_stage_inputs

__all__ = ["StageInputs", "UndeclaredDependencyError", "create_stage_inputs"]
