"""Authentication and authorization errors.

:class:`AuthenticationError` is the root of the auth errors (and a
:class:`~stageflow_trio.errors.StageflowError`); each subclass sets its
``code``, which :class:`~stageflow_trio.auth.interceptors.AuthInterceptor`
reports as the ``reason`` of ``auth.failure`` events.
"""

from __future__ import annotations

from typing import Any

from stageflow_trio._errors import StageflowError

__all__ = [
    "AuthenticationError",
    "CrossTenantAccessError",
    "InvalidTokenError",
    "MissingClaimsError",
    "TokenExpiredError",
]


class AuthenticationError(StageflowError):
    """An authentication failure; the base of every auth error.

    Attributes:
        code: A machine-readable failure code (``"auth_error"`` here; each
            subclass has its own).
    """

    def __init__(self, message: str, code: str = "auth_error") -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.code))


class TokenExpiredError(AuthenticationError):
    """The token's expiry time has passed (code ``"token_expired"``).

    Attributes:
        expired_at: When the token expired, as an ISO-8601 string, if known.
    """

    def __init__(self, message: str = "Token has expired", expired_at: str | None = None) -> None:
        super().__init__(message, code="token_expired")
        self.expired_at = expired_at

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.expired_at))


class InvalidTokenError(AuthenticationError):
    """The token is malformed, badly signed or otherwise unacceptable (code ``"invalid_token"``).

    Attributes:
        reason: What exactly was wrong (e.g. ``"invalid_signature"``, ``"malformed"``), if known.
    """

    def __init__(self, message: str = "Invalid token", reason: str | None = None) -> None:
        super().__init__(message, code="invalid_token")
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.reason))


class MissingClaimsError(AuthenticationError):
    """The token lacks claims the application requires (code ``"missing_claims"``).

    Attributes:
        missing_claims: The names of the missing claims (an empty list if not given).
    """

    def __init__(
        self,
        message: str = "Required claims are missing",
        missing_claims: list[str] | None = None,
    ) -> None:
        super().__init__(message, code="missing_claims")
        self.missing_claims: list[str] = missing_claims or []

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.missing_claims))


class CrossTenantAccessError(AuthenticationError):
    """A user tried to reach another tenant's resources (code ``"cross_tenant_access"``).

    Attributes:
        user_org_id: The user's organization id, if known.
        resource_org_id: The resource's organization id, if known.
    """

    def __init__(
        self,
        message: str = "Cross-tenant access denied",
        user_org_id: str | None = None,
        resource_org_id: str | None = None,
    ) -> None:
        super().__init__(message, code="cross_tenant_access")
        self.user_org_id = user_org_id
        self.resource_org_id = resource_org_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.user_org_id, self.resource_org_id))
