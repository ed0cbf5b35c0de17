"""``@stage_metadata(name=..., kind=...)``: a stage class's ``name`` and ``kind`` in one line."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from stageflow_trio._args import type_of
from stageflow_trio.core.stage_enums import StageKind

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["stage_metadata"]

_C = TypeVar("_C", bound=type)


def stage_metadata(*, name: str, kind: StageKind | str) -> Callable[[_C], _C]:
    """Set ``name`` and ``kind`` on the decorated stage class and return the class.

    ``Pipeline.with_stage`` and ``stage(...)`` read the class's ``kind`` when no
    ``kind`` is given, so a decorated class needs none at the call site.

    Raises:
        TypeError: ``name`` is not a str, ``kind`` is neither a StageKind nor a str,
            or the decorated object is not a class.
        ValueError: ``name`` is blank, or ``kind`` is not one of StageKind's values.
    """
    if not isinstance(name, str):
        raise TypeError(f"stage_metadata: name must be a str; got {type_of(name)}")
    if not name.strip():
        raise ValueError("stage_metadata: name must be a non-blank str")
    if isinstance(kind, StageKind):
        resolved = kind
    elif isinstance(kind, str):
        try:
            resolved = StageKind(kind)
        except ValueError:
            allowed = ", ".join(member.value for member in StageKind)
            raise ValueError(
                f"stage_metadata: kind must be one of {allowed}; got {kind!r}"
            ) from None
    else:
        raise TypeError(f"stage_metadata: kind must be a StageKind or str; got {type_of(kind)}")

    def decorator(cls: _C) -> _C:
        if not isinstance(cls, type):
            raise TypeError(f"stage_metadata: decorates a class; got {type_of(cls)}")
        cls.name = name  # type: ignore[attr-defined]
        cls.kind = resolved  # type: ignore[attr-defined]
        return cls

    return decorator
