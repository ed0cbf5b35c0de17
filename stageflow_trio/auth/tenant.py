"""Tenant isolation: a tenant context, an access recorder, tenant-tagged logging, the current tenant.

These are application-level checks; a production deployment adds isolation
below the application (row-level security, network segmentation).

- :class:`TenantContext` checks that a resource belongs to the tenant
  (:meth:`~TenantContext.validate_access`) and gives loggers that tag every record.
- :class:`TenantIsolationValidator` records every resource a run touches and
  reports (or, strict, refuses) accesses to other tenants.
- :func:`set_current_tenant`, :func:`get_current_tenant`,
  :func:`clear_current_tenant` and :func:`require_tenant` keep the current
  tenant in a :class:`~contextvars.ContextVar`.

How the current tenant flows under trio: every task runs in its own copy of the
context, taken when the task is spawned, from the task that calls
``nursery.start_soon`` (or ``start``). So a tenant set in a task is seen by that
task and by every task it spawns afterwards, never by its parent or its
siblings, and a later change in the parent does not reach children already
spawned. Two runs started in one nursery, each setting its own tenant, never see
each other's. Inside a run the stages follow the engine's tasks: a tenant set
before ``run()`` is seen by every stage and by the tasks they start; one set by a
stage is seen by the stages it releases (see docs/auth.md).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs

from stageflow_trio._args import check_flag, type_of
from stageflow_trio._errors import StageflowError
from stageflow_trio._globals import register_global_reset
from stageflow_trio.auth._checks import to_optional_uuid, to_uuid

if TYPE_CHECKING:
    from stageflow_trio.context.context_snapshot import ContextSnapshot

__all__ = [
    "TenantAwareLogger",
    "TenantContext",
    "TenantIsolationError",
    "TenantIsolationValidator",
    "clear_current_tenant",
    "get_current_tenant",
    "require_tenant",
    "set_current_tenant",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.auth.tenant")

_current_tenant: ContextVar[UUID | None] = ContextVar("current_tenant", default=None)


class TenantIsolationError(StageflowError):
    """Tenant isolation was violated, or a tenant was required and none is set.

    Attributes:
        expected_org_id: The tenant the operation belongs to, if known.
        actual_org_id: The tenant of the resource it reached, if known.
        operation: What was attempted, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        expected_org_id: UUID | None = None,
        actual_org_id: UUID | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.expected_org_id = expected_org_id
        self.actual_org_id = actual_org_id
        self.operation = operation

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_isolation_error, (str(self), self.__dict__.copy()))


def _rebuild_isolation_error(message: str, state: dict[str, Any]) -> TenantIsolationError:
    error = TenantIsolationError(message)
    error.__dict__.update(state)
    return error


def _check_resource_org_id(owner: str, param: str, value: object) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    raise TypeError(f"{owner}: {param} must be a UUID or None; got {type_of(value)}")


def _tenant_org_id(value: UUID | str) -> UUID:
    return to_uuid("TenantContext", "org_id", value)


def _tenant_user_id(value: UUID | str | None) -> UUID | None:
    return to_optional_uuid("TenantContext", "user_id", value)


def _tenant_session_id(value: UUID | str | None) -> UUID | None:
    return to_optional_uuid("TenantContext", "session_id", value)


def _tenant_metadata(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict):
        raise TypeError(f"TenantContext: metadata must be a dict; got {type_of(value)}")


def _id_str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


