"""ContractRegistry, ContractMetadata, ContractCompatibilityReport and the attrs JSON schema.

The reference registers pydantic models only; the same models go through both
registries, and attrs twins of them through ours, and the listings and diffs
must agree.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import attrs
import pydantic
import pytest

from stageflow_trio.contracts import registry as contracts_registry
from stageflow_trio.contracts._models import json_schema
from stageflow_trio.contracts.registry import (
    ContractCompatibilityReport,
    ContractMetadata,
    ContractRegistry,
    registry,
)
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

if TYPE_CHECKING:
    from types import ModuleType


@pytest.fixture
def ref_registry(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.contracts.registry")


# --- models: each version as pydantic and as attrs ------------------------------------


class V1(pydantic.BaseModel):
    text: str
    score: int
    tags: list[str] = []


class V2(pydantic.BaseModel):  # score made optional, a new optional field
    text: str
    score: int | None = None
    tags: list[str] = []
    lang: str = "en"


class V3(pydantic.BaseModel):  # tags removed, required field added, text changed type
    text: int
    score: int
    source: str


@attrs.frozen
class A1:
    text: str
    score: int
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen
class A2:
    text: str
    score: int | None = None
    tags: list[str] = attrs.field(factory=list)
    lang: str = "en"


@attrs.frozen
class A3:
    text: int
    score: int
    source: str


PAIRS = [(V1, A1), (V2, A2), (V3, A3)]


def _sorted_sets(message: str) -> str:
    # The reference prints Python sets, whose order changes between runs; ours are sorted.
    return re.sub(
        r"\{([^{}]*)\}",
        lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}",
        message,
    )


def _report(report: Any) -> tuple[Any, ...]:
    return (
        report.stage,
        report.from_version,
        report.to_version,
        [_sorted_sets(message) for message in report.breaking_changes],
        list(report.warnings),
        report.is_compatible,
        report.summary(),
    )


@pytest.mark.parametrize("kind", ["pydantic", "attrs"])
def test_diffs_match_the_reference(ref_registry: ModuleType, kind: str) -> None:
    ours = ContractRegistry()
    theirs = ref_registry.ContractRegistry()
    for index, (pyd, att) in enumerate(PAIRS, start=1):
        ours.register(stage="s", version=f"{index}", model=pyd if kind == "pydantic" else att)
        theirs.register(stage="s", version=f"{index}", model=pyd)
    for left, right in [("1", "2"), ("2", "1"), ("1", "3"), ("2", "3"), ("3", "3")]:
        assert _report(ours.diff("s", left, right)) == _report(theirs.diff("s", left, right))


def test_diff_messages() -> None:
    ours = ContractRegistry()
    for index, (_, att) in enumerate(PAIRS, start=1):
        ours.register(stage="s", version=f"{index}", model=att)
    report = ours.diff("s", "2", "3")
    assert list(report.breaking_changes) == [
        "Field 'tags' removed",
        "Field 'lang' removed",
        "Field 'text' changed types {'string'} -> {'integer'}",
        "Required field 'source' added",
    ]
    assert report.summary() == "Contract diff for s 2->3: breaking (breaking=4, warnings=0)"
    # As in the reference: an optional field's schema is an anyOf with no "type",
    # which reads as "no known types", so int -> int | None counts as a change.
    optional = ours.diff("s", "1", "2")
    assert (list(optional.breaking_changes), list(optional.warnings)) == (
        ["Field 'score' changed types {'integer'} -> set()"],
        ["Optional field 'lang' added"],
    )
    assert optional.summary() == "Contract diff for s 1->2: breaking (breaking=1, warnings=1)"
    back = ours.diff("s", "2", "1")
    assert (back.is_compatible, list(back.breaking_changes)) == (False, ["Field 'lang' removed"])


@pytest.mark.parametrize(
    ("old", "new", "compatible"),
    [
        ({"type": "string"}, {"type": ["string", "null"]}, True),  # widened
        ({"type": ["string", "null"]}, {"type": "string"}, True),  # null dropped (as the reference)
        ({"type": ["string", "integer"]}, {"type": "string"}, False),
        ({}, {"type": "integer"}, True),  # unknown old types accept anything
        ({"properties": {}}, {"type": "object"}, True),  # an inline object counts as "object"
        ({"type": "object"}, {"type": "string"}, False),
    ],
)
def test_type_rules_match_the_reference(
    ref_registry: ModuleType, old: dict[str, Any], new: dict[str, Any], compatible: bool
) -> None:
    ours = ContractRegistry()
    theirs = ref_registry.ContractRegistry()
    for registry_, version, prop in ((ours, "1", old), (ours, "2", new)):
        registry_.register(stage="s", version=version, model=A1, schema={"properties": {"f": prop}})
    for version, prop, model in (("1", old, V1), ("2", new, V2)):
        theirs.register(stage="s", version=version, model=model, schema={"properties": {"f": prop}})
    mine = ours.diff("s", "1", "2")
    assert mine.is_compatible is compatible
    assert _report(mine) == _report(theirs.diff("s", "1", "2"))


def test_changed_types_print_sorted_sets() -> None:
    ours = ContractRegistry()
    ours.register(
        stage="s", version="1", model=A1, schema={"properties": {"f": {"type": ["b", "a"]}}}
    )
    ours.register(stage="s", version="2", model=A2, schema={"properties": {"f": {}}, "x": 1})
    ours.register(
        stage="s", version="3", model=A3, schema={"properties": {"f": {"type": ["d", "c"]}}}
    )
    assert list(ours.diff("s", "1", "2").breaking_changes) == [
        "Field 'f' changed types {'a', 'b'} -> set()"
    ]
    assert list(ours.diff("s", "1", "3").breaking_changes) == [
        "Field 'f' changed types {'a', 'b'} -> {'c', 'd'}"
    ]


def test_listing_matches_the_reference(ref_registry: ModuleType) -> None:
    ours = ContractRegistry()
    theirs = ref_registry.ContractRegistry()
    entries = [("b", "2", V2), ("a", "10", V1), ("b", "1", V1), ("a", "9", V3)]
    for stage, version, model in entries:
        ours.register(stage=stage, version=version, model=model, description=f"{stage}{version}")
        theirs.register(stage=stage, version=version, model=model, description=f"{stage}{version}")

    def key(items: list[Any]) -> list[tuple[str, str, Any, str | None]]:
        return [(m.stage, m.version, m.model, m.description) for m in items]

    assert key(ours.list()) == key(theirs.list())
    assert (
        key(ours.list("a"))
        == key(theirs.list("a"))
        == [
            ("a", "10", V1, "a10"),
            ("a", "9", V3, "a9"),
        ]
    )
    assert ours.list("zzz") == []
    assert dict(ours.get("a", "9").schema) == theirs.get("a", "9").schema  # type: ignore[union-attr]


def test_register_returns_the_existing_entry_for_the_same_model() -> None:
    ours = ContractRegistry()
    first = ours.register(stage="s", version="1", model=A1)
    assert ours.register(stage="s", version="1", model=A1) is first
    with pytest.raises(
        ValueError, match=r"^Contract s@1 already registered with a different model$"
    ):
        ours.register(stage="s", version="1", model=A2)
    assert ours.get("s", "2") is None
    ours.clear()
    assert ours.list() == []


def test_diff_of_a_missing_version() -> None:
    ours = ContractRegistry()
    ours.register(stage="s", version="1", model=A1)
    with pytest.raises(ValueError, match=r"^Contract s@0 not registered$"):
        ours.diff("s", "0", "1")
    with pytest.raises(ValueError, match=r"^Contract s@2 not registered$"):
        ours.diff("s", "1", "2")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stage": 1, "version": "1", "model": A1}, "stage must be a str; got int"),
        ({"stage": "s", "version": None, "model": A1}, "version must be a str; got NoneType"),
        (
            {"stage": "s", "version": "1", "model": dict},
            "model must be an attrs class or a pydantic model class; got <class 'dict'>",
        ),
        (
            {"stage": "s", "version": "1", "model": A1(text="t", score=1)},
            "model must be an attrs class or a pydantic model class; got A1(text='t', score=1, tags=[])",
        ),
    ],
)
def test_register_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError) as caught:
        ContractRegistry().register(**kwargs)
    assert str(caught.value) == f"ContractRegistry: {message}"


def test_metadata_is_frozen_with_a_registration_time() -> None:
    before = datetime.now(UTC)
    entry = ContractRegistry().register(stage="s", version="1", model=A1, schema={"x": 1})
    assert before <= entry.created_at <= datetime.now(UTC)
    assert entry.schema == {"x": 1}
    assert isinstance(entry.schema, FrozenDict)
    assert entry.description is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.version = "2"  # type: ignore[misc]
    later = ContractMetadata(stage="s", version="2", model=A1, schema=entry.schema)
    assert later.schema is entry.schema
    assert later.created_at >= entry.created_at


def test_report_fields() -> None:
    report = ContractCompatibilityReport("s", "1", "2", ["x"], [])
    assert isinstance(report.breaking_changes, FrozenList)
    assert report.is_compatible is False
    same = ContractCompatibilityReport("s", "1", "2", report.breaking_changes, FrozenList())
    assert same.breaking_changes is report.breaking_changes


def test_the_global_registry_is_reset_between_tests() -> None:
    assert registry.list() == []
    registry.register(stage="s", version="1", model=A1)
    assert contracts_registry.list() == registry.list()


def test_all_matches_the_reference(ref_registry: ModuleType) -> None:
    from stageflow_trio.contracts import registry as module

    module_obj = importlib.import_module("stageflow_trio.contracts.registry")
    assert sorted(module_obj.__all__) == sorted(ref_registry.__all__)
    assert module is module_obj.registry


# --- the attrs JSON schema has pydantic's shape ---------------------------------------


class Color(enum.Enum):
    RED = "red"


class Mixed(enum.Enum):
    ONE = 1
    TWO = "two"


class PInner(pydantic.BaseModel):
    x: int


class PAll(pydantic.BaseModel):
    text: str
    inner: PInner
    conf: float = 0.5
    n: int | None = None
    tags: list[str] = []
    t: tuple[int, ...] = ()
    pair: tuple[int, str] = (1, "a")
    s: set[str] = set()
    fs: frozenset[int] = frozenset()
    d: dict[str, int] = {}
    plain_dict: dict = {}  # type: ignore[type-arg]
    plain_list: list = []  # type: ignore[type-arg]
    a: Any = None
    u: uuid.UUID | None = None
    when: datetime | None = None
    c: Color = Color.RED
    mixed: Mixed = Mixed.ONE
    lit: Literal["a", "b"] = "a"
    mixed_lit: Literal["a", 1] = "a"
    b: bool = False
    opt: PInner | None = None
    raw: bytes = b""
    note: Annotated[str, "doc"] = "x"
    tree: dict[str, list[int]] = {}


@attrs.frozen
class AInner:
    x: int


@attrs.frozen
class AAll:
    text: str
    inner: AInner
    conf: float = 0.5
    n: int | None = None
    tags: list[str] = attrs.field(factory=list)
    t: tuple[int, ...] = ()
    pair: tuple[int, str] = (1, "a")
    s: set[str] = attrs.field(factory=set)
    fs: frozenset[int] = frozenset()
    d: dict[str, int] = attrs.field(factory=dict)
    plain_dict: dict = attrs.field(factory=dict)  # type: ignore[type-arg]
    plain_list: list = attrs.field(factory=list)  # type: ignore[type-arg]
    a: Any = None
    u: uuid.UUID | None = None
    when: datetime | None = None
    c: Color = Color.RED
    mixed: Mixed = Mixed.ONE
    lit: Literal["a", "b"] = "a"
    mixed_lit: Literal["a", 1] = "a"
    b: bool = False
    opt: AInner | None = None
    raw: bytes = b""
    note: Annotated[str, "doc"] = "x"
    tree: dict[str, list[int]] = attrs.field(factory=dict)


_FACTORY_FIELDS = {"tags", "s", "d", "plain_dict", "plain_list", "tree"}


def test_attrs_schema_matches_pydantic_for_the_same_fields() -> None:
    ours = json_schema(AAll)
    theirs = PAll.model_json_schema(mode="validation")
    # Rename the nested class and drop the defaults attrs gives by factory.
    text = repr(theirs).replace("PInner", "AInner")
    expected = eval(text)  # a dict of JSON values
    for name in _FACTORY_FIELDS:
        expected["properties"][name].pop("default")
    expected["title"] = "AAll"
    assert ours == expected


_META: FrozenDict[str, Any] = FrozenDict({"k": (1, 2)})


@attrs.frozen
class Node:
    _secret: int = attrs.field(alias="secret")
    cached: int = attrs.field(init=False, default=0)
    child: PInner | None = None
    children: list[Node] = attrs.field(factory=list)
    mapping: FrozenDict[str, int] = attrs.field(factory=FrozenDict)
    items: tuple[Any, ...] = ()
    other: object = None
    meta: FrozenDict[str, Any] = _META
    hook: Callable[[], int] | None = None


def test_attrs_schema_of_private_and_non_init_fields_and_nested_pydantic() -> None:
    schema = json_schema(Node)
    assert list(schema["properties"]) == [
        "secret",
        "child",
        "children",
        "mapping",
        "items",
        "other",
        "meta",
        "hook",
    ]
    assert schema["required"] == ["secret"]
    assert schema["$defs"]["PInner"] == PInner.model_json_schema()
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert schema["$defs"]["Node"]["title"] == "Node"
    assert schema["properties"]["mapping"] == {
        "additionalProperties": {"type": "integer"},
        "title": "Mapping",
        "type": "object",
    }
    assert schema["properties"]["other"] == {"default": None, "title": "Other"}
    assert schema["properties"]["meta"]["default"] == {"k": [1, 2]}
    assert schema["properties"]["hook"] == {
        "anyOf": [{}, {"type": "null"}],
        "default": None,
        "title": "Hook",
    }


def test_attrs_schema_of_bare_containers() -> None:
    @attrs.frozen
    class Bare:
        m: FrozenDict = attrs.field(factory=FrozenDict)  # type: ignore[type-arg]
        fl: FrozenList = attrs.field(factory=FrozenList)  # type: ignore[type-arg]

    props = json_schema(Bare)["properties"]
    assert props["m"] == {"additionalProperties": True, "title": "M", "type": "object"}
    assert props["fl"] == {"items": {}, "title": "Fl", "type": "array"}
