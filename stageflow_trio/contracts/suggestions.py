"""Remediation suggestions for contract error codes, looked up by code.

The registry is process-wide and starts with one suggestion for every error the
pipeline builders raise (cycle, missing dependency, self-dependency, conflicting
definitions, isolated stage, empty pipeline). ``register_suggestion`` adds or
replaces an entry; ``stageflow_trio.testing.reset_globals`` restores the defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._globals import register_global_reset
from stageflow_trio.errors import StageflowError

__all__ = ["ContractSuggestion", "get_contract_suggestion", "register_suggestion"]

_DOCS = "https://github.com/stageflow/stageflow/blob/main/docs/advanced/error-messages.md"


class ContractSuggestionError(StageflowError, TypeError):
    """A suggestion was given a field of the wrong type."""


def _steps(value: Iterable[str]) -> tuple[str, ...]:
    # A lone str would otherwise become one step per character, a mapping its
    # keys, and a set its items in no stable order.
    if isinstance(value, str | bytes | Mapping | AbstractSet) or not isinstance(value, Iterable):
        raise ContractSuggestionError(
            f"ContractSuggestion fix_steps must be a list or tuple of str; got {type(value).__name__}"
        )
    steps = tuple(value)
    for step in steps:
        if not isinstance(step, str):
            raise ContractSuggestionError(
                f"ContractSuggestion fix_steps must contain only str; got {type(step).__name__}"
            )
    return steps


def _text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ContractSuggestionError(
            f"ContractSuggestion {attribute.name} must be a str; got {type(value).__name__}"
        )


def _optional_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(_instance, attribute, value)


@frozen_compat
@attrs.frozen
class ContractSuggestion:
    """How to fix one kind of contract violation.

    Attributes:
        code: The error code this suggestion answers, e.g. ``"CONTRACT-004-CYCLE"``.
        title: Short heading.
        summary: What the violation means.
        fix_steps: Ordered remediation steps (held as a tuple).
        doc_url: Link to the troubleshooting docs, or None.
    """

    code: str = attrs.field(validator=_text)
    title: str = attrs.field(validator=_text)
    summary: str = attrs.field(validator=_text)
    fix_steps: tuple[str, ...] = attrs.field(converter=_steps)
    doc_url: str | None = attrs.field(default=None, validator=_optional_text)


_suggestions: dict[str, ContractSuggestion] = {}


def register_suggestion(suggestion: ContractSuggestion) -> None:
    """Register ``suggestion`` under its code, replacing any earlier one for that code.

    Raises:
        ContractSuggestionError: (a TypeError) ``suggestion`` is not a ContractSuggestion.
    """
    if not isinstance(suggestion, ContractSuggestion):
        raise ContractSuggestionError(
            f"register_suggestion expects a ContractSuggestion; got {type(suggestion).__name__}"
        )
    _suggestions[suggestion.code] = suggestion


def get_contract_suggestion(code: str) -> ContractSuggestion | None:
    """Return the suggestion registered for ``code``, or None if there is none."""
    return _suggestions.get(code)


# The texts are user-facing data that must match the reference's word for word.
_DEFAULTS = (
    ContractSuggestion(
        code="CONTRACT-004-CYCLE",
        title="Dependency Cycle Detected",
        summary="Stages depend on each other in a loop, preventing execution order.",
        fix_steps=(
            "Review the reported cycle path",
            "Remove at least one dependency edge to break the loop",
            "Re-run pipeline validation or the contracts CLI",
        ),
        doc_url=f"{_DOCS}#dependency-cycles",
    ),
    ContractSuggestion(
        code="CONTRACT-004-MISSING_DEP",
        title="Missing Stage Dependency",
        summary="A stage declares a dependency on a stage that is not in the pipeline graph.",
        fix_steps=(
            "Ensure the referenced stage is added to the pipeline",
            "Or remove/rename the dependency if it is not needed",
        ),
        doc_url=f"{_DOCS}#missing-stage-dependencies",
    ),
    ContractSuggestion(
        code="CONTRACT-004-SELF_DEP",
        title="Stage Depends on Itself",
        summary=(
            "A stage lists itself in its dependency tuple, which creates an impossible prerequisite."
        ),
        fix_steps=("Remove the self-reference from the dependency list",),
        doc_url=f"{_DOCS}#self-dependencies",
    ),
    ContractSuggestion(
        code="CONTRACT-004-CONFLICT",
        title="Conflicting Stage Definition",
        summary=(
            "The same stage name is defined multiple times with incompatible specs when "
            "composing pipelines."
        ),
        fix_steps=(
            "Ensure composed pipelines define the stage with the same runner and dependency set",
            "Rename one of the stages if they represent different logic",
        ),
        doc_url=f"{_DOCS}#conflicting-stage-definitions",
    ),
    ContractSuggestion(
        code="CONTRACT-004-ORPHAN",
        title="Isolated Stage Warning",
        summary=(
            "A stage is neither depended on nor depends on any other stage, which usually "
            "indicates misconfiguration."
        ),
        fix_steps=(
            "Add dependencies so the stage participates in the pipeline",
            "Or remove the stage if it should not run",
        ),
        doc_url=f"{_DOCS}#isolated-stages",
    ),
    ContractSuggestion(
        code="CONTRACT-004-EMPTY",
        title="Empty Pipeline",
        summary="Attempted to build or execute a pipeline without any stages.",
        fix_steps=("Add at least one stage before invoking Pipeline.build()",),
        doc_url=f"{_DOCS}#empty-pipelines",
    ),
)


def _reset_suggestions() -> None:
    _suggestions.clear()
    for suggestion in _DEFAULTS:
        _suggestions[suggestion.code] = suggestion


_reset_suggestions()
register_global_reset(_reset_suggestions)
