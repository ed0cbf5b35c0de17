"""ExtensionBundle: typed extensions as attrs classes or dataclasses."""

from __future__ import annotations

import copy
import enum
import pickle
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.context import extensions as extensions_module
from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.extensions import ExtensionBundle
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

from .strategies import SampleExtensions, bundles

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@dataclass(frozen=True)
class Nested:
    label: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class NestedWithToDict:
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"custom": self.label}


@dataclass(frozen=True)
class SalesExtensions(ExtensionBundle):
    """A dataclass bundle, the way stageflow's docs write them."""

    deal_id: uuid.UUID | None = None
    competitors: list[str] = field(default_factory=list)
    nested: Nested | None = None


@attrs.frozen
class AttrsExtensions(ExtensionBundle):
    deal_id: str | None = None
    tags: FrozenList[str] = attrs.field(factory=FrozenList, converter=FrozenList[str])


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.context.extensions
    assert extensions_module.__all__ == ref.__all__


def test_dataclass_bundles_serialize_their_fields() -> None:
    bundle = SalesExtensions(deal_id=ID, competitors=["a"], nested=Nested("n", WHEN))
    assert bundle.to_dict() == {
        "deal_id": str(ID),
        "competitors": ["a"],
        "nested": {"label": "n", "at": "2026-01-02 03:04:05+00:00"},
    }


def test_attrs_bundles_serialize_their_fields_as_plain_containers() -> None:
    data = AttrsExtensions(deal_id="d", tags=FrozenList(["x"])).to_dict()
    assert data == {"deal_id": "d", "tags": ["x"]}
    assert type(data["tags"]) is list


def test_values_serialize_like_stageflow(reference: ModuleType) -> None:
    ref = reference.context.extensions
    values: list[Any] = [
        None,
        1,
        "s",
        1.5,
        True,
        ID,
        WHEN,
        date(2026, 1, 2),
        time(3, 4),
        [ID, {"k": WHEN}],
        {"a": [1, [2, 3]]},
        Nested("n", WHEN),
        NestedWithToDict("x"),
        {"deep": [Nested("m")]},
    ]

    @dataclass(frozen=True)
    class Mine(ExtensionBundle):
        value: Any = None

    @dataclass(frozen=True)
    class Theirs(ref.ExtensionBundle):  # type: ignore[misc,name-defined]
        value: Any = None

    for value in values:
        assert Mine(value).to_dict() == Theirs(value).to_dict()


def test_tuples_and_enums_serialize_to_json_ready_values() -> None:
    """Divergence (docs/parity.md): the reference keeps tuples and enums as they are."""

    @dataclass(frozen=True)
    class Mine(ExtensionBundle):
        value: Any = None

    assert Mine((ID, Nested("n"))).to_dict() == {"value": [str(ID), {"label": "n", "at": None}]}
    assert Mine({"a": (1, (2, 3))}).to_dict() == {"value": {"a": [1, [2, 3]]}}
    assert Mine(Tier.SILVER).to_dict() == {"value": "silver"}


def test_frozen_containers_serialize_as_plain_ones() -> None:
    @dataclass(frozen=True)
    class Holder(ExtensionBundle):
        value: Any = None

    data = Holder(FrozenDict({"a": FrozenList([1])})).to_dict()
    assert data == {"value": {"a": [1]}}
    assert type(data["value"]) is dict
    assert type(data["value"]["a"]) is list


def test_from_dict_rejects_unknown_keys_and_wrong_types_naming_the_field() -> None:
    assert SalesExtensions.from_dict({"competitors": ["b"]}) == SalesExtensions(competitors=["b"])
    with pytest.raises(
        TypeError,
        match=r"^SalesExtensions.from_dict: extra fields found \(nope\) @ SalesExtensions$",
    ):
        SalesExtensions.from_dict({"nope": 1})
    with pytest.raises(
        TypeError, match=r"^TypedBundle.from_dict: .*expected UUID @ TypedBundle.id$"
    ):
        TypedBundle.from_dict({"id": "not-a-uuid"})
    with pytest.raises(
        TypeError, match=r"^TypedBundle.from_dict: data must be a mapping; got list$"
    ):
        TypedBundle.from_dict([])  # type: ignore[arg-type]


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


@attrs.frozen
class Visit:
    at: datetime
    note: str = ""


@attrs.frozen
class TypedBundle(ExtensionBundle):
    """Typed fields the reference's cls(**data) cannot restore from to_dict()."""

    id: uuid.UUID
    tier: Tier = Tier.GOLD
    visits: tuple[Visit, ...] = ()
    last: Visit | None = None


@given(
    st.uuids(),
    st.sampled_from(Tier),
    st.lists(
        st.builds(
            Visit,
            at=st.datetimes(timezones=st.just(UTC)),
            note=st.text(max_size=5),
        ),
        max_size=3,
    ),
)
def test_typed_bundles_round_trip_through_the_converter(
    ident: uuid.UUID, tier: Tier, visits: list[Visit]
) -> None:
    bundle = TypedBundle(
        id=ident, tier=tier, visits=tuple(visits), last=visits[-1] if visits else None
    )
    data = bundle.to_dict()
    assert data["id"] == str(ident)
    assert TypedBundle.from_dict(data) == bundle


def test_a_bundle_with_unresolvable_annotations_falls_back_to_keywords() -> None:
    @attrs.frozen
    class Local(ExtensionBundle):
        ref: NotImportable | None = None  # type: ignore[name-defined]  # noqa: F821

    assert Local.from_dict({"ref": "kept as given"}) == Local(ref="kept as given")


@given(bundles)
def test_attrs_bundles_round_trip(bundle: SampleExtensions) -> None:
    assert SampleExtensions.from_dict(bundle.to_dict()) == bundle


def test_bundles_round_trip_through_a_snapshot() -> None:
    snapshot = ContextSnapshot(extensions=SalesExtensions(competitors=["c"]), created_at=WHEN)
    data = snapshot.to_dict()
    assert data["extensions_type"] == "SalesExtensions"
    restored: ContextSnapshot[Any] = ContextSnapshot.from_dict(
        data, extension_types={"SalesExtensions": SalesExtensions}
    )
    assert restored == snapshot


def test_bundles_are_immutable_values() -> None:
    for bundle in (SalesExtensions(competitors=["a"]), AttrsExtensions("d"), ExtensionBundle()):
        assert pickle.loads(pickle.dumps(bundle)) == bundle
        assert copy.copy(bundle) == bundle
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        AttrsExtensions().deal_id = "x"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ExtensionBundle().anything = 1  # type: ignore[attr-defined]
    assert ExtensionBundle() == ExtensionBundle()
    assert ExtensionBundle().to_dict() == {}
