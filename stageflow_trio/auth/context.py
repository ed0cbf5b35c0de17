"""Who is calling, and on behalf of which organization: :class:`AuthContext`, :class:`OrgContext`.

Both are frozen values. :class:`~stageflow_trio.auth.interceptors.AuthInterceptor`
builds an :class:`AuthContext` from a validated token's claims and stores it in
``ctx.data["_auth_context"]``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args
from uuid import UUID

import attrs

from stageflow_trio._args import check_str
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.auth._checks import to_optional_uuid, to_str_tuple, to_uuid

__all__ = [
    "AuthContext",
    "OrgContext",
    "PlanTier",
]

PlanTier = Literal["starter", "pro", "enterprise"]
"""The subscription tiers an :class:`OrgContext` may have."""

_PLAN_TIERS: tuple[str, ...] = get_args(PlanTier)


# attrs' mypy plugin understands only named functions as converters: one per field.
def _auth_user_id(value: UUID | str) -> UUID:
    return to_uuid("AuthContext", "user_id", value)


def _auth_session_id(value: UUID | str) -> UUID:
    return to_uuid("AuthContext", "session_id", value)


def _auth_org_id(value: UUID | str | None) -> UUID | None:
    return to_optional_uuid("AuthContext", "org_id", value)


def _auth_roles(value: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return to_str_tuple("AuthContext", "roles", value)


def _auth_email(_: object, __: attrs.Attribute[Any], value: object) -> None:
    check_str("AuthContext", "email", value, optional=True)


@frozen_compat
@attrs.frozen(repr=False)
class AuthContext:
    """An authenticated user, as a validated token describes them.

    UUID fields also take UUID strings (converted); ``roles`` takes any
    iterable of str (stored as a tuple).

    Attributes:
        user_id: The user's id.
        session_id: The current session's id.
        email: The user's email address, if known.
        org_id: The user's organization (tenant), or None for a personal account.
        roles: The user's role names.

    Raises:
        TypeError, ValueError: a field of the wrong type, or a string that is not a UUID;
            the message names the field.
    """

    user_id: UUID = attrs.field(converter=_auth_user_id)
    session_id: UUID = attrs.field(converter=_auth_session_id)
    email: str | None = attrs.field(default=None, validator=_auth_email)
    org_id: UUID | None = attrs.field(default=None, converter=_auth_org_id)
    roles: tuple[str, ...] = attrs.field(default=(), converter=_auth_roles)

    def has_role(self, role: str) -> bool:
        """Whether the user has the role named ``role``."""
        return role in self.roles

    def is_admin(self) -> bool:
        """Whether the user has the ``"admin"`` or the ``"org_admin"`` role."""
        return "admin" in self.roles or "org_admin" in self.roles

    @property
    def is_authenticated(self) -> bool:
        """Always True: an AuthContext exists only for an authenticated user."""
        return True

    def __repr__(self) -> str:
        # The email is masked (first three characters) and the session id left out, so
        # that logging a context does not leak either.
        email = f"{self.email[:3]}***" if self.email else None
        return (
            f"AuthContext(user_id={self.user_id!r}, email={email!r}, "
            f"org_id={self.org_id!r}, roles={self.roles!r})"
        )


def _org_org_id(value: UUID | str) -> UUID:
    return to_uuid("OrgContext", "org_id", value)


def _org_tenant_id(value: UUID | str | None) -> UUID | None:
    return to_optional_uuid("OrgContext", "tenant_id", value)


def _org_features(value: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return to_str_tuple("OrgContext", "features", value)


def _org_plan_tier(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value not in _PLAN_TIERS:
        raise ValueError(f"OrgContext: plan_tier must be one of {list(_PLAN_TIERS)}; got {value!r}")


@frozen_compat
@attrs.frozen(repr=False)
class OrgContext:
    """An organization: its tenant, subscription tier and enabled features.

    Attributes:
        org_id: The organization's id.
        tenant_id: The tenant's id, where it differs from ``org_id``.
        plan_tier: ``"starter"`` (the default), ``"pro"`` or ``"enterprise"``.
        features: The names of the enabled feature flags.

    Raises:
        TypeError, ValueError: a field of the wrong type, a string that is not a UUID,
            or an unknown plan tier; the message names the field.
    """

    org_id: UUID = attrs.field(converter=_org_org_id)
    tenant_id: UUID | None = attrs.field(default=None, converter=_org_tenant_id)
    plan_tier: PlanTier = attrs.field(default="starter", validator=_org_plan_tier)
    features: tuple[str, ...] = attrs.field(default=(), converter=_org_features)

    def has_feature(self, feature: str) -> bool:
        """Whether the feature flag named ``feature`` is enabled."""
        return feature in self.features

    def __repr__(self) -> str:
        return (
            f"OrgContext(org_id={self.org_id!r}, plan_tier={self.plan_tier!r}, "
            f"features={self.features!r})"
        )
