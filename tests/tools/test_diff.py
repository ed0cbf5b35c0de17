"""Diffs: diff_text, diff_json (a JSON Patch that round-trips), diff_structured, DiffResult."""

from __future__ import annotations

import copy
import json
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.tools import diff as diff_module
from stageflow_trio.tools.diff import (
    DiffLine,
    DiffResult,
    DiffType,
    diff_json,
    diff_structured,
    diff_text,
)
from stageflow_trio.utils.frozen import FrozenList


def lines(result: DiffResult) -> list[tuple[str, str, int | None, int | None]]:
    return [(c.type, c.content, c.line_number_old, c.line_number_new) for c in result.changes]


def test_all_matches_the_reference(reference: ModuleType) -> None:
    assert sorted(diff_module.__all__) == sorted(reference.tools.diff.__all__)
    assert [t.value for t in DiffType] == [t.value for t in reference.tools.diff.DiffType]


# --- DiffLine / DiffResult ---------------------------------------------------------------


def test_diff_line_to_dict_has_every_field() -> None:
    assert DiffLine("add", "x").to_dict() == {
        "type": "add",
        "content": "x",
        "line_number_old": None,
        "line_number_new": None,
    }


def test_diff_result_defaults_summary_and_to_dict() -> None:
    empty = DiffResult(DiffType.UNIFIED, "")
    assert (empty.additions, empty.deletions, empty.unchanged, empty.similarity) == (0, 0, 0, 1.0)
    assert (empty.old_content, empty.new_content) == (None, None)
    assert not empty.has_changes
    assert empty.change_summary == "no changes"
    assert DiffResult(DiffType.UNIFIED, "", additions=2).change_summary == "+2"
    assert DiffResult(DiffType.UNIFIED, "", deletions=1).change_summary == "-1"
    both = DiffResult(
        DiffType.CONTEXT,
        "out",
        changes=[DiffLine("remove", "a", 1, None)],
        additions=3,
        deletions=1,
        unchanged=4,
        similarity=0.5,
        old_content="old",
        new_content="new",
    )
    assert both.has_changes
    assert both.change_summary == "+3 -1"
    assert isinstance(both.changes, FrozenList)
    assert both.to_dict() == {
        "diff_type": "context",
        "diff_output": "out",
        "changes": [
            {"type": "remove", "content": "a", "line_number_old": 1, "line_number_new": None}
        ],
        "additions": 3,
        "deletions": 1,
        "unchanged": 4,
        "similarity": 0.5,
    }
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        both.additions = 0  # type: ignore[misc]


# --- diff_text -----------------------------------------------------------------------------


def test_diff_text_unified_example() -> None:
    result = diff_text("Hello\nWorld\n", "Hello\nPython\nWorld\n")
    assert result.diff_type is DiffType.UNIFIED
    assert result.diff_output == (
        "--- a/original\n+++ b/modified\n@@ -1,2 +1,3 @@\n Hello\n+Python\n World\n"
    )
    assert lines(result) == [
        ("equal", "Hello\n", 1, 1),
        ("add", "Python\n", None, 2),
        ("equal", "World\n", 2, 3),
    ]
    assert (result.additions, result.deletions, result.unchanged) == (1, 0, 2)
    assert result.similarity == 0.8
    assert (result.old_content, result.new_content) == ("Hello\nWorld\n", "Hello\nPython\nWorld\n")
    assert result.change_summary == "+1"


def test_diff_text_context_format_and_several_hunks() -> None:
    old = "a\nb\nc\nd\ne\nf\ng\nh\n"
    new = "a\nb\nc\nD\ne\nf\ng\nH\n"
    result = diff_text(old, new, DiffType.CONTEXT, context_lines=1, fromfile="x", tofile="y")
    assert result.diff_output == (
        "--- x\n+++ y\n**** -3,3 +3,3 ****\n c\n-d\n+D\n e\n**** -7,2 +7,2 ****\n g\n-h\n+H\n"
    )
    assert lines(result) == [
        ("equal", "c\n", 3, 3),
        ("remove", "d\n", 4, None),
        ("add", "D\n", None, 4),
        ("equal", "e\n", 5, 5),
        ("equal", "g\n", 7, 7),
        ("remove", "h\n", 8, None),
        ("add", "H\n", None, 8),
    ]
    assert (result.additions, result.deletions, result.unchanged, result.similarity) == (
        2,
        2,
        3,
        0.75,
    )


