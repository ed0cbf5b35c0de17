"""The single error root of stageflow_trio.

Every error class the library defines derives from :class:`StageflowError`,
which derives from ``Exception`` as all of the reference's errors do, so
``except Exception`` code ported from stageflow keeps working and
``except StageflowError`` catches everything the library raises on purpose.
"""

from __future__ import annotations

from stageflow_trio._exports import publish

from ._errors import StageflowError as StageflowError

__all__ = ["StageflowError"]

publish(__name__)
