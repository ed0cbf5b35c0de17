"""AuthInterceptor, OrgEnforcementInterceptor and MockJwtValidator: outcomes, events, and the reference."""

from __future__ import annotations

import asyncio
import logging
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest
import trio
import trio.testing

from stageflow_trio.auth import (
    AuthContext,
    AuthInterceptor,
    InvalidTokenError,
    JwtValidator,
    MissingClaimsError,
    MockJwtValidator,
    OrgEnforcementInterceptor,
    TokenExpiredError,
)
from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
)
from stageflow_trio.stages.context import PipelineContext
from tests.auth.helpers import (
    MOCK_SESSION,
    MOCK_USER,
    ORG,
    OTHER_ORG,
    REQUEST_ID,
    RUN_ID,
    USER,
    our_ctx,
    ref_ctx,
    without_timestamps,
)


class FixedClaims:
    """A JwtValidator that returns the same claims for any token (or raises ``error``)."""

    def __init__(self, claims: Any = None, error: Exception | None = None) -> None:
        self.claims = claims
        self.error = error
        self.tokens: list[str] = []

    async def validate(self, token: str) -> Any:
        self.tokens.append(token)
        if self.error is not None:
            raise self.error
        return self.claims


def _result(result: Any) -> Any:
    return None if result is None else (result.stage_ran, result.result, result.error)


def _auth_fields(auth: Any) -> tuple[Any, ...]:
    return (auth.user_id, auth.session_id, auth.email, auth.org_id, auth.roles, repr(auth))


def _data_view(data: dict[str, Any]) -> dict[str, Any]:
    view = dict(data)
    if "_auth_context" in view:
        view["_auth_context"] = _auth_fields(view["_auth_context"])
    return view


def run_ours(interceptor: BaseInterceptor, data: dict[str, Any]) -> tuple[Any, ...]:
    ctx, sink = our_ctx(data)
    result = trio.run(interceptor.before, "stage", ctx)
    return _result(result), without_timestamps(sink.events), _data_view(ctx.data)


def run_reference(interceptor: Any, reference: ModuleType, data: dict[str, Any]) -> tuple[Any, ...]:
    ctx, sink = ref_ctx(reference, data)
    result = asyncio.run(interceptor.before("stage", ctx))
    return _result(result), without_timestamps(sink.events), _data_view(ctx.data)


# --- MockJwtValidator -------------------------------------------------------------------

MOCK_TOKENS = [
    "expired_abc",
    "invalid_abc",
    "missing_abc",
    f"valid_{USER}_{ORG}_admin,editor",
    f"valid_{USER}",
    f"valid_{USER}_{ORG}_",
    "valid_short_alsoshort_viewer",
    "valid_",
    "anything-else",
]


@pytest.mark.parametrize("token", MOCK_TOKENS)
def test_mock_validator_matches_the_reference(token: str, ref_auth: ModuleType) -> None:
    def outcome(validate: Any, runner: Any) -> Any:
        try:
            return ("ok", runner(validate, token))
        except Exception as exc:
            return (type(exc).__name__, str(exc), exc.code, vars(exc))  # type: ignore[attr-defined]

    ours = outcome(MockJwtValidator().validate, trio.run)
    theirs = outcome(ref_auth.MockJwtValidator().validate, lambda fn, t: asyncio.run(fn(t)))
    assert ours == theirs


async def test_mock_validator_outcomes() -> None:
    validator = MockJwtValidator()
    assert await validator.validate(f"valid_{USER}_{ORG}_admin,editor") == {
        "user_id": USER,
        "org_id": ORG,
        "email": "user@example.com",
        "session_id": MOCK_SESSION,
        "roles": ("admin", "editor"),
    }
    assert await validator.validate("other") == {
        "user_id": MOCK_USER,
        "session_id": MOCK_SESSION,
        "roles": (),
    }
    with pytest.raises(TokenExpiredError, match=r"^Token has expired$"):
        await validator.validate("expired_x")
    with pytest.raises(InvalidTokenError, match=r"^Invalid token signature$"):
        await validator.validate("invalid_x")
    with pytest.raises(MissingClaimsError, match=r"^Missing required claims$") as info:
        await validator.validate("missing_x")
    assert info.value.missing_claims == ["user_id"]


async def test_mock_validator_is_a_checkpoint() -> None:
    with trio.testing.assert_checkpoints():
        await MockJwtValidator().validate("other")
    with trio.testing.assert_checkpoints(), pytest.raises(TokenExpiredError):
        await MockJwtValidator().validate("expired_x")


def test_validators_satisfy_the_protocol() -> None:
    validator: JwtValidator = MockJwtValidator()
    assert AuthInterceptor(validator)._jwt_validator is validator
    assert isinstance(AuthInterceptor()._jwt_validator, MockJwtValidator)


