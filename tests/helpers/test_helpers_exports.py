"""The ported helper modules export exactly the reference's names."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import stageflow_trio.helpers


@pytest.mark.parametrize(
    "name",
    [
        "stageflow.compression",
        "stageflow.helpers.guardrails",
        "stageflow.helpers.memory",
        "stageflow.helpers.providers",
        "stageflow.helpers.timestamps",
    ],
)
def test_all_matches_reference(reference: ModuleType, name: str) -> None:
    theirs = importlib.import_module(name)
    ours = importlib.import_module(name.replace("stageflow", "stageflow_trio", 1))
    assert sorted(ours.__all__) == sorted(theirs.__all__)
    for export in ours.__all__:
        value = getattr(ours, export)
        assert getattr(value, "__module__", ours.__name__) == ours.__name__


def test_helpers_reexports_the_ported_names(reference: ModuleType) -> None:
    ported = {
        "ContentFilter",
        "GuardrailConfig",
        "GuardrailResult",
        "GuardrailStage",
        "PIIDetector",
        "PolicyViolation",
        "InMemoryStore",
        "MemoryConfig",
        "MemoryEntry",
        "MemoryFetchStage",
        "MemoryStore",
        "MemoryWriteStage",
        "LLMResponse",
        "STTResponse",
        "TTSResponse",
        "detect_unix_precision",
        "normalize_to_utc",
        "parse_timestamp",
    }
    assert ported <= set(reference.helpers.__all__)
    assert ported <= set(stageflow_trio.helpers.__all__)
    for name in ported:
        assert getattr(stageflow_trio.helpers, name) is getattr(
            importlib.import_module(getattr(stageflow_trio.helpers, name).__module__), name
        )
