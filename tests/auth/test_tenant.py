"""Tenant checks: TenantContext, TenantAwareLogger, TenantIsolationValidator, the current tenant."""

from __future__ import annotations

import logging
import pickle
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest
import trio

from stageflow_trio.auth import tenant
from stageflow_trio.auth.tenant import (
    TenantAwareLogger,
    TenantContext,
    TenantIsolationError,
    TenantIsolationValidator,
    clear_current_tenant,
    get_current_tenant,
    require_tenant,
    set_current_tenant,
)
from stageflow_trio.errors import StageflowError
from stageflow_trio.testing import create_test_snapshot, reset_globals
from tests.auth.helpers import MOCK_SESSION, ORG, OTHER_ORG, USER

TENANT_LOGGER = "stageflow_trio.auth.tenant"
# The module untyped, for calls that break the signatures on purpose.
_t: Any = tenant
A, B, C = UUID(ORG), UUID(OTHER_ORG), UUID(USER)


def _error_state(error: BaseException) -> tuple[Any, ...]:
    return (
        type(error).__name__,
        str(error),
        getattr(error, "expected_org_id", None),
        getattr(error, "actual_org_id", None),
        getattr(error, "operation", None),
    )


# --- TenantContext --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "kwargs"),
    [(None, {}), (A, {}), (B, {}), (B, {"operation": "read_document"})],
)
def test_validate_access_matches_the_reference(
    resource: UUID | None, kwargs: dict[str, str], ref_auth: ModuleType
) -> None:
    def outcome(context: Any) -> Any:
        try:
            return context.validate_access(resource, **kwargs)
        except Exception as exc:
            return _error_state(exc)

    assert outcome(TenantContext(org_id=A)) == outcome(ref_auth.TenantContext(org_id=A))


def test_validate_access_logs_the_violation(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=TENANT_LOGGER)
    with pytest.raises(TenantIsolationError, match=r"^Cross-tenant access denied: write$") as info:
        TenantContext(org_id=A).validate_access(B, operation="write")
    assert (info.value.expected_org_id, info.value.actual_org_id, info.value.operation) == (
        A,
        B,
        "write",
    )
    [record] = caplog.records
    assert record.getMessage() == "Cross-tenant access attempt blocked: write"
    assert (record.event, record.expected_org_id, record.actual_org_id) == (  # type: ignore[attr-defined]
        "tenant_isolation_violation",
        ORG,
        OTHER_ORG,
    )
    TenantContext(org_id=A).validate_access(A)
    TenantContext(org_id=A).validate_access(None)
    assert len(caplog.records) == 1


def test_to_dict_and_from_snapshot(ref_auth: ModuleType) -> None:
    full: dict[str, Any] = {
        "org_id": A,
        "user_id": C,
        "session_id": UUID(MOCK_SESSION),
        "metadata": {"k": 1},
    }
    assert TenantContext(**full).to_dict() == ref_auth.TenantContext(**full).to_dict()
    assert TenantContext(org_id=A).to_dict() == {
        "org_id": ORG,
        "user_id": None,
        "session_id": None,
        "metadata": {},
    }
    snapshot = create_test_snapshot(org_id=A, user_id=C, session_id=UUID(MOCK_SESSION))
    assert TenantContext.from_snapshot(snapshot) == TenantContext(
        org_id=A, user_id=C, session_id=UUID(MOCK_SESSION)
    )
    assert TenantContext.from_snapshot(create_test_snapshot(org_id=None)) is None


def test_tenant_context_fields() -> None:
    context = TenantContext(org_id=ORG)
    assert context.org_id == A
    context.metadata["plan"] = "pro"  # mutable, like the reference's
    context.user_id = USER  # type: ignore[assignment]
    assert context.user_id == C
    assert context.to_dict()["metadata"] == {"plan": "pro"}


# --- TenantAwareLogger ----------------------------------------------------------------------


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "exception"])
def test_tenant_logger_adds_the_ids(level: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="app")
    log = TenantContext(org_id=A, user_id=C).get_logger("app")
    try:
        raise KeyError("k")
    except KeyError:
        getattr(log, level)("hello %s", "world", extra={"step": 2, "user_id": "override"})
    [record] = caplog.records
    assert record.getMessage() == "hello world"
    assert record.levelname == ("ERROR" if level == "exception" else level.upper())
    assert (record.org_id, record.user_id, record.session_id, record.step) == (  # type: ignore[attr-defined]
        ORG,
        "override",
        None,
        2,
    )
    assert record.funcName == "test_tenant_logger_adds_the_ids"  # the caller, not the wrapper
    assert (record.exc_info is not None) == (level == "exception")


def test_tenant_logger_skips_disabled_levels(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="quiet")
    log = TenantAwareLogger("quiet", tenant_context=TenantContext(org_id=A, session_id=C))
    log.info("dropped")
    log.warning("kept")
    assert [(r.getMessage(), r.session_id) for r in caplog.records] == [("kept", USER)]  # type: ignore[attr-defined]


# --- TenantIsolationValidator -----------------------------------------------------------------

ACCESSES: list[tuple[UUID | None, dict[str, str]]] = [
    (A, {"resource_type": "document", "resource_id": "d1"}),
    (None, {"resource_type": "shared"}),
    (B, {"resource_type": "document", "resource_id": "d2"}),
    (A, {}),
    (C, {"resource_type": "user"}),
]


