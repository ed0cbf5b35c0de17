"""The auth event payloads: keys, values, default timestamps, and the reference."""

from __future__ import annotations

from datetime import datetime
from types import ModuleType
from typing import Any
from uuid import UUID

import attrs
import pytest

from stageflow_trio.auth import events
from stageflow_trio.auth.events import AuthFailureEvent, AuthLoginEvent, TenantAccessDeniedEvent
from tests.auth.helpers import MOCK_SESSION, ORG, OTHER_ORG, REQUEST_ID, RUN_ID, USER

STAMP = "2026-03-04T05:06:07.891234+00:00"

CASES: list[tuple[str, dict[str, Any]]] = [
    ("AuthLoginEvent", {"user_id": UUID(USER), "session_id": UUID(MOCK_SESSION)}),
    (
        "AuthLoginEvent",
        {
            "user_id": UUID(USER),
            "session_id": UUID(MOCK_SESSION),
            "org_id": UUID(ORG),
            "request_id": REQUEST_ID,
            "pipeline_run_id": RUN_ID,
        },
    ),
    ("AuthFailureEvent", {"reason": "missing_token"}),
    (
        "AuthFailureEvent",
        {
            "reason": "token_expired",
            "ip_address": "10.0.0.1",
            "user_agent": "curl/8",
            "request_id": REQUEST_ID,
            "user_id": UUID(USER),
        },
    ),
    ("TenantAccessDeniedEvent", {"user_org_id": UUID(ORG), "resource_org_id": UUID(OTHER_ORG)}),
    (
        "TenantAccessDeniedEvent",
        {
            "user_org_id": UUID(ORG),
            "resource_org_id": UUID(OTHER_ORG),
            "user_id": UUID(USER),
            "request_id": REQUEST_ID,
            "pipeline_run_id": RUN_ID,
        },
    ),
]


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_payloads_match_the_reference(
    name: str, kwargs: dict[str, Any], ref_auth: ModuleType
) -> None:
    ours = getattr(events, name)(timestamp=STAMP, **kwargs).to_dict()
    theirs = getattr(ref_auth, name)(timestamp=STAMP, **kwargs).to_dict()
    assert list(ours.items()) == list(theirs.items())  # the same keys in the same order


def test_payloads() -> None:
    assert AuthLoginEvent(
        user_id=UUID(USER), session_id=UUID(MOCK_SESSION), org_id=UUID(ORG), timestamp=STAMP
    ).to_dict() == {
        "type": "auth.login",
        "user_id": USER,
        "org_id": ORG,
        "session_id": MOCK_SESSION,
        "timestamp": STAMP,
        "request_id": None,
        "pipeline_run_id": None,
    }
    assert AuthFailureEvent(reason="x", user_id=UUID(USER), timestamp=STAMP).to_dict() == {
        "type": "auth.failure",
        "reason": "x",
        "ip_address": None,
        "user_agent": None,
        "timestamp": STAMP,
        "request_id": None,
        "user_id": USER,
    }
    assert TenantAccessDeniedEvent(
        user_org_id=UUID(ORG),
        resource_org_id=UUID(OTHER_ORG),
        request_id=REQUEST_ID,
        timestamp=STAMP,
    ).to_dict() == {
        "type": "tenant.access_denied",
        "user_org_id": ORG,
        "resource_org_id": OTHER_ORG,
        "user_id": None,
        "timestamp": STAMP,
        "request_id": str(REQUEST_ID),
        "pipeline_run_id": None,
    }


def test_default_timestamps_are_utc_iso_and_fresh() -> None:
    first = AuthFailureEvent(reason="x")
    second = AuthFailureEvent(reason="x")
    for event in (first, second):
        parsed = datetime.fromisoformat(event.timestamp)
        assert parsed.utcoffset() is not None
        assert parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert second.timestamp >= first.timestamp


@pytest.mark.parametrize("name", ["AuthLoginEvent", "AuthFailureEvent", "TenantAccessDeniedEvent"])
def test_fields_match_the_reference(name: str, ref_auth: ModuleType) -> None:
    import dataclasses

    ours = [a.name for a in attrs.fields(getattr(events, name))]
    theirs = [f.name for f in dataclasses.fields(getattr(ref_auth, name))]
    assert ours == theirs
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        AuthFailureEvent(reason="x").reason = "y"  # type: ignore[misc]