@pytest.mark.parametrize("kind", [DiffType.JSON_PATCH, DiffType.LINE_BY_LINE])
def test_diff_text_other_types_give_the_unified_diff(kind: DiffType) -> None:
    result = diff_text("a\n", "b\n", kind)
    assert result.diff_type is kind
    assert result.diff_output == diff_text("a\n", "b\n").diff_output


def test_diff_text_from_empty_and_of_equal_texts() -> None:
    created = diff_text("", "new\n")
    assert created.diff_output == "--- a/original\n+++ b/modified\n@@ -0,0 +1 @@\n+new\n"
    assert lines(created) == [("add", "new\n", None, 1)]
    assert created.similarity == 0.0
    same = diff_text("x", "x")
    assert same.to_dict() == {
        "diff_type": "unified",
        "diff_output": "",
        "changes": [],
        "additions": 0,
        "deletions": 0,
        "unchanged": 0,
        "similarity": 1.0,
    }
    assert not same.has_changes


def test_diff_text_lines_without_a_final_newline() -> None:
    result = diff_text("a", "b")
    assert result.diff_output == "--- a/original\n+++ b/modified\n@@ -1 +1 @@\n-a+b"
    assert lines(result) == [("remove", "a", 1, None), ("add", "b", None, 1)]


def test_diff_text_counts_removed_dash_and_added_plus_lines() -> None:
    # The body lines "----x" and "+++y" are changes, not file headers.
    result = diff_text("---x\nkeep\n", "keep\n++y\n")
    assert lines(result) == [
        ("remove", "---x\n", 1, None),
        ("equal", "keep\n", 2, 1),
        ("add", "++y\n", None, 2),
    ]
    assert result.change_summary == "+1 -1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"old": 1}, "old must be a str; got int"),
        ({"new": None}, "new must be a str; got NoneType"),
        ({"diff_type": "unified"}, "diff_type must be a DiffType; got str"),
        ({"context_lines": -1}, "context_lines must be"),
        ({"context_lines": 1.5}, "context_lines must be"),
        ({"fromfile": b"x"}, "fromfile must be a str; got bytes"),
        ({"tofile": 0}, "tofile must be a str; got int"),
    ],
)
def test_diff_text_checks_its_arguments(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"old": "a", "new": "b", **kwargs}
    with pytest.raises((TypeError, ValueError), match=rf"^diff_text: {message}"):
        diff_text(**arguments)


# --- diff_json -----------------------------------------------------------------------------


def patch_of(result: DiffResult) -> list[dict[str, Any]]:
    ops = json.loads(result.diff_output)
    assert isinstance(ops, list)
    return ops


def test_diff_json_example_and_output_layout() -> None:
    result = diff_json({"name": "Alice", "age": 30}, {"name": "Alice", "age": 31, "city": "NYC"})
    assert result.diff_output == (
        "[\n"
        '  {"op": "replace", "path": "/age", "value": 31},\n'
        '  {"op": "add", "path": "/city", "value": "NYC"}\n'
        "]"
    )
    assert (result.additions, result.deletions) == (2, 0)
    assert result.diff_type is DiffType.JSON_PATCH
    assert result.changes == []
    assert result.old_content == json.dumps({"name": "Alice", "age": 30}, indent=2)
    assert result.new_content == json.dumps({"name": "Alice", "age": 31, "city": "NYC"}, indent=2)


def test_diff_json_removes_first_then_adds_and_recurses() -> None:
    old = {"gone": 1, "nested": {"a": 1, "b": [1, 2]}, "same": True}
    new = {"nested": {"a": 2, "b": [1, 2, 3]}, "same": True, "new": None}
    assert patch_of(diff_json(old, new)) == [
        {"op": "remove", "path": "/gone"},
        {"op": "replace", "path": "/nested/a", "value": 2},
        {"op": "add", "path": "/nested/b/2", "value": 3},
        {"op": "add", "path": "/new", "value": None},
    ]