@attrs.define
class TenantContext:
    """The tenant an operation runs for, with checks and loggers bound to it.

    A mutable value, like the reference's: ``metadata`` is the application's.
    UUID fields also take UUID strings (converted).

    Attributes:
        org_id: The tenant's organization id.
        user_id: The acting user, if known.
        session_id: The session, if known.
        metadata: Free-form data of the application's.
    """

    org_id: UUID = attrs.field(converter=_tenant_org_id)
    user_id: UUID | None = attrs.field(default=None, converter=_tenant_user_id)
    session_id: UUID | None = attrs.field(default=None, converter=_tenant_session_id)
    metadata: dict[str, Any] = attrs.field(factory=dict, validator=_tenant_metadata)

    def validate_access(self, resource_org_id: UUID | None, *, operation: str = "access") -> None:
        """Allow access to a resource of ``resource_org_id``, or raise.

        A resource without a tenant (None) is shared and always allowed. A
        refused access is logged as a warning (``event``
        ``"tenant_isolation_violation"``) before raising.

        Raises:
            TenantIsolationError: the resource belongs to another tenant;
                the message is ``"Cross-tenant access denied: {operation}"``.
            TypeError: ``resource_org_id`` is neither a UUID nor None, or
                ``operation`` is not a str.
        """
        owner = "TenantContext.validate_access"
        resource = _check_resource_org_id(owner, "resource_org_id", resource_org_id)
        if not isinstance(operation, str):
            raise TypeError(f"{owner}: operation must be a str; got {type_of(operation)}")
        if resource is None or resource == self.org_id:
            return
        logger.warning(
            "Cross-tenant access attempt blocked: %s",
            operation,
            extra={
                "event": "tenant_isolation_violation",
                "expected_org_id": str(self.org_id),
                "actual_org_id": str(resource),
                "operation": operation,
            },
        )
        raise TenantIsolationError(
            f"Cross-tenant access denied: {operation}",
            expected_org_id=self.org_id,
            actual_org_id=resource,
            operation=operation,
        )

    def get_logger(self, name: str) -> TenantAwareLogger:
        """A logger named ``name`` whose records carry this tenant's ids."""
        return TenantAwareLogger(name, tenant_context=self)

    def to_dict(self) -> dict[str, Any]:
        """``org_id``, ``user_id``, ``session_id`` (strings or None) and ``metadata``."""
        return {
            "org_id": str(self.org_id),
            "user_id": _id_str(self.user_id),
            "session_id": _id_str(self.session_id),
            "metadata": self.metadata,
        }

    @classmethod
    def from_snapshot(cls, snapshot: ContextSnapshot[Any]) -> TenantContext | None:
        """The tenant of ``snapshot`` (its ``org_id``, ``user_id``, ``session_id``).

        Returns None when the snapshot has no ``org_id``. Any object with those
        three attributes will do.
        """
        if snapshot.org_id is None:
            return None
        return cls(org_id=snapshot.org_id, user_id=snapshot.user_id, session_id=snapshot.session_id)


