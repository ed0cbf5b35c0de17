"""AuthContext and OrgContext: fields, checks, helpers, reprs, and the reference."""

from __future__ import annotations

import pickle
from types import ModuleType
from typing import Any
from uuid import UUID

import attrs
import pytest

from stageflow_trio.auth.context import AuthContext, OrgContext
from tests.auth.helpers import MOCK_SESSION, ORG, USER

# Untyped aliases, for calls that break the signature on purpose.
_Auth: Any = AuthContext
_Org: Any = OrgContext


def auth(**kwargs: Any) -> AuthContext:
    return AuthContext(user_id=UUID(USER), session_id=UUID(MOCK_SESSION), **kwargs)


def test_auth_context_defaults_and_helpers() -> None:
    ctx = auth()
    assert (ctx.email, ctx.org_id, ctx.roles) == (None, None, ())
    assert ctx.is_authenticated is True
    assert ctx.has_role("admin") is False
    assert ctx.is_admin() is False
    assert auth(roles=["org_admin"]).is_admin() is True
    assert auth(roles=("admin", "x")).is_admin() is True
    assert auth(roles=("editor",)).has_role("editor") is True


def test_auth_context_is_a_frozen_value() -> None:
    ctx = auth(roles=["a"])
    assert ctx.roles == ("a",)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ctx.email = "x"  # type: ignore[misc]
    assert ctx == auth(roles=("a",))
    assert hash(ctx) == hash(auth(roles=("a",)))
    assert pickle.loads(pickle.dumps(ctx)) == ctx


def test_uuid_strings_are_parsed() -> None:
    ctx = AuthContext(user_id=USER, session_id=MOCK_SESSION, org_id=ORG)
    assert (ctx.user_id, ctx.session_id, ctx.org_id) == (
        UUID(USER),
        UUID(MOCK_SESSION),
        UUID(ORG),
    )
    org = OrgContext(org_id=ORG, tenant_id=USER)
    assert (org.org_id, org.tenant_id) == (UUID(ORG), UUID(USER))


def test_repr_masks_the_email_and_hides_the_session(ref_auth: ModuleType) -> None:
    for email in ("alice@example.com", "al", None, ""):
        kwargs: dict[str, Any] = {
            "user_id": UUID(USER),
            "session_id": UUID(MOCK_SESSION),
            "email": email,
            "org_id": UUID(ORG),
            "roles": ("admin",),
        }
        assert repr(AuthContext(**kwargs)) == repr(ref_auth.AuthContext(**kwargs))
    assert repr(auth(email="alice@example.com")) == (
        f"AuthContext(user_id=UUID('{USER}'), email='ali***', org_id=None, roles=())"
    )


def test_org_context(ref_auth: ModuleType) -> None:
    org = OrgContext(org_id=UUID(ORG))
    assert (org.tenant_id, org.plan_tier, org.features) == (None, "starter", ())
    pro = OrgContext(org_id=UUID(ORG), plan_tier="pro", features=["sso", "audit"])
    assert pro.features == ("sso", "audit")
    assert pro.has_feature("sso") is True
    assert pro.has_feature("beta") is False
    assert repr(pro) == repr(
        ref_auth.OrgContext(org_id=UUID(ORG), plan_tier="pro", features=("sso", "audit"))
    )
    assert (
        repr(pro) == f"OrgContext(org_id=UUID('{ORG}'), plan_tier='pro', features=('sso', 'audit'))"
    )


def test_fields_and_defaults_match_the_reference(ref_auth: ModuleType) -> None:
    import dataclasses

    def ref_default(field: Any) -> Any:
        if field.default_factory is not dataclasses.MISSING:
            return field.default_factory()
        return "required" if field.default is dataclasses.MISSING else field.default

    for ours, theirs in ((AuthContext, ref_auth.AuthContext), (OrgContext, ref_auth.OrgContext)):
        ref_fields = [(f.name, ref_default(f)) for f in dataclasses.fields(theirs)]
        our_fields = [
            (a.name, "required" if a.default is attrs.NOTHING else a.default)
            for a in attrs.fields(ours)
        ]
        assert our_fields == ref_fields


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: _Auth(user_id=1, session_id=UUID(MOCK_SESSION)),
            TypeError,
            "AuthContext: user_id must be a UUID or a UUID string; got int",
        ),
        (
            lambda: _Auth(user_id="nope", session_id=UUID(MOCK_SESSION)),
            ValueError,
            "AuthContext: user_id must be a UUID string; got 'nope'",
        ),
        (
            lambda: _Auth(user_id=UUID(USER), session_id=None),
            TypeError,
            "AuthContext: session_id must be a UUID or a UUID string; got NoneType",
        ),
        (
            lambda: auth(org_id=5),
            TypeError,
            "AuthContext: org_id must be a UUID or a UUID string; got int",
        ),
        (
            lambda: auth(email=b"a@b"),
            TypeError,
            "AuthContext: email must be a str or None; got bytes",
        ),
        (
            lambda: auth(roles="admin"),
            TypeError,
            "AuthContext: roles must be an iterable of str; got str",
        ),
        (
            lambda: auth(roles=5),
            TypeError,
            "AuthContext: roles must be an iterable of str; got int",
        ),
        (lambda: auth(roles=["a", 1]), TypeError, "AuthContext: roles must hold only str; got int"),
        (
            lambda: _Org(org_id=None),
            TypeError,
            "OrgContext: org_id must be a UUID or a UUID string; got NoneType",
        ),
        (
            lambda: _Org(org_id=UUID(ORG), tenant_id="t"),
            ValueError,
            "OrgContext: tenant_id must be a UUID string; got 't'",
        ),
        (
            lambda: _Org(org_id=UUID(ORG), plan_tier="gold"),
            ValueError,
            "OrgContext: plan_tier must be one of ['starter', 'pro', 'enterprise']; got 'gold'",
        ),
        (
            lambda: _Org(org_id=UUID(ORG), features=[None]),
            TypeError,
            "OrgContext: features must hold only str; got NoneType",
        ),
    ],
)
def test_bad_fields_are_refused(build: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        build()
    assert str(info.value) == message
