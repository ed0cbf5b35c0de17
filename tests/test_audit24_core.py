"""Audit 24 (core): the reference's own tests for contexts, stages, ports, contracts and pipelines.

stageflow-core 0.9.1 ships its test suite. The files below were translated to trio outside
this repository (imports renamed, ``asyncio.gather`` to a nursery, ``asyncio.run`` to
``trio.run``, ``asyncio.sleep`` to ``trio.sleep`` under ``autojump_clock``; assertions
unchanged) and run against this port. Outcome per reference file (path in the sdist's
tests/):

- unit/test_core_stages.py: 71 tests, all pass
- unit/test_snapshot.py: 71 tests, all pass
- unit/test_execution_context.py: 25 tests, all pass
- unit/test_context_fork.py: 13 tests, all pass
- framework/test_context.py: 42 tests, all pass
- context/test_enrich.py: 31 tests: 30 pass; 1 fails: ``test_event_emission`` expects
  ``try_emit("context.truncation", data)`` called positionally (parity row
  "`TruncationTracker` events (defect)": the reference's call fails on every keyword-only sink)
- unit/context/test_bag.py: 14 tests, all pass
- unit/test_frozen.py: 23 tests: 22 pass; 1 fails: ``test_slicing`` expects a tuple from
  ``FrozenList[1:3]`` (parity row "FrozenDict / FrozenList": slices give plain containers)
- property/test_context_bag_properties.py, test_dag_properties.py, test_event_properties.py:
  7 + 6 + 5 tests, all pass (the DAG and event ones check only their own strategies)
- integration/test_stage_inputs_integration.py: 7 tests, all pass
- unit/test_ports_inputs.py: 29 tests, all pass
- contract/test_stage_contracts.py: 11 tests, all pass (they check the suite's own mocks)
- unit/test_contracts_errors.py: 3 tests, all pass
- unit/test_contracts_registry.py: 8 tests, all pass
- unit/test_contracts_suggestions.py: 4 tests: 2 pass; 2 fail: ``fix_steps`` compared with a
  list (parity row "Container types" of the contract suggestions: a tuple)
- unit/test_contracts_typed_output.py: 8 tests, all pass
- configuration/test_pipeline.py: 45 tests: 42 pass; 3 fail:
  ``test_build_accepts_guard_retry_strategy`` reads the graph's private
  ``_guard_retry_strategy`` (a reference private name; tests/pipeline/test_dag_guard_retry.py
  runs the strategy ``build`` passes), ``test_circular_dependency_not_prevented_at_build_time``
  (parity row "Missing dependency or cycle in `UnifiedStageGraph(...)`"),
  ``test_empty_stage_name_raises``, which expects ``with_stage("")`` to be accepted (parity row
  "Spec classes": names must be non-blank)
- configuration/test_registry.py: 28 tests: 27 pass; 1 failed, fixed:
  ``test_custom_registry_with_pipelines`` (below)

Every other behaviour these files check was found asserted in our own suite, so this file
holds only the test of the fix.
"""

from __future__ import annotations

import pytest

from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.registry import PipelineRegistry


class _GuardedRegistry(PipelineRegistry):
    """A lazy registry written the way the reference's own hook is: guard, set, register."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _register_all(self) -> None:
        if self._registered:
            return
        self._registered = True
        self.calls += 1
        self.register("chat", Pipeline("chat"))
        self.register("voice", Pipeline("voice"))


@pytest.mark.parametrize("first_lookup", ["list", "get", "contains"])
def test_register_all_with_the_reference_guard_registers_its_pipelines(first_lookup: str) -> None:
    # The lookup used to set _registered before calling the hook, so an override that
    # starts with the reference's guard returned at once and registered nothing.
    registry = _GuardedRegistry()
    if first_lookup == "list":
        assert registry.list() == ["chat", "voice"]
    elif first_lookup == "get":
        assert registry.get("voice").name == "voice"
    else:
        assert "chat" in registry
    assert registry.list() == ["chat", "voice"]
    assert registry.calls == 1


def test_a_guarded_register_all_that_fails_after_setting_the_flag_is_retried() -> None:
    attempts: list[int] = []

    class Flaky(PipelineRegistry):
        def _register_all(self) -> None:
            if self._registered:
                return
            self._registered = True
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError("backend not ready")
            self.register("a", Pipeline())

    registry = Flaky()
    with pytest.raises(RuntimeError, match=r"^backend not ready$"):
        registry.list()
    assert registry.list() == ["a"]
    assert attempts == [1, 1]


def test_a_lookup_inside_a_guarded_register_all_sees_what_it_registered_so_far() -> None:
    seen: list[list[str]] = []

    class Nested(PipelineRegistry):
        def _register_all(self) -> None:
            if self._registered:
                return
            self.register("a", Pipeline())
            seen.append(self.list())
            self._registered = True

    registry = Nested()
    assert registry.list() == ["a"]
    assert seen == [["a"]]
