"""Validation helpers for code-defined stage graphs, over any ``{name: spec}`` mapping.

The builders validate as they go; these functions are for code that assembles
its own stage tables (stageflow 1.2's ``stageflow.pipeline.validation``). A spec
is anything with ``name`` and ``dependencies`` (:class:`DependencySpec`).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from stageflow_trio.pipeline._validation import (
    PipelineValidationError,
    contract_error_info,
    empty_pipeline_error,
    validate_dependencies,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DependencySpec",
    "ensure_compatible_stage_specs",
    "ensure_non_empty",
    "topologically_sorted_stage_names",
    "validate_stage_dependencies",
]

_STAGES_DOCS = "https://github.com/stageflow/stageflow/blob/main/docs/guides/stages.md"


class DependencySpec(Protocol):
    """What these helpers read of a stage spec."""

    @property
    def name(self) -> str:
        """The stage's name."""

    @property
    def dependencies(self) -> tuple[str, ...]:
        """The names of the stages it depends on."""


def ensure_non_empty(stages: Mapping[str, DependencySpec], *, message: str) -> None:
    """Raise ``PipelineValidationError(message)`` (``CONTRACT-004-EMPTY``) when ``stages`` is empty."""
    if stages:
        return
    raise PipelineValidationError(message, error_info=empty_pipeline_error().error_info)


def validate_stage_dependencies(stages: Mapping[str, DependencySpec]) -> None:
    """Check that every dependency names a stage and that there is no cycle.

    Raises:
        PipelineValidationError: ``CONTRACT-004-MISSING_DEP`` (the first in mapping order).
        CycleDetectedError: ``CONTRACT-004-CYCLE``.
    """
    validate_dependencies({name: spec.dependencies for name, spec in stages.items()})


def ensure_compatible_stage_specs(
    *, name: str, existing: Any, incoming: Any, attrs: tuple[str, ...]
) -> None:
    """Raise ``CONTRACT-004-CONFLICT`` unless both specs agree on every attribute in ``attrs``."""
    if all(getattr(existing, attr) == getattr(incoming, attr) for attr in attrs):
        return
    info = contract_error_info(
        code="CONTRACT-004-CONFLICT",
        summary="Pipelines define conflicting stage specifications",
        fix_hint="Rename one of the stages or make the specs identical before composing.",
        doc_url=f"{_STAGES_DOCS}#contract-troubleshooting",
        context={"stage": name},
    )
    raise PipelineValidationError(
        f"Cannot compose pipelines: stage '{name}' has different specs",
        stages=[name],
        error_info=info,
    )


def topologically_sorted_stage_names(stages: Mapping[str, DependencySpec]) -> list[str]:
    """The stage names, each after all its dependencies (Kahn's algorithm, O(stages + edges)).

    Ties keep mapping order. Stages that can never run (in a cycle, or after a
    missing dependency) are left out rather than reported.
    """
    remaining: dict[str, int] = {}
    dependants: dict[str, list[str]] = {name: [] for name in stages}
    for name, spec in stages.items():
        deps = set(spec.dependencies)
        remaining[name] = len(deps)
        for dep in spec.dependencies:
            if dep in deps and dep in dependants:
                deps.discard(dep)  # a repeated dependency counts once
                dependants[dep].append(name)
    ready = deque(name for name, count in remaining.items() if count == 0)
    ordered: list[str] = []
    while ready:
        node = ready.popleft()
        ordered.append(node)
        for child in dependants[node]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    return ordered
