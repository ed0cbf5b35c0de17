"""Audit 17, security review: secrets in messages and reprs, guardrail ReDoS, file modes, JWT.

Each test fails on the code before the fix it names.
"""

from __future__ import annotations

import os
import random
import re
import stat
import sys
import time
from pathlib import Path

import jwt as pyjwt
import pytest

from stageflow_trio.auth.errors import InvalidTokenError
from stageflow_trio.auth.jwt import SignedJwtValidator
from stageflow_trio.helpers import guardrails
from stageflow_trio.helpers.guardrails import PIIDetector
from stageflow_trio.stores import StoreConfigError, open_stores
from stageflow_trio.stores._common import redacted
from stageflow_trio.stores._redis_url import parse_redis_url

SECRET = "s3cretPW"

# --- PIIDetector: the email pattern in linear time ---------------------------------

_ADVERSARIAL_EMAIL = {
    # A long run of local-part characters with word boundaries everywhere, then "@"
    # and no domain: every start matched the whole run (48 s of CPU for 100 KB before).
    "dotted_run_then_at": "a." * 50_000 + "@",
    "two_runs": ("a." * 25_000 + "@") * 2,
    "percent_run": "%-" * 50_000 + "@",
}


@pytest.mark.parametrize("name", sorted(_ADVERSARIAL_EMAIL))
def test_pii_email_linear_on_adversarial_input(name: str) -> None:
    text = _ADVERSARIAL_EMAIL[name]
    detector = PIIDetector(redact=True, detect_types={"email"})
    started = time.process_time()
    result = detector.check(text)
    spent = time.process_time() - started
    assert result.passed
    # Linear: a few ms. Quadratic: tens of seconds. The bound leaves room for slow CI.
    assert spent < 2.0, f"{name}: {spent:.2f} s of CPU"


def test_pii_email_still_found_after_long_run() -> None:
    text = "a." * 20_000 + "@example.com and bob@x.org"
    matches = [v.location for v in PIIDetector(detect_types={"email"}).check(text).violations]
    pattern = re.compile(PIIDetector.PATTERNS["email"][0], re.IGNORECASE)
    assert matches == [m.span() for m in pattern.finditer(text)]
    assert len(matches) == 2


def test_pii_email_finder_equals_finditer_on_random_text() -> None:
    pattern = re.compile(PIIDetector.PATTERNS["email"][0], re.IGNORECASE)
    rng = random.Random(17)
    for _ in range(20_000):
        text = "".join(rng.choice("aB.@x-1 %|c_+é") for _ in range(rng.randint(0, 24)))
        expected = [m.span() for m in pattern.finditer(text)]
        assert [m.span() for m in guardrails._find_emails(pattern, text, None)] == expected, text


# --- Store URLs: no password in messages or reprs ----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"redis://user:{SECRET}@host:6379/0",
        f"redis://user:pre@{SECRET}@host:6379/0",  # an unencoded "@" in the password
        f"redis://user:{SECRET}/x@host:6379/0",  # an unencoded "/"
        f"redis://host:6379/0?password={SECRET}",
        f"redis://host:6379/0?client_name=a&token={SECRET}",
    ],
)
def test_redacted_hides_the_whole_password(url: str) -> None:
    assert SECRET not in redacted(url)
    assert "***" in redacted(url)


def test_redacted_keeps_a_url_without_credentials() -> None:
    assert redacted("redis://host:6379/0?client_name=w1") == "redis://host:6379/0?client_name=w1"
    assert redacted("sqlite:///var/lib/app.db") == "sqlite:///var/lib/app.db"


def test_redis_target_repr_hides_password() -> None:
    target = parse_redis_url(f"redis+cluster://user:{SECRET}@h1:7000,h2:7001", "url")
    assert target.password == SECRET  # the value itself is unchanged
    assert SECRET not in repr(target)
    assert "password='***'" in repr(target)
    assert "password=None" in repr(parse_redis_url("redis+cluster://h1:7000", "url"))


@pytest.mark.parametrize(
    "url",
    [
        f"redi://user:{SECRET}@host/0",  # a typo in the scheme
        f"memory://user:{SECRET}@host",
        f"sqlite://user:{SECRET}@host/x.db",
        f"redis://[user:{SECRET}@host/0",  # urlsplit refuses it
    ],
)
async def test_open_stores_errors_hide_password(url: str) -> None:
    with pytest.raises(StoreConfigError) as info:
        async with open_stores(url):
            pass  # pragma: no cover
    assert SECRET not in str(info.value)


