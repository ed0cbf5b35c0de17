"""Every module of stageflow 1.2.0 exists here, with every name its ``__all__`` can import;
every class those names include has 1.2.0's public attributes, and every function and
method takes 1.2.0's parameter names.

``tests/ref12_surface.json`` is 1.2.0's surface, recorded by
``tests/record_ref12_surface.py`` (1.2.0 is not installed where the tests run;
0.9.1 is, and ``tests/test_reference_surface.py`` walks it live).
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest

SURFACE = json.loads((Path(__file__).parent / "ref12_surface.json").read_text(encoding="utf-8"))
MODULES: dict[str, list[str] | None] = SURFACE["modules"]
MEMBERS: dict[str, list[str]] = SURFACE["members"]
SIGNATURES: dict[str, list[str]] = SURFACE["signatures"]


def _ours(reference_name: str) -> str:
    return "stageflow_trio" + reference_name.removeprefix("stageflow")


def _our_class(key: str) -> type:
    module_name, name = key.split(":")
    value = getattr(importlib.import_module(_ours(module_name)), name)
    assert isinstance(value, type), key
    return value


def test_the_golden_file_is_1_2_0s() -> None:
    # 1.2.0's additions: the curated API, the agent runtime, the payload helpers.
    assert {"stageflow.api", "stageflow.advanced", "stageflow.stages.payloads"} <= set(MODULES)
    assert "StageReturn" in (MODULES["stageflow.api"] or [])
    assert "get_stage" in MEMBERS["stageflow:LinearPipeline"]  # = Pipeline
    assert "create_mock_client" in (MODULES["stageflow.websearch"] or [])


@pytest.mark.parametrize("reference_name", sorted(MODULES))
def test_module_and_names_exist(reference_name: str) -> None:
    ours = importlib.import_module(_ours(reference_name))
    names = MODULES[reference_name] or []  # None: 1.2.0's own module fails to import
    missing = [name for name in names if not hasattr(ours, name)]
    assert missing == [], f"{ours.__name__} lacks {missing}"


@pytest.mark.parametrize("key", sorted(MEMBERS))
def test_classes_have_1_2_0s_public_attributes(key: str) -> None:
    ours = _our_class(key)
    missing = sorted(name for name in MEMBERS[key] if not hasattr(ours, name))
    assert missing == [], f"{ours.__qualname__} lacks {missing}"


@pytest.mark.parametrize("key", sorted(SIGNATURES))
def test_callables_take_1_2_0s_parameter_names(key: str) -> None:
    # Every name 1.2.0 lets a caller pass (by keyword) is a parameter here too.
    module_name, _, rest = key.partition(":")
    name, _, attribute = rest.partition(".")
    function = getattr(importlib.import_module(_ours(module_name)), name)
    if attribute:
        member = inspect.getattr_static(function, attribute)
        function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    missing = [parameter for parameter in SIGNATURES[key] if parameter not in parameters]
    assert missing == [], f"{key} lacks {missing}"