class TenantAwareLogger:
    """A logger whose records carry the tenant's ``org_id``, ``user_id`` and ``session_id``.

    The ids go into each record's extras (as strings, or None), beside the
    caller's own ``extra``, which wins on a clash. Records point at the caller's
    line, not at this wrapper.
    """

    def __init__(self, name: str, *, tenant_context: TenantContext) -> None:
        if not isinstance(name, str):
            raise TypeError(f"TenantAwareLogger: name must be a str; got {type_of(name)}")
        if not isinstance(tenant_context, TenantContext):
            raise TypeError(
                f"TenantAwareLogger: tenant_context must be a TenantContext; "
                f"got {type_of(tenant_context)}"
            )
        self._logger = logging.getLogger(name)
        self._tenant_context = tenant_context

    def _log(
        self, level: int, msg: str, args: tuple[object, ...], extra: Any, kwargs: dict[str, Any]
    ) -> None:
        if not self._logger.isEnabledFor(level):
            return
        tenant = self._tenant_context
        merged = {
            "org_id": str(tenant.org_id),
            "user_id": _id_str(tenant.user_id),
            "session_id": _id_str(tenant.session_id),
        }
        if extra:
            merged.update(extra)
        # Two frames up: past _log and the level method, to the caller.
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 2
        self._logger.log(level, msg, *args, extra=merged, **kwargs)

    def debug(
        self, msg: str, *args: object, extra: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Log ``msg`` at DEBUG with the tenant's ids."""
        self._log(logging.DEBUG, msg, args, extra, kwargs)

    def info(
        self, msg: str, *args: object, extra: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Log ``msg`` at INFO with the tenant's ids."""
        self._log(logging.INFO, msg, args, extra, kwargs)

    def warning(
        self, msg: str, *args: object, extra: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Log ``msg`` at WARNING with the tenant's ids."""
        self._log(logging.WARNING, msg, args, extra, kwargs)

    def error(
        self, msg: str, *args: object, extra: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Log ``msg`` at ERROR with the tenant's ids."""
        self._log(logging.ERROR, msg, args, extra, kwargs)

    def exception(
        self, msg: str, *args: object, extra: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Log ``msg`` at ERROR with the tenant's ids and the exception being handled."""
        kwargs.setdefault("exc_info", True)
        self._log(logging.ERROR, msg, args, extra, kwargs)


def _validator_expected_org_id(value: UUID | str) -> UUID:
    return to_uuid("TenantIsolationValidator", "expected_org_id", value)


def _validator_strict(_: object, __: attrs.Attribute[Any], value: object) -> None:
    check_flag("TenantIsolationValidator", "strict", value)


@attrs.define
class TenantIsolationValidator:
    """Records the tenants a run's resources belong to and reports cross-tenant accesses.

    Strict (the default), an access to another tenant raises; otherwise it is
    recorded as a violation and :meth:`record_access` returns False. Either way
    a violation is logged as a warning (``event`` ``"tenant_violation"``).

    Attributes:
        expected_org_id: The tenant the run belongs to.
        strict: Whether a violation raises.
    """

    expected_org_id: UUID = attrs.field(converter=_validator_expected_org_id)
    strict: bool = attrs.field(default=True, validator=_validator_strict)
    _accessed_org_ids: dict[UUID, list[str]] = attrs.field(init=False, factory=dict)
    _violations: list[dict[str, Any]] = attrs.field(init=False, factory=list)

    def record_access(
        self,
        org_id: UUID | None,
        *,
        resource_type: str = "unknown",
        resource_id: str | None = None,
    ) -> bool:
        """Record an access to a resource of tenant ``org_id``.

        A resource without a tenant (None) is shared: allowed, not recorded.

        Returns:
            True if the access is allowed, False for a violation (when not strict).

        Raises:
            TenantIsolationError: a violation, when strict; the message is
                ``"Cross-tenant access to {resource_type}"`` and ``operation``
                is ``"access_{resource_type}"``.
            TypeError: ``org_id`` is neither a UUID nor None.
        """
        org = _check_resource_org_id("TenantIsolationValidator.record_access", "org_id", org_id)
        if org is None:
            return True
        self._accessed_org_ids.setdefault(org, []).append(
            f"{resource_type}:{resource_id or 'unknown'}"
        )
        if org == self.expected_org_id:
            return True
        violation = {
            "expected_org_id": str(self.expected_org_id),
            "actual_org_id": str(org),
            "resource_type": resource_type,
            "resource_id": resource_id,
        }
        self._violations.append(violation)
        logger.warning(
            "Tenant isolation violation: %s",
            resource_type,
            extra={"event": "tenant_violation", **violation},
        )
        if self.strict:
            raise TenantIsolationError(
                f"Cross-tenant access to {resource_type}",
                expected_org_id=self.expected_org_id,
                actual_org_id=org,
                operation=f"access_{resource_type}",
            )
        return False

    def get_violations(self) -> list[dict[str, Any]]:
        """The violations so far, oldest first (a new list of new dicts)."""
        return [dict(violation) for violation in self._violations]

    def get_accessed_tenants(self) -> list[UUID]:
        """Every tenant accessed so far, in the order first seen."""
        return list(self._accessed_org_ids)

    def is_isolated(self) -> bool:
        """Whether no violation was recorded."""
        return not self._violations


def set_current_tenant(org_id: UUID | None) -> None:
    """Make ``org_id`` the current tenant of this task (and of the tasks it spawns from now on).

    Raises:
        TypeError: ``org_id`` is neither a UUID nor None.
    """
    if org_id is not None and not isinstance(org_id, UUID):
        raise TypeError(f"set_current_tenant: org_id must be a UUID or None; got {type_of(org_id)}")
    _current_tenant.set(org_id)


def get_current_tenant() -> UUID | None:
    """The current tenant of this task, or None."""
    return _current_tenant.get()


def clear_current_tenant() -> None:
    """Unset the current tenant of this task (and of the tasks it spawns from now on)."""
    _current_tenant.set(None)


def require_tenant() -> UUID:
    """The current tenant of this task.

    Raises:
        TenantIsolationError: no tenant is set (``"No tenant context set"``).
    """
    tenant = _current_tenant.get()
    if tenant is None:
        raise TenantIsolationError("No tenant context set")
    return tenant


register_global_reset(clear_current_tenant)
