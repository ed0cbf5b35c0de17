"""_time.uuid4 builds its UUID from the integer: the same UUID uuid.UUID(bytes=, version=4) gives."""

from __future__ import annotations

import os
import uuid

import pytest

from stageflow_trio import _time


@pytest.mark.parametrize("raw", [bytes(16), b"\xff" * 16, bytes(range(16)), bytes(range(200, 216))])
def test_uuid4_is_uuid_version_4_of_the_same_random_bytes(
    monkeypatch: pytest.MonkeyPatch, raw: bytes
) -> None:
    monkeypatch.setattr(os, "urandom", lambda n: raw[:n])
    made = _time.uuid4()
    expected = uuid.UUID(bytes=raw, version=4)
    assert made == expected
    assert (made.int, made.version, made.variant, str(made)) == (
        expected.int,
        4,
        uuid.RFC_4122,
        str(expected),
    )
    assert made.is_safe is uuid.SafeUUID.unknown
    assert hash(made) == hash(expected)