# --- AuthInterceptor, against the reference ---------------------------------------------

AUTH_CASES = [
    pytest.param({}, id="no-token"),
    pytest.param({"_auth_token": "", "_client_ip": "10.0.0.1"}, id="empty-token"),
    pytest.param(
        {"_auth_token": "expired_x", "_client_ip": "10.0.0.1", "_user_agent": "curl/8"},
        id="expired",
    ),
    pytest.param({"_auth_token": "invalid_x"}, id="invalid"),
    pytest.param({"_auth_token": "missing_x"}, id="missing-claims"),
    pytest.param({"_auth_token": f"valid_{USER}_{ORG}_admin,editor"}, id="valid-with-org"),
    pytest.param({"auth_token": f"valid_{USER}"}, id="fallback-key"),
    pytest.param({"_auth_token": "", "auth_token": "plain"}, id="empty-then-fallback"),
    pytest.param(
        {"_auth_token": f"valid_{USER}_{ORG}", "auth_token": "expired_x"}, id="first-key-wins"
    ),
]


@pytest.mark.parametrize("data", AUTH_CASES)
def test_auth_interceptor_matches_the_reference(
    data: dict[str, Any], reference: ModuleType, ref_auth: ModuleType
) -> None:
    ours = run_ours(AuthInterceptor(), data)
    theirs = run_reference(ref_auth.AuthInterceptor(), reference, data)
    assert ours == theirs


CLAIM_CASES = [
    pytest.param({"user_id": USER, "session_id": MOCK_SESSION}, id="minimal"),
    pytest.param(
        {
            "user_id": USER,
            "session_id": MOCK_SESSION,
            "org_id": ORG,
            "email": "alice@example.com",
            "roles": ["org_admin"],
        },
        id="full",
    ),
    pytest.param({"session_id": MOCK_SESSION}, id="no-user"),
    pytest.param({"user_id": "", "session_id": MOCK_SESSION}, id="empty-user"),
    pytest.param({"user_id": USER}, id="no-session"),
    pytest.param({"user_id": "not-a-uuid", "session_id": MOCK_SESSION}, id="bad-user-uuid"),
    pytest.param({"user_id": USER, "session_id": MOCK_SESSION, "org_id": "x"}, id="bad-org"),
    pytest.param({"user_id": USER, "session_id": MOCK_SESSION, "org_id": ""}, id="empty-org"),
    pytest.param({"user_id": USER, "session_id": MOCK_SESSION, "roles": ()}, id="no-roles"),
]


@pytest.mark.parametrize("claims", CLAIM_CASES)
def test_claims_become_the_same_auth_context(
    claims: dict[str, Any], reference: ModuleType, ref_auth: ModuleType
) -> None:
    data = {"_auth_token": "t"}
    ours = run_ours(AuthInterceptor(FixedClaims(claims)), data)
    theirs = run_reference(ref_auth.AuthInterceptor(FixedClaims(claims)), reference, data)
    assert ours == theirs


async def test_success_sets_the_context_and_emits_login(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stageflow_trio.auth_interceptor")
    ctx, sink = our_ctx({"_auth_token": f"valid_{USER}_{ORG}_admin"})
    assert await AuthInterceptor().before("stage", ctx) is None
    expected = AuthContext(
        user_id=UUID(USER),
        session_id=UUID(MOCK_SESSION),
        email="user@example.com",
        org_id=UUID(ORG),
        roles=("admin",),
    )
    assert ctx.data["_auth_context"] == expected
    assert ctx.data["_user_id"] == UUID(USER)
    assert ctx.data["_org_id"] == UUID(ORG)
    assert without_timestamps(sink.events) == [
        (
            "auth.login",
            {
                "type": "auth.login",
                "user_id": USER,
                "org_id": ORG,
                "session_id": MOCK_SESSION,
                "request_id": str(REQUEST_ID),
                "pipeline_run_id": str(RUN_ID),
            },
        )
    ]
    [record] = caplog.records
    assert record.getMessage() == "Authentication successful"
    assert (record.user_id, record.org_id) == (USER, ORG)  # type: ignore[attr-defined]


async def test_failure_short_circuits_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="stageflow_trio.auth_interceptor")
    ctx, sink = our_ctx({"_auth_token": "expired_x", "_user_agent": "curl/8"})
    result = await AuthInterceptor().before("stage", ctx)
    assert result == InterceptorResult(stage_ran=False, error="Token has expired")
    assert "_auth_context" not in ctx.data
    assert without_timestamps(sink.events) == [
        (
            "auth.failure",
            {
                "type": "auth.failure",
                "reason": "token_expired",
                "ip_address": None,
                "user_agent": "curl/8",
                "request_id": str(REQUEST_ID),
                "user_id": None,
            },
        )
    ]
    [record] = caplog.records
    assert record.getMessage() == "Authentication failed: token_expired"
    assert (record.reason, record.error_detail) == ("token_expired", "Token has expired")  # type: ignore[attr-defined]


