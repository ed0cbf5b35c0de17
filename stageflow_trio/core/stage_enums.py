"""What kind of work a stage does, and how a stage run ended."""

from __future__ import annotations

from enum import Enum

__all__ = ["StageKind", "StageStatus"]


# (str, Enum) rather than StrEnum: str() and format() must match the reference.
class StageKind(str, Enum):  # noqa: UP042
    """The role a stage plays in a pipeline; every stage has exactly one.

    Members compare equal to their string values (``StageKind.GUARD == "guard"``),
    and ``str()``/``format()`` behave as for any ``(str, Enum)`` mix-in, exactly as
    in the reference.
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


class StageStatus(str, Enum):  # noqa: UP042
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
