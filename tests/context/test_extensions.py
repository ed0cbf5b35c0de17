"""ExtensionBundle: typed extensions as attrs classes or dataclasses."""

from __future__ import annotations

import copy
import pickle
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import attrs
import pytest
from hypothesis import given

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
    tags: FrozenList[str] = attrs.field(factory=FrozenList, converter=FrozenList)


def test_all_matches_the_reference() -> None:
    ref = pytest.importorskip("stageflow.context.extensions")
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


def test_values_serialize_like_stageflow() -> None:
    ref = pytest.importorskip("stageflow.context.extensions")
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
        {"a": [1, (2, 3)]},
        (ID,),
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


def test_frozen_containers_serialize_as_plain_ones() -> None:
    @dataclass(frozen=True)
    class Holder(ExtensionBundle):
        value: Any = None

    data = Holder(FrozenDict({"a": FrozenList([1])})).to_dict()
    assert data == {"value": {"a": [1]}}
    assert type(data["value"]) is dict
    assert type(data["value"]["a"]) is list


def test_from_dict_passes_the_items_as_keywords() -> None:
    assert SalesExtensions.from_dict({"competitors": ["b"]}) == SalesExtensions(competitors=["b"])
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'nope'$"):
        SalesExtensions.from_dict({"nope": 1})


@given(bundles)
def test_attrs_bundles_round_trip(bundle: SampleExtensions) -> None:
    assert SampleExtensions.from_dict(bundle.to_dict()) == bundle


def test_bundles_round_trip_through_a_snapshot() -> None:
    snapshot = ContextSnapshot(extensions=SalesExtensions(competitors=["c"]), created_at=WHEN)
    data = snapshot.to_dict()
    assert data["extensions_type"] == "SalesExtensions"
    restored = ContextSnapshot.from_dict(data, extension_types={"SalesExtensions": SalesExtensions})
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
