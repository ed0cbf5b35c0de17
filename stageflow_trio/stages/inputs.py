"""What a stage may read: the run's snapshot and its dependencies' outputs.

:class:`StageInputs` is immutable. In strict mode (the default) with a
non-empty ``declared_deps``, the per-stage accessors refuse stages that were
not declared as dependencies; :meth:`StageInputs.get`, which searches every
prior output, is never checked. With no declared dependencies nothing is
checked, exactly as in the reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._globals import tool_registry
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.errors import StageflowError
from stageflow_trio.stages.ports import AudioPorts, CorePorts, LLMPorts
from stageflow_trio.utils.frozen import FrozenDict, _freeze_dict

if TYPE_CHECKING:
    # Lazy on purpose: at runtime it would pull the context package (and
    # cattrs) into `import stageflow_trio`, about 30 ms; see test_exports.
    from stageflow_trio.context.context_snapshot import ContextSnapshot  # noqa: TC004

__all__ = ["StageInputs", "UndeclaredDependencyError", "create_stage_inputs"]

_EMPTY_OUTPUTS: FrozenDict[str, StageOutput] = FrozenDict()
_new = object.__new__
_setattr = object.__setattr__
_NO_DEPS: frozenset[str] = frozenset()


class UndeclaredDependencyError(StageflowError):
    """A stage read the output of a stage it did not declare as a dependency.

    Fix it by adding the dependency to the stage's ``depends_on``.

    Attributes:
        stage_name: The undeclared stage that was accessed.
        declared_deps: The dependencies the accessing stage declared.
        accessing_stage: The stage that made the access, if known.
    """

    def __init__(
        self,
        stage_name: str,
        declared_deps: frozenset[str],
        accessing_stage: str | None = None,
    ) -> None:
        self.stage_name = stage_name
        self.declared_deps = declared_deps
        self.accessing_stage = accessing_stage
        listed = sorted(declared_deps) if declared_deps else ["(none)"]
        message = (
            f"Attempted to access undeclared dependency '{stage_name}'. "
            f"Declared dependencies: {listed}. "
            f"Add '{stage_name}' to depends_on to fix this error."
        )
        if accessing_stage:
            message = f"Stage '{accessing_stage}': {message}"
        super().__init__(message)

    def __reduce__(
        self,
    ) -> tuple[type[UndeclaredDependencyError], tuple[str, frozenset[str], str | None]]:
        return (type(self), (self.stage_name, self.declared_deps, self.accessing_stage))


def _convert_outputs(value: Mapping[str, StageOutput] | None) -> FrozenDict[str, StageOutput]:
    if value is None:
        return _EMPTY_OUTPUTS
    if not isinstance(value, Mapping):
        raise TypeError(
            f"prior_outputs must be a mapping of stage name to StageOutput, got {type(value).__name__}"
        )
    # Checked here, not at the first read: a non-output value used to surface as an
    # AttributeError from get() or require_from(), far from the mistake.
    for name, output in value.items():
        if type(name) is not str and not isinstance(name, str):
            raise TypeError(
                f"prior_outputs keys must be stage names (str), got {type(name).__name__}"
            )
        if type(output) is not StageOutput and not isinstance(output, StageOutput):
            raise TypeError(
                f"prior_outputs[{name!r}] must be a StageOutput, got {type(output).__name__}"
            )
    if type(value) is FrozenDict:
        return value
    return _freeze_dict(value) if value else _EMPTY_OUTPUTS


def _convert_deps(value: Iterable[str] | None) -> frozenset[str]:
    if value is None:
        return _NO_DEPS
    if type(value) is not frozenset:
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            # A bare string would silently become a set of characters.
            raise TypeError(
                f"declared_deps must be a collection of stage names, got {type(value).__name__}"
            )
        value = frozenset(value)
    # A non-str name used to break UndeclaredDependencyError's sorted() listing.
    for name in value:
        if type(name) is not str and not isinstance(name, str):
            raise TypeError(f"declared_deps must hold stage names (str), got {type(name).__name__}")
    return value


def _validate_stage_name(
    _instance: object, _attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"stage_name must be a str or None, got {type(value).__name__}")


def _validate_strict(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"strict must be a bool, got {type(value).__name__}")


@frozen_compat
@attrs.frozen
class StageInputs:
    """The immutable inputs of one stage run.

    Attributes:
        snapshot: The run's :class:`~stageflow_trio.context.context_snapshot.ContextSnapshot`.
        prior_outputs: Outputs of the stage's dependencies, by stage name (a FrozenDict).
        ports: Injected capabilities (database, callbacks, providers), or None.
        declared_deps: The stage's declared dependencies.
        stage_name: The stage these inputs belong to (used in error messages).
        strict: Refuse access to undeclared dependencies (only when
            ``declared_deps`` is non-empty).

    Raises:
        TypeError: ``prior_outputs`` is not a mapping of str to StageOutput,
            ``declared_deps`` is a str, not iterable or holds a non-str,
            ``stage_name`` is not a str, ``strict`` not a bool.
    """

    snapshot: ContextSnapshot[Any]
    prior_outputs: FrozenDict[str, StageOutput] = attrs.field(
        factory=FrozenDict, converter=_convert_outputs
    )
    ports: CorePorts | LLMPorts | AudioPorts | None = None
    declared_deps: frozenset[str] = attrs.field(factory=frozenset, converter=_convert_deps)
    stage_name: str | None = attrs.field(default=None, validator=_validate_stage_name)
    strict: bool = attrs.field(default=True, validator=_validate_strict)

    @property
    def tool_registry(self) -> Any:
        """The process-wide tool registry (a ``ToolRegistry``), as in stageflow 1.2.

        The same object as :func:`stageflow_trio.tools.get_tool_registry` returns;
        the tools package loads the first time a stage asks for it.
        """
        return tool_registry()

    @classmethod
    def _trusted(
        cls,
        snapshot: ContextSnapshot[Any],
        prior_outputs: FrozenDict[str, StageOutput],
        ports: CorePorts | LLMPorts | AudioPorts | None,
        declared_deps: frozenset[str],
        stage_name: str,
    ) -> StageInputs:
        """Strict inputs from arguments the engine already built with the right types.

        Skips the converters and validators: one of these is made per stage run.
        """
        inputs: StageInputs = _new(cls)
        _setattr(inputs, "snapshot", snapshot)
        _setattr(inputs, "prior_outputs", prior_outputs)
        _setattr(inputs, "ports", ports)
        _setattr(inputs, "declared_deps", declared_deps)
        _setattr(inputs, "stage_name", stage_name)
        _setattr(inputs, "strict", True)
        return inputs

    def _validate_dependency(self, stage_name: str) -> None:
        if self.strict and self.declared_deps and stage_name not in self.declared_deps:
            raise UndeclaredDependencyError(stage_name, self.declared_deps, self.stage_name)

    @staticmethod
    def _ensure_valid_key(key: str | None) -> str:
        if key is None:
            raise TypeError("StageInputs key must be provided")
        if not isinstance(key, str):
            raise TypeError("StageInputs key must be a string")
        if key == "":
            raise ValueError("StageInputs key cannot be empty")
        return key

    def get(self, key: str, default: Any = None) -> Any:
        """``data[key]`` from the first prior output that has it, else ``default``.

        Searches every prior output in order; never checked against
        ``declared_deps`` (prefer :meth:`get_from`).

        Raises:
            TypeError: ``key`` is None or not a str.
            ValueError: ``key`` is empty.
        """
        key = self._ensure_valid_key(key)
        for output in self.prior_outputs.values():
            data = output.data
            if key in data:
                return data[key]
        return default

    def get_from(self, stage_name: str, key: str, default: Any = None) -> Any:
        """``data[key]`` from the output of ``stage_name``, else ``default``.

        Raises:
            TypeError: ``key`` is None or not a str.
            ValueError: ``key`` is empty.
            UndeclaredDependencyError: Strict mode and ``stage_name`` is undeclared.
        """
        key = self._ensure_valid_key(key)
        self._validate_dependency(stage_name)
        output = self.prior_outputs.get(stage_name)
        if output is None:
            return default
        return output.data.get(key, default)

    def has_output(self, stage_name: str) -> bool:
        """Whether ``stage_name`` has produced an output.

        Raises:
            UndeclaredDependencyError: Strict mode and ``stage_name`` is undeclared.
        """
        self._validate_dependency(stage_name)
        return stage_name in self.prior_outputs

    def get_output(self, stage_name: str) -> StageOutput | None:
        """The whole output of ``stage_name``, or None.

        Raises:
            UndeclaredDependencyError: Strict mode and ``stage_name`` is undeclared.
        """
        self._validate_dependency(stage_name)
        return self.prior_outputs.get(stage_name)

    def require_from(self, stage_name: str, key: str) -> Any:
        """``data[key]`` from the output of ``stage_name``, which must exist.

        Raises:
            TypeError: ``key`` is None or not a str.
            ValueError: ``key`` is empty.
            UndeclaredDependencyError: Strict mode and ``stage_name`` is undeclared.
            KeyError: ``stage_name`` has no output, or its data has no ``key``.
        """
        key = self._ensure_valid_key(key)
        self._validate_dependency(stage_name)
        output = self.prior_outputs.get(stage_name)
        if output is None:
            raise KeyError(
                f"Required dependency '{stage_name}' has no output. "
                f"Ensure '{stage_name}' executes before this stage."
            )
        data = output.data
        if key not in data:
            raise KeyError(
                f"Required key '{key}' not found in output from '{stage_name}'. "
                f"Available keys: {list(data)}"
            )
        return data[key]


def create_stage_inputs(
    snapshot: ContextSnapshot[Any],
    *,
    prior_outputs: Mapping[str, StageOutput] | None = None,
    ports: CorePorts | LLMPorts | AudioPorts | None = None,
    declared_deps: frozenset[str] | set[str] | list[str] | None = None,
    stage_name: str | None = None,
    strict: bool = True,
) -> StageInputs:
    """Build a :class:`StageInputs`; every argument but ``snapshot`` is optional.

    Raises:
        TypeError: As for :class:`StageInputs`.
    """
    return StageInputs(
        snapshot,
        prior_outputs,
        ports,
        declared_deps,
        stage_name,
        strict,
    )
