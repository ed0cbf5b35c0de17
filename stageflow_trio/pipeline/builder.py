"""PipelineBuilder: an immutable, validating builder of legacy stage graphs."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from stageflow_trio.pipeline._checks import StageDefinitionError, StageDefinitionTypeError
from stageflow_trio.pipeline._validation import (
    conflict_error,
    empty_pipeline_error,
    missing_dependency_error,
    validate_dependencies,
)
from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.pipeline.spec import LegacyRunnerLike, PipelineSpec, as_async_runner
from stageflow_trio.pipeline.validation import topologically_sorted_stage_names

if TYPE_CHECKING:
    from stageflow_trio.observability.wide_events import WideEventEmitter

__all__ = ["PipelineBuilder"]

_S = TypeVar("_S")


class _Log(Generic[_S]):
    """Append-only storage shared by a chain of stage tables."""

    __slots__ = ("index", "lock", "names", "specs")

    def __init__(self, names: list[str], specs: list[_S]) -> None:
        self.names: list[str] = names
        self.specs: list[_S] = specs
        self.index: dict[str, int] = {name: position for position, name in enumerate(names)}
        # Guards the "am I still the newest table?" check against appends from threads.
        self.lock: threading.Lock = threading.Lock()


class StageTable(Mapping[str, _S]):
    """Read-only, insertion-ordered ``{stage name: spec}`` view used by both builders.

    Builders are immutable and every ``with_stage`` returns a new one. Copying a dict
    for each of them would make building n stages O(n^2); instead a table is the first
    ``length`` entries of a shared append-only log, and adding a stage to the newest
    table appends in O(1). Adding to an older table, or replacing a stage, copies.
    """

    __slots__ = ("_length", "_log")

    def __init__(self, log: _Log[_S], length: int) -> None:
        self._log = log
        self._length = length

    @classmethod
    def from_items(cls, items: Iterable[tuple[str, _S]]) -> StageTable[_S]:
        """A table holding ``items`` (a repeated name replaces the earlier entry in place)."""
        entries = dict(items)
        return cls(_Log(list(entries), list(entries.values())), len(entries))

    @classmethod
    def from_mapping(cls, stages: object, owner: str, spec_type: type[_S]) -> StageTable[_S]:
        """The table a builder's ``stages=`` argument gives (None: an empty one).

        Raises:
            StageDefinitionTypeError: ``stages`` is not a mapping, or holds a value that
                is not a ``spec_type``.
            StageDefinitionError: a key differs from its spec's name.
        """
        if stages is None:
            return cls.from_items(())
        if not isinstance(stages, Mapping):
            raise StageDefinitionTypeError(
                f"{owner} stages must be a mapping of stage name to {spec_type.__name__}; "
                f"got {type(stages).__name__}"
            )
        for key, spec in stages.items():
            if not isinstance(spec, spec_type):
                raise StageDefinitionTypeError(
                    f"{owner} stages[{key!r}] must be a {spec_type.__name__}; "
                    f"got {type(spec).__name__}"
                )
            name = spec.name  # type: ignore[attr-defined]  # both spec types have one
            if key != name:
                raise StageDefinitionError(
                    f"{owner} stages[{key!r}] holds stage {name!r}; each key must be its spec's name"
                )
        return cls.from_items(stages.items())

    def __getitem__(self, name: str) -> _S:
        position = self._log.index.get(name)
        if position is None or position >= self._length:
            raise KeyError(name)
        return self._log.specs[position]

    def __contains__(self, name: object) -> bool:
        position = self._log.index.get(name)  # type: ignore[call-overload]
        return position is not None and position < self._length

    def __iter__(self) -> Iterator[str]:
        # Entries past our length belong to newer tables; the prefix never changes.
        return islice(self._log.names, self._length)

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its entries: the shared log holds a lock, which neither pickle
        # nor deepcopy can copy (and a copy needs no log shared with the original).
        return (StageTable.from_items, (tuple(self.items()),))

    def with_entry(self, name: str, spec: _S) -> StageTable[_S]:
        """A table with ``name`` set to ``spec``: appended, or replaced at its position."""
        if name in self:
            entries = dict(self.items())
            entries[name] = spec
            return StageTable.from_items(entries.items())
        log = self._log
        with log.lock:
            if len(log.specs) == self._length:
                log.names.append(name)
                log.specs.append(spec)
                log.index[name] = self._length
                return StageTable(log, self._length + 1)
        branch = _Log([*log.names[: self._length], name], [*log.specs[: self._length], spec])
        return StageTable(branch, self._length + 1)


def _dependency_map(stages: Mapping[str, PipelineSpec]) -> dict[str, tuple[str, ...]]:
    return {name: spec.dependencies for name, spec in stages.items()}


class PipelineBuilder:
    """An immutable pipeline of :class:`PipelineSpec` stages, validated as it grows.

    Every ``with_stage`` / ``compose`` returns a new builder and leaves this one
    unchanged. Validation happens on construction and on each added stage, so a
    stage's dependencies must be added before it.

    Args:
        name: Pipeline name.
        stages: Optional ``{name: PipelineSpec}`` to start from; validated in full.

    Raises:
        PipelineValidationError: a dependency is missing (``CONTRACT-004-MISSING_DEP``).
        CycleDetectedError: the dependencies form a cycle (``CONTRACT-004-CYCLE``).
        StageDefinitionTypeError: ``name`` is not a str, or ``stages`` is not a
            mapping of PipelineSpec.
        StageDefinitionError: a key of ``stages`` differs from its spec's name.
    """

    __slots__ = ("_name", "_stages")
    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __init__(
        self, name: str = "pipeline", stages: Mapping[str, PipelineSpec] | None = None
    ) -> None:
        if not isinstance(name, str):
            raise StageDefinitionTypeError(
                f"PipelineBuilder name must be a str; got {type(name).__name__}"
            )
        table = StageTable.from_mapping(stages, "PipelineBuilder", PipelineSpec)
        if table:
            validate_dependencies(_dependency_map(table))
        self._name = name
        self._stages = table

    @classmethod
    def _from_valid(cls, name: str, stages: StageTable[PipelineSpec]) -> PipelineBuilder:
        builder = cls.__new__(cls)
        builder._name = name
        builder._stages = stages
        return builder

    def __reduce__(self) -> tuple[Any, ...]:
        # Every pickle protocol (0 and 1 refuse a slotted class without __getstate__);
        # the stages were checked when this builder was made.
        return (PipelineBuilder._from_valid, (self._name, self._stages))

    @property
    def name(self) -> str:
        """The pipeline name."""
        return self._name

    @property
    def stages(self) -> Mapping[str, PipelineSpec]:
        """Read-only ``{stage name: PipelineSpec}`` in insertion order."""
        return self._stages

    def with_stage(
        self,
        name: str,
        runner: LegacyRunnerLike,
        dependencies: tuple[str, ...] | list[str] | None = None,
        inputs: tuple[str, ...] | list[str] | None = None,
        outputs: tuple[str, ...] | list[str] | None = None,
        conditional: bool = False,
        args: dict[str, Any] | None = None,
    ) -> PipelineBuilder:
        """Return a new builder with this stage added (or replaced, if ``name`` exists).

        Adding a new stage only checks its own dependencies (O(dependencies)): an
        existing valid graph cannot gain a cycle through a stage nobody depends on yet.
        Replacing a stage re-validates the whole graph.

        Raises:
            PipelineValidationError: ``CONTRACT-004-MISSING_DEP``.
            CycleDetectedError: only when replacing a stage closes a loop.
            StageDefinitionError / StageDefinitionTypeError: see :class:`PipelineSpec`.
        """
        spec = PipelineSpec(name, runner, dependencies, inputs, outputs, conditional, args)
        stages = self._stages
        if name in stages:
            table = stages.with_entry(name, spec)
            validate_dependencies(_dependency_map(table))
        else:
            for dep in spec.dependencies:
                if dep not in stages:
                    raise missing_dependency_error(name, dep)
            table = stages.with_entry(name, spec)
        return PipelineBuilder._from_valid(self._name, table)

    def compose(self, other: PipelineBuilder) -> PipelineBuilder:
        """Merge ``other``'s stages into a new builder named ``"{self.name}+{other.name}"``.

        A stage both define is kept once if the runner, dependencies and conditional
        flag are equal (this builder's spec is kept).

        Raises:
            PipelineValidationError: ``CONTRACT-004-CONFLICT`` when they differ.
            StageDefinitionTypeError: ``other`` is not a PipelineBuilder.
        """
        if not isinstance(other, PipelineBuilder):
            raise StageDefinitionTypeError(
                f"PipelineBuilder.compose expects a PipelineBuilder; got {type(other).__name__}"
            )
        merged = dict(self._stages.items())
        for name, spec in other._stages.items():
            existing = merged.get(name)
            if existing is None:
                merged[name] = spec
            elif (
                existing.runner != spec.runner
                or existing.dependencies != spec.dependencies
                or existing.conditional != spec.conditional
            ):
                raise conflict_error(name, existing.runner, spec.runner)
        return PipelineBuilder(f"{self._name}+{other._name}", merged)

    def build(
        self,
        *,
        emit_stage_wide_events: bool = False,
        emit_pipeline_wide_event: bool = False,
        wide_event_emitter: WideEventEmitter | None = None,
    ) -> StageGraph:
        """Return a legacy :class:`StageGraph` that runs these stages.

        Each stage's runner becomes ``async (ctx) -> result``: a class runner is
        instantiated with its ``args`` for every execution, an instance's
        ``execute(ctx)`` is awaited, and an async callable is awaited directly.

        Raises:
            PipelineValidationError: ``CONTRACT-004-EMPTY`` when there are no stages.
        """
        if not self._stages:
            raise empty_pipeline_error()
        specs = [
            StageSpec(
                name=spec.name,
                runner=as_async_runner(spec.runner, spec.args),
                dependencies=spec.dependencies,
                conditional=spec.conditional,
            )
            for spec in self._stages.values()
        ]
        return StageGraph(
            specs,
            wide_event_emitter=wide_event_emitter,
            emit_stage_wide_events=emit_stage_wide_events,
            emit_pipeline_wide_event=emit_pipeline_wide_event,
        )

    def get_stage(self, name: str) -> PipelineSpec | None:
        """The spec of stage ``name``, or None."""
        return self._stages.get(name)

    def has_stage(self, name: str) -> bool:
        """Whether stage ``name`` is in the pipeline."""
        return name in self._stages

    def stage_names(self) -> list[str]:
        """Stage names in topological order (Kahn's algorithm, ties in insertion order)."""
        # The builder checks each stage's dependencies as it is added (none missing, no
        # cycle), so no stage is left out.
        return topologically_sorted_stage_names(self._stages)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PipelineBuilder) or type(other) is not type(self):
            return NotImplemented
        return self._name == other._name and self._stages == other._stages

    def __repr__(self) -> str:
        return f"PipelineBuilder(name={self._name!r}, stages={list(self._stages)})"
