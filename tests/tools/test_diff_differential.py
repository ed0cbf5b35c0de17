"""Diffs against the reference 0.9.1: the same inputs give the same DiffResult.

The documented divergences (docs/parity.md, "Tools (registry, parsing, diff)"):
diff_json where the reference's patch does not turn old into new (list shrinks by
more than one item, containers that change kind, keys with ``/`` or ``~``, an
empty list standing for an empty object), and diff_text's counts when a removed
line starts with ``--`` or an added one with ``++``.
"""

from __future__ import annotations

from difflib import unified_diff
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.tools.diff import DiffType, diff_json, diff_structured, diff_text
from tests.fakes import import_reference
from tests.tools.test_diff import DOCUMENTS, JSON_VALUES, apply_patch, patch_of

TEXTS = st.lists(
    st.sampled_from(["a", "b", "c", "", "-x", "+y", "--z", "++w", "a@@b", " s"]), max_size=8
).flatmap(
    lambda items: (
        st.sampled_from(["\n", "\r\n", "\r"]).map(lambda end: end.join(items))
        | st.just("\n".join(items) + "\n")
    )
)


def full(result: Any) -> tuple[Any, ...]:
    return (result.to_dict(), result.old_content, result.new_content, result.has_changes)


def header_like_body(old: str, new: str, context: int) -> bool:
    """Whether a body line of the diff starts like a file header (``---`` / ``+++``)."""
    diff = unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), n=context)
    return any(line.startswith(("---", "+++")) for line in list(diff)[2:])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Hello\nWorld\n", "Hello\nPython\nWorld\n"),
        ("a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nD\ne\nf\ng\nH\n"),
        ("", "new\n"),
        ("gone\n", ""),
        ("x", "x"),
        ("a", "b"),
        ("a@@b\nc", "a@@b\nd"),
    ],
)
@pytest.mark.parametrize("kind", list(DiffType))
def test_diff_text_matches(reference: ModuleType, old: str, new: str, kind: DiffType) -> None:
    ref = reference.tools.diff
    for context in (0, 1, 3):
        ours = diff_text(old, new, kind, context, "from", "to")
        theirs = ref.diff_text(old, new, ref.DiffType(kind.value), context, "from", "to")
        assert full(ours) == full(theirs)


@given(old=TEXTS, new=TEXTS, context=st.integers(0, 3))
def test_random_texts_match_unless_a_body_line_looks_like_a_header(
    old: str, new: str, context: int
) -> None:
    ref = import_reference().tools.diff
    ours = diff_text(old, new, context_lines=context)
    theirs = ref.diff_text(old, new, context_lines=context)
    if header_like_body(old, new, context):
        assert ours.diff_output == theirs.diff_output
        assert ours.similarity == theirs.similarity
        assert len(ours.changes) > len(theirs.changes)
    else:
        assert full(ours) == full(theirs)


def test_diff_text_header_like_lines_differ_as_documented(reference: ModuleType) -> None:
    old, new = "--x\na\n", "a\n++y\n"
    theirs = reference.tools.diff.diff_text(old, new)
    ours = diff_text(old, new)
    assert ours.diff_output == theirs.diff_output
    assert (theirs.additions, theirs.deletions) == (0, 0)
    assert (ours.additions, ours.deletions) == (1, 1)


def reference_patch_works(old: Any, new: Any, theirs: Any) -> bool:
    try:
        applied = apply_patch({} if old is None else old, patch_of(theirs))
    except (IndexError, KeyError, ValueError, TypeError, AssertionError):
        return False
    return bool(applied == ({} if new is None else new))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"name": "Alice", "age": 30}, {"name": "Alice", "age": 31, "city": "NYC"}),
        ({"a": 1, "b": [1, 2, {"c": 3}]}, {"a": 2, "b": [1, 3, {"c": 4}], "d": None}),
        (None, {"x": 1}),
        ({"x": 1}, None),
        (None, None),
        ([1, 2, 3], [1, 2]),
        ([1, 2], [1, 2, 3, 4]),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}),
    ],
)
def test_diff_json_matches(reference: ModuleType, old: Any, new: Any) -> None:
    theirs = reference.tools.diff.diff_json(old, new)
    assert reference_patch_works(old, new, theirs)
    assert full(diff_json(old, new)) == full(theirs)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ([1, 2, 3], [1]),  # the reference removes /1 then /2
        ({"a": {"b": 1}}, {"a": [1]}),  # the reference emits nothing
        ({"a": 1}, [1]),
        ({"a/b": 1}, {"a/b": 2}),  # the reference writes the path /a/b
        ([], [1]),  # the reference reads [] as {}
    ],
)
def test_diff_json_fixes_the_reference_where_its_patch_is_wrong(
    reference: ModuleType, old: Any, new: Any
) -> None:
    theirs = reference.tools.diff.diff_json(old, new)
    assert not reference_patch_works(old, new, theirs)
    ours = diff_json(old, new)
    assert apply_patch(old, patch_of(ours)) == new
    assert (ours.similarity, ours.old_content, ours.new_content) == (
        theirs.similarity,
        theirs.old_content,
        theirs.new_content,
    )


@given(old=DOCUMENTS, new=DOCUMENTS)
def test_random_documents_match_wherever_the_reference_patch_works(old: Any, new: Any) -> None:
    theirs = import_reference().tools.diff.diff_json(old, new)
    ours = diff_json(old, new)
    if reference_patch_works(old, new, theirs):
        assert full(ours) == full(theirs)
    else:
        assert ours.to_dict()["similarity"] == theirs.similarity
        assert (ours.old_content, ours.new_content) == (theirs.old_content, theirs.new_content)


FLAT = st.dictionaries(st.sampled_from("abcdef"), JSON_VALUES, max_size=5)


@given(old=FLAT, new=FLAT, ignore=st.none() | st.sets(st.sampled_from("abcdef")))
def test_random_dicts_diff_structured_the_same(
    old: dict[str, Any], new: dict[str, Any], ignore: set[str] | None
) -> None:
    ref = import_reference().tools.diff
    assert full(diff_structured(old, new, ignore)) == full(ref.diff_structured(old, new, ignore))
