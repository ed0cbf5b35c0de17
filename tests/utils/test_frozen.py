"""FrozenDict / FrozenList: drop-in dict and list values that refuse mutation."""

from __future__ import annotations

import copy
import json
import pickle
import re
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.utils import FrozenDict, FrozenList
from stageflow_trio.utils import frozen as frozen_module
from tests.core.strategies import data_dicts, json_values

if TYPE_CHECKING:
    from collections.abc import Callable

_DICT_HINT = "make a mutable copy with dict(value) or value.to_dict()"
_LIST_HINT = "make a mutable copy with list(value) or value.to_list()"


def test_exports() -> None:
    assert frozen_module.__all__ == ["FrozenDict", "FrozenList"]
    assert FrozenDict is frozen_module.FrozenDict
    assert FrozenList is frozen_module.FrozenList


# --- FrozenDict -----------------------------------------------------------------


def test_frozen_dict_is_a_dict_equal_to_its_source() -> None:
    fd = FrozenDict({"a": 1, "b": [2]})
    assert isinstance(fd, dict)
    assert fd == {"a": 1, "b": [2]}
    assert {"a": 1, "b": [2]} == fd  # noqa: SIM300 (the reflected comparison is the point)
    assert fd != {"a": 1}
    assert fd["a"] == 1
    assert fd.get("missing") is None
    assert fd.get("missing", 5) == 5
    assert list(fd.keys()) == ["a", "b"]
    assert list(fd.values()) == [1, [2]]
    assert list(fd.items()) == [("a", 1), ("b", [2])]
    assert "a" in fd
    assert len(fd) == 2


def test_frozen_dict_construction_forms() -> None:
    assert FrozenDict() == {}
    assert FrozenDict(None) == {}
    assert FrozenDict(data={"x": 1}) == {"x": 1}
    assert FrozenDict([("k", "v")]) == {"k": "v"}
    assert FrozenDict(FrozenDict({"n": 1})) == {"n": 1}
    assert FrozenDict.fromkeys("ab", 0) == {"a": 0, "b": 0}
    assert type(FrozenDict.fromkeys("ab")) is FrozenDict


@pytest.mark.parametrize("bad", [3, 2.5, object()])
def test_frozen_dict_rejects_non_mapping_data(bad: object) -> None:
    name = type(bad).__name__
    with pytest.raises(
        TypeError,
        match=rf"^FrozenDict data must be a mapping or an iterable of key/value pairs, got {name}$",
    ):
        FrozenDict(bad)  # type: ignore[arg-type]


def test_frozen_dict_rejects_pairs_of_wrong_length() -> None:
    with pytest.raises(TypeError, match=r"^FrozenDict data must be .* got list$"):
        FrozenDict([("a", 1, 2)])  # type: ignore[arg-type]


_DICT_MUTATIONS: list[tuple[str, Callable[[Any], object]]] = [
    ("item assignment", lambda d: d.__setitem__("a", 2)),
    ("item deletion", lambda d: d.__delitem__("a")),
    ("'|='", lambda d: d.__ior__({"z": 1})),
    ("'clear'", lambda d: d.clear()),
    ("'pop'", lambda d: d.pop("a")),
    ("'popitem'", lambda d: d.popitem()),
    ("'setdefault'", lambda d: d.setdefault("z", 1)),
    ("'update'", lambda d: d.update(z=1)),
    ("re-initialization", lambda d: d.__init__({"z": 1})),
]


@pytest.mark.parametrize(
    ("operation", "mutate"), _DICT_MUTATIONS, ids=[m[0] for m in _DICT_MUTATIONS]
)
def test_frozen_dict_refuses_every_mutation(
    operation: str, mutate: Callable[[Any], object]
) -> None:
    fd = FrozenDict({"a": 1})
    with pytest.raises(
        TypeError,
        match=rf"^FrozenDict is immutable: {re.escape(operation)} is not supported; {re.escape(_DICT_HINT)}$",
    ):
        mutate(fd)
    assert fd == {"a": 1}


def test_frozen_dict_operator_forms_are_refused() -> None:
    fd = FrozenDict({"a": 1})
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        fd["b"] = 2
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item deletion"):
        del fd["a"]
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: '\|='"):
        fd |= {"b": 2}
    assert fd == {"a": 1}


