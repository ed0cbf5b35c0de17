"""Dependency-graph validation shared by the builders and the graphs, and its errors.

:func:`validate_dependencies` is the one place that decides whether a stage graph
is well formed: every dependency names a stage, and there is no cycle. It takes
a plain ``{stage: dependencies}`` mapping, keeps no state, and runs in
O(stages + edges), so the builders and the graph constructors can all call it.
The errors and the function are public at :mod:`stageflow_trio.pipeline.spec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from stageflow_trio.errors import StageflowError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stageflow_trio.contracts.errors import ContractErrorInfo

_DOCS = "https://github.com/stageflow/stageflow/blob/main/docs/advanced/error-messages.md"


def contract_error_info(**fields: Any) -> ContractErrorInfo:
    """A ContractErrorInfo; the contracts package loads only when an error is made."""
    from stageflow_trio.contracts.errors import ContractErrorInfo

    return ContractErrorInfo(**fields)


class PipelineValidationError(StageflowError):
    """A pipeline definition is invalid (missing dependency, cycle, conflict, empty).

    Attributes:
        stages: The stages the problem involves (a list; empty when none apply).
        error_info: Structured details, or None; ``error_info.code`` is the stable code.
    """

    def __init__(
        self,
        message: str,
        stages: list[str] | None = None,
        *,
        error_info: ContractErrorInfo | None = None,
    ) -> None:
        super().__init__(message)
        self.stages: list[str] = list(stages) if stages else []
        self.error_info = error_info

    def with_context(self, **context: Any) -> PipelineValidationError:
        """Merge ``context`` into ``error_info.context`` (no-op without info); return self."""
        if self.error_info is not None:
            self.error_info = self.error_info.with_context(**context)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Serialize as ``{"message", "stages", "error_info"}`` (error_info may be None)."""
        return {
            "message": str(self),
            "stages": list(self.stages),
            "error_info": self.error_info.to_dict() if self.error_info is not None else None,
        }


class CycleDetectedError(PipelineValidationError):
    """The pipeline's dependencies form a cycle (code ``CONTRACT-004-CYCLE``).

    Attributes:
        cycle_path: The cycle as a path, first stage repeated at the end
            (``["a", "b", "a"]``: a depends on b, b depends on a).
        stages: The stages of the cycle, in path order, each once.
    """

    def __init__(self, cycle_path: list[str], stages: list[str] | None = None) -> None:
        self.cycle_path: list[str] = list(cycle_path)
        info = contract_error_info(
            code="CONTRACT-004-CYCLE",
            summary="Pipeline contains a dependency cycle",
            fix_hint="Break the cycle by removing one dependency in the loop.",
            doc_url=(
                "https://github.com/stageflow/stageflow/blob/main/docs/guides/stages.md"
                "#contract-troubleshooting"
            ),
            context={"cycle_path": list(self.cycle_path)},
        )
        super().__init__(
            f"Pipeline contains a cycle: {' -> '.join(self.cycle_path)}",
            stages=stages or self.cycle_path,
            error_info=info,
        )

    def __repr__(self) -> str:
        return f"CycleDetectedError(cycle_path={self.cycle_path})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The default passes the message as ``cycle_path``: the unpickled error
        # read "a cycle: P -> i -> p -> e ...".
        return (type(self), (self.cycle_path, self.stages), self.__dict__)


def missing_dependency_error(stage: str, dependency: str) -> PipelineValidationError:
    """The CONTRACT-004-MISSING_DEP error for ``stage`` depending on an absent ``dependency``."""
    info = contract_error_info(
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
    info = contract_error_info(
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
    info = contract_error_info(
        code="CONTRACT-004-EMPTY",
        summary="Cannot build a pipeline with zero stages",
        fix_hint="Add at least one stage before calling build().",
        doc_url=f"{_DOCS}#empty-pipelines",
    )
    return PipelineValidationError("Cannot build empty pipeline", error_info=info)


def _dependencies_type_error(stage: str, stage_deps: object) -> TypeError:
    if isinstance(stage_deps, tuple | list):
        bad = next(dep for dep in stage_deps if not isinstance(dep, str))
        got = f"an item of type {type(bad).__name__}"
    else:
        got = type(stage_deps).__name__
    return TypeError(
        f"validate_dependencies: the dependencies of stage {stage!r} must be a tuple or "
        f"list of str; got {got}"
    )


def _raise_cycle(cycle_path: list[str]) -> NoReturn:
    # The path's nodes are distinct apart from the repeated first one, so this
    # is the ordered set of stages in the cycle.
    raise CycleDetectedError(cycle_path=cycle_path, stages=cycle_path[:-1])


def _in_dependency_order(deps: Mapping[str, Sequence[str]]) -> bool:
    """Whether every stage's dependencies are tuples of stages named before it.

    The common case (stages added after what they depend on), checked in one pass:
    then every dependency exists and there is no cycle, since the mapping's order
    is a topological order. Anything else (including a wrong type) is for the
    full check, which finds the reference's first error.
    """
    earlier: set[object] = set()
    try:
        for stage, stage_deps in deps.items():
            if type(stage_deps) is not tuple or not earlier.issuperset(stage_deps):
                return False
            if type(stage) is str:  # so a dependency that is not a str is never found
                earlier.add(stage)
    except TypeError:  # an unhashable dependency
        return False
    return True


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
        TypeError: ``deps`` is not a mapping, or a stage's dependencies are not a
            sequence of str (a lone str would be read one character per stage).
    """
    if not isinstance(deps, Mapping):
        raise TypeError(
            f"validate_dependencies: deps must be a mapping of stage name to dependencies; "
            f"got {type(deps).__name__}"
        )
    if not _in_dependency_order(deps):
        _check_all_dependencies(deps)


def _check_all_dependencies(deps: Mapping[str, Sequence[str]]) -> None:
    """:func:`validate_dependencies` without its shortcut: types, missing stages, cycles."""
    for stage, stage_deps in deps.items():
        if isinstance(stage_deps, str) or not isinstance(stage_deps, tuple | list):
            raise _dependencies_type_error(stage, stage_deps)
        for dep in stage_deps:
            if not isinstance(dep, str):
                raise _dependencies_type_error(stage, stage_deps)
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
