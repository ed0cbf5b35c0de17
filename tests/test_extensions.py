"""stageflow_trio.extensions: the keyed extension registry and helper."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from stageflow_trio import extensions as extensions_module
from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.extensions import (
    ExtensionHelper,
    ExtensionRegistry,
    TypedExtension,
    create_skills_extension,
)
from stageflow_trio.testing import reset_globals


@dataclass
class SkillsExtension:
    active_skill_ids: list[str] = field(default_factory=list)
    current_level: str | None = None

    @property
    def key(self) -> str:
        return "skills"

    def to_dict(self) -> dict[str, Any]:
        return {"active_skill_ids": self.active_skill_ids, "current_level": self.current_level}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkillsExtension:
        return cls(data.get("active_skill_ids", []), data.get("current_level"))


@dataclass
class PlainExtension:
    level: int = 0


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.extensions
    assert sorted(extensions_module.__all__) == sorted(ref.__all__)


def test_registry_register_get_clear() -> None:
    assert ExtensionRegistry.get("skills") is None
    ExtensionRegistry.register("skills", SkillsExtension)
    assert ExtensionRegistry.get("skills") is SkillsExtension
    ExtensionRegistry.register("skills", PlainExtension)
    assert ExtensionRegistry.get("skills") is PlainExtension
    ExtensionRegistry.clear()
    assert ExtensionRegistry.get("skills") is None


def test_registry_is_reset_with_the_other_globals() -> None:
    ExtensionRegistry.register("skills", SkillsExtension)
    reset_globals()
    assert ExtensionRegistry.get("skills") is None


def test_helper_uses_from_dict_when_the_type_has_one() -> None:
    data = {"skills": {"active_skill_ids": ["python"], "current_level": "b2"}}
    assert ExtensionHelper.get(data, "skills", SkillsExtension) == SkillsExtension(["python"], "b2")


def test_helper_calls_the_type_with_the_items_otherwise() -> None:
    assert ExtensionHelper.get({"plain": {"level": 3}}, "plain", PlainExtension) == PlainExtension(
        3
    )


def test_helper_returns_none_for_absent_keys_or_no_extensions() -> None:
    assert ExtensionHelper.get({}, "skills", SkillsExtension) is None
    assert ExtensionHelper.get({"skills": None}, "skills", SkillsExtension) is None
    assert ExtensionHelper.get(None, "skills", SkillsExtension) is None


def test_helper_returns_non_mapping_data_as_it_is() -> None:
    existing = SkillsExtension(["rust"])
    assert ExtensionHelper.get({"skills": existing}, "skills", SkillsExtension) is existing


def test_helper_reads_a_snapshots_frozen_extensions_as_plain_data() -> None:
    snapshot = ContextSnapshot(
        extensions={"skills": create_skills_extension(["python"], "b2", {"python": {"xp": 3}})}
    )
    skills = ExtensionHelper.get(snapshot.extensions, "skills", SkillsExtension)
    assert skills == SkillsExtension(["python"], "b2")
    assert skills is not None
    assert type(skills.active_skill_ids) is list
    skills.active_skill_ids.append("go")  # a mutable copy: the snapshot is untouched
    assert snapshot.extensions is not None
    assert snapshot.extensions["skills"]["active_skill_ids"] == ["python"]


def test_helper_matches_stageflow_on_plain_data(reference: ModuleType) -> None:
    ref = reference.extensions
    data = {"skills": {"active_skill_ids": ["a"]}, "plain": {"level": 1}, "raw": 5}
    for key, ext_type in [("skills", SkillsExtension), ("plain", PlainExtension), ("raw", int)]:
        mine = ExtensionHelper.get(data, key, ext_type)
        assert mine == ref.ExtensionHelper.get(data, key, ext_type)


def test_helper_rejects_a_non_mapping() -> None:
    with pytest.raises(
        TypeError, match=r"^data must be a mapping of extension data or None, got list$"
    ):
        ExtensionHelper.get([], "skills", SkillsExtension)  # type: ignore[arg-type]


def test_create_skills_extension_matches_stageflow(reference: ModuleType) -> None:
    ref = reference.extensions
    assert create_skills_extension() == {
        "active_skill_ids": [],
        "current_level": None,
        "skill_progress": {},
    }
    args = (["python"], "b1", {"python": 0.5})
    assert create_skills_extension(*args) == ref.create_skills_extension(*args)


def test_typed_extension_describes_key_and_to_dict() -> None:
    extension: TypedExtension[SkillsExtension] = SkillsExtension(["a"])
    assert extension.key == "skills"
    assert extension.to_dict() == {"active_skill_ids": ["a"], "current_level": None}
