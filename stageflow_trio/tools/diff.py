"""Diffs of text, JSON and dicts, for showing, auditing and undoing what a tool changed.

:func:`diff_text` gives a unified diff with per-line changes, :func:`diff_json`
a JSON Patch (RFC 6902) that turns the old document into the new one, and
:func:`diff_structured` a key-by-key comparison of two dicts. Each returns a
:class:`DiffResult` with counts, a similarity ratio and ``to_dict()``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Iterable
from difflib import SequenceMatcher, unified_diff
from typing import Any

import attrs

from stageflow_trio._args import check_int, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.utils.frozen import FrozenList

__all__ = ["DiffLine", "DiffResult", "DiffType", "diff_json", "diff_structured", "diff_text"]


class DiffType(enum.Enum):
    """The format of a diff's ``diff_output``."""

    UNIFIED = "unified"
    """A unified diff (the default)."""
    CONTEXT = "context"
    """A unified diff whose hunk markers read ``****`` instead of ``@@``."""
    JSON_PATCH = "json_patch"
    """A JSON Patch (RFC 6902), one operation a line."""
    LINE_BY_LINE = "line_by_line"
    """``- key: value`` / ``+ key: value`` lines (dict comparisons)."""


@frozen_compat
@attrs.frozen
class DiffLine:
    """One line of a diff.

    Attributes:
        type: ``"equal"``, ``"add"`` or ``"remove"``.
        content: The line (with its line ending, for text diffs).
        line_number_old: Its 1-based line number in the old text (None for an added line).
        line_number_new: Its 1-based line number in the new text (None for a removed line).
    """

    type: str
    content: str
    line_number_old: int | None = None
    line_number_new: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The line as a dict (every field, None included)."""
        return {
            "type": self.type,
            "content": self.content,
            "line_number_old": self.line_number_old,
            "line_number_new": self.line_number_new,
        }


def _lines(value: Iterable[DiffLine]) -> FrozenList[DiffLine]:
    return value if isinstance(value, FrozenList) else FrozenList(value)


@frozen_compat
@attrs.frozen
class DiffResult:
    """What a diff found.

    Attributes:
        diff_type: The format of ``diff_output``.
        diff_output: The diff as text.
        changes: The line changes (text and dict diffs; empty for JSON patches).
        additions: Added lines (JSON: ``add`` and ``replace`` operations).
        deletions: Removed lines (JSON: ``remove`` operations).
        unchanged: Context lines shown unchanged (text diffs).
        similarity: How alike old and new are, 0.0 to 1.0, rounded to 3 places.
        old_content: The old content (text, or indented JSON), when kept.
        new_content: The new content, when kept.
    """

    diff_type: DiffType
    diff_output: str
    changes: FrozenList[DiffLine] = attrs.field(factory=FrozenList, converter=_lines)
    additions: int = 0
    deletions: int = 0
    unchanged: int = 0
    similarity: float = 1.0
    old_content: str | None = None
    new_content: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as a dict (without the old and new content)."""
        return {
            "diff_type": self.diff_type.value,
            "diff_output": self.diff_output,
            "changes": [change.to_dict() for change in self.changes],
            "additions": self.additions,
            "deletions": self.deletions,
            "unchanged": self.unchanged,
            "similarity": self.similarity,
        }

    @property
    def has_changes(self) -> bool:
        """Whether anything was added or removed."""
        return self.additions > 0 or self.deletions > 0

    @property
    def change_summary(self) -> str:
        """``"+a -d"`` (zero counts left out), or ``"no changes"``."""
        parts = []
        if self.additions > 0:
            parts.append(f"+{self.additions}")
        if self.deletions > 0:
            parts.append(f"-{self.deletions}")
        return " ".join(parts) if parts else "no changes"


