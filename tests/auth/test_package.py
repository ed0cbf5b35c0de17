"""The auth package's surface: the same modules, ``__all__`` and signatures as the reference."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any

import attrs
import pytest

MODULES = ["", ".context", ".errors", ".events", ".interceptors", ".tenant"]


def _pair(suffix: str) -> tuple[ModuleType, ModuleType]:
    return (
        importlib.import_module(f"stageflow_trio.auth{suffix}"),
        importlib.import_module(f"stageflow.auth{suffix}"),
    )


@pytest.mark.usefixtures("ref_auth")
@pytest.mark.parametrize("suffix", MODULES)
def test_all_matches_the_reference(suffix: str) -> None:
    ours, theirs = _pair(suffix)
    assert sorted(ours.__all__) == sorted(theirs.__all__)
    for name in ours.__all__:
        value = getattr(ours, name)
        home = getattr(value, "__module__", None)
        if inspect.isclass(value) or inspect.isfunction(value):
            # Defined where the reference defines it, at the public path.
            assert home == getattr(theirs, name).__module__.replace(
                "stageflow", "stageflow_trio", 1
            )


# The hooks keep the base class's parameter names (the reference prefixes unused ones with
# "_"); both are called positionally.
HOOKS = {"before", "after"}


def _default(value: Any) -> Any:
    # A field with a default factory shows as dataclasses' "<factory>" or attrs' NOTHING;
    # the values themselves are compared by the field tests (test_context, test_events).
    if value is attrs.NOTHING or repr(value) == "<factory>":
        return "<factory>"
    return value


def _signature(value: Any) -> list[tuple[str, Any, Any]]:
    """Parameter names, kinds and defaults (annotations differ: ours are resolved types)."""
    parameters = inspect.signature(value).parameters.values()
    return [(p.name, p.kind, _default(p.default)) for p in parameters]


def _callables(module: ModuleType) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isfunction(value):
            found.append((name, value))
        elif inspect.isclass(value):
            found.append((name, value))
            for attribute, member in vars(value).items():
                if inspect.isfunction(member) and not attribute.startswith("_"):
                    found.append((f"{name}.{attribute}", member))
    return found


@pytest.mark.usefixtures("ref_auth")
@pytest.mark.parametrize("suffix", MODULES[1:])
def test_signatures_match_the_reference(suffix: str) -> None:
    ours, theirs = _pair(suffix)
    their_callables = dict(_callables(theirs))
    compared = 0
    for name, value in _callables(ours):
        if name not in their_callables:
            continue
        if inspect.isclass(value) and issubclass(value, BaseException):
            value, reference = value.__init__, their_callables[name].__init__
        else:
            reference = their_callables[name]
        if name == "JwtValidator" or name.rpartition(".")[2] in HOOKS:
            continue  # a Protocol's signature is its generated __init__; hooks: see HOOKS
        ours_signature, their_signature = _signature(value), _signature(reference)
        # TenantIsolationValidator's private fields are not constructor arguments here.
        their_signature = [p for p in their_signature if not p[0].startswith("_")]
        if "<factory>" in {d for _, _, d in ours_signature + their_signature}:
            ours_signature = [(n, k, None) for n, k, _ in ours_signature]
            their_signature = [(n, k, None) for n, k, _ in their_signature]
        assert ours_signature == their_signature, name
        compared += 1
    # Every public method of the reference exists here too.
    assert {name for name, _ in _callables(ours)} >= set(their_callables)
    assert compared >= 3
