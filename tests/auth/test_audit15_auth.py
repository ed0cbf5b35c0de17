"""Audit 15: SignedJwtValidator fails closed on time claims and clocks that are not finite."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.auth import AuthInterceptor, InvalidTokenError, TokenExpiredError
from stageflow_trio.auth.jwt import SignedJwtValidator
from stageflow_trio.pipeline.interceptors import CriticalInterceptorError
from tests.auth.helpers import MOCK_SESSION, USER, our_ctx

pytest.importorskip("jwt", reason="PyJWT is not installed (pip install -e '.[test]')")

NOW = 1_800_000_000
SECRET = b"audit-15-secret-of-32-bytes-long"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_token(**claims: Any) -> str:
    """An HS256 token signed with SECRET; json.dumps writes NaN and Infinity as Python reads them."""
    payload = {"sub": USER, "sid": MOCK_SESSION, "exp": NOW + 60, **claims}
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def validator(now: Any = lambda: NOW) -> SignedJwtValidator:
    return SignedJwtValidator(algorithms=["HS256"], key=SECRET, now=now)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_a_time_claim_that_is_not_finite_is_malformed(claim: str, value: float) -> None:
    # A NaN compares false with every time: a NaN exp never expired, a NaN nbf
    # was always valid. RFC 7519's NumericDate is a finite number.
    with pytest.raises(InvalidTokenError) as info:
        await validator().validate(hs256_token(**{claim: value}))
    assert str(info.value) == f"Invalid {claim} claim: expected a finite number; got {value!r}"
    assert info.value.reason == "malformed"


async def test_huge_integer_times_are_still_numbers() -> None:
    claims = await validator().validate(hs256_token(exp=10**400, iat=-(10**400)))
    assert claims["user_id"] == USER


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["exp", "nbf", "iat"]),
    st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=True, allow_infinity=True)),
)
async def test_time_claims_follow_the_clock_or_are_refused(claim: str, value: float) -> None:
    token = hs256_token(**{claim: value})
    try:
        await validator().validate(token)
    except InvalidTokenError as exc:
        accepted, reason = False, exc.reason
    except TokenExpiredError:
        accepted, reason = False, "expired"
    else:
        accepted, reason = True, None
    if not math.isfinite(value):
        assert (accepted, reason) == (False, "malformed")
    elif claim == "exp":
        assert accepted == (value > NOW)
    else:
        assert accepted == (value <= NOW)


@pytest.mark.parametrize(
    ("now", "error", "message"),
    [
        (lambda: math.nan, ValueError, "a finite number of seconds; got nan"),
        (lambda: math.inf, ValueError, "a finite number of seconds; got inf"),
        (lambda: "1800000000", TypeError, "a number of seconds; got str"),
        (lambda: None, TypeError, "a number of seconds; got NoneType"),
    ],
)
async def test_a_clock_that_is_not_a_finite_number_fails_closed(
    now: Any, error: type[Exception], message: str
) -> None:
    # A NaN clock passed every token, expired or not.
    expired = hs256_token(exp=NOW - 3600)
    with pytest.raises(error) as raised:
        await validator(now).validate(expired)
    assert str(raised.value) == f"SignedJwtValidator: now() must return {message}"
    ctx, sink = our_ctx({"_auth_token": expired})
    with pytest.raises(CriticalInterceptorError) as info:
        await AuthInterceptor(validator(now)).before("report", ctx)
    assert isinstance(info.value.__cause__, error)
    assert "_auth_context" not in ctx.data
    assert sink.events == []


# --- JWKS documents with a broken key ----------------------------------------------------


def _oct_jwk(kid: str) -> dict[str, Any]:
    return {"kty": "oct", "kid": kid, "k": _b64(SECRET)}


def _kid_token(kid: str) -> str:
    payload = {"sub": USER, "sid": MOCK_SESSION, "exp": NOW + 60}
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    signing_input = f"{header}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


async def test_a_key_pyjwt_cannot_read_is_left_out_of_a_given_jwks() -> None:
    # PyJWK({"kty": "oct"}) raises a bare KeyError('k'): it made the whole set unusable.
    jwks = {"keys": [{"kty": "oct", "kid": "broken"}, _oct_jwk("good")]}
    checker = SignedJwtValidator(algorithms=["HS256"], jwks=jwks, now=lambda: NOW)
    assert (await checker.validate(_kid_token("good")))["user_id"] == USER
    with pytest.raises(InvalidTokenError) as info:
        await checker.validate(_kid_token("broken"))
    assert info.value.reason == "unknown_kid"
    with pytest.raises(ValueError, match=r"^SignedJwtValidator: jwks holds no signing key"):
        SignedJwtValidator(algorithms=["HS256"], jwks={"keys": [{"kty": "oct"}]})


async def test_a_key_pyjwt_cannot_read_is_left_out_of_a_fetched_jwks() -> None:
    async def fetch() -> dict[str, Any]:
        return {"keys": [{"kty": "oct", "kid": "broken"}, _oct_jwk("good")]}

    checker = SignedJwtValidator(algorithms=["HS256"], jwks_fetcher=fetch, now=lambda: NOW)
    assert (await checker.validate(_kid_token("good")))["user_id"] == USER
    # Through the interceptor: a login, not a failed run.
    ctx, sink = our_ctx({"_auth_token": _kid_token("good")})
    assert await AuthInterceptor(checker).before("report", ctx) is None
    assert [event_type for event_type, _ in sink.events] == ["auth.login"]
