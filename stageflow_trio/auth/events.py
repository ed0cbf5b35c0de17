"""Audit events of authentication and tenancy: their payloads, as frozen values.

:class:`~stageflow_trio.auth.interceptors.AuthInterceptor` emits
``auth.login`` and ``auth.failure``;
:class:`~stageflow_trio.auth.interceptors.OrgEnforcementInterceptor` emits
``tenant.access_denied``. Each event's ``to_dict()`` is the payload, with ids as
strings and ``type`` naming the event.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now_iso

__all__ = [
    "AuthFailureEvent",
    "AuthLoginEvent",
    "TenantAccessDeniedEvent",
]


def _id_str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


@frozen_compat
@attrs.frozen
class AuthLoginEvent:
    """A user authenticated (``auth.login``).

    Attributes:
        user_id: The authenticated user.
        session_id: Their session.
        org_id: Their organization, if any.
        timestamp: When, as an ISO-8601 UTC string (default: now).
        request_id: The request's correlation id.
        pipeline_run_id: The pipeline run's correlation id.
    """

    user_id: UUID
    session_id: UUID
    org_id: UUID | None = None
    timestamp: str = attrs.field(factory=utc_now_iso)
    request_id: UUID | None = None
    pipeline_run_id: UUID | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``auth.login`` payload; keys in the reference's order."""
        return {
            "type": "auth.login",
            "user_id": str(self.user_id),
            "org_id": _id_str(self.org_id),
            "session_id": str(self.session_id),
            "timestamp": self.timestamp,
            "request_id": _id_str(self.request_id),
            "pipeline_run_id": _id_str(self.pipeline_run_id),
        }


@frozen_compat
@attrs.frozen
class AuthFailureEvent:
    """Authentication failed (``auth.failure``).

    Attributes:
        reason: The failure code (an :class:`~stageflow_trio.auth.errors.AuthenticationError`
            ``code``, or ``"missing_token"``).
        ip_address: The client's IP address, if known.
        user_agent: The client's user agent, if known.
        timestamp: When, as an ISO-8601 UTC string (default: now).
        request_id: The request's correlation id.
        user_id: The user, if known (e.g. from an expired token).
    """

    reason: str
    ip_address: str | None = None
    user_agent: str | None = None
    timestamp: str = attrs.field(factory=utc_now_iso)
    request_id: UUID | None = None
    user_id: UUID | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``auth.failure`` payload; keys in the reference's order."""
        return {
            "type": "auth.failure",
            "reason": self.reason,
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
            "timestamp": self.timestamp,
            "request_id": _id_str(self.request_id),
            "user_id": _id_str(self.user_id),
        }


@frozen_compat
@attrs.frozen
class TenantAccessDeniedEvent:
    """A user was denied another tenant's resource (``tenant.access_denied``).

    Attributes:
        user_org_id: The user's organization.
        resource_org_id: The resource's organization.
        user_id: The user, if known.
        timestamp: When, as an ISO-8601 UTC string (default: now).
        request_id: The request's correlation id.
        pipeline_run_id: The pipeline run's correlation id.
    """

    user_org_id: UUID
    resource_org_id: UUID
    user_id: UUID | None = None
    timestamp: str = attrs.field(factory=utc_now_iso)
    request_id: UUID | None = None
    pipeline_run_id: UUID | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``tenant.access_denied`` payload; keys in the reference's order."""
        return {
            "type": "tenant.access_denied",
            "user_org_id": str(self.user_org_id),
            "resource_org_id": str(self.resource_org_id),
            "user_id": _id_str(self.user_id),
            "timestamp": self.timestamp,
            "request_id": _id_str(self.request_id),
            "pipeline_run_id": _id_str(self.pipeline_run_id),
        }
