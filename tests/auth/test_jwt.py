"""SignedJwtValidator: signatures (RSA, EC), times, audience, issuer, claims, JWKS and rotation.

Keys are generated here; the JWKS "endpoint" is an async function; the wall
clock is a fixed ``now``; the JWKS refresh interval runs on trio's MockClock.
Skipped without PyJWT (the ``test`` extra installs it), except the test of
that very case.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
import trio
import trio.testing

from stageflow_trio.auth import (
    AuthInterceptor,
    InvalidTokenError,
    TokenExpiredError,
)
from stageflow_trio.auth import jwt as auth_jwt
from stageflow_trio.auth.jwt import SignedJwtValidator
from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.stages.context import PipelineContext
from tests.auth.helpers import MOCK_SESSION, ORG, USER, our_ctx, without_timestamps

if TYPE_CHECKING:
    from types import ModuleType

NOW = 1_800_000_000
CLAIMS = {"sub": USER, "sid": MOCK_SESSION, "exp": NOW + 60}
# Untyped, for calls that break the signature on purpose.
_Validator: Any = SignedJwtValidator


class Keys:
    """Signing keys made for this module, their public halves and JWKs."""

    def __init__(self, pyjwt: ModuleType) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        self.jwt = pyjwt
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ec2 = ec.generate_private_key(ec.SECP256R1())
        self.rsa_pem = (
            self.rsa.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwk(self, private_key: Any, kid: str | None, **extra: Any) -> dict[str, Any]:
        from cryptography.hazmat.primitives.asymmetric import rsa

        algorithms = self.jwt.algorithms
        is_rsa = isinstance(private_key, rsa.RSAPrivateKey)
        family = algorithms.RSAAlgorithm if is_rsa else algorithms.ECAlgorithm
        jwk: dict[str, Any] = json.loads(family.to_jwk(private_key.public_key()))
        if kid is not None:
            jwk["kid"] = kid
        jwk.update(extra)
        return jwk

    def token(
        self,
        private_key: Any,
        alg: str = "RS256",
        *,
        kid: str | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        payload = {**CLAIMS, **claims}
        for name in drop:
            del payload[name]
        headers = None if kid is None else {"kid": kid}
        token: str = self.jwt.encode(payload, private_key, algorithm=alg, headers=headers)
        return token


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        pytest.importorskip("jwt", reason="PyJWT is not installed (pip install -e '.[test]')")
    )


def rsa_validator(keys: Keys, **kwargs: Any) -> SignedJwtValidator:
    kwargs.setdefault("now", lambda: NOW)
    return SignedJwtValidator(algorithms=["RS256"], key=keys.rsa.public_key(), **kwargs)


async def failure(validator: SignedJwtValidator, token: Any) -> tuple[str, str, Any]:
    """The error ``validate`` raises: its class, message and reason (or missing claims)."""
    with pytest.raises(Exception) as info:  # noqa: PT011 - the class is what is returned
        await validator.validate(token)
    error = info.value
    detail = getattr(error, "reason", getattr(error, "missing_claims", None))
    return type(error).__name__, str(error), detail


# --- valid tokens ---------------------------------------------------------------------------


async def test_an_rsa_token_gives_the_claims_auth_reads(keys: Keys) -> None:
    token = keys.token(keys.rsa, org_id=ORG, email="a@example.com", roles=["admin"], aud="api")
    claims = await rsa_validator(keys, audience="api").validate(token)
    assert claims == {
        **CLAIMS,
        "org_id": ORG,
        "email": "a@example.com",
        "roles": ("admin",),
        "aud": "api",
        "user_id": USER,
        "session_id": MOCK_SESSION,
    }


async def test_optional_claims_default(keys: Keys) -> None:
    claims = await rsa_validator(keys).validate(keys.token(keys.rsa))
    assert (claims["org_id"], claims["email"], claims["roles"]) == (None, None, ())
    claims = await rsa_validator(keys).validate(keys.token(keys.rsa, roles="viewer"))
    assert claims["roles"] == ("viewer",)


async def test_pem_keys_and_bytes_tokens(keys: Keys) -> None:
    validator = SignedJwtValidator(algorithms=["RS256"], key=keys.rsa_pem, now=lambda: NOW)
    assert (await validator.validate(keys.token(keys.rsa)))["user_id"] == USER
    token = keys.token(keys.rsa).encode()  # PyJWT takes bytes too
    assert (await validator.validate(token))["user_id"] == USER  # type: ignore[arg-type]


async def test_an_ec_token(keys: Keys) -> None:
    validator = SignedJwtValidator(algorithms=["ES256"], key=keys.ec.public_key(), now=lambda: NOW)
    assert (await validator.validate(keys.token(keys.ec, "ES256")))["session_id"] == MOCK_SESSION
    assert await failure(validator, keys.token(keys.ec2, "ES256")) == (
        "InvalidTokenError",
        "Invalid token signature",
        "invalid_signature",
    )


async def test_claim_names_are_configurable(keys: Keys) -> None:
    validator = rsa_validator(
        keys,
        user_id_claim="uid",
        session_id_claim="jti",
        org_id_claim="tenant",
        email_claim="mail",
        roles_claim="groups",
        required_claims=[],
    )
    token = keys.token(
        keys.rsa,
        drop=("sub", "sid", "exp"),
        uid=USER,
        jti=MOCK_SESSION,
        tenant=ORG,
        mail="m@example.com",
        groups=["g"],
    )
    claims = await validator.validate(token)
    assert [claims[k] for k in ("user_id", "session_id", "org_id", "email", "roles")] == [
        USER,
        MOCK_SESSION,
        ORG,
        "m@example.com",
        ("g",),
    ]


async def test_validate_is_a_checkpoint(keys: Keys) -> None:
    validator = rsa_validator(keys)
    with trio.testing.assert_checkpoints():
        await validator.validate(keys.token(keys.rsa))
    with trio.testing.assert_checkpoints(), pytest.raises(InvalidTokenError):
        await validator.validate("garbage")


# --- time ---------------------------------------------------------------------------------


async def test_expiry_follows_the_injected_clock(keys: Keys) -> None:
    clock = [NOW]
    validator = rsa_validator(keys, now=lambda: clock[0])
    token = keys.token(keys.rsa)
    assert (await validator.validate(token))["user_id"] == USER
    clock[0] = NOW + 59
    assert (await validator.validate(token))["user_id"] == USER
    clock[0] = NOW + 60  # exp itself is already too late
    with pytest.raises(TokenExpiredError, match=r"^Token has expired$") as info:
        await validator.validate(token)
    assert info.value.code == "token_expired"
    assert info.value.expired_at == "2027-01-15T08:01:00+00:00"


async def test_leeway_tolerates_skew(keys: Keys) -> None:
    token = keys.token(keys.rsa, exp=NOW - 3, nbf=NOW + 3, iat=NOW + 3)
    assert (await rsa_validator(keys, leeway=5).validate(token))["user_id"] == USER
    assert (await failure(rsa_validator(keys, leeway=2), token))[0] == "TokenExpiredError"


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"nbf": NOW + 1}, ("InvalidTokenError", "Token is not yet valid (nbf)", "not_yet_valid")),
        ({"iat": NOW + 1}, ("InvalidTokenError", "Token is not yet valid (iat)", "not_yet_valid")),
        ({"exp": NOW - 1}, ("TokenExpiredError", "Token has expired", None)),
        (
            {"exp": "soon"},
            ("InvalidTokenError", "Invalid exp claim: expected a number; got str", "malformed"),
        ),
        (
            {"nbf": True},
            ("InvalidTokenError", "Invalid nbf claim: expected a number; got bool", "malformed"),
        ),
    ],
)
async def test_time_claims(keys: Keys, claims: dict[str, Any], expected: tuple[Any, ...]) -> None:
    outcome = await failure(rsa_validator(keys), keys.token(keys.rsa, **claims))
    assert outcome[:2] == expected[:2]
    if expected[0] == "InvalidTokenError":
        assert outcome[2] == expected[2]


async def test_an_unrepresentable_expiry_has_no_timestamp(keys: Keys) -> None:
    with pytest.raises(TokenExpiredError) as info:
        await rsa_validator(keys).validate(keys.token(keys.rsa, exp=-(10**20)))
    assert info.value.expired_at is None


async def test_past_nbf_and_iat_are_fine(keys: Keys) -> None:
    token = keys.token(keys.rsa, nbf=NOW, iat=NOW - 10)
    assert (await rsa_validator(keys).validate(token))["user_id"] == USER


# --- audience, issuer, claims ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "claims", "expected"),
    [
        ({"audience": "api"}, {"aud": "web"}, ("InvalidTokenError", "Invalid token audience")),
        ({"audience": "api"}, {}, ("MissingClaimsError", "Missing required claims: aud")),
        ({}, {"aud": "api"}, ("InvalidTokenError", "Invalid token audience")),
        (
            {"issuer": "https://idp"},
            {"iss": "https://evil"},
            ("InvalidTokenError", "Invalid token issuer"),
        ),
        ({"issuer": "https://idp"}, {}, ("MissingClaimsError", "Missing required claims: iss")),
    ],
)
async def test_audience_and_issuer_are_checked(
    keys: Keys, kwargs: dict[str, Any], claims: dict[str, Any], expected: tuple[str, str]
) -> None:
    outcome = await failure(rsa_validator(keys, **kwargs), keys.token(keys.rsa, **claims))
    assert outcome[:2] == expected
    reasons = {
        "Invalid token audience": "invalid_audience",
        "Invalid token issuer": "invalid_issuer",
    }
    if expected[1] in reasons:
        assert outcome[2] == reasons[expected[1]]
    else:
        assert outcome[2] == [expected[1].rsplit(" ", 1)[1]]


async def test_any_accepted_audience_or_issuer_will_do(keys: Keys) -> None:
    validator = rsa_validator(keys, audience=["api", "web"], issuer=["https://a", "https://b"])
    token = keys.token(keys.rsa, aud=["web", "other"], iss="https://b")
    assert (await validator.validate(token))["aud"] == ["web", "other"]


async def test_missing_claims_are_listed_together(keys: Keys) -> None:
    assert await failure(rsa_validator(keys), keys.token(keys.rsa, drop=("sub", "sid", "exp"))) == (
        "MissingClaimsError",
        "Missing required claims: exp, sub, sid",
        ["exp", "sub", "sid"],
    )
    validator = rsa_validator(keys, required_claims=["email", "sub"])
    assert await failure(validator, keys.token(keys.rsa)) == (
        "MissingClaimsError",
        "Missing required claims: email",
        ["email"],
    )


@pytest.mark.parametrize(
    ("claims", "message", "reason"),
    [
        ({"roles": [1]}, "Invalid roles claim: expected a list of strings", "malformed"),
        ({"sub": 5}, "Invalid token: Subject must be a string", "invalid_claims"),
    ],
)
async def test_bad_claim_values(
    keys: Keys, claims: dict[str, Any], message: str, reason: str
) -> None:
    assert await failure(rsa_validator(keys), keys.token(keys.rsa, **claims)) == (
        "InvalidTokenError",
        message,
        reason,
    )


# --- bad tokens and wrong keys -------------------------------------------------------------


async def test_wrong_keys_and_tampering_are_refused(keys: Keys) -> None:
    bad_signature = ("InvalidTokenError", "Invalid token signature", "invalid_signature")
    assert await failure(rsa_validator(keys), keys.token(keys.rsa2)) == bad_signature
    header, _, signature = keys.token(keys.rsa).split(".")
    forged = keys.token(keys.rsa, sub=ORG).split(".")[1]
    assert await failure(rsa_validator(keys), f"{header}.{forged}.{signature}") == bad_signature


async def test_disallowed_algorithms_are_refused(keys: Keys) -> None:
    assert await failure(rsa_validator(keys), keys.token(keys.ec, "ES256")) == (
        "InvalidTokenError",
        "Token algorithm 'ES256' is not allowed",
        "invalid_algorithm",
    )
    unsigned = keys.jwt.encode(CLAIMS, None, algorithm="none")
    assert await failure(rsa_validator(keys), unsigned) == (
        "InvalidTokenError",
        "Token algorithm 'none' is not allowed",
        "invalid_algorithm",
    )

    # HS256 signed with the public key's PEM as the secret: the classic confusion attack
    # (built by hand: PyJWT refuses to sign with a PEM as an HMAC secret).
    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(CLAIMS).encode())
    signature = hmac.new(keys.rsa_pem.encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + b64(signature)).decode()
    assert await failure(rsa_validator(keys), forged) == (
        "InvalidTokenError",
        "Token algorithm 'HS256' is not allowed",
        "invalid_algorithm",
    )


async def test_a_key_of_another_family_is_refused(keys: Keys) -> None:
    validator = SignedJwtValidator(
        algorithms=["RS256", "ES256"], key=keys.rsa.public_key(), now=lambda: NOW
    )
    name, message, reason = await failure(validator, keys.token(keys.ec, "ES256"))
    assert (name, reason) == ("InvalidTokenError", "invalid_key")
    assert message.startswith("Token does not match the key: ")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("garbage", "Malformed token: Not enough segments"),
        (5, "Malformed token: expected a string; got int"),
    ],
)
async def test_malformed_tokens(keys: Keys, token: Any, message: str) -> None:
    assert await failure(rsa_validator(keys), token) == ("InvalidTokenError", message, "malformed")


async def test_a_signed_payload_that_is_not_an_object(keys: Keys) -> None:
    token = keys.jwt.api_jws.PyJWS().encode(b"[1]", keys.rsa, algorithm="RS256")
    assert await failure(rsa_validator(keys), token) == (
        "InvalidTokenError",
        "Malformed token: Invalid payload string: must be a json object",
        "malformed",
    )


async def test_a_token_with_a_broken_payload(keys: Keys) -> None:
    header, _, _ = keys.token(keys.rsa).split(".")
    outcome = await failure(rsa_validator(keys), f"{header}.!!!.AAAA")
    assert outcome[0] == "InvalidTokenError"
    assert outcome[2] == "malformed"
    assert outcome[1].startswith("Malformed token: ")


# --- JWKS ----------------------------------------------------------------------------------


def jwks(keys: Keys, *pairs: tuple[Any, str | None], **extra: Any) -> dict[str, Any]:
    return {"keys": [keys.jwk(key, kid, **extra) for key, kid in pairs]}


async def test_the_kid_picks_the_key(keys: Keys) -> None:
    document = jwks(keys, (keys.rsa, "r1"), (keys.ec, "e1"))
    validator = SignedJwtValidator(algorithms=["RS256", "ES256"], jwks=document, now=lambda: NOW)
    assert (await validator.validate(keys.token(keys.rsa, kid="r1")))["user_id"] == USER
    assert (await validator.validate(keys.token(keys.ec, "ES256", kid="e1")))["user_id"] == USER
    assert await failure(validator, keys.token(keys.rsa, kid="zz")) == (
        "InvalidTokenError",
        "No key with kid 'zz' in the JWKS",
        "unknown_kid",
    )
    assert await failure(validator, keys.token(keys.rsa)) == (
        "InvalidTokenError",
        "Token has no kid and the JWKS does not hold exactly one key",
        "unknown_kid",
    )
    # A kid naming the other key: the signature does not match it.
    assert (await failure(validator, keys.token(keys.rsa, kid="e1")))[2] == "invalid_algorithm"


async def test_a_single_key_serves_tokens_without_kid(keys: Keys) -> None:
    validator = SignedJwtValidator(
        algorithms=["ES256"], jwks=jwks(keys, (keys.ec, None)), now=lambda: NOW
    )
    assert (await validator.validate(keys.token(keys.ec, "ES256")))["user_id"] == USER
    # A key without kid is never picked by a kid.
    assert (await failure(validator, keys.token(keys.ec, "ES256", kid="k")))[2] == "unknown_kid"


async def test_unusable_and_encryption_keys_are_left_out(
    keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stageflow_trio.auth.jwt")
    document = {
        "keys": [
            {"kty": "XYZ", "kid": "odd"},
            keys.jwk(keys.rsa2, "enc", use="enc"),
            keys.jwk(keys.rsa, "r1", use="sig"),
        ]
    }
    validator = SignedJwtValidator(algorithms=["RS256"], jwks=document, now=lambda: NOW)
    # The only usable key is r1, so a kid-less token finds it.
    assert (await validator.validate(keys.token(keys.rsa)))["user_id"] == USER
    assert (await failure(validator, keys.token(keys.rsa2, kid="enc")))[2] == "unknown_kid"
    assert [r.getMessage() for r in caplog.records] == ["JWKS key 0 skipped: Unsupported kty: XYZ"]


class Endpoint:
    """A JWKS endpoint: serves ``documents`` in turn (the last one forever), counts fetches."""

    def __init__(self, *documents: Any, delay: float = 0.0) -> None:
        self.documents = list(documents)
        self.delay = delay
        self.fetches: list[float] = []
        self.failures: list[Exception] = []

    async def __call__(self) -> Mapping[str, Any]:
        self.fetches.append(trio.current_time())
        await trio.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        document: Mapping[str, Any] = (
            self.documents.pop(0) if len(self.documents) > 1 else self.documents[0]
        )
        return document


async def test_key_rotation_refetches_once_per_interval(
    keys: Keys, autojump_clock: trio.abc.Clock
) -> None:
    before = jwks(keys, (keys.rsa, "k1"))
    after = jwks(keys, (keys.rsa, "k1"), (keys.rsa2, "k2"))
    endpoint = Endpoint(before, after)
    validator = SignedJwtValidator(
        algorithms=["RS256"], jwks_fetcher=endpoint, now=lambda: NOW, jwks_refresh_interval=60
    )
    start = trio.current_time()
    assert (await validator.validate(keys.token(keys.rsa, kid="k1")))["user_id"] == USER
    assert (await validator.validate(keys.token(keys.rsa, kid="k1")))["user_id"] == USER
    assert len(endpoint.fetches) == 1  # cached
    await trio.sleep(10)
    # k2 is new, but the last fetch was 10 s ago: no refetch yet.
    assert (await failure(validator, keys.token(keys.rsa2, kid="k2")))[2] == "unknown_kid"
    assert len(endpoint.fetches) == 1
    await trio.sleep(50)
    assert (await validator.validate(keys.token(keys.rsa2, kid="k2")))["user_id"] == USER
    assert [t - start for t in endpoint.fetches] == [0.0, 60.0]
    # The old key is still in the new document, so its tokens still pass, without a fetch.
    assert (await validator.validate(keys.token(keys.rsa, kid="k1")))["user_id"] == USER
    assert len(endpoint.fetches) == 2


async def test_a_retired_key_stops_working(keys: Keys, autojump_clock: trio.abc.Clock) -> None:
    endpoint = Endpoint(jwks(keys, (keys.rsa, "k1")), jwks(keys, (keys.rsa2, "k2")))
    validator = SignedJwtValidator(
        algorithms=["RS256"], jwks_fetcher=endpoint, now=lambda: NOW, jwks_refresh_interval=0
    )
    assert (await validator.validate(keys.token(keys.rsa, kid="k1")))["user_id"] == USER
    assert (await validator.validate(keys.token(keys.rsa2, kid="k2")))["user_id"] == USER
    assert (await failure(validator, keys.token(keys.rsa, kid="k1")))[2] == "unknown_kid"
    assert len(endpoint.fetches) == 3  # the unknown k1 tried once more


async def test_concurrent_validations_share_one_fetch(
    keys: Keys, autojump_clock: trio.abc.Clock
) -> None:
    endpoint = Endpoint(jwks(keys, (keys.rsa, "k1")), delay=1.0)
    validator = SignedJwtValidator(algorithms=["RS256"], jwks_fetcher=endpoint, now=lambda: NOW)
    users: list[str] = []

    async def one() -> None:
        users.append((await validator.validate(keys.token(keys.rsa, kid="k1")))["user_id"])

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    assert users == [USER] * 5
    assert len(endpoint.fetches) == 1
    assert trio.current_time() - start == 1.0


async def test_fetch_errors_propagate_and_the_next_call_retries(
    keys: Keys, autojump_clock: trio.abc.Clock
) -> None:
    endpoint = Endpoint(jwks(keys, (keys.rsa, "k1")))
    endpoint.failures.append(OSError("JWKS endpoint down"))
    validator = SignedJwtValidator(algorithms=["RS256"], jwks_fetcher=endpoint, now=lambda: NOW)
    token = keys.token(keys.rsa, kid="k1")
    with pytest.raises(OSError, match=r"^JWKS endpoint down$"):
        await validator.validate(token)
    assert (await validator.validate(token))["user_id"] == USER
    assert len(endpoint.fetches) == 2


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            ["not", "a", "dict"],
            "SignedJwtValidator: the jwks_fetcher's result must be a JWKS document (a mapping); "
            "got list",
        ),
        (
            {"keys": None},
            "SignedJwtValidator: the jwks_fetcher's result must be a JWKS document with a "
            "'keys' list; got keys=NoneType",
        ),
        (
            {"keys": ["k"]},
            "SignedJwtValidator: the jwks_fetcher's result: keys[0] must be a mapping; got str",
        ),
    ],
)
async def test_a_bad_fetched_document_is_a_type_error(
    keys: Keys, document: Any, message: str
) -> None:
    validator = SignedJwtValidator(
        algorithms=["RS256"], jwks_fetcher=Endpoint(document), now=lambda: NOW
    )
    with pytest.raises(TypeError) as info:
        await validator.validate(keys.token(keys.rsa, kid="k1"))
    assert str(info.value) == message


async def test_an_empty_fetched_document_finds_no_key(
    keys: Keys, autojump_clock: trio.abc.Clock
) -> None:
    endpoint = Endpoint({"keys": []})
    validator = SignedJwtValidator(algorithms=["RS256"], jwks_fetcher=endpoint, now=lambda: NOW)
    assert (await failure(validator, keys.token(keys.rsa)))[1] == (
        "Token has no kid and the JWKS does not hold exactly one key"
    )
    assert (await failure(validator, keys.token(keys.rsa, kid=None)))[2] == "unknown_kid"
    assert len(endpoint.fetches) == 1  # the second miss came within the interval


# --- with AuthInterceptor ------------------------------------------------------------------


async def _who(ctx: PipelineContext) -> dict[str, Any]:
    auth = ctx.data["_auth_context"]
    return {"user": str(auth.user_id), "org": str(auth.org_id), "roles": list(auth.roles)}


async def test_auth_interceptor_with_real_tokens(keys: Keys) -> None:
    validator = SignedJwtValidator(
        algorithms=["ES256"],
        jwks=jwks(keys, (keys.ec, "e1")),
        audience="api",
        issuer="https://idp.example",
        now=lambda: NOW,
    )
    graph = StageGraph([StageSpec(name="who", runner=_who)], [AuthInterceptor(validator)])
    good = keys.token(
        keys.ec,
        "ES256",
        kid="e1",
        aud="api",
        iss="https://idp.example",
        org_id=ORG,
        roles=["admin"],
    )
    ctx, sink = our_ctx({"_auth_token": good})
    results = await graph.run(ctx)
    assert results["who"].data == {"user": USER, "org": ORG, "roles": ["admin"]}
    assert [event for event, _ in sink.events if event.startswith("auth.")] == ["auth.login"]

    expired = keys.token(
        keys.ec, "ES256", kid="e1", aud="api", iss="https://idp.example", exp=NOW - 1
    )
    ctx, sink = our_ctx({"_auth_token": expired, "_client_ip": "10.1.2.3"})
    results = await graph.run(ctx)
    assert results["who"].error == "Token has expired"
    auth_events = [(event, data) for event, data in sink.events if event.startswith("auth.")]
    failures = [payload for _, payload in without_timestamps(auth_events)]
    assert [(p["reason"], p["ip_address"]) for p in failures] == [("token_expired", "10.1.2.3")]

    not_a_uuid = keys.token(
        keys.ec, "ES256", kid="e1", aud="api", iss="https://idp.example", sub="auth0|123"
    )
    ctx, _ = our_ctx({"_auth_token": not_a_uuid})
    results = await graph.run(ctx)
    assert results["who"].error == ("Invalid UUID in claims: badly formed hexadecimal UUID string")


# --- construction ----------------------------------------------------------------------------


def test_construction_needs_pyjwt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)  # import jwt now raises ImportError
    with pytest.raises(
        ImportError,
        match=r"^SignedJwtValidator needs PyJWT with its crypto extra: "
        r"pip install 'stageflow-trio\[jwt\]'$",
    ):
        SignedJwtValidator(algorithms=["RS256"], key="k")
    assert auth_jwt.__all__ == ["SignedJwtValidator"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {},
            ValueError,
            "SignedJwtValidator: pass exactly one of key, jwks, jwks_fetcher; got none",
        ),
        (
            {"key": "k", "jwks": {"keys": []}},
            ValueError,
            "SignedJwtValidator: pass exactly one of key, jwks, jwks_fetcher; got key and jwks",
        ),
        ({"key": ""}, ValueError, "SignedJwtValidator: key must not be empty"),
        (
            {"key": "k", "algorithms": []},
            ValueError,
            "SignedJwtValidator: algorithms must name at least one algorithm; got []",
        ),
        (
            {"key": "k", "algorithms": "RS256"},
            TypeError,
            "SignedJwtValidator: algorithms must be an iterable of str; got str",
        ),
        (
            {"key": "k", "algorithms": [256]},
            TypeError,
            "SignedJwtValidator: algorithms must hold only str; got int",
        ),
        (
            {"key": "k", "algorithms": ["none"]},
            ValueError,
            "SignedJwtValidator: algorithms must not include 'none' (unsigned tokens)",
        ),
        (
            {"key": "k", "algorithms": ["RS256", "HS256"]},
            ValueError,
            "SignedJwtValidator: algorithms must not mix HMAC (HS*) and public-key algorithms; "
            "got ['RS256', 'HS256']",
        ),
        (
            {"key": "k", "jwks_fetcher": None, "now": 5},
            TypeError,
            "SignedJwtValidator: now must be a callable or None; got int",
        ),
        (
            {"jwks_fetcher": "https://idp/jwks"},
            TypeError,
            "SignedJwtValidator: jwks_fetcher must be a callable or None; got str",
        ),
        ({"key": "k", "leeway": -1}, ValueError, "SignedJwtValidator: leeway must be >= 0; got -1"),
        (
            {"key": "k", "jwks_refresh_interval": "1"},
            TypeError,
            "SignedJwtValidator: jwks_refresh_interval must be a number; got str",
        ),
        (
            {"key": "k", "audience": 5},
            TypeError,
            "SignedJwtValidator: audience must be a str or an iterable of str; got int",
        ),
        (
            {"key": "k", "issuer": [b"x"]},
            TypeError,
            "SignedJwtValidator: issuer must hold only str; got bytes",
        ),
        (
            {"key": "k", "required_claims": "exp"},
            TypeError,
            "SignedJwtValidator: required_claims must be an iterable of str; got str",
        ),
        (
            {"key": "k", "user_id_claim": ""},
            ValueError,
            "SignedJwtValidator: user_id_claim must not be empty",
        ),
        (
            {"key": "k", "roles_claim": None},
            TypeError,
            "SignedJwtValidator: roles_claim must be a str; got NoneType",
        ),
        (
            {"jwks": []},
            TypeError,
            "SignedJwtValidator: jwks must be a JWKS document (a mapping); got list",
        ),
        (
            {"jwks": {"keys": [{"kty": "XYZ"}]}},
            ValueError,
            "SignedJwtValidator: jwks holds no signing key PyJWT can use",
        ),
    ],
)
def test_bad_arguments_are_refused(
    keys: Keys, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    kwargs.setdefault("algorithms", ["RS256"])
    with pytest.raises(error) as info:
        _Validator(**kwargs)
    assert str(info.value) == message


def test_an_unsupported_algorithm_is_named(keys: Keys) -> None:
    with pytest.raises(
        ValueError, match=r"^SignedJwtValidator: algorithms holds 'RS999', "
    ) as info:
        SignedJwtValidator(algorithms=["RS999"], key="k")
    assert "'ES256'" in str(info.value)  # the supported ones are listed


async def test_equal_tokens_from_an_hmac_secret(keys: Keys) -> None:
    secret = "s" * 32
    validator = SignedJwtValidator(algorithms=["HS256"], key=secret, now=lambda: NOW)
    token = keys.jwt.encode(CLAIMS, secret, algorithm="HS256")
    assert (await validator.validate(token))["user_id"] == USER
    assert UUID((await validator.validate(token))["session_id"]) == UUID(MOCK_SESSION)
