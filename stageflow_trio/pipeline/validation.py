"""Validation helpers for code-defined stage graphs, over any ``{name: spec}`` mapping.

The builders validate as they go; these functions are for code that assembles
its own stage tables (stageflow 1.2's ``stageflow.pipeline.validation``). A spec
is anything with ``name`` and ``dependencies`` (:class:`DependencySpec`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from stageflow_trio.pipeline._validation import (
    PipelineValidationError,
    contract_error_info,
    empty_pipeline_error,
    validate_dependencies,
)

__all__ = [
    "DependencySpec",
    "ensure_compatible_stage_specs",
    "ensure_non_empty",
    "topologically_sorted_stage_names",
    "validate_stage_dependencies",
]

_STAGES_DOCS = "https://github.com/stageflow/stageflow/blob/main/docs/guides/stages.md"


def _check_stages(where: str, stages: object) -> None:
    if not isinstance(stages, Mapping):
        raise TypeError(
            f"{where}: stages must be a mapping of stage name to spec; got {type(stages).__name__}"
        )


def _dependencies(where: str, name: str, spec: object) -> tuple[str, ...] | list[str]:
    # A spec is duck-typed; a missing attribute or a lone str (read one character
    # per stage) is reported here rather than deep inside the graph walk.
    if not hasattr(spec, "dependencies"):
        raise TypeError(
            f"{where}: stages[{name!r}] must be a spec with name and dependencies; "
            f"got {type(spec).__name__}"
        )
    deps = spec.dependencies
    if isinstance(deps, str) or not isinstance(deps, tuple | list):
        raise TypeError(
            f"{where}: stages[{name!r}].dependencies must be a tuple or list of str; "
            f"got {type(deps).__name__}"
        )
    return deps


class DependencySpec(Protocol):
    """What these helpers read of a stage spec."""

    @property
    def name(self) -> str:
        """The stage's name."""

    @property
    def dependencies(self) -> tuple[str, ...]:
        """The names of the stages it depends on."""


def ensure_non_empty(stages: Mapping[str, DependencySpec], *, message: str) -> None:
    """Raise ``PipelineValidationError(message)`` (``CONTRACT-004-EMPTY``) when ``stages`` is empty.

    Raises:
        TypeError: ``stages`` is not a mapping, or ``message`` not a str.
    """
    _check_stages("ensure_non_empty", stages)
    if not isinstance(message, str):
        raise TypeError(f"ensure_non_empty: message must be a str; got {type(message).__name__}")
    if stages:
        return
    raise PipelineValidationError(message, error_info=empty_pipeline_error().error_info)


def validate_stage_dependencies(stages: Mapping[str, DependencySpec]) -> None:
    """Check that every dependency names a stage and that there is no cycle.

    Raises:
        PipelineValidationError: ``CONTRACT-004-MISSING_DEP`` (the first in mapping order).
        CycleDetectedError: ``CONTRACT-004-CYCLE``.
        TypeError: ``stages`` is not a mapping, or a spec's ``dependencies`` is not
            a tuple or list of str.
    """
    where = "validate_stage_dependencies"
    _check_stages(where, stages)
    validate_dependencies({name: _dependencies(where, name, spec) for name, spec in stages.items()})


def ensure_compatible_stage_specs(
    *, name: str, existing: Any, incoming: Any, attrs: tuple[str, ...]
) -> None:
    """Raise ``CONTRACT-004-CONFLICT`` unless both specs agree on every attribute in ``attrs``.

    Raises:
        TypeError: ``attrs`` is not a tuple or list of str, or a spec lacks one of them.
    """
    names: object = attrs  # annotated as a tuple; checked since a str would be read per character
    if isinstance(names, str) or not isinstance(names, tuple | list):
        raise TypeError(
            "ensure_compatible_stage_specs: attrs must be a tuple or list of attribute names; "
            f"got {type(names).__name__}"
        )
    for attr in names:
        for role, spec in (("existing", existing), ("incoming", incoming)):
            if not isinstance(attr, str) or not hasattr(spec, attr):
                raise TypeError(
                    f"ensure_compatible_stage_specs: {role} has no attribute {attr!r} "
                    "(attrs must name attributes of both specs)"
                )
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

    Raises:
        TypeError: ``stages`` is not a mapping, or a spec's ``dependencies`` is not
            a tuple or list.
    """
    where = "topologically_sorted_stage_names"
    _check_stages(where, stages)
    remaining: dict[str, int] = {}
    dependants: dict[str, list[str]] = {name: [] for name in stages}
    for name, spec in stages.items():
        spec_deps = _dependencies(where, name, spec)
        deps = set(spec_deps)
        remaining[name] = len(deps)
        for dep in spec_deps:
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