@pytest.mark.parametrize("strict", [True, False])
def test_validator_matches_the_reference(strict: bool, ref_auth: ModuleType) -> None:
    def trace(validator: Any) -> Any:
        steps = []
        for org_id, kwargs in ACCESSES:
            try:
                steps.append(validator.record_access(org_id, **kwargs))
            except Exception as exc:
                steps.append(_error_state(exc))
        return (
            steps,
            validator.get_violations(),
            validator.get_accessed_tenants(),
            validator.is_isolated(),
            validator._accessed_org_ids,
        )

    ours = trace(TenantIsolationValidator(expected_org_id=A, strict=strict))
    theirs = trace(ref_auth.TenantIsolationValidator(expected_org_id=A, strict=strict))
    assert ours == theirs


def test_validator_records_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=TENANT_LOGGER)
    validator = TenantIsolationValidator(expected_org_id=A, strict=False)
    assert validator.is_isolated() is True
    assert validator.record_access(A, resource_type="doc") is True
    assert validator.record_access(B, resource_type="doc", resource_id="7") is False
    violation = {
        "expected_org_id": ORG,
        "actual_org_id": OTHER_ORG,
        "resource_type": "doc",
        "resource_id": "7",
    }
    assert validator.get_violations() == [violation]
    validator.get_violations()[0]["resource_id"] = "changed"  # a copy
    assert validator.get_violations() == [violation]
    assert validator.get_accessed_tenants() == [A, B]
    assert validator.is_isolated() is False
    [record] = caplog.records
    assert record.getMessage() == "Tenant isolation violation: doc"
    assert record.event == "tenant_violation"  # type: ignore[attr-defined]

    strict = TenantIsolationValidator(expected_org_id=A)
    with pytest.raises(TenantIsolationError, match=r"^Cross-tenant access to unknown$") as info:
        strict.record_access(B)
    assert info.value.operation == "access_unknown"
    assert strict.get_violations()[0]["resource_id"] is None


# --- the current tenant ------------------------------------------------------------------------


def test_current_tenant_matches_the_reference(ref_auth: ModuleType) -> None:
    def trace(module: Any) -> list[Any]:
        steps: list[Any] = []
        for action in (
            module.get_current_tenant,
            lambda: module.set_current_tenant(A),
            module.get_current_tenant,
            module.require_tenant,
            module.clear_current_tenant,
            module.get_current_tenant,
            module.require_tenant,
        ):
            try:
                steps.append(action())
            except Exception as exc:
                steps.append(_error_state(exc))
        return steps

    assert trace(tenant) == trace(ref_auth)
    assert trace(tenant)[3] == A
    assert trace(tenant)[6] == ("TenantIsolationError", "No tenant context set", None, None, None)


def test_reset_globals_clears_the_tenant() -> None:
    set_current_tenant(A)
    reset_globals()
    assert get_current_tenant() is None


async def test_a_task_sees_its_own_tenant_only() -> None:
    seen: dict[str, Any] = {}

    async def child(name: str, org: UUID | None) -> None:
        set_current_tenant(org)
        await trio.lowlevel.checkpoint()
        seen[name] = get_current_tenant()

    set_current_tenant(C)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(child, "a", A)
        nursery.start_soon(child, "b", None)
    assert seen == {"a": A, "b": None}
    assert require_tenant() == C  # the children's changes stay in the children
    clear_current_tenant()
    assert get_current_tenant() is None


def test_isolation_error_is_a_stageflow_error_and_pickles() -> None:
    error = TenantIsolationError("x", expected_org_id=A, actual_org_id=B, operation="op")
    assert isinstance(error, StageflowError)
    assert _error_state(pickle.loads(pickle.dumps(error))) == _error_state(error)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: _t.set_current_tenant(ORG),
            TypeError,
            "set_current_tenant: org_id must be a UUID or None; got str",
        ),
        (
            lambda: _t.TenantContext(org_id=None),
            TypeError,
            "TenantContext: org_id must be a UUID or a UUID string; got NoneType",
        ),
        (
            lambda: _t.TenantContext(org_id=A, session_id="s"),
            ValueError,
            "TenantContext: session_id must be a UUID string; got 's'",
        ),
        (
            lambda: _t.TenantContext(org_id=A, metadata=[]),
            TypeError,
            "TenantContext: metadata must be a dict; got list",
        ),
        (
            lambda: _t.TenantContext(org_id=A).validate_access(OTHER_ORG),
            TypeError,
            "TenantContext.validate_access: resource_org_id must be a UUID or None; got str",
        ),
        (
            lambda: _t.TenantContext(org_id=A).validate_access(None, operation=5),
            TypeError,
            "TenantContext.validate_access: operation must be a str; got int",
        ),
        (
            lambda: _t.TenantIsolationValidator(expected_org_id=A).record_access(1),
            TypeError,
            "TenantIsolationValidator.record_access: org_id must be a UUID or None; got int",
        ),
        (
            lambda: _t.TenantIsolationValidator(expected_org_id=5),
            TypeError,
            "TenantIsolationValidator: expected_org_id must be a UUID or a UUID string; got int",
        ),
        (
            lambda: _t.TenantIsolationValidator(expected_org_id=A, strict="yes"),
            TypeError,
            "TenantIsolationValidator: strict must be a bool; got str",
        ),
        (
            lambda: _t.TenantAwareLogger(1, tenant_context=TenantContext(org_id=A)),
            TypeError,
            "TenantAwareLogger: name must be a str; got int",
        ),
        (
            lambda: _t.TenantAwareLogger("x", tenant_context={"org_id": A}),
            TypeError,
            "TenantAwareLogger: tenant_context must be a TenantContext; got dict",
        ),
    ],
)
def test_bad_input_is_refused(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message