def test_diff_json_removes_list_items_from_the_end() -> None:
    result = diff_json([1, 2, 3, 4], [1])
    assert patch_of(result) == [
        {"op": "remove", "path": "/3"},
        {"op": "remove", "path": "/2"},
        {"op": "remove", "path": "/1"},
    ]
    assert (result.additions, result.deletions) == (0, 3)


def test_diff_json_replaces_a_container_that_changed_kind() -> None:
    assert patch_of(diff_json({"a": {"b": 1}}, {"a": [1]})) == [
        {"op": "replace", "path": "/a", "value": [1]}
    ]
    assert patch_of(diff_json({"a": 1}, [1])) == [{"op": "replace", "path": "", "value": [1]}]
    assert patch_of(diff_json([], {"a": 1})) == [{"op": "replace", "path": "", "value": {"a": 1}}]


def test_diff_json_escapes_keys_as_json_pointers() -> None:
    assert patch_of(diff_json({"a/b": 1, "c~d": 2}, {"a/b": 2})) == [
        {"op": "remove", "path": "/c~0d"},
        {"op": "replace", "path": "/a~1b", "value": 2},
    ]


def test_diff_json_none_is_an_empty_object() -> None:
    assert diff_json(None, None).to_dict() == {
        "diff_type": "json_patch",
        "diff_output": "[\n]",
        "changes": [],
        "additions": 0,
        "deletions": 0,
        "unchanged": 0,
        "similarity": 1.0,
    }
    created = diff_json(None, {"a": 1})
    assert patch_of(created) == [{"op": "add", "path": "/a", "value": 1}]
    assert (created.similarity, created.old_content) == (0.0, None)
    deleted = diff_json({"a": 1}, None)
    assert patch_of(deleted) == [{"op": "remove", "path": "/a"}]
    assert (deleted.similarity, deleted.new_content) == (0.0, None)


def test_diff_json_similarity_compares_sorted_json() -> None:
    assert diff_json({"a": 1, "b": 2}, {"b": 2, "a": 1}).similarity == 1.0
    assert diff_json({"a": 1}, {"a": 2}).similarity == 0.875