# --- SQLite: a new file is its owner's only ----------------------------------------


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir() if p.is_file()}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
async def test_sqlite_file_created_private(tmp_path: Path) -> None:
    path = tmp_path / "stores.db"
    old_umask = os.umask(0o022)
    try:
        async with open_stores(f"sqlite:///{path}") as stores:
            await stores.idempotency.delete("k")
            modes = _modes(tmp_path)
    finally:
        os.umask(old_umask)
    assert modes["stores.db"] == 0o600
    for name, mode in modes.items():  # the -wal and -shm files follow the database's mode
        assert mode & 0o077 == 0, (name, oct(mode))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
async def test_sqlite_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    async with open_stores(f"sqlite:///{path}"):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# --- JWT: header values from the client are not copied whole into messages ---------


def _token(header: dict[str, object]) -> str:
    return pyjwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers=header)


async def test_jwt_unknown_kid_message_is_bounded() -> None:
    jwks = {"keys": [{"kty": "oct", "k": "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5", "kid": "one"}]}
    validator = SignedJwtValidator(algorithms=["HS256"], jwks=jwks)
    with pytest.raises(InvalidTokenError) as info:
        await validator.validate(_token({"kid": "K" * 100_000}))
    assert info.value.reason == "unknown_kid"
    assert len(str(info.value)) < 200
    assert str(info.value).startswith("No key with kid 'KKKK")


async def test_jwt_disallowed_alg_message_is_bounded() -> None:
    validator = SignedJwtValidator(algorithms=["RS256"], key="unused-key-material")
    header = pyjwt.utils.base64url_encode(b'{"alg": "' + b"A" * 100_000 + b'"}').decode()
    token = f"{header}.e30.c2ln"
    with pytest.raises(InvalidTokenError) as info:
        await validator.validate(token)
    assert info.value.reason == "invalid_algorithm"
    assert len(str(info.value)) < 200
    # A short value is shown whole, as before.
    with pytest.raises(InvalidTokenError, match=r"^Token algorithm 'HS256' is not allowed$"):
        await validator.validate(_token({}))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://h:1/0?client_name=a@b", "redis://h:1/0?client_name=a@b"),
        ("redis://[::1]:6379/0?client_name=a@b", "redis://[::1]:6379/0?client_name=a@b"),
        ("unix:///tmp/a@b.sock", "unix:///tmp/a@b.sock"),
        ("redis://u@h:1/0", "redis://u@h:1/0"),
        (f"redis://u:{SECRET}@[::1]:6379/0", "redis://u:***@[::1]:6379/0"),
        (f"rediss://default:a#{SECRET}@h/0", "rediss://default:***@h/0"),
        (f"redis://u:a?{SECRET}@h/0", "redis://u:***@h/0"),
    ],
)
def test_redacted_an_at_sign_outside_the_credentials(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_tool_payload_summary_masks_credential_named_values() -> None:
    """``tool.invoked`` and stored approval requests carry a summary of the payload:
    a value whose key names a credential is shown as ``"***"`` (the key stays)."""
    from stageflow_trio.tools.executor_v2 import _summarize_payload

    summary = _summarize_payload(
        {
            "password": "hunter2",
            "access_token": "t0k",
            "API-Key": "k",
            "Authorization": "Bearer x",
            "max_tokens": 5,
            "query": "weather",
            "secret": None,
        }
    )
    assert summary == {
        "password": "***",
        "access_token": "***",
        "API-Key": "***",
        "Authorization": "***",
        "max_tokens": 5,
        "query": "weather",
        "secret": None,
    }


def test_pipeline_context_repr_masks_the_bearer_token() -> None:
    """A logged or raised context (its repr) never shows the token AuthInterceptor reads;
    ``ctx.data`` itself keeps it, and a fork carries the masking along."""
    import uuid

    from stageflow_trio.stages.context import PipelineContext

    ctx = PipelineContext(
        pipeline_run_id=uuid.uuid4(),
        data={"_auth_token": "s3cret-token", "auth_token": "other-secret", "q": "weather"},
    )
    shown = repr(ctx)
    assert "s3cret-token" not in shown
    assert "other-secret" not in shown
    assert "'_auth_token': '***'" in shown
    assert "'q': 'weather'" in shown
    assert ctx.data["_auth_token"] == "s3cret-token"
    child = ctx.fork(uuid.uuid4(), "stage", uuid.uuid4(), inherit_data=True)
    assert "s3cret-token" not in repr(child)
    assert child.data["_auth_token"] == "s3cret-token"
    assert "FrozenDict({'_auth_token': '***'" in repr(child)  # the parent's data