def test_frozen_dict_copies() -> None:
    fd = FrozenDict({"a": [1]})
    plain: dict[str, object] = dict(fd)
    plain["b"] = 2
    assert fd == {"a": [1]}
    assert type(plain) is dict
    as_dict = fd.to_dict()
    assert type(as_dict) is dict
    assert as_dict == {"a": [1]}
    assert as_dict is not fd
    dup = fd.copy()
    assert type(dup) is FrozenDict
    assert dup == fd
    assert dup is not fd
    # ``|`` builds a new plain dict, as for any dict subclass.
    merged = fd | {"b": 2}
    assert merged == {"a": [1], "b": 2}
    assert type(merged) is dict


def test_frozen_dict_is_shallow() -> None:
    inner: list[int] = [1]
    fd = FrozenDict({"a": inner})
    fd["a"].append(2)
    assert fd == {"a": [1, 2]}


def test_frozen_dict_json_pickle_and_copy() -> None:
    fd = FrozenDict({"a": 1, "nested": {"b": [1, 2]}})
    assert json.dumps(fd) == json.dumps({"a": 1, "nested": {"b": [1, 2]}})
    assert json.dumps(fd, sort_keys=True) == '{"a": 1, "nested": {"b": [1, 2]}}'
    for clone in (
        pickle.loads(pickle.dumps(fd)),
        copy.deepcopy(fd),
        copy.copy(fd),
    ):
        assert type(clone) is FrozenDict
        assert clone == fd
        with pytest.raises(TypeError):
            clone["x"] = 1
    deep = copy.deepcopy(fd)
    assert deep["nested"] is not fd["nested"]


def test_frozen_dict_hash_ignores_insertion_order() -> None:
    assert hash(FrozenDict({"a": 1, "b": 2})) == hash(FrozenDict({"b": 2, "a": 1}))
    assert {FrozenDict({"a": 1}): "x"}[FrozenDict({"a": 1})] == "x"
    with pytest.raises(TypeError, match=r"unhashable type: 'list'"):
        hash(FrozenDict({"a": [1]}))


def test_frozen_dict_repr() -> None:
    assert repr(FrozenDict({"a": 1})) == "FrozenDict({'a': 1})"
    assert repr(FrozenDict()) == "FrozenDict({})"


@given(data_dicts)
def test_frozen_dict_equals_plain_dict_property(source: dict[str, Any]) -> None:
    fd = FrozenDict(source)
    assert fd == source
    assert dict(fd) == source
    assert list(fd) == list(source)
    assert json.loads(json.dumps(fd)) == json.loads(json.dumps(source))
    assert pickle.loads(pickle.dumps(fd)) == fd
    assert copy.deepcopy(fd) == fd
    with pytest.raises(TypeError):
        fd["new-key"] = 1
    with pytest.raises(TypeError):
        fd.update(source)
    assert fd == source


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=6))
def test_frozen_dict_hash_matches_reference(reference: ModuleType, source: dict[str, int]) -> None:
    ref = reference.utils.frozen
    assert hash(FrozenDict(source)) == hash(ref.FrozenDict(source))


def test_frozen_dict_differential_against_reference(reference: ModuleType) -> None:
    ref = reference.utils.frozen
    source = {"a": 1, "b": "two"}
    ours, theirs = FrozenDict(source), ref.FrozenDict(source)
    assert repr(ours) == repr(theirs)
    assert ours == theirs
    assert theirs == ours
    assert ours.to_dict() == theirs.to_dict()
    assert ours.copy() == theirs.copy()
    assert ours.get("a") == theirs.get("a")
    assert list(ours.items()) == list(theirs.items())
    # Both refuse assignment with TypeError.
    with pytest.raises(TypeError):
        theirs["a"] = 2
    with pytest.raises(TypeError):
        ours["a"] = 2


# --- FrozenList -----------------------------------------------------------------


def test_frozen_list_is_a_list_equal_to_its_source() -> None:
    fl = FrozenList([1, 2, 3])
    assert isinstance(fl, list)
    assert fl == [1, 2, 3]
    assert [1, 2, 3] == fl  # noqa: SIM300 (the reflected comparison is the point)
    same_items_as_a_tuple: object = (1, 2, 3)
    assert fl != same_items_as_a_tuple
    assert fl[0] == 1
    assert fl[-1] == 3
    assert 2 in fl
    assert len(fl) == 3
    assert fl.index(2) == 1
    assert fl.count(3) == 1
    assert FrozenList() == []
    assert FrozenList(None) == []
    assert FrozenList(x for x in "ab") == ["a", "b"]


