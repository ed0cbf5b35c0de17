"""The ported helper modules export exactly the reference's names."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
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


def test_helpers_all_is_1_2_0s(reference: ModuleType) -> None:
    # 1.2.0 keeps 0.9.1's names and adds some (tests/ref12_surface.json records them).
    surface = json.loads((Path(__file__).parents[1] / "ref12_surface.json").read_text("utf-8"))
    assert set(reference.helpers.__all__) < set(surface["modules"]["stageflow.helpers"])
    assert sorted(stageflow_trio.helpers.__all__) == surface["modules"]["stageflow.helpers"]
    for name in stageflow_trio.helpers.__all__:
        value = getattr(stageflow_trio.helpers, name)
        if name == "UuidEventListener":  # a Callable alias, which has no module of its own
            assert value is stageflow_trio.helpers.uuid_utils.UuidEventListener
            continue
        home = importlib.import_module(value.__module__)
        assert getattr(home, name) is value, name
