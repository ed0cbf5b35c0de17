"""Low-level knobs: the checkpoint budget of the library's hot data-path calls.

See :mod:`stageflow_trio._budget` and docs/cancellation.md ("The checkpoint
budget") for the policy and why it exists.
"""

from __future__ import annotations

from stageflow_trio._exports import publish

from ._budget import DEFAULT_CALLS as DEFAULT_CALLS
from ._budget import DEFAULT_SECONDS as DEFAULT_SECONDS
from ._budget import checkpoint_budget as checkpoint_budget
from ._budget import cooperative_checkpoint as cooperative_checkpoint

__all__ = ["DEFAULT_CALLS", "DEFAULT_SECONDS", "checkpoint_budget", "cooperative_checkpoint"]

publish(__name__)
