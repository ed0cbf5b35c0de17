"""The mapping-based extension system: application data under named keys.

This is the second of stageflow's two extension systems (the first is the
typed :class:`~stageflow_trio.context.extensions.ExtensionBundle`). Here a
snapshot's ``extensions`` is a mapping from a key to that extension's data;
:class:`ExtensionRegistry` records which type each key holds, and
:class:`ExtensionHelper` turns the stored data back into that type::

    @attrs.frozen
    class SkillsExtension:
        active_skill_ids: tuple[str, ...] = ()

        @classmethod
        def from_dict(cls, data):
            return cls(tuple(data.get("active_skill_ids", ())))

    ExtensionRegistry.register("skills", SkillsExtension)
    snapshot = ContextSnapshot(extensions={"skills": {"active_skill_ids": ["python"]}})
    skills = ExtensionHelper.get(snapshot.extensions, "skills", SkillsExtension)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from stageflow_trio._globals import register_global_reset
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

__all__ = [
    "ExtensionHelper",
    "ExtensionRegistry",
    "TypedExtension",
    "create_skills_extension",
]

T = TypeVar("T")
_T_co = TypeVar("_T_co", covariant=True)


class TypedExtension(Protocol[_T_co]):
    """What a typed extension provides: its key and its serialized form."""

    @property
    def key(self) -> str:
        """The key the extension is stored under."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The extension's JSON-ready form."""
        ...


class ExtensionRegistry:
    """The process-wide map from extension key to extension type.

    Tests reset it between runs (``stageflow_trio.testing.reset_globals``).
    """

    _extensions: ClassVar[dict[str, type]] = {}

    @classmethod
    def register(cls, key: str, extension_type: type) -> None:
        """Record ``extension_type`` as the type stored under ``key`` (replacing any earlier one).

        Raises:
            TypeError: ``key`` is not a str or ``extension_type`` is not a class.
        """
        if not isinstance(key, str):
            raise TypeError(
                f"ExtensionRegistry.register: key must be a str; got {type(key).__name__}"
            )
        if not isinstance(extension_type, type):
            raise TypeError(
                "ExtensionRegistry.register: extension_type must be a class; "
                f"got {type(extension_type).__name__}"
            )
        cls._extensions[key] = extension_type

    @classmethod
    def get(cls, key: str) -> type | None:
        """The type registered under ``key``, or None."""
        return cls._extensions.get(key)

    @classmethod
    def clear(cls) -> None:
        """Forget every registration."""
        cls._extensions.clear()


register_global_reset(ExtensionRegistry.clear)


def _thawed(value: Any) -> Any:
    """A plain, mutable deep copy of frozen containers (anything else as given)."""
    if isinstance(value, FrozenDict):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, FrozenList):
        return [_thawed(v) for v in value]
    return value


class ExtensionHelper:
    """Reading typed extensions out of a snapshot's extension mapping."""

    @staticmethod
    def get(data: Mapping[str, Any] | None, key: str, ext_type: type[T]) -> T | None:
        """The extension stored under ``key``, as an ``ext_type``.

        Stored mapping data is passed to ``ext_type.from_dict`` if the type has
        one, else to ``ext_type(**data)``; a snapshot's frozen data is handed
        over as plain dicts and lists. Data that is not a mapping is returned
        as it is.

        Args:
            data: The extension mapping (``snapshot.extensions``); None means no extensions.
            key: The extension's key.
            ext_type: The type to build.

        Returns:
            The extension, or None when ``key`` holds nothing.

        Raises:
            TypeError: ``data`` is neither a mapping nor None, or ``ext_type`` is
                not callable (checked whether or not ``key`` holds data).
        """
        if not callable(ext_type):
            raise TypeError(
                f"ExtensionHelper.get: ext_type must be a class; got {type(ext_type).__name__}"
            )
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise TypeError(
                f"data must be a mapping of extension data or None, got {type(data).__name__}"
            )
        ext_data = data.get(key)
        if ext_data is None:
            return None
        if isinstance(ext_data, Mapping):
            ext_data = _thawed(ext_data)
            from_dict = getattr(ext_type, "from_dict", None)
            if from_dict is not None:
                return from_dict(ext_data)  # type: ignore[no-any-return]
            return ext_type(**ext_data)
        return ext_data  # type: ignore[no-any-return]


def create_skills_extension(
    active_skill_ids: list[str] | None = None,
    current_level: str | None = None,
    skill_progress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An example extension's data: ``active_skill_ids``, ``current_level``, ``skill_progress``."""
    return {
        "active_skill_ids": active_skill_ids or [],
        "current_level": current_level,
        "skill_progress": skill_progress or {},
    }