def _check_str(owner: str, param: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{owner}: {param} must be a str; got {type_of(value)}")


def diff_text(
    old: str,
    new: str,
    diff_type: DiffType = DiffType.UNIFIED,
    context_lines: int = 3,
    fromfile: str = "a/original",
    tofile: str = "b/modified",
) -> DiffResult:
    """Diff two texts line by line.

    ``diff_output`` is a unified diff with ``context_lines`` lines of context
    (empty when the texts are equal); :attr:`DiffType.CONTEXT` writes its hunk
    markers as ``****``, and the other types give the unified diff. ``changes``
    holds the diff's lines (context, added and removed) with their line numbers.

    Example::

        diff_text("Hello\\nWorld\\n", "Hello\\nPython\\nWorld\\n").change_summary  # "+1"

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: ``context_lines`` is negative.
    """
    _check_str("diff_text", "old", old)
    _check_str("diff_text", "new", new)
    if not isinstance(diff_type, DiffType):
        raise TypeError(f"diff_text: diff_type must be a DiffType; got {type_of(diff_type)}")
    check_int("diff_text", "context_lines", context_lines, minimum=0)
    _check_str("diff_text", "fromfile", fromfile)
    _check_str("diff_text", "tofile", tofile)
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    diff_lines = list(
        unified_diff(old_lines, new_lines, fromfile=fromfile, tofile=tofile, n=context_lines)
    )
    diff_output = "".join(diff_lines)
    if diff_type is DiffType.CONTEXT:
        diff_output = diff_output.replace("@@", "****")
    changes = _parse_unified(diff_lines)
    return DiffResult(
        diff_type=diff_type,
        diff_output=diff_output,
        changes=changes,
        additions=sum(1 for change in changes if change.type == "add"),
        deletions=sum(1 for change in changes if change.type == "remove"),
        unchanged=sum(1 for change in changes if change.type == "equal"),
        similarity=round(SequenceMatcher(None, old_lines, new_lines).ratio(), 3),
        old_content=old,
        new_content=new,
    )


def _parse_unified(diff_lines: list[str]) -> list[DiffLine]:
    """The body lines of a unified diff, numbered from its hunk headers."""
    changes: list[DiffLine] = []
    old_number = new_number = 0
    # The first two lines are the ---/+++ file headers; after them a line that
    # starts with "---" or "+++" is a removed "--..." or added "++..." line.
    for line in diff_lines[2:]:
        marker, content = line[:1], line[1:]
        if line.startswith("@@"):
            # "@@ -old_start[,count] +new_start[,count] @@\n"
            old_range, new_range = line.split()[1:3]
            old_number = int(old_range[1:].split(",")[0]) - 1
            new_number = int(new_range[1:].split(",")[0]) - 1
        elif marker == "+":
            new_number += 1
            changes.append(DiffLine("add", content, None, new_number))
        elif marker == "-":
            old_number += 1
            changes.append(DiffLine("remove", content, old_number, None))
        else:
            old_number += 1
            new_number += 1
            changes.append(DiffLine("equal", content, old_number, new_number))
    return changes


_JSON = dict[str, Any] | list[Any]


def diff_json(old: _JSON | None, new: _JSON | None) -> DiffResult:
    """A JSON Patch (RFC 6902) that turns ``old`` into ``new``.

    None stands for an empty object. Dicts are compared key by key and lists
    index by index, recursing into nested containers; a changed scalar, or a
    container that became the other kind, is replaced. ``diff_output`` lists
    the operations one per line in a JSON array; applying them in order to
    ``old`` gives ``new`` (paths escape ``~`` and ``/`` in keys as RFC 6901
    says; items beyond the new end of a list are removed from the last).

    Example::

        diff_json({"name": "Ada", "age": 36}, {"name": "Ada", "age": 37}).diff_output
        # '[\\n  {"op": "replace", "path": "/age", "value": 37}\\n]'

    Raises:
        TypeError: ``old`` or ``new`` is not a dict, a list or None, or holds a
            value ``json.dumps`` cannot encode.
    """
    for param, value in (("old", old), ("new", new)):
        if value is not None and not isinstance(value, (dict, list)):
            raise TypeError(
                f"diff_json: {param} must be a dict, a list or None; got {type_of(value)}"
            )
    patch: list[dict[str, Any]] = []
    _json_patch({} if old is None else old, {} if new is None else new, "", patch)
    lines = ["["]
    last = len(patch) - 1
    lines.extend(
        f"  {json.dumps(operation)}{',' if index < last else ''}"
        for index, operation in enumerate(patch)
    )
    lines.append("]")
    return DiffResult(
        diff_type=DiffType.JSON_PATCH,
        diff_output="\n".join(lines),
        changes=[],
        additions=sum(1 for operation in patch if operation["op"] in ("add", "replace")),
        deletions=sum(1 for operation in patch if operation["op"] == "remove"),
        similarity=_json_similarity(old, new),
        old_content=None if old is None else json.dumps(old, indent=2),
        new_content=None if new is None else json.dumps(new, indent=2),
    )


def _pointer_token(key: object) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _json_patch(old: Any, new: Any, path: str, patch: list[dict[str, Any]]) -> None:
    """Append to ``patch`` the operations that turn ``old`` into ``new`` at ``path``."""
    if isinstance(old, dict) and isinstance(new, dict):
        patch.extend(
            {"op": "remove", "path": f"{path}/{_pointer_token(key)}"}
            for key in old
            if key not in new
        )
        for key, value in new.items():
            where = f"{path}/{_pointer_token(key)}"
            if key not in old:
                patch.append({"op": "add", "path": where, "value": value})
            elif old[key] != value:
                _json_patch(old[key], value, where, patch)
    elif isinstance(old, list) and isinstance(new, list):
        for index, (old_value, new_value) in enumerate(zip(old, new, strict=False)):
            if old_value != new_value:
                _json_patch(old_value, new_value, f"{path}/{index}", patch)
        patch.extend(
            {"op": "add", "path": f"{path}/{index}", "value": new[index]}
            for index in range(len(old), len(new))
        )
        # From the end: each removal shifts the items after it.
        patch.extend(
            {"op": "remove", "path": f"{path}/{index}"}
            for index in range(len(old) - 1, len(new) - 1, -1)
        )
    else:
        patch.append({"op": "replace", "path": path, "value": new})


def _json_similarity(old: _JSON | None, new: _JSON | None) -> float:
    if old is None or new is None:
        return 1.0 if old is new else 0.0
    old_text = json.dumps(old, sort_keys=True)
    new_text = json.dumps(new, sort_keys=True)
    return round(SequenceMatcher(None, old_text, new_text).ratio(), 3)


def _hashable(key: object) -> bool:
    """Whether ``key`` could be a dict key. An item that is not cannot match one, so
    ``ignore_keys`` passes over it (the reference tests ``key in ignore_keys``, which a
    list holding such an item allows)."""
    try:
        hash(key)
    except TypeError:
        return False
    return True


def diff_structured(
    old: dict[str, Any], new: dict[str, Any], ignore_keys: Collection[str] | None = None
) -> DiffResult:
    """Compare two dicts key by key (not recursively), skipping ``ignore_keys``.

    ``changes`` lists removed keys, then added keys, then each changed key as
    a removal of its old value and an addition of its new one (values shown
    with ``repr``); a changed key counts as one addition and one deletion.
    ``diff_output`` is ``--- old`` / ``+++ new`` followed by a ``- key: value``
    or ``+ key: value`` line per change.

    Raises:
        TypeError: ``old`` or ``new`` is not a dict, or ``ignore_keys`` is not a
            collection of keys (or None); ``similarity`` needs JSON-encodable values.
    """
    for param, value in (("old", old), ("new", new)):
        if not isinstance(value, dict):
            raise TypeError(f"diff_structured: {param} must be a dict; got {type_of(value)}")
    if ignore_keys is not None and (
        isinstance(ignore_keys, str) or not isinstance(ignore_keys, Iterable)
    ):
        raise TypeError(
            f"diff_structured: ignore_keys must be a set of keys or None; got {type_of(ignore_keys)}"
        )
    ignored = frozenset(key for key in ignore_keys or () if _hashable(key))
    removed = [key for key in old if key not in ignored and key not in new]
    added = [key for key in new if key not in ignored and key not in old]
    changed = [key for key in old if key not in ignored and key in new and old[key] != new[key]]
    changes = [DiffLine("remove", f"{key}: {old[key]!r}") for key in removed]
    changes += [DiffLine("add", f"{key}: {new[key]!r}") for key in added]
    for key in changed:
        changes += [
            DiffLine("remove", f"{key}: {old[key]!r}"),
            DiffLine("add", f"{key}: {new[key]!r}"),
        ]
    lines = ["--- old", "+++ new"]
    lines.extend(f"{'-' if c.type == 'remove' else '+'} {c.content}" for c in changes)
    return DiffResult(
        diff_type=DiffType.LINE_BY_LINE,
        diff_output="\n".join(lines),
        changes=changes,
        additions=len(added) + len(changed),
        deletions=len(removed) + len(changed),
        similarity=_json_similarity(old, new),
    )
