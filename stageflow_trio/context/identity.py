"""RunIdentity: the ids that identify and correlate one pipeline run."""

from __future__ import annotations

from ._identity import RunIdentity as RunIdentity

__all__ = ["RunIdentity"]
