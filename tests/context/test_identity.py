"""RunIdentity: ids, serialization, parity with stageflow, bad input."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.context import identity as identity_module
from stageflow_trio.context.identity import RunIdentity

from .strategies import run_identities

ID_FIELDS = ("pipeline_run_id", "request_id", "session_id", "user_id", "org_id", "interaction_id")
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.context.identity
    assert identity_module.__all__ == ref.__all__


def test_defaults_are_none_ids_and_an_aware_utc_creation_time() -> None:
    before = datetime.now(UTC)
    identity = RunIdentity()
    after = datetime.now(UTC)
    assert [getattr(identity, name) for name in ID_FIELDS] == [None] * 6
    assert identity.created_at.tzinfo is UTC
    assert before <= identity.created_at <= after


def test_to_dict_gives_id_strings_or_none_and_an_iso_timestamp() -> None:
    run_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    identity = RunIdentity(pipeline_run_id=run_id, org_id=None, created_at=WHEN)
    assert identity.to_dict() == {
        "pipeline_run_id": "12345678-1234-5678-1234-567812345678",
        "request_id": None,
        "session_id": None,
        "user_id": None,
        "org_id": None,
        "interaction_id": None,
        "created_at": "2026-01-02T03:04:05.678901+00:00",
    }


def test_to_dict_returns_a_new_dict_each_call() -> None:
    identity = RunIdentity(user_id=uuid.uuid4())
    first = identity.to_dict()
    first["user_id"] = "changed"
    assert identity.to_dict()["user_id"] == str(identity.user_id)


def test_uuid_strings_given_to_the_constructor_are_parsed() -> None:
    identity = RunIdentity(user_id="12345678-1234-5678-1234-567812345678")  # type: ignore[arg-type]
    assert identity.user_id == uuid.UUID("12345678-1234-5678-1234-567812345678")


@given(run_identities)
def test_from_dict_inverts_to_dict(identity: RunIdentity) -> None:
    assert RunIdentity.from_dict(identity.to_dict()) == identity


@given(run_identities)
def test_from_dict_inverts_to_dict_through_json(identity: RunIdentity) -> None:
    data = json.loads(json.dumps(identity.to_dict()))
    restored = RunIdentity.from_dict(data)
    assert restored == identity
    assert restored.to_dict() == identity.to_dict()


@given(
    st.uuids(), st.sampled_from([str.upper, lambda s: "{" + s + "}", lambda s: s.replace("-", "")])
)
def test_non_canonical_id_spellings_serialize_canonically(
    value: uuid.UUID, spell: Callable[[str], str]
) -> None:
    text = spell(str(value))
    restored = RunIdentity.from_dict({"session_id": text, "created_at": WHEN.isoformat()})
    assert restored.session_id == value
    assert restored.to_dict()["session_id"] == str(value)


def test_non_canonical_timestamps_serialize_as_isoformat() -> None:
    for text, expected in [
        ("2026-01-02T03:04:05.000000+00:00", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02 03:04:05.5+02:00", "2026-01-02T03:04:05.500000+02:00"),
        ("2026-W01-5T03:04:05.123456+00:00", "2026-01-02T03:04:05.123456+00:00"),
    ]:
        assert RunIdentity.from_dict({"created_at": text}).to_dict()["created_at"] == expected


def test_from_dict_treats_missing_and_empty_values_as_absent() -> None:
    before = datetime.now(UTC)
    identity = RunIdentity.from_dict({"request_id": "", "created_at": ""})
    assert identity.request_id is None
    assert identity.created_at >= before


def test_with_pipeline_run_id_returns_a_new_identity() -> None:
    identity = RunIdentity(user_id=uuid.uuid4(), created_at=WHEN)
    new_id = uuid.uuid4()
    changed = identity.with_pipeline_run_id(new_id)
    assert changed.pipeline_run_id == new_id
    assert identity.pipeline_run_id is None
    assert changed.user_id == identity.user_id
    assert changed.created_at == WHEN
    assert changed.to_dict()["pipeline_run_id"] == str(new_id)


def test_is_immutable() -> None:
    identity = RunIdentity()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        identity.user_id = uuid.uuid4()  # type: ignore[misc]


@given(run_identities)
def test_matches_stageflow(reference: ModuleType, identity: RunIdentity) -> None:
    ref = reference.context.identity
    ref_identity = ref.RunIdentity(
        **{name: getattr(identity, name) for name in ID_FIELDS}, created_at=identity.created_at
    )
    assert identity.to_dict() == ref_identity.to_dict()
    mine = RunIdentity.from_dict(ref_identity.to_dict())
    theirs = ref.RunIdentity.from_dict(identity.to_dict())
    for name in (*ID_FIELDS, "created_at"):
        assert getattr(mine, name) == getattr(theirs, name)


def test_malformed_uuid_string_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^user_id must be a UUID string, got 'nope'$"):
        RunIdentity.from_dict({"user_id": "nope"})
    with pytest.raises(ValueError, match=r"^org_id must be a UUID string, got 'x'$"):
        RunIdentity(org_id="x")  # type: ignore[arg-type]


def test_wrong_id_type_names_the_field() -> None:
    with pytest.raises(
        TypeError, match=r"^request_id must be a UUID, a UUID string or None, got int$"
    ):
        RunIdentity(request_id=5)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^session_id must be a UUID, a UUID string or None, got list$"
    ):
        RunIdentity.from_dict({"session_id": [1]})


def test_malformed_created_at_names_the_field() -> None:
    with pytest.raises(
        ValueError, match=r"^created_at must be an ISO 8601 string, got 'yesterday'$"
    ):
        RunIdentity.from_dict({"created_at": "yesterday"})
    with pytest.raises(
        TypeError, match=r"^created_at must be an ISO 8601 string or None, got int$"
    ):
        RunIdentity.from_dict({"created_at": 5})


def test_from_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(TypeError, match=r"^data must be a mapping, got list$"):
        RunIdentity.from_dict([])  # type: ignore[arg-type]


@pytest.mark.parametrize("created_at", ["2024-01-01T00:00:00+00:00", 1700000000, None])
def test_created_at_that_is_not_a_datetime_fails_at_construction(created_at: Any) -> None:
    # Audit 15: it was stored, and to_dict() then failed with AttributeError (isoformat).
    with pytest.raises(TypeError, match=r"^RunIdentity: created_at must be a datetime, got "):
        RunIdentity(created_at=created_at)