def test_diff_json_checks_its_arguments() -> None:
    with pytest.raises(
        TypeError, match=r"^diff_json: old must be a dict, a list or None; got str$"
    ):
        diff_json("a", {})  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^diff_json: new must be a dict, a list or None; got int$"
    ):
        diff_json({}, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not JSON serializable"):
        diff_json({}, {"a": object()})


# --- the round trip ------------------------------------------------------------------------


def _unescape(token: str) -> str:
    if "~" in token.replace("~0", "").replace("~1", ""):
        raise ValueError(f"bad escape in {token!r}")
    return token.replace("~1", "/").replace("~0", "~")


def apply_patch(document: Any, patch: list[dict[str, Any]]) -> Any:
    """A strict RFC 6902 applier for add / remove / replace (what diff_json emits)."""
    document = copy.deepcopy(document)
    for operation in patch:
        op, path = operation["op"], operation["path"]
        if path == "":
            assert op == "replace"
            document = copy.deepcopy(operation["value"])
            continue
        assert path.startswith("/")
        *parents, last = [_unescape(token) for token in path[1:].split("/")]
        target = document
        for token in parents:
            target = target[int(token)] if isinstance(target, list) else target[token]
        if isinstance(target, list):
            index = int(last)
            if op == "add":
                if not 0 <= index <= len(target):
                    raise IndexError(path)
                target.insert(index, copy.deepcopy(operation["value"]))
            elif not 0 <= index < len(target):
                raise IndexError(path)
            elif op == "remove":
                del target[index]
            else:
                target[index] = copy.deepcopy(operation["value"])
        elif op == "add":
            target[last] = copy.deepcopy(operation["value"])
        elif op == "remove":
            del target[last]
        else:
            if last not in target:
                raise KeyError(path)
            target[last] = copy.deepcopy(operation["value"])
    return document


def test_the_applier_is_strict() -> None:
    with pytest.raises(IndexError):
        apply_patch([1, 2, 3], [{"op": "remove", "path": "/1"}, {"op": "remove", "path": "/2"}])
    with pytest.raises(IndexError):
        apply_patch([1], [{"op": "add", "path": "/3", "value": 0}])
    with pytest.raises(IndexError):
        apply_patch([1], [{"op": "replace", "path": "/1", "value": 0}])
    with pytest.raises(KeyError):
        apply_patch({}, [{"op": "replace", "path": "/a", "value": 0}])
    with pytest.raises(KeyError):
        apply_patch({}, [{"op": "remove", "path": "/a"}])
    with pytest.raises(ValueError, match="bad escape"):
        apply_patch({"~": 1}, [{"op": "remove", "path": "/~"}])
    assert apply_patch({"a/b": [0]}, [{"op": "add", "path": "/a~1b/0", "value": 1}]) == {
        "a/b": [1, 0]
    }


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
KEYS = st.text(alphabet="ab/~01", max_size=3)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
DOCUMENTS = (
    st.none() | st.lists(JSON_VALUES, max_size=5) | st.dictionaries(KEYS, JSON_VALUES, max_size=5)
)


@given(old=DOCUMENTS, new=DOCUMENTS)
def test_applying_the_patch_to_old_gives_new(old: Any, new: Any) -> None:
    result = diff_json(old, new)
    patch = patch_of(result)
    start = {} if old is None else old
    assert apply_patch(start, patch) == ({} if new is None else new)
    assert result.additions == sum(op["op"] in ("add", "replace") for op in patch)
    assert result.deletions == sum(op["op"] == "remove" for op in patch)
    assert (patch == []) == (start == ({} if new is None else new))


# --- diff_structured -----------------------------------------------------------------------


def test_diff_structured_lists_removed_added_then_changed_keys() -> None:
    old = {"status": "draft", "title": "My Post", "old": 1, "skip": 1}
    new = {"status": "published", "title": "My Post", "new": [1], "skip": 2}
    result = diff_structured(old, new, ignore_keys={"skip"})
    assert [(c.type, c.content) for c in result.changes] == [
        ("remove", "old: 1"),
        ("add", "new: [1]"),
        ("remove", "status: 'draft'"),
        ("add", "status: 'published'"),
    ]
    assert all(c.line_number_old is None and c.line_number_new is None for c in result.changes)
    assert result.diff_output == (
        "--- old\n+++ new\n- old: 1\n+ new: [1]\n- status: 'draft'\n+ status: 'published'"
    )
    assert (result.additions, result.deletions, result.unchanged) == (2, 2, 0)
    assert result.diff_type is DiffType.LINE_BY_LINE
    assert (result.old_content, result.new_content) == (None, None)
    assert result.similarity == diff_json(old, new).similarity


def test_diff_structured_of_equal_dicts_and_ignore_key_collections() -> None:
    same = diff_structured({"a": 1}, {"a": 1})
    assert same.diff_output == "--- old\n+++ new"
    assert same.change_summary == "no changes"
    assert diff_structured({"a": 1}, {"a": 2}, ignore_keys=["a"]).change_summary == "no changes"
    assert diff_structured({"a": 1}, {"a": 2}, ignore_keys=()).change_summary == "+1 -1"


def test_diff_structured_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match=r"^diff_structured: old must be a dict; got list$"):
        diff_structured([], {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^diff_structured: new must be a dict; got NoneType$"):
        diff_structured({}, None)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^diff_structured: ignore_keys must be a set of keys or None; got str$"
    ):
        diff_structured({}, {}, ignore_keys="abc")
    with pytest.raises(
        TypeError, match=r"^diff_structured: ignore_keys must be a set of keys or None; got int$"
    ):
        diff_structured({}, {}, ignore_keys=3)  # type: ignore[arg-type]
