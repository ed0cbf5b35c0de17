"""Stage-definition field checks shared by the specs, the builders and the graphs.

The ``check_*`` helpers turn wrong-typed stage fields into errors that name the
stage and the rule, instead of failures deep inside a run. Their errors are
public at :mod:`stageflow_trio.pipeline.spec`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.errors import StageflowError
from stageflow_trio.utils.frozen import FrozenDict


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
