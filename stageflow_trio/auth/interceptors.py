"""Interceptors that authenticate each stage call and keep it inside the caller's tenant.

- :class:`AuthInterceptor` (priority 1, outermost) validates the token in
  ``ctx.data["_auth_token"]`` (or ``"auth_token"``) with a :class:`JwtValidator`,
  stores the :class:`~stageflow_trio.auth.context.AuthContext` in
  ``ctx.data["_auth_context"]`` and emits ``auth.login``; without a valid token
  it skips the stage and emits ``auth.failure``.
- :class:`OrgEnforcementInterceptor` (priority 2) skips the stage when
  ``ctx.data["_resource_org_id"]`` names another organization than the user's,
  and emits ``tenant.access_denied``.

A skipped stage is short-circuited the usual way (``InterceptorResult(stage_ran=False,
error=...)``). Events go to ``ctx.event_sink.try_emit``.

Both interceptors fail closed: any other error in ``before`` (a key server that
is down) is raised as a
:class:`~stageflow_trio.pipeline.interceptors.CriticalInterceptorError` (the
original as its ``__cause__``), the one hook error the chain lets through, so
the stage never runs and the run fails. The chain logs and swallows every other
hook error, which for an authorization check would mean running the stage
unauthenticated. An event sink that raises is only logged: the decision stands
(a denial still skips the stage, a login still lets it run).
:class:`MockJwtValidator` is the reference's test validator; a real one, checking
signatures against a key or a JWKS document, is
:class:`stageflow_trio.auth.jwt.SignedJwtValidator`.
"""

# Hooks implement a fixed interface, so unused hook arguments are expected.
# ruff: noqa: ARG002

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import trio

from stageflow_trio._args import error_text, type_of
from stageflow_trio.auth.context import AuthContext
from stageflow_trio.auth.errors import (
    AuthenticationError,
    InvalidTokenError,
    MissingClaimsError,
    TokenExpiredError,
)
from stageflow_trio.auth.events import AuthFailureEvent, AuthLoginEvent, TenantAccessDeniedEvent
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
)

if TYPE_CHECKING:
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult

