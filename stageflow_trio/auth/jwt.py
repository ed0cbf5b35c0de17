"""A JWT validator that checks real tokens: :class:`SignedJwtValidator`.

It verifies a token's signature against one key or a JWKS document (given as a
mapping, or fetched by an async callable of yours), then its expiry, not-before
and issued-at times, audience, issuer and required claims, and returns the
claims in the shape :class:`~stageflow_trio.auth.interceptors.AuthInterceptor`
reads. Failures raise the auth errors (:class:`~stageflow_trio.auth.errors.TokenExpiredError`,
:class:`~stageflow_trio.auth.errors.InvalidTokenError`,
:class:`~stageflow_trio.auth.errors.MissingClaimsError`), which the interceptor
turns into ``auth.failure`` events.

It needs PyJWT with its crypto extra: ``pip install 'stageflow-trio[jwt]'``.
This module imports without it; constructing a validator then raises ImportError.

Validating a token is CPU work of about 0.1 ms (RSA-2048 or P-256, PyJWT
included), less than handing it to a thread would cost, so it runs synchronously inside :meth:`SignedJwtValidator.validate`, after the
call's checkpoint; only a JWKS fetch waits.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import trio

from stageflow_trio._args import check_callable, check_number, type_of
from stageflow_trio._time import RunClock
from stageflow_trio.auth.errors import InvalidTokenError, MissingClaimsError, TokenExpiredError

if TYPE_CHECKING:
    from jwt import PyJWK

__all__ = ["SignedJwtValidator"]

logger: logging.Logger = logging.getLogger("stageflow_trio.auth.jwt")

JwksFetcher = Callable[[], Awaitable[Mapping[str, Any]]]

_OWNER = "SignedJwtValidator"
_INSTALL_HINT = (
    "SignedJwtValidator needs PyJWT with its crypto extra: pip install 'stageflow-trio[jwt]'"
)


def _require_pyjwt() -> None:
    try:
        import jwt  # noqa: F401 - only whether it imports
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc


def _str_list(param: str, value: object, *, allow_one: bool) -> list[str]:
    if allow_one and isinstance(value, str):
        return [value]
    rule = "a str or an iterable of str" if allow_one else "an iterable of str"
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{_OWNER}: {param} must be {rule}; got {type_of(value)}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{_OWNER}: {param} must hold only str; got {type_of(item)}")
    return items


def _check_algorithms(algorithms: object) -> tuple[str, ...]:
    from jwt.algorithms import get_default_algorithms

    names = _str_list("algorithms", algorithms, allow_one=False)
    if not names:
        raise ValueError(f"{_OWNER}: algorithms must name at least one algorithm; got []")
    supported = get_default_algorithms()
    for name in names:
        if name.lower() == "none":
            raise ValueError(f"{_OWNER}: algorithms must not include 'none' (unsigned tokens)")
        if name not in supported:
            raise ValueError(
                f"{_OWNER}: algorithms holds {name!r}, which PyJWT does not support; "
                f"supported: {sorted(supported)}"
            )
    hmac = [name for name in names if name.startswith("HS")]
    if hmac and len(hmac) != len(names):
        # A public key read as an HMAC secret would let anyone sign (RFC 8725, 2.1).
        raise ValueError(
            f"{_OWNER}: algorithms must not mix HMAC (HS*) and public-key algorithms; got {names}"
        )
    return tuple(names)


def _check_claim_name(param: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{_OWNER}: {param} must be a str; got {type_of(value)}")
    if not value:
        raise ValueError(f"{_OWNER}: {param} must not be empty")
    return value


def _parse_jwks(source: str, document: object) -> dict[str | None, list[PyJWK]]:
    """The signing keys of a JWKS ``document``, by kid (None for keys without one).

    Keys PyJWT cannot use (an unknown key type or curve) and encryption keys
    (``"use": "enc"``) are left out.

    Raises:
        TypeError: ``document`` is not a mapping with a ``"keys"`` list of
            mappings; the message starts with ``source``.
    """
    from jwt import PyJWK
    from jwt.exceptions import PyJWTError

    if not isinstance(document, Mapping):
        raise TypeError(f"{source} must be a JWKS document (a mapping); got {type_of(document)}")
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise TypeError(
            f"{source} must be a JWKS document with a 'keys' list; got keys={type_of(keys)}"
        )
    found: dict[str | None, list[PyJWK]] = {}
    for index, jwk in enumerate(keys):
        if not isinstance(jwk, Mapping):
            raise TypeError(f"{source}: keys[{index}] must be a mapping; got {type_of(jwk)}")
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(dict(jwk))
        except PyJWTError as exc:
            logger.debug("JWKS key %d skipped: %s", index, exc)
            continue
        except (LookupError, TypeError, ValueError) as exc:
            # PyJWT reads some fields unchecked: an "oct" key without "k" is a
            # KeyError. One broken key must not hide the others, nor fail the set.
            logger.debug("JWKS key %d skipped: %s: %s", index, type(exc).__name__, exc)
            continue
        kid = jwk.get("kid")
        found.setdefault(kid if isinstance(kid, str) else None, []).append(key)
    return found


_SHOWN_MAX = 64
"""The most characters of a token's header value (``alg``, ``kid``) an error message shows."""


