"""What kind of work a stage does, and how a stage run ended."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["StageKind", "StageStatus"]


# StrEnum as in 1.2.0: str() and format() give the value ("guard"), where 0.9.1's
# (str, Enum) gave "StageKind.GUARD"; equality, hashing, repr and JSON are unchanged.
class StageKind(StrEnum):
    """The role a stage plays in a pipeline; every stage has exactly one.

    Members compare equal to their string values (``StageKind.GUARD == "guard"``),
    and ``str()``/``format()`` give the value, as in stageflow 1.2.0.
    """

    TRANSFORM = "transform"
    """Changes the form of the input (speech to text, text to speech, an LLM call)."""
    ENRICH = "enrich"
    """Adds context (profile, memory, documents)."""
    ROUTE = "route"
    """Chooses the path the run takes."""
    GUARD = "guard"
    """Validates input or output; a failing guard can trigger a guard retry."""
    WORK = "work"
    """Performs side effects (persistence, assessments)."""
    AGENT = "agent"
    """The main interactor of the pipeline."""


class StageStatus(StrEnum):
    """The outcome of one stage run, carried by :class:`StageOutput`."""

    OK = "ok"
    """The stage finished successfully."""
    SKIP = "skip"
    """The stage decided not to run (its ``data["reason"]`` says why)."""
    CANCEL = "cancel"
    """The stage asks to stop the whole pipeline without an error."""
    FAIL = "fail"
    """The stage failed; ``error`` holds the message."""
    RETRY = "retry"
    """The stage failed but may succeed if run again."""
