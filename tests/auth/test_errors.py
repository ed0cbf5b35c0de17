"""The auth errors: codes, defaults, attributes, pickling, and the reference."""

from __future__ import annotations

import pickle
from types import ModuleType
from typing import Any

import pytest

from stageflow_trio.auth.errors import (
    AuthenticationError,
    CrossTenantAccessError,
    InvalidTokenError,
    MissingClaimsError,
    TokenExpiredError,
)
from stageflow_trio.errors import StageflowError

CASES: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("AuthenticationError", ("denied",), {}),
    ("AuthenticationError", ("denied", "custom"), {}),
    ("TokenExpiredError", (), {}),
    ("TokenExpiredError", ("old",), {"expired_at": "2026-01-01T00:00:00+00:00"}),
    ("InvalidTokenError", (), {}),
    ("InvalidTokenError", ("bad sig",), {"reason": "invalid_signature"}),
    ("MissingClaimsError", (), {}),
    ("MissingClaimsError", ("no sub",), {"missing_claims": ["sub", "sid"]}),
    ("CrossTenantAccessError", (), {}),
    ("CrossTenantAccessError", ("no",), {"user_org_id": "a", "resource_org_id": "b"}),
]


def _state(error: Exception) -> tuple[Any, ...]:
    return (type(error).__name__, str(error), error.args, vars(error))


@pytest.mark.parametrize(("name", "args", "kwargs"), CASES)
def test_errors_match_the_reference(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], ref_auth: ModuleType
) -> None:
    from stageflow_trio.auth import errors

    ours = getattr(errors, name)(*args, **kwargs)
    theirs = getattr(ref_auth, name)(*args, **kwargs)
    assert _state(ours) == _state(theirs)


@pytest.mark.parametrize(("name", "args", "kwargs"), CASES)
def test_errors_pickle_with_their_attributes(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    from stageflow_trio.auth import errors

    error = getattr(errors, name)(*args, **kwargs)
    copy = pickle.loads(pickle.dumps(error))
    assert _state(copy) == _state(error)


def test_codes_defaults_and_hierarchy() -> None:
    assert [
        (type(e).__name__, str(e), e.code)
        for e in (
            AuthenticationError("x"),
            TokenExpiredError(),
            InvalidTokenError(),
            MissingClaimsError(),
            CrossTenantAccessError(),
        )
    ] == [
        ("AuthenticationError", "x", "auth_error"),
        ("TokenExpiredError", "Token has expired", "token_expired"),
        ("InvalidTokenError", "Invalid token", "invalid_token"),
        ("MissingClaimsError", "Required claims are missing", "missing_claims"),
        ("CrossTenantAccessError", "Cross-tenant access denied", "cross_tenant_access"),
    ]
    assert TokenExpiredError().expired_at is None
    assert InvalidTokenError().reason is None
    assert MissingClaimsError().missing_claims == []
    error = CrossTenantAccessError()
    assert (error.user_org_id, error.resource_org_id) == (None, None)
    for cls in (TokenExpiredError, InvalidTokenError, MissingClaimsError, CrossTenantAccessError):
        assert issubclass(cls, AuthenticationError)
    assert issubclass(AuthenticationError, StageflowError)