def _shown(value: object) -> str:
    """``repr(value)``, cut to :data:`_SHOWN_MAX` characters (``...`` appended).

    ``alg`` and ``kid`` come from the token, that is from the client: the
    message goes to the ``auth.failure`` log record and the stage's error, and a
    megabyte-long header value must not be copied there.
    """
    text = repr(value)
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "..."


def _expired_at(exp: float) -> str | None:
    try:
        return datetime.fromtimestamp(exp, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _time_claim_error(claim: str, value: object) -> InvalidTokenError | None:
    """Why ``value`` is not a NumericDate (RFC 7519: a finite number), or None if it is one.

    Python's JSON reader accepts ``NaN`` and ``Infinity``; NaN compares false with
    every time, so a NaN ``exp`` or ``nbf`` would never be enforced.
    """
    if not _is_number(value):
        return InvalidTokenError(
            f"Invalid {claim} claim: expected a number; got {type_of(value)}", reason="malformed"
        )
    if isinstance(value, float) and not math.isfinite(value):  # an int is always finite
        return InvalidTokenError(
            f"Invalid {claim} claim: expected a finite number; got {value!r}", reason="malformed"
        )
    return None


def _roles(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    roles = (value,) if isinstance(value, str) else value
    if not isinstance(roles, list | tuple) or not all(isinstance(role, str) for role in roles):
        raise InvalidTokenError(
            "Invalid roles claim: expected a list of strings", reason="malformed"
        )
    return tuple(roles)


class SignedJwtValidator:
    """Validates signed JWTs against a key or a JWKS document; a :class:`JwtValidator`.

    Give exactly one key source: ``key`` (a PEM string or bytes, a
    ``cryptography`` public key, or the secret of an HS* algorithm), ``jwks``
    (a JWKS document, ``{"keys": [...]}``) or ``jwks_fetcher`` (an async
    callable returning one; your HTTP client goes here). With a JWKS, the
    token's ``kid`` header picks the key (a token without one is accepted only
    when the set holds a single key). Fetched documents are cached; a token
    whose ``kid`` is not in the cache makes the validator fetch again (key
    rotation), at most once per ``jwks_refresh_interval`` seconds of trio's
    clock (one clock for the validator's life, that of the run it is made or
    first used in, so a validator used in several ``trio.run`` calls refetches
    on time), and concurrent validations share one fetch. An error the fetcher
    raises propagates unchanged (it is not an authentication failure).

    :meth:`validate` checks, in order: the header (``alg`` among
    ``algorithms``), the signature, audience and issuer (only when given;
    a token carrying ``aud`` needs ``audience``), the required claims
    (``required_claims`` plus ``user_id_claim`` and ``session_id_claim``), then
    ``exp``, ``nbf`` and ``iat`` against ``now()`` with ``leeway`` seconds of
    tolerance. It returns every claim of the token plus the keys
    :class:`~stageflow_trio.auth.interceptors.AuthInterceptor` reads:
    ``user_id``, ``session_id``, ``org_id``, ``email`` (None when absent) and
    ``roles`` (a tuple of str), taken from the claims named by the ``*_claim``
    arguments.

    Args:
        algorithms: The accepted ``alg`` values, e.g. ``["RS256"]``; never
            derived from tokens. ``"none"`` and mixing HS* with public-key
            algorithms are refused.
        key: One verification key.
        jwks: A JWKS document.
        jwks_fetcher: An async callable returning a JWKS document.
        audience: The accepted audience(s), or None to not check (then a token
            with an ``aud`` claim is refused).
        issuer: The accepted issuer(s), or None to not check.
        leeway: Seconds of clock skew tolerated in the time checks.
        required_claims: Claims a token must carry (default ``("exp",)``).
        user_id_claim, session_id_claim, org_id_claim, email_claim, roles_claim:
            Where the AuthContext fields come from (``"sub"``, ``"sid"``,
            ``"org_id"``, ``"email"``, ``"roles"``).
        now: Returns the current time in Unix seconds (default ``time.time``);
            tests pass a fixed clock.
        jwks_refresh_interval: The least number of seconds between two fetches
            (default 60).

    Raises:
        ImportError: PyJWT (with cryptography) is not installed.
        TypeError, ValueError: a bad argument, named in the message.
    """

    def __init__(
        self,
        *,
        algorithms: Iterable[str],
        key: Any = None,
        jwks: Mapping[str, Any] | None = None,
        jwks_fetcher: JwksFetcher | None = None,
        audience: str | Iterable[str] | None = None,
        issuer: str | Iterable[str] | None = None,
        leeway: float = 0.0,
        required_claims: Iterable[str] = ("exp",),
        user_id_claim: str = "sub",
        session_id_claim: str = "sid",
        org_id_claim: str = "org_id",
        email_claim: str = "email",
        roles_claim: str = "roles",
        now: Callable[[], float] | None = None,
        jwks_refresh_interval: float = 60.0,
    ) -> None:
        _require_pyjwt()
        self._algorithms = _check_algorithms(algorithms)
        given = [
            name
            for name, value in (("key", key), ("jwks", jwks), ("jwks_fetcher", jwks_fetcher))
            if value is not None
        ]
        if len(given) != 1:
            got = " and ".join(given) if given else "none"
            raise ValueError(f"{_OWNER}: pass exactly one of key, jwks, jwks_fetcher; got {got}")
        if key is not None and isinstance(key, str | bytes) and not key:
            raise ValueError(f"{_OWNER}: key must not be empty")
        check_callable(_OWNER, "jwks_fetcher", jwks_fetcher, optional=True)
        check_callable(_OWNER, "now", now, optional=True)
        self._key = key
        self._fetcher = jwks_fetcher
        self._keys: dict[str | None, list[PyJWK]] = {}
        if jwks is not None:
            self._keys = _parse_jwks(f"{_OWNER}: jwks", jwks)
            if not self._keys:
                raise ValueError(f"{_OWNER}: jwks holds no signing key PyJWT can use")
        self._audience = (
            None if audience is None else _str_list("audience", audience, allow_one=True)
        )
        self._issuer = None if issuer is None else _str_list("issuer", issuer, allow_one=True)
        self._leeway = check_number(_OWNER, "leeway", leeway, minimum=0)
        self._user_id_claim = _check_claim_name("user_id_claim", user_id_claim)
        self._session_id_claim = _check_claim_name("session_id_claim", session_id_claim)
        self._org_id_claim = _check_claim_name("org_id_claim", org_id_claim)
        self._email_claim = _check_claim_name("email_claim", email_claim)
        self._roles_claim = _check_claim_name("roles_claim", roles_claim)
        required = _str_list("required_claims", required_claims, allow_one=False)
        # dict.fromkeys: the order given, without repeats.
        self._required = tuple(
            dict.fromkeys([*required, self._user_id_claim, self._session_id_claim])
        )
        self._now: Callable[[], float] = time.time if now is None else now
        self._refresh_interval = check_number(
            _OWNER, "jwks_refresh_interval", jwks_refresh_interval, minimum=0
        )
        self._fetched_at: float | None = None
        self._clock = RunClock()
        self._generation = 0
        self._fetch_lock = trio.Lock()

    async def validate(self, token: str) -> dict[str, Any]:
        """Verify ``token`` and return its claims (see the class). A checkpoint.

        Raises:
            TokenExpiredError: ``exp`` has passed (``expired_at`` says when).
            InvalidTokenError: a malformed token, a disallowed algorithm, an
                unknown ``kid``, a bad signature, a wrong audience or issuer, a
                token not yet valid; ``reason`` says which.
            MissingClaimsError: required claims are missing (all of them listed).
            Whatever ``jwks_fetcher`` raises, and TypeError when it
            returns something that is not a JWKS document.
        """
        await trio.lowlevel.checkpoint()
        import jwt

        if not isinstance(token, str | bytes):
            raise InvalidTokenError(
                f"Malformed token: expected a string; got {type_of(token)}", reason="malformed"
            )
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"Malformed token: {exc}", reason="malformed") from None
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise InvalidTokenError(
                f"Token algorithm {_shown(alg)} is not allowed", reason="invalid_algorithm"
            )
        key = self._key if self._key is not None else await self._jwk_for(header.get("kid"))
        payload = self._decode(token, key)
        missing = [claim for claim in self._required if payload.get(claim) is None]
        if missing:
            raise MissingClaimsError(
                f"Missing required claims: {', '.join(missing)}", missing_claims=missing
            )
        self._check_times(payload)
        claims = dict(payload)
        claims["user_id"] = payload[self._user_id_claim]
        claims["session_id"] = payload[self._session_id_claim]
        claims["org_id"] = payload.get(self._org_id_claim)
        claims["email"] = payload.get(self._email_claim)
        claims["roles"] = _roles(payload.get(self._roles_claim))
        return claims

    def _decode(self, token: str | bytes, key: Any) -> dict[str, Any]:
        """The payload, once the signature, audience and issuer are checked. No checkpoint."""
        import jwt
        from jwt import exceptions as e

        try:
            return jwt.decode(
                token,
                key,
                algorithms=list(self._algorithms),
                audience=self._audience,
                issuer=self._issuer,
                # The time checks are ours, against the injectable clock.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except e.InvalidSignatureError:
            raise InvalidTokenError("Invalid token signature", reason="invalid_signature") from None
        except e.DecodeError as exc:
            raise InvalidTokenError(f"Malformed token: {exc}", reason="malformed") from None
        except e.InvalidAudienceError:
            raise InvalidTokenError("Invalid token audience", reason="invalid_audience") from None
        except e.InvalidIssuerError:
            raise InvalidTokenError("Invalid token issuer", reason="invalid_issuer") from None
        except e.MissingRequiredClaimError as exc:
            raise MissingClaimsError(
                f"Missing required claims: {exc.claim}", missing_claims=[exc.claim]
            ) from None
        except e.InvalidAlgorithmError as exc:
            raise InvalidTokenError(
                f"Token algorithm does not match the key: {exc}", reason="invalid_algorithm"
            ) from None
        except (e.InvalidKeyError, TypeError, ValueError) as exc:
            # PyJWT raises TypeError/ValueError when the key cannot serve the token's
            # algorithm (an RSA key for an ES256 token).
            raise InvalidTokenError(
                f"Token does not match the key: {exc}", reason="invalid_key"
            ) from None
        except e.PyJWTError as exc:
            raise InvalidTokenError(f"Invalid token: {exc}", reason="invalid_claims") from None

    def _check_times(self, payload: Mapping[str, Any]) -> None:
        now = self._now()
        # The annotation is the caller's promise; a NaN clock would pass every token.
        clock: object = now
        if not _is_number(clock):
            raise TypeError(
                f"{_OWNER}: now() must return a number of seconds; got {type_of(clock)}"
            )
        if isinstance(clock, float) and not math.isfinite(clock):
            raise ValueError(
                f"{_OWNER}: now() must return a finite number of seconds; got {clock!r}"
            )
        leeway = self._leeway
        for claim in ("exp", "nbf", "iat"):
            value = payload.get(claim)
            if value is not None:
                error = _time_claim_error(claim, value)
                if error is not None:
                    raise error
        exp = payload.get("exp")
        if exp is not None and exp <= now - leeway:
            raise TokenExpiredError("Token has expired", expired_at=_expired_at(exp))
        for claim in ("nbf", "iat"):
            value = payload.get(claim)
            if value is not None and value > now + leeway:
                raise InvalidTokenError(f"Token is not yet valid ({claim})", reason="not_yet_valid")

    def _lookup(self, kid: str | None) -> PyJWK | None:
        # A kid that is not a str never gets here: PyJWT refuses it when reading the header.
        if kid is None:
            everything = [key for keys in self._keys.values() for key in keys]
            return everything[0] if len(everything) == 1 else None
        keys = self._keys.get(kid)
        return keys[0] if keys else None

    async def _jwk_for(self, kid: str | None) -> PyJWK:
        key = self._lookup(kid)
        if key is None and self._fetcher is not None:
            generation = self._generation
            async with self._fetch_lock:
                # Another validation may have fetched while this one waited.
                if self._generation == generation and self._may_fetch():
                    await self._fetch(self._fetcher)
            key = self._lookup(kid)
        if key is not None:
            return key
        if kid is None:
            raise InvalidTokenError(
                "Token has no kid and the JWKS does not hold exactly one key",
                reason="unknown_kid",
            )
        raise InvalidTokenError(f"No key with kid {_shown(kid)} in the JWKS", reason="unknown_kid")

    def _may_fetch(self) -> bool:
        return (
            self._fetched_at is None or self._clock() - self._fetched_at >= self._refresh_interval
        )

    async def _fetch(self, fetcher: JwksFetcher) -> None:
        document = await fetcher()
        self._keys = _parse_jwks(f"{_OWNER}: the jwks_fetcher's result", document)
        self._fetched_at = self._clock()
        self._generation += 1
        logger.debug("JWKS fetched: %d kids", len(self._keys))
