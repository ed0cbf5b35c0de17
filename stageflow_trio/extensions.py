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

from ._extensions import ExtensionHelper as ExtensionHelper
from ._extensions import ExtensionRegistry as ExtensionRegistry
from ._extensions import TypedExtension as TypedExtension
from ._extensions import create_skills_extension as create_skills_extension

__all__ = [
    "ExtensionHelper",
    "ExtensionRegistry",
    "TypedExtension",
    "create_skills_extension",
]
