"""Authentication and tenancy: who calls a pipeline, and which tenant's data it may touch.

- :mod:`~stageflow_trio.auth.context`: :class:`AuthContext`, :class:`OrgContext`.
- :mod:`~stageflow_trio.auth.errors`: :class:`AuthenticationError` and its subclasses.
- :mod:`~stageflow_trio.auth.events`: the ``auth.login``, ``auth.failure`` and
  ``tenant.access_denied`` payloads.
- :mod:`~stageflow_trio.auth.interceptors`: :class:`AuthInterceptor`,
  :class:`OrgEnforcementInterceptor`, the :class:`JwtValidator` protocol and
  :class:`MockJwtValidator`.
- :mod:`~stageflow_trio.auth.tenant`: tenant checks and the current tenant (a ContextVar).
- :mod:`stageflow_trio.auth.jwt` (not gathered here; needs the ``jwt`` extra):
  :class:`~stageflow_trio.auth.jwt.SignedJwtValidator`, which checks real tokens.
"""

from __future__ import annotations

from stageflow_trio.auth.context import AuthContext as AuthContext
from stageflow_trio.auth.context import OrgContext as OrgContext
from stageflow_trio.auth.errors import AuthenticationError as AuthenticationError
from stageflow_trio.auth.errors import CrossTenantAccessError as CrossTenantAccessError
from stageflow_trio.auth.errors import InvalidTokenError as InvalidTokenError
from stageflow_trio.auth.errors import MissingClaimsError as MissingClaimsError
from stageflow_trio.auth.errors import TokenExpiredError as TokenExpiredError
from stageflow_trio.auth.events import AuthFailureEvent as AuthFailureEvent
from stageflow_trio.auth.events import AuthLoginEvent as AuthLoginEvent
from stageflow_trio.auth.events import TenantAccessDeniedEvent as TenantAccessDeniedEvent
from stageflow_trio.auth.interceptors import AuthInterceptor as AuthInterceptor
from stageflow_trio.auth.interceptors import JwtValidator as JwtValidator
from stageflow_trio.auth.interceptors import MockJwtValidator as MockJwtValidator
from stageflow_trio.auth.interceptors import (
    OrgEnforcementInterceptor as OrgEnforcementInterceptor,
)
from stageflow_trio.auth.tenant import TenantAwareLogger as TenantAwareLogger
from stageflow_trio.auth.tenant import TenantContext as TenantContext
from stageflow_trio.auth.tenant import TenantIsolationError as TenantIsolationError
from stageflow_trio.auth.tenant import TenantIsolationValidator as TenantIsolationValidator
from stageflow_trio.auth.tenant import clear_current_tenant as clear_current_tenant
from stageflow_trio.auth.tenant import get_current_tenant as get_current_tenant
from stageflow_trio.auth.tenant import require_tenant as require_tenant
from stageflow_trio.auth.tenant import set_current_tenant as set_current_tenant

__all__ = [
    "AuthContext",
    "AuthFailureEvent",
    "AuthInterceptor",
    "AuthLoginEvent",
    "AuthenticationError",
    "CrossTenantAccessError",
    "InvalidTokenError",
    "JwtValidator",
    "MissingClaimsError",
    "MockJwtValidator",
    "OrgContext",
    "OrgEnforcementInterceptor",
    "TenantAccessDeniedEvent",
    "TenantAwareLogger",
    "TenantContext",
    "TenantIsolationError",
    "TenantIsolationValidator",
    "TokenExpiredError",
    "clear_current_tenant",
    "get_current_tenant",
    "require_tenant",
    "set_current_tenant",
]