__all__ = [
    "AuthInterceptor",
    "JwtValidator",
    "MockJwtValidator",
    "OrgEnforcementInterceptor",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.auth_interceptor")

_MOCK_USER_ID = "00000000-0000-0000-0000-000000000001"
_MOCK_SESSION_ID = "00000000-0000-0000-0000-000000000099"


class JwtValidator(Protocol):
    """What :class:`AuthInterceptor` needs: an async ``validate(token)`` returning the claims.

    The claims :class:`AuthInterceptor` reads are ``user_id`` and ``session_id``
    (required, UUIDs or UUID strings), ``org_id`` (optional, the same),
    ``email`` and ``roles`` (optional, a list of str).
    """

    async def validate(self, token: str) -> dict[str, Any]:
        """Validate ``token`` and return its claims.

        Raises:
            TokenExpiredError: the token has expired.
            InvalidTokenError: the token is malformed or its signature is wrong.
            MissingClaimsError: required claims are missing.
        """
        ...


class MockJwtValidator:
    """A validator for tests: the token's prefix decides the outcome.

    - ``"expired_..."``: :class:`~stageflow_trio.auth.errors.TokenExpiredError`;
    - ``"invalid_..."``: :class:`~stageflow_trio.auth.errors.InvalidTokenError`
      (``"Invalid token signature"``);
    - ``"missing_..."``: :class:`~stageflow_trio.auth.errors.MissingClaimsError`
      (``missing_claims=["user_id"]``);
    - ``"valid_<user_id>_<org_id>_<role,role>"``: those claims (each part used
      only if it has the 36 characters of a UUID string; a fixed user id
      otherwise), email ``"user@example.com"`` and a fixed session id;
    - anything else: the fixed user and session ids and no roles;
    - a token that is not a str: :class:`~stageflow_trio.auth.errors.InvalidTokenError`
      (the reference raises AttributeError).
    """

    async def validate(self, token: str) -> dict[str, Any]:
        """The claims of the mock ``token``. A checkpoint.

        Raises:
            TokenExpiredError, InvalidTokenError, MissingClaimsError: see the class.
        """
        await trio.lowlevel.checkpoint()
        if not isinstance(token, str):
            raise InvalidTokenError(f"Invalid token: expected a string; got {type_of(token)}")
        if token.startswith("expired_"):
            raise TokenExpiredError("Token has expired")
        if token.startswith("invalid_"):
            raise InvalidTokenError("Invalid token signature")
        if token.startswith("missing_"):
            raise MissingClaimsError("Missing required claims", missing_claims=["user_id"])
        if not token.startswith("valid_"):
            return {"user_id": _MOCK_USER_ID, "session_id": _MOCK_SESSION_ID, "roles": ()}
        parts = token.split("_")
        user_id = parts[1] if len(parts) > 1 and len(parts[1]) == 36 else _MOCK_USER_ID
        org_id = parts[2] if len(parts) > 2 and len(parts[2]) == 36 else None
        roles = tuple(parts[3].split(",")) if len(parts) > 3 and parts[3] else ()
        return {
            "user_id": user_id,
            "org_id": org_id,
            "email": "user@example.com",
            "session_id": _MOCK_SESSION_ID,
            "roles": roles,
        }


def _claim_uuid(value: object) -> UUID:
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        raise InvalidTokenError(f"Invalid UUID in claims: expected a string; got {type_of(value)}")
    try:
        return UUID(value)
    except ValueError as exc:
        raise InvalidTokenError(f"Invalid UUID in claims: {exc}") from exc


def _claim_roles(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    # One role as a bare string is one role, not its letters.
    roles = (value,) if isinstance(value, str) else value
    if not isinstance(roles, list | tuple) or not all(isinstance(role, str) for role in roles):
        raise InvalidTokenError("Invalid roles claim: expected a list of strings")
    return tuple(roles)


def _auth_context_from_claims(claims: Mapping[str, Any]) -> AuthContext:
    """The AuthContext that validated ``claims`` describe (see :class:`JwtValidator`).

    Raises:
        MissingClaimsError: no ``user_id`` or no ``session_id``.
        InvalidTokenError: an id that is not a UUID, a non-str email, bad roles.
    """
    if not isinstance(claims, Mapping):
        raise InvalidTokenError(f"Invalid claims: expected a mapping; got {type_of(claims)}")
    user_id = claims.get("user_id")
    session_id = claims.get("session_id")
    if not user_id:
        raise MissingClaimsError("Missing user_id claim", missing_claims=["user_id"])
    if not session_id:
        raise MissingClaimsError("Missing session_id claim", missing_claims=["session_id"])
    org_id = claims.get("org_id")
    email = claims.get("email")
    if email is not None and not isinstance(email, str):
        raise InvalidTokenError(f"Invalid email claim: expected a string; got {type_of(email)}")
    return AuthContext(
        user_id=_claim_uuid(user_id),
        session_id=_claim_uuid(session_id),
        email=email,
        # Only an absent, null or empty org_id means "no organization" (a user no
        # organization restricts); any other value must be an id (0 or False is not).
        org_id=None if org_id is None or org_id == "" else _claim_uuid(org_id),
        roles=_claim_roles(claims.get("roles")),
    )


def _try_emit(ctx: PipelineContext, event_type: str, data: dict[str, Any]) -> None:
    """Send an auth event; a sink that raises is logged (it decides nothing).

    The decision stands either way: a denial still skips the stage, a login
    still lets it run. Only a failing check fails closed (see the module).
    """
    try:
        ctx.event_sink.try_emit(type=event_type, data=data)
    except Exception as exc:  # noqa: BLE001 - observability must not decide access
        logger.warning("Failed to emit %s: %s", event_type, exc)


def _fail_closed(interceptor: str, stage_name: str, exc: Exception) -> CriticalInterceptorError:
    # error_text: an error whose __str__ raises would escape as a plain error here,
    # which the chain logs and swallows, and the stage would run unchecked.
    return CriticalInterceptorError(
        f"{interceptor} interceptor failed, so stage {stage_name!r} does not run: "
        f"{type(exc).__name__}: {error_text(exc)}",
        interceptor,
    )


class AuthInterceptor(BaseInterceptor):
    """Authenticates every stage call; runs first (priority 1).

    ``before`` reads the token from ``ctx.data["_auth_token"]``, falling back
    to ``ctx.data["auth_token"]``, and validates it with ``jwt_validator``
    (default: a :class:`MockJwtValidator`). On success it sets
    ``ctx.data["_auth_context"]`` (the AuthContext), ``"_user_id"`` and
    ``"_org_id"``, and emits ``auth.login`` (an :class:`AuthLoginEvent` payload
    with the run's ``request_id`` and ``pipeline_run_id``). On failure it emits
    ``auth.failure`` (an :class:`AuthFailureEvent` payload; ``reason`` is
    ``"missing_token"`` or the error's ``code``; ``ip_address`` and
    ``user_agent`` from ``ctx.data["_client_ip"]`` and ``"_user_agent"``) and
    short-circuits the stage with ``error`` ``"Missing authentication token"``
    or the error's message; a token that is neither str nor bytes counts as
    invalid (``"Invalid token: expected a string; got int"``). Any other error
    (a JWKS endpoint that is down) fails the stage and the run: it is raised as
    a CriticalInterceptorError whose ``__cause__`` is the original.

    Args:
        jwt_validator: Any object with an async ``validate(token)``.

    Raises:
        TypeError: ``jwt_validator`` has no callable ``validate``.
    """

    name: str = "auth"
    priority: int = 1

    def __init__(self, jwt_validator: JwtValidator | None = None) -> None:
        if jwt_validator is None:
            jwt_validator = MockJwtValidator()
        elif not callable(getattr(jwt_validator, "validate", None)):
            raise TypeError(
                f"AuthInterceptor: jwt_validator must have an async validate(token) method; "
                f"got {type_of(jwt_validator)}"
            )
        self._jwt_validator = jwt_validator

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        """Authenticate the call (see the class). A checkpoint when the validator is.

        Raises:
            CriticalInterceptorError: ``validate`` raised an error other than an
                AuthenticationError, or the check failed otherwise (the stage must
                not run: the chain swallows any other error and would run it).
        """
        try:
            return await self._authenticate(ctx)
        except CriticalInterceptorError:
            raise
        except Exception as exc:
            raise _fail_closed(self.name, stage_name, exc) from exc

    async def _authenticate(self, ctx: PipelineContext) -> InterceptorResult | None:
        data = ctx.data
        token = data.get("_auth_token") or data.get("auth_token")
        if not token:
            self._emit_auth_failure(ctx, "missing_token")
            return InterceptorResult(stage_ran=False, error="Missing authentication token")
        try:
            if not isinstance(token, str | bytes):
                # A credential of the wrong type is a bad credential, not an outage.
                raise InvalidTokenError(f"Invalid token: expected a string; got {type_of(token)}")
            claims = await self._jwt_validator.validate(token)  # type: ignore[arg-type]
            auth_context = _auth_context_from_claims(claims)
        except AuthenticationError as exc:
            self._emit_auth_failure(ctx, exc.code, str(exc))
            return InterceptorResult(stage_ran=False, error=str(exc))
        data["_auth_context"] = auth_context
        data["_user_id"] = auth_context.user_id
        data["_org_id"] = auth_context.org_id
        self._emit_auth_login(ctx, auth_context)
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None

    def _emit_auth_login(self, ctx: PipelineContext, auth_context: AuthContext) -> None:
        event = AuthLoginEvent(
            user_id=auth_context.user_id,
            session_id=auth_context.session_id,
            org_id=auth_context.org_id,
            request_id=ctx.request_id,
            pipeline_run_id=ctx.pipeline_run_id,
        )
        _try_emit(ctx, "auth.login", event.to_dict())
        logger.info(
            "Authentication successful",
            extra={
                "user_id": str(auth_context.user_id),
                "org_id": None if auth_context.org_id is None else str(auth_context.org_id),
            },
        )

    def _emit_auth_failure(
        self, ctx: PipelineContext, reason: str, error_message: str | None = None
    ) -> None:
        event = AuthFailureEvent(
            reason=reason,
            request_id=ctx.request_id,
            ip_address=ctx.data.get("_client_ip"),
            user_agent=ctx.data.get("_user_agent"),
        )
        _try_emit(ctx, "auth.failure", event.to_dict())
        logger.warning(
            "Authentication failed: %s",
            reason,
            extra={"reason": reason, "error_detail": error_message},
        )


class OrgEnforcementInterceptor(BaseInterceptor):
    """Keeps every stage call inside the user's organization; runs after auth (priority 2).

    ``before`` needs the AuthContext that :class:`AuthInterceptor` stored (else
    it skips the stage: ``"AuthContext not available - ensure AuthInterceptor
    runs first"``). When ``ctx.data["_resource_org_id"]`` is set (a UUID or a
    UUID string; otherwise ``"Invalid resource_org_id format: {value}"``) and
    the user belongs to an organization other than it, the stage is skipped
    with ``"Cross-tenant access denied"`` and ``tenant.access_denied`` is
    emitted. A user without an organization is not restricted. An error in the
    check itself is raised as a CriticalInterceptorError (fails closed).
    """

    name: str = "org_enforcement"
    priority: int = 2

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        """Check the call's organization (see the class). Not a checkpoint.

        Raises:
            CriticalInterceptorError: the check itself failed (the stage must not
                run: the chain swallows any other error and would run it).
        """
        try:
            return self._enforce(ctx)
        except Exception as exc:
            raise _fail_closed(self.name, stage_name, exc) from exc

    def _enforce(self, ctx: PipelineContext) -> InterceptorResult | None:
        auth_context = ctx.data.get("_auth_context")
        if not isinstance(auth_context, AuthContext):
            return InterceptorResult(
                stage_ran=False,
                error="AuthContext not available - ensure AuthInterceptor runs first",
            )
        resource_org_id = ctx.data.get("_resource_org_id")
        if resource_org_id is None:
            return None
        if isinstance(resource_org_id, str):
            try:
                resource_org_id = UUID(resource_org_id)
            except ValueError:
                return InterceptorResult(
                    stage_ran=False, error=f"Invalid resource_org_id format: {resource_org_id}"
                )
        user_org_id = auth_context.org_id
        if user_org_id is not None and resource_org_id != user_org_id:
            self._emit_tenant_violation(ctx, auth_context, user_org_id, resource_org_id)
            return InterceptorResult(stage_ran=False, error="Cross-tenant access denied")
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None

    def _emit_tenant_violation(
        self,
        ctx: PipelineContext,
        auth_context: AuthContext,
        user_org_id: UUID,
        resource_org_id: Any,
    ) -> None:
        event = TenantAccessDeniedEvent(
            user_org_id=user_org_id,
            resource_org_id=resource_org_id,
            user_id=auth_context.user_id,
            request_id=ctx.request_id,
            pipeline_run_id=ctx.pipeline_run_id,
        )
        _try_emit(ctx, "tenant.access_denied", event.to_dict())
        logger.warning(
            "Cross-tenant access denied",
            extra={
                "user_org_id": str(user_org_id),
                "resource_org_id": str(resource_org_id),
                "user_id": str(auth_context.user_id),
            },
        )
