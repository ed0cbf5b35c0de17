"""Top-level names: the ones the reference lists but cannot import, and stageflow 1.2's additions."""

from __future__ import annotations

from types import ModuleType

import stageflow_trio
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.testing import create_test_pipeline_context, create_test_stage_context


def test_aliases_are_defined_as_stageflow_1_2_defines_them() -> None:
    assert stageflow_trio.LinearPipeline is Pipeline
    assert stageflow_trio.create_test_context is create_test_stage_context
    assert stageflow_trio.create_test_pipeline_context is create_test_pipeline_context


def test_star_import_binds_the_names_the_reference_lists_but_cannot_import(
    reference: ModuleType,
) -> None:
    unimportable = {name for name in reference.__all__ if not hasattr(reference, name)}
    assert unimportable == {
        "LinearPipeline",
        "WideEventEmitter",
        "create_test_context",
        "create_test_pipeline_context",
        "emit_pipeline_wide_event",
        "emit_stage_wide_event",
    }
    namespace: dict[str, object] = {}
    exec("from stageflow_trio import *", namespace)  # every name in __all__ resolves
    assert unimportable <= set(namespace)
    assert set(stageflow_trio.__all__) <= set(namespace)


def test_stage_level_additions_are_at_the_top_level() -> None:
    added = {
        "StageReturn",
        "StageCancellationRequested",
        "StagePayloadResult",
        "cancel_output",
        "fail_output",
        "ok_output",
        "payload_from_inputs",
        "payload_from_results",
        "summary_from_output",
    }
    assert added <= set(stageflow_trio.__all__)
    for name in added:
        assert getattr(stageflow_trio, name) is not None


def test_1_2_top_level_additions_are_the_home_modules_objects() -> None:
    from stageflow_trio.events.sink import BackpressureAwareEventSink
    from stageflow_trio.pipeline.builder import PipelineBuilder
    from stageflow_trio.pipeline.dag import UnifiedStageExecutionError, UnifiedStageGraph

    added = {
        "BackpressureAwareEventSink": BackpressureAwareEventSink,
        "PipelineBuilder": PipelineBuilder,
        "UnifiedStageExecutionError": UnifiedStageExecutionError,
        "UnifiedStageGraph": UnifiedStageGraph,
    }
    assert set(added) <= set(stageflow_trio.__all__)
    for name, value in added.items():
        assert getattr(stageflow_trio, name) is value
