"""Audit 24: the reference's own helper, auth, lint and benchmark tests, run on this port.

stageflow-core 0.9.1 ships these test files. Each was translated outside the project
(imports ``stageflow`` -> ``stageflow_trio``, ``@pytest.mark.asyncio`` -> trio mode,
``asyncio.sleep`` -> ``trio.sleep``, ``run_until_complete`` -> ``trio.run``,
``asyncio.gather`` -> a nursery; assertions unchanged) and run against this package:

- unit/test_helpers_streaming.py: 35 tests, 35 pass
- unit/test_helpers_mocks.py: 28 tests, 28 pass (its two latency tests read the wall
  clock, so they keep their 0.1 s and 0.05 s real sleeps)
- unit/test_helpers_guardrails.py: 26 tests, 26 pass
- unit/test_helpers_memory.py: 10 tests, 10 pass
- unit/test_helpers_run_utils.py: 19 tests, 19 pass (one reads the private
  ``PipelineRunner._capture_events``, which this port happens to keep)
- unit/test_helpers_analytics.py: 17 tests, 17 pass
- unit/test_helpers_providers.py: 30 tests, 30 pass
- unit/test_helpers_timestamps.py: 12 tests, 12 pass
- unit/test_helpers_runtime.py: 6 tests, 6 pass
- unit/test_helpers_runtime_integrated.py: 5 tests, 5 pass (they set the private
  ``_uuid_monitor`` / ``_memory_tracker`` of a runner and read ``_entries``)
- unit/test_hardening_helpers.py: 8 tests, 8 pass (the same private names)
- unit/test_cli_lint.py: 16 tests, 16 pass
- unit/auth/test_context.py 15, test_errors.py 17, test_events.py 8,
  test_interceptors.py 18, test_tenant.py 20: 78 tests, 78 pass
- benchmarks/test_context_bag_benchmarks.py 5, test_pipeline_benchmarks.py 8: 13 tests,
  13 pass, with a stand-in ``benchmark`` fixture that calls the function once
  (pytest-benchmark is not installed; the files assert no timings, only that the
  calls work and that 1000 bag writes land)

303 tests, all pass: nothing to fix and no divergence to document. To find what they
check and our suite did not, the helper (streaming, mocks, guardrails, memory, run_utils,
analytics, providers, timestamps, memory_tracker, uuid_utils), auth and lint modules were
mutated one change at a time on the lines those tests execute: 1391 operator, comparison,
boolean, number and ``if`` mutants, and 505 string constants outside messages (in all
of them but guardrails, timestamps, memory_tracker, uuid_utils and the audio code). The reference's tests catch 926; ``tests/helpers``,
``tests/auth``, ``tests/cli`` and the mutant suites catch all of those but three, all in
``run_simple_pipeline``'s defaults (``verbose``, ``colorize``, ``execution_mode``). The
tests below close those, and pin one behaviour the benchmarks check (concurrent writers
of a ``ContextBag``).
"""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest
import trio

from stageflow_trio.context.bag import ContextBag
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.helpers.run_utils import run_simple_pipeline
from stageflow_trio.pipeline import Pipeline


async def _echo(ctx: StageContext) -> StageOutput:
    return StageOutput.ok(text=ctx.snapshot.input_text, mode=ctx.snapshot.execution_mode)


def _echo_pipeline() -> Pipeline:
    return Pipeline().with_stage("echo", _echo, StageKind.TRANSFORM)


# --- test_helpers_run_utils.py: run_simple_pipeline's defaults -------------------------


async def test_run_simple_pipeline_prints_nothing_unless_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The convenience runner is for scripts and tests: quiet by default, unlike
    # PipelineRunner, whose verbose default is True.
    result = await run_simple_pipeline(_echo_pipeline(), "hi")
    assert result.success
    assert result.stages == {"echo": {"text": "hi", "mode": "practice"}}
    assert capsys.readouterr().out == ""


async def test_run_simple_pipeline_verbose_output_is_plain_text_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await run_simple_pipeline(_echo_pipeline(), "hi", verbose=True)
    out = capsys.readouterr().out
    assert "RUNNING PIPELINE: pipeline" in out
    assert "pipeline_completed" in out
    assert "\033[" not in out
    await run_simple_pipeline(_echo_pipeline(), "hi", verbose=True, colorize=True)
    assert "\033[" in capsys.readouterr().out


def test_run_simple_pipeline_defaults_are_the_references(reference: ModuleType) -> None:
    from stageflow.helpers.run_utils import run_simple_pipeline as theirs

    def defaults(function: object) -> dict[str, object]:
        return {
            name: parameter.default
            for name, parameter in inspect.signature(function).parameters.items()  # type: ignore[arg-type]
        }

    assert defaults(run_simple_pipeline) == defaults(theirs)
    assert defaults(run_simple_pipeline)["verbose"] is False
    assert defaults(run_simple_pipeline)["colorize"] is False


# --- benchmarks/test_context_bag_benchmarks.py: concurrent writers --------------------


async def test_concurrent_writers_of_disjoint_keys_all_land() -> None:
    # Writes are checkpoints (per the checkpoint budget), so ten writers interleave;
    # none loses a key to another.
    bag = ContextBag()

    async def writer(n: int) -> None:
        for i in range(100):
            await bag.write(f"key_{n}_{i}", i, f"stage_{n}")

    async with trio.open_nursery() as nursery:
        for n in range(10):
            nursery.start_soon(writer, n)

    assert len(bag.keys()) == 1000
    assert len({key.split("_")[1] for key in bag.keys()[:100]}) > 1
    assert all(bag.get_writer(f"key_{n}_{i}") == f"stage_{n}" for n in range(10) for i in (0, 99))
    assert bag.read("key_7_42") == 42