def test_frozen_list_slices_and_operators_return_plain_lists() -> None:
    fl = FrozenList([1, 2, 3])
    for result in (fl[1:], fl + [4], fl * 2):  # noqa: RUF005 (list.__add__ is under test)
        assert type(result) is list
    assert fl[1:] == [2, 3]


def test_frozen_list_rejects_non_iterable() -> None:
    with pytest.raises(TypeError, match=r"^FrozenList data must be an iterable, got int$"):
        FrozenList(5)  # type: ignore[arg-type]


_LIST_MUTATIONS: list[tuple[str, Callable[[Any], object]]] = [
    ("item assignment", lambda lst: lst.__setitem__(0, 9)),
    ("item assignment", lambda lst: lst.__setitem__(slice(0, 1), [9])),
    ("item deletion", lambda lst: lst.__delitem__(0)),
    ("'+='", lambda lst: lst.__iadd__([9])),
    ("'*='", lambda lst: lst.__imul__(2)),
    ("'append'", lambda lst: lst.append(9)),
    ("'extend'", lambda lst: lst.extend([9])),
    ("'insert'", lambda lst: lst.insert(0, 9)),
    ("'pop'", lambda lst: lst.pop()),
    ("'remove'", lambda lst: lst.remove(1)),
    ("'clear'", lambda lst: lst.clear()),
    ("'sort'", lambda lst: lst.sort(reverse=True)),
    ("'reverse'", lambda lst: lst.reverse()),
    ("re-initialization", lambda lst: lst.__init__([9])),
]


@pytest.mark.parametrize(
    ("operation", "mutate"),
    _LIST_MUTATIONS,
    ids=[f"{i}-{m[0]}" for i, m in enumerate(_LIST_MUTATIONS)],
)
def test_frozen_list_refuses_every_mutation(
    operation: str, mutate: Callable[[Any], object]
) -> None:
    fl = FrozenList([1, 2])
    with pytest.raises(
        TypeError,
        match=rf"^FrozenList is immutable: {re.escape(operation)} is not supported; {re.escape(_LIST_HINT)}$",
    ):
        mutate(fl)
    assert fl == [1, 2]


def test_frozen_list_augmented_assignment_is_refused() -> None:
    fl = FrozenList([1])
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: '\+='"):
        fl += [2]
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: item assignment"):
        fl[0] = 5
    assert fl == [1]


def test_frozen_list_copies_hash_repr() -> None:
    fl = FrozenList([1, 2])
    as_list = fl.to_list()
    assert type(as_list) is list
    as_list.append(3)
    assert fl == [1, 2]
    dup = fl.copy()
    assert type(dup) is FrozenList
    assert dup == fl
    assert hash(fl) == hash((1, 2))
    assert repr(fl) == "FrozenList([1, 2])"


def test_frozen_list_json_pickle_and_copy() -> None:
    fl = FrozenList([1, {"a": [2]}])
    assert json.dumps(fl) == '[1, {"a": [2]}]'
    for clone in (pickle.loads(pickle.dumps(fl)), copy.deepcopy(fl), copy.copy(fl)):
        assert type(clone) is FrozenList
        assert clone == fl
        with pytest.raises(TypeError):
            clone.append(1)
    assert copy.deepcopy(fl)[1] is not fl[1]


@given(st.lists(json_values, max_size=8))
def test_frozen_list_equals_plain_list_property(source: list[Any]) -> None:
    fl = FrozenList(source)
    assert fl == source
    assert list(fl) == source
    assert json.loads(json.dumps(fl)) == json.loads(json.dumps(source))
    assert pickle.loads(pickle.dumps(fl)) == fl
    with pytest.raises(TypeError):
        fl.append(1)
    with pytest.raises(TypeError):
        fl.extend(source)
    assert fl == source


def test_frozen_list_differential_against_reference(reference: ModuleType) -> None:
    ref = reference.utils.frozen
    ours, theirs = FrozenList([1, 2]), ref.FrozenList([1, 2])
    assert repr(ours) == repr(theirs)
    assert hash(ours) == hash(theirs)
    assert ours.to_list() == theirs.to_list()
    assert list(ours.copy()) == list(theirs.copy())
