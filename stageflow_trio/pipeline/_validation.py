"""Stage-definition checks and dependency-graph validation shared by the builders and graphs.

:func:`validate_dependencies` is the one place that decides whether a stage graph
is well formed: every dependency names a stage, and there is no cycle. It takes
a plain ``{stage: dependencies}`` mapping, keeps no state, and runs in
O(stages + edges), so the builders and the graph constructors can all call it.

The ``check_*`` helpers turn wrong-typed stage fields into errors that name the
stage and the rule, instead of failures deep inside a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from stageflow_trio.contracts.errors import ContractErrorInfo
from stageflow_trio.errors import StageflowError
from stageflow_trio.utils.frozen import FrozenDict

if TYPE_CHECKING:
    from stageflow_trio.core.stage_enums import StageKind
    from stageflow_trio.pipeline.spec import PipelineValidationError

_DOCS = "https://github.com/stageflow/stageflow/blob/main/docs/advanced/error-messages.md"


class StageDefinitionError(StageflowError, ValueError):
    """A stage definition has an invalid value (empty name, self-dependency, ...)."""


class StageDefinitionTypeError(StageflowError, TypeError):
    """A stage definition field has the wrong type (runner, dependencies, kind, ...)."""


def _type_name(value: object) -> str:
    return type(value).__name__


def check_name(owner: str, name: object) -> str:
    """Return ``name`` if it is a usable stage name.

    Raises:
        StageDefinitionTypeError: ``name`` is not a str.
        StageDefinitionError: ``name`` is empty or whitespace-only.
    """
    if not isinstance(name, str):
        raise StageDefinitionTypeError(f"{owner} name must be a str; got {_type_name(name)}")
    if not name:
        raise StageDefinitionError(f"{owner} name cannot be empty")
    if not name.strip():
        raise StageDefinitionError(f"{owner} name cannot be whitespace-only")
    return name


def check_names(owner: str, stage: str, field: str, value: object) -> tuple[str, ...]:
    """Normalize a collection of stage names (``None`` means none) to a tuple.

    Raises:
        StageDefinitionTypeError: ``value`` is a lone str/bytes (a classic typo for a
            one-element tuple), is not iterable, or holds something other than str.
    """
    if value is None:
        return ()
    # Tuples and lists first: the Iterable ABC check is the slow part of adding a stage.
    if not isinstance(value, tuple | list) and (
        isinstance(value, str | bytes) or not isinstance(value, Iterable)
    ):
        raise StageDefinitionTypeError(
            f"{owner} {stage!r}: {field} must be a tuple or list of stage names; "
            f"got {_type_name(value)} {value!r}"
        )
    names = tuple(value)
    for item in names:
        if not isinstance(item, str):
            raise StageDefinitionTypeError(
                f"{owner} {stage!r}: {field} must contain only str stage names; "
                f"got {_type_name(item)} {item!r}"
            )
    return names


def check_runner(owner: str, stage: str, runner: object) -> None:
    """Accept a stage class, an object with ``execute``, or an async callable.

    Raises:
        StageDefinitionTypeError: a class without ``execute``, or a non-callable object
            without ``execute``.
    """
    if isinstance(runner, type):
        if not callable(getattr(runner, "execute", None)):
            raise StageDefinitionTypeError(
                f"{owner} {stage!r}: runner class {runner.__name__} has no execute() method"
            )
        return
    if callable(getattr(runner, "execute", None)) or callable(runner):
        return
    raise StageDefinitionTypeError(
        f"{owner} {stage!r}: runner must be a stage class, a stage instance with an "
        f"execute() method, or an async callable; got {_type_name(runner)}"
    )


def check_bool(owner: str, stage: str, field: str, value: object) -> bool:
    """Return ``value`` if it is a bool.

    Raises:
        StageDefinitionTypeError: ``value`` is not a bool.
    """
    if not isinstance(value, bool):
        raise StageDefinitionTypeError(
            f"{owner} {stage!r}: {field} must be a bool; got {_type_name(value)}"
        )
    return value


def check_kwargs(owner: str, stage: str, field: str, value: object) -> Mapping[str, Any]:
    """Copy keyword arguments for a stage constructor into a read-only mapping.

    Raises:
        StageDefinitionTypeError: ``value`` is not a mapping with str keys.
    """
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise StageDefinitionTypeError(
            f"{owner} {stage!r}: {field} must be a mapping of keyword arguments; "
            f"got {_type_name(value)}"
        )
    for key in value:
        if not isinstance(key, str):
            raise StageDefinitionTypeError(
                f"{owner} {stage!r}: {field} keys must be str keyword names; got {key!r}"
            )
    return FrozenDict(value)


def check_kind(owner: str, stage: str, kind: object) -> StageKind:
    """Return ``kind`` as a StageKind (its string value is accepted too).

    Raises:
        StageDefinitionTypeError: ``kind`` is neither a StageKind nor one of its values.
    """
    # Imported here: core is written independently and must not be needed to import this module.
    from stageflow_trio.core.stage_enums import StageKind

    if isinstance(kind, StageKind):
        return kind
    if isinstance(kind, str):
        try:
            return StageKind(kind)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in StageKind)
    raise StageDefinitionTypeError(
        f"{owner} {stage!r}: kind must be a StageKind (one of {allowed}); got {kind!r}"
    )


def missing_dependency_error(stage: str, dependency: str) -> PipelineValidationError:
    """The CONTRACT-004-MISSING_DEP error for ``stage`` depending on an absent ``dependency``."""
    from stageflow_trio.pipeline.spec import PipelineValidationError

    info = ContractErrorInfo(
        code="CONTRACT-004-MISSING_DEP",
        summary="Stage depends on an undefined dependency",
        fix_hint="Add the missing stage or remove it from the dependency list.",
        doc_url=f"{_DOCS}#missing-stage-dependencies",
        context={"stage": stage, "dependency": dependency},
    )
    return PipelineValidationError(
        f"Stage '{stage}' depends on '{dependency}' which does not exist",
        stages=[stage, dependency],
        error_info=info,
    )


def conflict_error(stage: str, existing: object, incoming: object) -> PipelineValidationError:
    """The CONTRACT-004-CONFLICT error for two different definitions of ``stage``."""
    from stageflow_trio.pipeline.spec import PipelineValidationError

    info = ContractErrorInfo(
        code="CONTRACT-004-CONFLICT",
        summary="Stage defined multiple times with conflicting specs",
        fix_hint=(
            "Ensure composed pipelines define the stage with identical runner and dependencies."
        ),
        doc_url=f"{_DOCS}#conflicting-stage-definitions",
        context={
            "stage": stage,
            "existing_runner": getattr(existing, "__name__", str(existing)),
            "incoming_runner": getattr(incoming, "__name__", str(incoming)),
        },
    )
    return PipelineValidationError(
        f"Stage '{stage}' exists in both pipelines with different specs",
        stages=[stage],
        error_info=info,
    )


def empty_pipeline_error() -> PipelineValidationError:
    """The CONTRACT-004-EMPTY error for building a pipeline with no stages."""
    from stageflow_trio.pipeline.spec import PipelineValidationError

    info = ContractErrorInfo(
        code="CONTRACT-004-EMPTY",
        summary="Cannot build a pipeline with zero stages",
        fix_hint="Add at least one stage before calling build().",
        doc_url=f"{_DOCS}#empty-pipelines",
    )
    return PipelineValidationError("Cannot build empty pipeline", error_info=info)


def _raise_cycle(cycle_path: list[str]) -> NoReturn:
    from stageflow_trio.pipeline.spec import CycleDetectedError

    # The path's nodes are distinct apart from the repeated first one, so this
    # is the ordered set of stages in the cycle.
    raise CycleDetectedError(cycle_path=cycle_path, stages=cycle_path[:-1])


def validate_dependencies(deps: Mapping[str, Sequence[str]]) -> None:
    """Check that a stage graph is a DAG whose dependencies all exist.

    The checks and their order match the reference builder, so the same invalid
    graph gets the same error: first the first missing dependency in mapping order,
    then the first cycle a depth-first search finds when it starts from each stage
    in mapping order and follows dependencies in declared order. O(stages + edges);
    iterative, so deep chains cannot hit the recursion limit.

    Args:
        deps: Stage name -> names of the stages it depends on.

    Raises:
        PipelineValidationError: ``CONTRACT-004-MISSING_DEP``, with
            ``context={"stage", "dependency"}``.
        CycleDetectedError: ``CONTRACT-004-CYCLE``; ``cycle_path`` starts and ends
            with the same stage, and each stage in it depends on the next one.
    """
    for stage, stage_deps in deps.items():
        for dep in stage_deps:
            if dep not in deps:
                raise missing_dependency_error(stage, dep)

    on_path = 1
    done = 2
    state: dict[str, int] = {}
    for root in deps:
        if root in state:
            continue
        state[root] = on_path
        path = [root]
        position = {root: 0}
        pending = [iter(deps[root])]
        while pending:
            for dep in pending[-1]:
                seen = state.get(dep)
                if seen is None:
                    state[dep] = on_path
                    position[dep] = len(path)
                    path.append(dep)
                    pending.append(iter(deps[dep]))
                    break
                if seen == on_path:
                    _raise_cycle([*path[position[dep] :], dep])
            else:
                finished = path.pop()
                del position[finished]
                state[finished] = done
                pending.pop()
