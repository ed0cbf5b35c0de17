"""Hypothesis strategies for the core value types (stage outputs and their parts).

Other test modules import these; keep them general.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from stageflow_trio.core.stage_enums import StageKind, StageStatus
from stageflow_trio.core.stage_output import StageArtifact, StageEvent, StageOutput

__all__ = [
    "data_dicts",
    "json_values",
    "stage_artifacts",
    "stage_events",
    "stage_kinds",
    "stage_names",
    "stage_outputs",
    "stage_statuses",
    "timestamps",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)

#: JSON-like values: scalars, and lists/dicts of them (a few levels deep).
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

#: ``data`` dicts as stages return them: str keys, JSON-like values.
data_dicts: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(max_size=10), json_values, max_size=6
)

#: Valid stage names: non-blank strings.
stage_names: st.SearchStrategy[str] = st.text(min_size=1, max_size=16).filter(
    lambda s: not s.isspace()
)

stage_statuses: st.SearchStrategy[StageStatus] = st.sampled_from(StageStatus)
stage_kinds: st.SearchStrategy[StageKind] = st.sampled_from(StageKind)

timestamps: st.SearchStrategy[datetime] = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)

stage_artifacts: st.SearchStrategy[StageArtifact] = st.builds(
    StageArtifact, type=st.text(max_size=10), payload=data_dicts, timestamp=timestamps
)

stage_events: st.SearchStrategy[StageEvent] = st.builds(
    StageEvent, type=st.text(max_size=10), data=data_dicts, timestamp=timestamps
)

#: Arbitrary outputs built through the validating constructor.
stage_outputs: st.SearchStrategy[StageOutput] = st.builds(
    StageOutput,
    status=stage_statuses,
    data=data_dicts,
    artifacts=st.lists(stage_artifacts, max_size=2),
    events=st.lists(stage_events, max_size=2),
    error=st.none() | st.text(max_size=20),
    duration_ms=st.none() | st.integers(min_value=0, max_value=10**7),
    version=st.none() | st.text(max_size=5),
)
