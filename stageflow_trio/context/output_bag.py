"""Per-stage output storage with attempt tracking.

Each stage has at most one current :class:`OutputEntry`. Writing again needs
``allow_overwrite=True`` (the retry case) and bumps the attempt number.

``write`` stays ``async``, as in the reference's API, and is a checkpoint under
the library's checkpoint budget (:mod:`stageflow_trio.lowlevel`): a
cancellation point on every call, a schedule point when one is due.
"""

from __future__ import annotations

from ._output_bag import OutputBag as OutputBag
from ._output_bag import OutputConflictError as OutputConflictError
from ._output_bag import OutputEntry as OutputEntry

__all__ = ["OutputBag", "OutputConflictError", "OutputEntry"]
