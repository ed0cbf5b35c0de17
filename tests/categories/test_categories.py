"""Every test module of the reference's own suite has an analog here.

The reference (stageflow-core 0.9.1 sdist, ``tests/``) groups its tests in ten categories:
configuration, context, contract, execution, fault, framework, integration, pipeline,
property and unit (``benchmarks`` and ``websearch`` are left out: benchmarks/ covers the
first; the second's seven modules map to tests/websearch/, whose
``test_reference_suite_analogs.py`` lists which of our files covers each). ``ANALOGS``
maps each of its test modules to ours. A module whose subject is not ported yet would map
to a ``Pending`` with the reason and the parity.md section that records it (none is pending
now). A new analog is one more entry.
"""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CATEGORIES = (
    "configuration",
    "context",
    "contract",
    "execution",
    "fault",
    "framework",
    "integration",
    "pipeline",
    "property",
    "unit",
)


@attrs.frozen
class Pending:
    """A reference test module whose subject is not ported: why, and where parity.md says so."""

    reason: str
    parity_section: str


Analog = tuple[str, ...] | Pending

ANALOGS: dict[str, Analog] = {
    # configuration: Pipeline (the stage-class builder) and PipelineRegistry
    "configuration/test_pipeline.py": ("tests/pipeline/test_pipeline.py",),
    "configuration/test_registry.py": ("tests/pipeline/test_registry.py",),
    # context: the enrich helpers
    "context/test_enrich.py": ("tests/context/test_enrich.py",),
    # contract: what every stage and StageOutput must provide
    "contract/test_stage_contracts.py": (
        "tests/core/test_stage_output.py",
        "tests/core/test_stage_context.py",
        "tests/test_protocols.py",
    ),
    # execution: both graphs
    "execution/test_dag.py": (
        "tests/pipeline/test_dag_legacy.py",
        "tests/pipeline/test_dag_legacy_differential.py",
    ),
    "execution/test_unified_graph.py": (
        "tests/pipeline/test_dag_unified.py",
        "tests/pipeline/test_dag_differential.py",
        "tests/_engine/test_scheduler.py",
    ),
    # fault: injected timeouts, errors, slow stages and a circuit breaker
    "fault/test_fault_injection.py": (
        "tests/testing/test_faults.py",
        "tests/pipeline/test_dag_reliability.py",
        "tests/pipeline/test_interceptors_builtin.py",
        "tests/events/test_backpressure_sink.py",
    ),
    # framework: contexts and interceptors
    "framework/test_context.py": (
        "tests/stages/test_context.py",
        "tests/core/test_stage_context.py",
    ),
    "framework/test_interceptors.py": (
        "tests/pipeline/test_interceptor_chain.py",
        "tests/pipeline/test_interceptors_builtin.py",
    ),
    # integration: whole runs, inputs across stages, subpipelines
    "integration/test_pipeline_integration.py": (
        "tests/pipeline/test_pipeline.py",
        "tests/differential/test_scenarios.py",
    ),
    "integration/test_stage_inputs_integration.py": (
        "tests/stages/test_inputs.py",
        "tests/pipeline/test_dag_unified.py",
    ),
    "integration/test_subpipelines.py": (
        "tests/pipeline/test_subpipeline.py",
        "tests/pipeline/test_subpipeline_differential.py",
    ),
    "test_v090_integration.py": (
        "tests/helpers/test_run_utils_runner.py",
        "tests/differential/test_scenarios.py",
    ),
    # pipeline: builder helpers, failure tolerance, the retry interceptor
    "pipeline/test_builder_helpers.py": ("tests/pipeline/test_builder_helpers.py",),
    "pipeline/test_failure_tolerance.py": ("tests/pipeline/test_failure_tolerance.py",),
    "pipeline/test_retry_interceptor.py": ("tests/pipeline/test_retry.py",),
    # property: Hypothesis over the bag, the DAG and event sequences
    "property/test_context_bag_properties.py": ("tests/categories/test_property_context_bag.py",),
    "property/test_dag_properties.py": (
        "tests/pipeline/test_builder.py",
        "tests/pipeline/test_validation.py",
    ),
    "property/test_event_properties.py": (
        "tests/golden/test_golden_events.py",
        "tests/events/test_sink.py",
    ),
    # unit
    "unit/auth/test_context.py": ("tests/auth/test_context.py",),
    "unit/auth/test_errors.py": ("tests/auth/test_errors.py",),
    "unit/auth/test_events.py": ("tests/auth/test_events.py",),
    "unit/auth/test_interceptors.py": ("tests/auth/test_interceptors.py",),
    "unit/auth/test_tenant.py": (
        "tests/auth/test_tenant.py",
        "tests/auth/test_tenant_isolation.py",
    ),
    "unit/context/test_bag.py": ("tests/context/test_bag.py",),
    "unit/events/test_backpressure_sink.py": (
        "tests/events/test_backpressure_sink.py",
        "tests/events/test_backpressure_sink_cancellation.py",
    ),
    "unit/observability/test_tracing.py": ("tests/observability/test_tracing.py",),
    "unit/pipeline/test_builder.py": ("tests/pipeline/test_builder.py",),
    "unit/pipeline/test_cancellation.py": (
        "tests/pipeline/test_cancellation_token.py",
        "tests/pipeline/test_cleanup_registry.py",
        "tests/pipeline/test_structured_task_group.py",
        "tests/pipeline/test_cleanup_helpers.py",
    ),
    "unit/pipeline/test_hardening_interceptors.py": (
        "tests/pipeline/test_interceptors_hardening.py",
    ),
    "unit/pipeline/test_idempotency_interceptor.py": ("tests/pipeline/test_idempotency.py",),
    "unit/pipeline/test_inmemory_idempotency_store.py": ("tests/pipeline/test_idempotency.py",),
    "unit/pipeline/test_spec.py": ("tests/pipeline/test_spec.py",),
    "unit/test_advanced_tool_executor.py": (
        "tests/tools/test_executor_v2.py",
        "tests/tools/test_executor_v2_differential.py",
    ),
    "unit/test_child_tracker_metrics.py": ("tests/pipeline/test_subpipeline.py",),
    "unit/test_cli_lint.py": ("tests/cli/test_lint.py",),
    "unit/test_context_fork.py": ("tests/stages/test_context.py",),
    "unit/test_contracts_errors.py": ("tests/contracts/test_errors.py",),
    "unit/test_contracts_registry.py": ("tests/contracts/test_registry.py",),
    "unit/test_contracts_suggestions.py": ("tests/contracts/test_suggestions.py",),
    "unit/test_contracts_typed_output.py": ("tests/contracts/test_typed_output.py",),
    "unit/test_core_stages.py": (
        "tests/core/test_stage_output.py",
        "tests/core/test_stage_context.py",
    ),
    "unit/test_events.py": ("tests/events/test_sink.py",),
    "unit/test_execution_context.py": ("tests/test_protocols.py", "tests/tools/test_adapters.py"),
    "unit/test_frozen.py": ("tests/utils/test_frozen.py", "tests/test_frozen.py"),
    "unit/test_hardening_helpers.py": (
        "tests/compression/test_compression.py",
        "tests/helpers/test_memory_tracker.py",
        "tests/helpers/test_uuid_utils.py",
    ),
    "unit/test_helpers_analytics.py": (
        "tests/helpers/test_analytics_event.py",
        "tests/helpers/test_analytics_exporters.py",
        "tests/helpers/test_analytics_buffered.py",
        "tests/helpers/test_analytics_sink.py",
    ),
    "unit/test_helpers_guardrails.py": (
        "tests/helpers/test_guardrails.py",
        "tests/helpers/test_guardrails_stage.py",
    ),
    "unit/test_helpers_memory.py": ("tests/helpers/test_memory.py",),
    "unit/test_helpers_mocks.py": (
        "tests/helpers/test_mocks.py",
        "tests/helpers/test_mocks_streams.py",
    ),
    "unit/test_helpers_providers.py": ("tests/helpers/test_providers.py",),
    "unit/test_helpers_run_utils.py": (
        "tests/helpers/test_run_utils.py",
        "tests/helpers/test_run_utils_runner.py",
    ),
    "unit/test_helpers_runtime.py": (
        "tests/helpers/test_memory_tracker.py",
        "tests/helpers/test_uuid_utils.py",
    ),
    "unit/test_helpers_runtime_integrated.py": (
        "tests/helpers/test_run_utils_runner.py",
        "tests/helpers/test_run_utils_differential.py",
    ),
    "unit/test_helpers_streaming.py": (
        "tests/helpers/test_streaming_audio.py",
        "tests/helpers/test_streaming_buffer.py",
        "tests/helpers/test_streaming_monitor.py",
        "tests/helpers/test_streaming_queue.py",
        "tests/helpers/test_streaming_events.py",
    ),
    "unit/test_helpers_timestamps.py": ("tests/helpers/test_timestamps.py",),
    "unit/test_ports_inputs.py": ("tests/stages/test_ports.py", "tests/stages/test_inputs.py"),
    "unit/test_snapshot.py": (
        "tests/context/test_context_snapshot.py",
        "tests/test_snapshot_validation.py",
    ),
    "unit/test_subpipeline.py": (
        "tests/pipeline/test_subpipeline.py",
        "tests/pipeline/test_subpipeline_cancellation.py",
    ),
    "unit/test_tool_registry_parse.py": (
        "tests/tools/test_registry.py",
        "tests/tools/test_registry_differential.py",
    ),
    "unit/tools/test_approval.py": ("tests/tools/test_approval.py",),
    "unit/tools/test_definitions.py": ("tests/tools/test_definitions.py",),
    "unit/tools/test_diff.py": (
        "tests/tools/test_diff.py",
        "tests/tools/test_diff_differential.py",
    ),
    "unit/tools/test_errors.py": ("tests/tools/test_errors.py",),
    "unit/tools/test_registry.py": ("tests/tools/test_registry.py",),
    "unit/tools/test_spawn_subpipeline.py": ("tests/tools/test_executor.py",),
    "unit/tools/test_undo.py": ("tests/tools/test_undo.py",),
}


def category_of(reference_path: str) -> str:
    head = reference_path.split("/")[0]
    # The reference keeps one integration module at the top of tests/.
    return head if head in CATEGORIES else "integration"


def _defines_tests(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name.startswith(("test_", "Test"))
        for node in tree.body
    )


def test_every_category_has_a_ported_analog() -> None:
    covered = {category_of(ref) for ref, analog in ANALOGS.items() if isinstance(analog, tuple)}
    assert covered == set(CATEGORIES)


@pytest.mark.parametrize("reference_path", sorted(ANALOGS))
def test_analog_modules_exist_and_define_tests(reference_path: str) -> None:
    analog = ANALOGS[reference_path]
    if isinstance(analog, Pending):
        parity = (ROOT / "docs" / "parity.md").read_text(encoding="utf-8")
        assert f"## {analog.parity_section}" in parity
        return
    assert analog
    for path_text in analog:
        path = ROOT / path_text
        assert path.name.startswith("test_"), path_text
        assert path.is_file(), path_text
        assert _defines_tests(path), path_text
