"""PipelineRegistry and the global pipeline_registry."""

from __future__ import annotations

import pytest

import stageflow_trio.pipeline as pipeline_package
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.pipeline.registry import PipelineRegistry, pipeline_registry
from stageflow_trio.testing import reset_globals


def test_register_get_list_contains() -> None:
    registry = PipelineRegistry()
    first, second = Pipeline("first"), Pipeline("second")
    registry.register("a", first)
    registry.register("b", second)
    assert registry.get("a") is first
    assert registry.list() == ["a", "b"]
    assert "b" in registry
    assert "c" not in registry
    registry.register("a", second)
    assert registry.get("a") is second


def test_unknown_name_names_the_available_ones() -> None:
    registry = PipelineRegistry()
    registry.register("a", Pipeline())
    with pytest.raises(KeyError) as info:
        registry.get("zzz")
    assert info.value.args == ("Pipeline 'zzz' not found. Available: ['a']",)


def test_lazy_registration_runs_once_before_the_first_lookup() -> None:
    calls: list[str] = []

    class Builtins(PipelineRegistry):
        def _register_all(self) -> None:
            calls.append("register_all")
            self.register("built_in", Pipeline("built_in"))
            super()._register_all()

    registry = Builtins()
    assert calls == []
    assert "built_in" in registry
    assert registry.list() == ["built_in"]
    assert registry.get("built_in").name == "built_in"
    assert calls == ["register_all"]


def test_register_rejects_bad_arguments() -> None:
    registry = PipelineRegistry()
    with pytest.raises(TypeError, match=r"^name must be a str, got int$"):
        registry.register(1, Pipeline())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^pipeline must be a Pipeline, got dict$"):
        registry.register("a", {})  # type: ignore[arg-type]


def test_the_global_registry_is_exported_and_reset() -> None:
    assert pipeline_package.pipeline_registry is pipeline_registry
    assert pipeline_package.PipelineRegistry is PipelineRegistry
    pipeline_registry.register("x", Pipeline())
    assert pipeline_registry.list() == ["x"]
    reset_globals()
    assert pipeline_registry.list() == []


def test_listing_lookup_and_lazy_registration_match_the_reference() -> None:
    """Same registrations, same listing, same KeyError text, same one-time _register_all."""
    from tests.fakes import import_reference

    reference = import_reference()
    from stageflow.pipeline.registry import PipelineRegistry as ReferenceRegistry

    calls: list[str] = []

    class Ours(PipelineRegistry):
        def _register_all(self) -> None:
            calls.append("ours")
            super()._register_all()
            self.register("builtin", Pipeline())

    class Theirs(ReferenceRegistry):
        def _register_all(self) -> None:
            calls.append("theirs")
            super()._register_all()
            self.register("builtin", reference.Pipeline())

    ours, theirs = Ours(), Theirs()
    for name in ("b", "a", "b"):
        ours.register(name, Pipeline())
        theirs.register(name, reference.Pipeline())
    assert ours.list() == theirs.list() == ["b", "a", "builtin"]
    assert ("builtin" in ours, "zzz" in ours) == ("builtin" in theirs, "zzz" in theirs)
    with pytest.raises(KeyError) as mine:
        ours.get("zzz")
    with pytest.raises(KeyError) as ref:
        theirs.get("zzz")
    assert str(mine.value) == str(ref.value)
    assert calls == ["ours", "theirs"]
