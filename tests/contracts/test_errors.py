"""ContractErrorInfo: fields, with_context, to_dict shape, immutability, round trip."""

from __future__ import annotations

import copy
import json
import pickle
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.contracts import ContractErrorInfo
from stageflow_trio.contracts.errors import ContractInfoError
from stageflow_trio.errors import StageflowError

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
contexts = st.dictionaries(st.text(max_size=8), json_scalars | st.lists(json_scalars, max_size=3))
infos = st.builds(
    ContractErrorInfo,
    code=st.text(max_size=20),
    summary=st.text(max_size=40),
    fix_hint=st.none() | st.text(max_size=40),
    doc_url=st.none() | st.text(max_size=40),
    context=contexts,
)


def test_defaults() -> None:
    info = ContractErrorInfo(code="C", summary="S")
    assert (info.fix_hint, info.doc_url, dict(info.context)) == (None, None, {})


def test_to_dict_has_the_reference_shape() -> None:
    info = ContractErrorInfo("C-1", "sum", "hint", "http://x", {"stage": "a", "path": ["a", "b"]})
    assert info.to_dict() == {
        "code": "C-1",
        "summary": "sum",
        "fix_hint": "hint",
        "doc_url": "http://x",
        "context": {"stage": "a", "path": ["a", "b"]},
    }
    assert type(info.to_dict()["context"]) is dict


def test_to_dict_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.contracts
    kwargs: dict[str, Any] = {
        "code": "CONTRACT-004-X",
        "summary": "s",
        "fix_hint": None,
        "doc_url": "u",
        "context": {"k": 1},
    }
    assert ContractErrorInfo(**kwargs).to_dict() == ref.ContractErrorInfo(**kwargs).to_dict()
    assert (
        ContractErrorInfo(code="c", summary="s").to_dict()
        == ref.ContractErrorInfo(code="c", summary="s").to_dict()
    )


def test_with_context_merges_and_leaves_the_original_unchanged() -> None:
    info = ContractErrorInfo("C", "S", context={"a": 1, "b": 2})
    merged = info.with_context(b=3, c=4)
    assert dict(merged.context) == {"a": 1, "b": 3, "c": 4}
    assert dict(info.context) == {"a": 1, "b": 2}
    assert (merged.code, merged.summary, merged.fix_hint, merged.doc_url) == ("C", "S", None, None)


def test_is_frozen_and_context_is_read_only() -> None:
    source = {"a": 1}
    info = ContractErrorInfo("C", "S", context=source)
    source["a"] = 2
    assert info.context["a"] == 1
    with pytest.raises(TypeError):
        info.context["a"] = 3  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        info.code = "D"  # type: ignore[misc]
    info.to_dict()["context"]["a"] = 5
    assert info.context["a"] == 1


def test_wrong_types_are_rejected_with_the_field_name() -> None:
    with pytest.raises(ContractInfoError, match=r"^ContractErrorInfo code must be a str; got int$"):
        ContractErrorInfo(code=4, summary="s")  # type: ignore[arg-type]
    with pytest.raises(
        ContractInfoError, match=r"^ContractErrorInfo doc_url must be a str or None; got int$"
    ):
        ContractErrorInfo(code="c", summary="s", doc_url=3)  # type: ignore[arg-type]
    with pytest.raises(
        ContractInfoError, match=r"^ContractErrorInfo context must be a mapping; got list$"
    ):
        ContractErrorInfo(code="c", summary="s", context=[1])  # type: ignore[arg-type]
    assert issubclass(ContractInfoError, TypeError)
    assert issubclass(ContractInfoError, StageflowError)


def test_from_dict_rejects_a_missing_key() -> None:
    with pytest.raises(
        ContractInfoError, match=r"^ContractErrorInfo.from_dict: missing required key 'summary'$"
    ):
        ContractErrorInfo.from_dict({"code": "c"})
    with pytest.raises(
        ContractInfoError, match=r"^ContractErrorInfo.from_dict: data must be a mapping; got str$"
    ):
        ContractErrorInfo.from_dict("code")  # type: ignore[arg-type]


def test_context_is_a_read_only_dict_that_copies_and_pickles() -> None:
    info = ContractErrorInfo("C", "S", context={"cycle_path": ["a", "b", "a"]})
    assert isinstance(info.context, dict)
    assert json.loads(json.dumps(info.context)) == {"cycle_path": ["a", "b", "a"]}
    assert copy.deepcopy(info) == info
    assert pickle.loads(pickle.dumps(info)) == info


@given(infos)
def test_from_dict_round_trips_to_dict(info: ContractErrorInfo) -> None:
    assert ContractErrorInfo.from_dict(info.to_dict()) == info


@given(infos, contexts)
def test_with_context_is_a_dict_merge(info: ContractErrorInfo, extra: dict[str, object]) -> None:
    assert dict(info.with_context(**extra).context) == {**info.context, **extra}
