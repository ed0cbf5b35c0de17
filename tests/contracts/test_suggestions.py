"""The contract suggestion registry: defaults, lookup, registration, reset."""

from __future__ import annotations

from types import ModuleType

import pytest

from stageflow_trio.contracts import (
    ContractSuggestion,
    get_contract_suggestion,
    register_suggestion,
)
from stageflow_trio.contracts.suggestions import ContractSuggestionError
from stageflow_trio.testing import reset_globals

DEFAULT_CODES = [
    "CONTRACT-004-CYCLE",
    "CONTRACT-004-MISSING_DEP",
    "CONTRACT-004-SELF_DEP",
    "CONTRACT-004-CONFLICT",
    "CONTRACT-004-ORPHAN",
    "CONTRACT-004-EMPTY",
]


@pytest.mark.parametrize("code", DEFAULT_CODES)
def test_every_default_matches_the_reference_text(reference: ModuleType, code: str) -> None:
    ref = reference.contracts
    ours = get_contract_suggestion(code)
    theirs = ref.get_contract_suggestion(code)
    assert ours is not None
    assert theirs is not None
    assert (ours.code, ours.title, ours.summary, ours.doc_url) == (
        theirs.code,
        theirs.title,
        theirs.summary,
        theirs.doc_url,
    )
    assert list(ours.fix_steps) == theirs.fix_steps
    assert ours.fix_steps
    assert ours.title
    assert ours.summary


def test_cycle_default_in_full() -> None:
    assert get_contract_suggestion("CONTRACT-004-CYCLE") == ContractSuggestion(
        code="CONTRACT-004-CYCLE",
        title="Dependency Cycle Detected",
        summary="Stages depend on each other in a loop, preventing execution order.",
        fix_steps=[
            "Review the reported cycle path",
            "Remove at least one dependency edge to break the loop",
            "Re-run pipeline validation or the contracts CLI",
        ],
        doc_url="https://github.com/stageflow/stageflow/blob/main/docs/advanced/error-messages.md#dependency-cycles",
    )


def test_unknown_code_has_no_suggestion() -> None:
    assert get_contract_suggestion("CONTRACT-999") is None


def test_register_adds_and_replaces_and_reset_restores_defaults() -> None:
    custom = ContractSuggestion("X-1", "T", "S", ["step"])
    register_suggestion(custom)
    assert get_contract_suggestion("X-1") is custom
    replacement = ContractSuggestion("CONTRACT-004-EMPTY", "Mine", "S", ("a", "b"), "u")
    register_suggestion(replacement)
    assert get_contract_suggestion("CONTRACT-004-EMPTY") is replacement
    reset_globals()
    assert get_contract_suggestion("X-1") is None
    empty = get_contract_suggestion("CONTRACT-004-EMPTY")
    assert empty is not None
    assert empty.title == "Empty Pipeline"


def test_fix_steps_are_held_as_a_tuple() -> None:
    steps = ["a", "b"]
    suggestion = ContractSuggestion("C", "T", "S", steps)
    steps.append("c")
    assert suggestion.fix_steps == ("a", "b")


def test_invalid_suggestions_are_rejected() -> None:
    with pytest.raises(
        ContractSuggestionError,
        match=r"^ContractSuggestion fix_steps must be a list or tuple of str; got str$",
    ):
        ContractSuggestion("C", "T", "S", "one step")
    with pytest.raises(
        ContractSuggestionError,
        match=r"^ContractSuggestion fix_steps must contain only str; got int$",
    ):
        ContractSuggestion("C", "T", "S", ["a", 1])  # type: ignore[list-item]
    with pytest.raises(
        ContractSuggestionError, match=r"^ContractSuggestion title must be a str; got NoneType$"
    ):
        ContractSuggestion("C", None, "S", [])  # type: ignore[arg-type]
    with pytest.raises(
        ContractSuggestionError,
        match=r"^register_suggestion expects a ContractSuggestion; got dict$",
    ):
        register_suggestion({"code": "C"})  # type: ignore[arg-type]