async def test_missing_token_logs_without_detail(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="stageflow_trio.auth_interceptor")
    ctx, _ = our_ctx({})
    validator = FixedClaims({})
    result = await AuthInterceptor(validator).before("stage", ctx)
    assert result == InterceptorResult(stage_ran=False, error="Missing authentication token")
    assert validator.tokens == []
    [record] = caplog.records
    assert record.error_detail is None  # type: ignore[attr-defined]


# Where the reference crashes (AttributeError, TypeError) or splits a role into letters.
DIVERGENT_CLAIMS = [
    pytest.param(
        {"user_id": UUID(USER), "session_id": UUID(MOCK_SESSION), "org_id": UUID(ORG)},
        None,
        (UUID(USER), UUID(ORG), ()),
        id="uuid-objects",
    ),
    pytest.param(
        {"user_id": USER, "session_id": MOCK_SESSION, "roles": "admin"},
        None,
        (UUID(USER), None, ("admin",)),
        id="one-role-as-str",
    ),
    pytest.param(
        {"user_id": USER, "session_id": MOCK_SESSION, "roles": None},
        None,
        (UUID(USER), None, ()),
        id="roles-none",
    ),
    pytest.param(
        {"user_id": 5, "session_id": MOCK_SESSION},
        "Invalid UUID in claims: expected a string; got int",
        None,
        id="int-user",
    ),
    pytest.param(
        {"user_id": USER, "session_id": MOCK_SESSION, "roles": [1]},
        "Invalid roles claim: expected a list of strings",
        None,
        id="bad-roles",
    ),
    pytest.param(
        {"user_id": USER, "session_id": MOCK_SESSION, "roles": {"admin": True}},
        "Invalid roles claim: expected a list of strings",
        None,
        id="roles-mapping",
    ),
    pytest.param(
        {"user_id": USER, "session_id": MOCK_SESSION, "email": 7},
        "Invalid email claim: expected a string; got int",
        None,
        id="bad-email",
    ),
    pytest.param(["user_id"], "Invalid claims: expected a mapping; got list", None, id="a-list"),
]


@pytest.mark.parametrize(("claims", "error", "expected"), DIVERGENT_CLAIMS)
async def test_unusual_claims_are_handled(claims: Any, error: str | None, expected: Any) -> None:
    ctx, sink = our_ctx({"_auth_token": "t"})
    result = await AuthInterceptor(FixedClaims(claims)).before("stage", ctx)
    if error is None:
        assert result is None
        auth = ctx.data["_auth_context"]
        assert (auth.user_id, auth.org_id, auth.roles) == expected
        assert [event_type for event_type, _ in sink.events] == ["auth.login"]
    else:
        assert result == InterceptorResult(stage_ran=False, error=error)
        assert [(t, d["reason"]) for t, d in without_timestamps(sink.events)] == [
            ("auth.failure", "invalid_token")
        ]


async def test_other_validator_errors_fail_closed() -> None:
    # Raised as the one hook error the chain lets through (see test_interceptors_fail_closed).
    ctx, sink = our_ctx({"_auth_token": "t"})
    with pytest.raises(
        CriticalInterceptorError,
        match=r"^auth interceptor failed, so stage 's' does not run: OSError: JWKS endpoint down$",
    ) as info:
        await AuthInterceptor(FixedClaims(error=OSError("JWKS endpoint down"))).before("s", ctx)
    assert isinstance(info.value.__cause__, OSError)
    assert sink.events == []


def test_bad_validator_is_rejected() -> None:
    with pytest.raises(
        TypeError,
        match=r"^AuthInterceptor: jwt_validator must have an async validate\(token\) method; "
        r"got object$",
    ):
        AuthInterceptor(object())  # type: ignore[arg-type]


def test_names_and_priorities_match_the_reference(ref_auth: ModuleType) -> None:
    for ours, theirs in (
        (AuthInterceptor(), ref_auth.AuthInterceptor()),
        (OrgEnforcementInterceptor(), ref_auth.OrgEnforcementInterceptor()),
    ):
        assert (ours.name, ours.priority) == (theirs.name, theirs.priority)
    assert (AuthInterceptor.name, AuthInterceptor.priority) == ("auth", 1)
    assert (OrgEnforcementInterceptor.name, OrgEnforcementInterceptor.priority) == (
        "org_enforcement",
        2,
    )


