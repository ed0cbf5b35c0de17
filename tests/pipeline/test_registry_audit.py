"""Audit regression: a subclass's lazy ``_register_all`` runs once, as documented."""

from __future__ import annotations

import pytest

from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.registry import PipelineRegistry


def test_overridden_register_all_runs_once() -> None:
    calls: list[int] = []

    class Registry(PipelineRegistry):
        def _register_all(self) -> None:  # does not set _registered, as users write it
            calls.append(1)
            self.register("chat", Pipeline())

    registry = Registry()
    first = registry.get("chat")
    assert registry.list() == ["chat"]
    assert "chat" in registry
    assert registry.get("chat") is first
    assert calls == [1]


def test_lookup_inside_register_all_does_not_recurse() -> None:
    class Registry(PipelineRegistry):
        def _register_all(self) -> None:
            self.register("a", Pipeline())
            assert self.list() == ["a"]

    assert Registry().list() == ["a"]


def test_failed_registration_is_retried() -> None:
    attempts: list[int] = []

    class Registry(PipelineRegistry):
        def _register_all(self) -> None:
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError("backend not ready")
            self.register("a", Pipeline())

    registry = Registry()
    with pytest.raises(RuntimeError, match=r"^backend not ready$"):
        registry.list()
    assert registry.list() == ["a"]
    assert attempts == [1, 1]
