"""Audit 12: a malformed ``org_id`` claim is a bad token, not a user without an organization.

A user with no organization is not restricted by OrgEnforcementInterceptor, so reading a
falsy non-id ``org_id`` (``0``, ``False``, ``[]``, ``{}``) as "no organization" would let a
malformed token reach every tenant's resources. Only an absent, null or empty ``org_id``
means "no organization", as in the reference.
"""

from __future__ import annotations

from typing import Any

import pytest

from stageflow_trio.auth import AuthInterceptor, OrgEnforcementInterceptor
from stageflow_trio.pipeline.interceptors import InterceptorResult
from tests.auth.helpers import MOCK_SESSION, ORG, OTHER_ORG, USER, our_ctx, without_timestamps


class FixedClaims:
    """A JwtValidator that returns the same claims for any token."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims

    async def validate(self, token: str) -> dict[str, Any]:
        return self.claims


def _claims(**extra: Any) -> dict[str, Any]:
    return {"user_id": USER, "session_id": MOCK_SESSION, **extra}


@pytest.mark.parametrize(
    ("org_id", "type_name"),
    [(0, "int"), (False, "bool"), ([], "list"), ({}, "dict"), (0.0, "float")],
)
async def test_a_falsy_org_id_that_is_not_an_id_is_an_invalid_token(
    org_id: Any, type_name: str
) -> None:
    ctx, sink = our_ctx({"_auth_token": "t", "_resource_org_id": OTHER_ORG})
    result = await AuthInterceptor(FixedClaims(_claims(org_id=org_id))).before("stage", ctx)
    assert result == InterceptorResult(
        stage_ran=False, error=f"Invalid UUID in claims: expected a string; got {type_name}"
    )
    assert "_auth_context" not in ctx.data
    assert [(t, d["reason"]) for t, d in without_timestamps(sink.events)] == [
        ("auth.failure", "invalid_token")
    ]


@pytest.mark.parametrize("claims", [_claims(), _claims(org_id=None), _claims(org_id="")])
async def test_an_absent_null_or_empty_org_id_still_means_no_organization(
    claims: dict[str, Any],
) -> None:
    ctx, sink = our_ctx({"_auth_token": "t", "_resource_org_id": OTHER_ORG})
    assert await AuthInterceptor(FixedClaims(claims)).before("stage", ctx) is None
    assert ctx.data["_auth_context"].org_id is None
    assert ctx.data["_org_id"] is None
    # A user without an organization is not restricted (as in the reference).
    assert await OrgEnforcementInterceptor().before("stage", ctx) is None
    assert [t for t, _ in sink.events] == ["auth.login"]


async def test_a_user_of_an_organization_is_still_kept_in_it() -> None:
    ctx, sink = our_ctx({"_auth_token": "t", "_resource_org_id": OTHER_ORG})
    assert await AuthInterceptor(FixedClaims(_claims(org_id=ORG))).before("stage", ctx) is None
    assert await OrgEnforcementInterceptor().before("stage", ctx) == InterceptorResult(
        stage_ran=False, error="Cross-tenant access denied"
    )
    assert [t for t, _ in sink.events] == ["auth.login", "tenant.access_denied"]