# --- OrgEnforcementInterceptor ----------------------------------------------------------

ORG_CASES = [
    pytest.param(None, None, id="no-auth-context"),
    pytest.param(ORG, None, id="no-resource"),
    pytest.param(ORG, ORG, id="same-org-str"),
    pytest.param(ORG, UUID(ORG), id="same-org-uuid"),
    pytest.param(ORG, OTHER_ORG, id="other-org-str"),
    pytest.param(ORG, UUID(OTHER_ORG), id="other-org-uuid"),
    pytest.param(ORG, "garbage", id="bad-resource"),
    pytest.param("", OTHER_ORG, id="user-without-org"),
]


def _org_data(auth_class: Any, user_org: str | None, resource: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if user_org is not None:
        data["_auth_context"] = auth_class(
            user_id=UUID(USER),
            session_id=UUID(MOCK_SESSION),
            org_id=UUID(user_org) if user_org else None,
        )
    if resource is not None:
        data["_resource_org_id"] = resource
    return data


@pytest.mark.parametrize(("user_org", "resource"), ORG_CASES)
def test_org_enforcement_matches_the_reference(
    user_org: str | None, resource: Any, reference: ModuleType, ref_auth: ModuleType
) -> None:
    ours = run_ours(OrgEnforcementInterceptor(), _org_data(AuthContext, user_org, resource))
    theirs = run_reference(
        ref_auth.OrgEnforcementInterceptor(),
        reference,
        _org_data(ref_auth.AuthContext, user_org, resource),
    )
    assert ours == theirs


async def test_cross_tenant_access_is_denied_with_an_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="stageflow_trio.auth_interceptor")
    ctx, sink = our_ctx(_org_data(AuthContext, ORG, OTHER_ORG))
    result = await OrgEnforcementInterceptor().before("stage", ctx)
    assert result == InterceptorResult(stage_ran=False, error="Cross-tenant access denied")
    assert without_timestamps(sink.events) == [
        (
            "tenant.access_denied",
            {
                "type": "tenant.access_denied",
                "user_org_id": ORG,
                "resource_org_id": OTHER_ORG,
                "user_id": USER,
                "request_id": str(REQUEST_ID),
                "pipeline_run_id": str(RUN_ID),
            },
        )
    ]
    [record] = caplog.records
    assert record.getMessage() == "Cross-tenant access denied"
    assert (record.user_org_id, record.resource_org_id) == (ORG, OTHER_ORG)  # type: ignore[attr-defined]


async def test_a_foreign_auth_context_counts_as_missing() -> None:
    ctx, _ = our_ctx({"_auth_context": {"org_id": ORG}})
    result = await OrgEnforcementInterceptor().before("stage", ctx)
    assert result == InterceptorResult(
        stage_ran=False, error="AuthContext not available - ensure AuthInterceptor runs first"
    )


async def test_after_hooks_do_nothing() -> None:
    ctx, sink = our_ctx({"k": 1})
    for interceptor in (AuthInterceptor(), OrgEnforcementInterceptor()):
        assert await interceptor.after("stage", None, ctx) is None  # type: ignore[func-returns-value,arg-type]
    assert ctx.data == {"k": 1}
    assert sink.events == []


# --- in a run ------------------------------------------------------------------------------


async def _who(ctx: PipelineContext) -> dict[str, Any]:
    auth = ctx.data["_auth_context"]
    return {"user": str(auth.user_id), "roles": list(auth.roles)}


@pytest.mark.parametrize(
    ("data", "expected_error", "expected_events"),
    [
        ({"_auth_token": f"valid_{USER}_{ORG}_admin"}, None, ["auth.login"]),
        (
            {"_auth_token": f"valid_{USER}_{ORG}", "_resource_org_id": OTHER_ORG},
            "Cross-tenant access denied",
            ["auth.login", "tenant.access_denied"],
        ),
        ({"_auth_token": "invalid_x"}, "Invalid token signature", ["auth.failure"]),
    ],
)
async def test_a_legacy_run_authenticates_each_stage(
    data: dict[str, Any], expected_error: str | None, expected_events: list[str]
) -> None:
    graph = StageGraph(
        [StageSpec(name="who", runner=_who)],
        [OrgEnforcementInterceptor(), AuthInterceptor()],  # sorted by priority
    )
    ctx, sink = our_ctx(data)
    results = await graph.run(ctx)
    result = results["who"]
    if expected_error is None:
        assert result.status == "completed"
        assert result.data == {"user": USER, "roles": ["admin"]}
    else:
        assert result.error == expected_error
        assert result.data == {}
    auth_events = [t for t, _ in sink.events if t.split(".")[0] in ("auth", "tenant")]
    assert auth_events == expected_events
