"""Bad input across the public API fails at the call, naming the parameter.

One row per (callable, bad argument): the exact exception type and the whole
message. Each call runs under ``trio.fail_after`` on the virtual clock, so an
argument that made a run hang fails its row instead of the suite; ``run()``
coroutines are awaited (their checks run when awaited, before any stage).
"""

from __future__ import annotations

import inspect
import math
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio

from stageflow_trio import (
    LoggingEventSink,
    Pipeline,
    StageContext,
    StageGraph,
    StageKind,
    StageOutput,
    StageSpec,
    SubpipelineSpawner,
    UnifiedStageSpec,
)
from stageflow_trio.extensions import ExtensionHelper, ExtensionRegistry
from stageflow_trio.helpers import (
    AudioChunk,
    BackpressureMonitor,
    BufferedExporter,
    ChunkQueue,
    ConsoleExporter,
    JSONFileExporter,
    StreamConfig,
    StreamingBuffer,
)
from stageflow_trio.observability.wide_events import WideEventEmitter
from stageflow_trio.pipeline import (
    GuardRetryPolicy,
    GuardRetryStrategy,
    PipelineBuilder,
    PipelineSpec,
    UnifiedStageGraph,
    run_with_interceptors,
)
from stageflow_trio.pipeline.cancellation import CancellationToken, CleanupRegistry
from stageflow_trio.pipeline.dag import UnifiedStageSpec as GraphSpec
from stageflow_trio.pipeline.pipeline import EmptyPipelineError
from stageflow_trio.pipeline.spec import (
    PipelineConfigError,
    PipelineValidationError,
    StageDefinitionError,
    StageDefinitionTypeError,
)
from stageflow_trio.pipeline.subpipeline import ChildRunTracker
from stageflow_trio.stages.ports import AudioPorts, CorePorts, LLMPorts
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context, create_test_stage_context
from tests.fakes import NoopStage


async def ok(ctx: object) -> StageOutput:
    return StageOutput.ok()


async def legacy_ok() -> StageResult:
    raise AssertionError("the chain must refuse its arguments before calling the stage")


def unified() -> UnifiedStageGraph:
    return UnifiedStageGraph([GraphSpec(name="a", runner=ok)])


def legacy() -> StageGraph:
    return StageGraph([StageSpec(name="a", runner=ok)])


def spec(**kwargs: Any) -> list[GraphSpec]:
    return [GraphSpec(name="a", runner=ok, **kwargs)]


Row = tuple[str, Callable[[], object], type[BaseException], str]

ROWS: list[Row] = [
    (
        "unified-specs-none",
        lambda: UnifiedStageGraph(None),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: specs must be an iterable of stage specs; got NoneType$",
    ),
    (
        "unified-specs-int",
        lambda: UnifiedStageGraph(5),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: specs must be an iterable of stage specs; got int$",
    ),
    (
        "unified-specs-str",
        lambda: UnifiedStageGraph("ab"),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: specs must be an iterable of stage specs; got str$",
    ),
    (
        "unified-specs-dict",
        lambda: UnifiedStageGraph({"a": spec()[0]}),  # type: ignore[dict-item]
        TypeError,
        r"^UnifiedStageGraph: specs must be an iterable of stage specs; got dict$",
    ),
    (
        "unified-specs-lone-spec",
        lambda: UnifiedStageGraph(spec()[0]),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: specs must be an iterable of stage specs; got UnifiedStageSpec$",
    ),
    (
        "unified-specs-int-item",
        lambda: UnifiedStageGraph([5]),  # type: ignore[list-item]
        TypeError,
        r"^UnifiedStageGraph: specs\[0\] must be a UnifiedStageSpec; got int$",
    ),
    (
        "unified-specs-pipeline-spec",
        lambda: UnifiedStageGraph([UnifiedStageSpec("a", NoopStage, StageKind.WORK)]),  # type: ignore[arg-type, list-item]
        TypeError,
        r"^UnifiedStageGraph: specs\[0\] must be a stageflow_trio\.pipeline\.dag\.UnifiedStageSpec; got stageflow_trio\.pipeline\.pipeline\.UnifiedStageSpec \(a Pipeline stage: build the graph with Pipeline\.build\(\)\)$",
    ),
    (
        "unified-specs-empty",
        lambda: UnifiedStageGraph([]),
        ValueError,
        r"^UnifiedStageGraph requires at least one UnifiedStageSpec$",
    ),
    (
        "unified-cleanup-str",
        lambda: UnifiedStageGraph(spec(), cleanup_timeout="x"),  # type: ignore[arg-type]
        TypeError,
        r"^cleanup_timeout must be a number of seconds \(int or float\), got str$",
    ),
    (
        "unified-cleanup-none",
        lambda: UnifiedStageGraph(spec(), cleanup_timeout=None),  # type: ignore[arg-type]
        TypeError,
        r"^cleanup_timeout must be a number of seconds \(int or float\), got NoneType$",
    ),
    (
        "unified-cleanup-bool",
        lambda: UnifiedStageGraph(spec(), cleanup_timeout=True),
        TypeError,
        r"^cleanup_timeout must be a number of seconds \(int or float\), got bool$",
    ),
    (
        "unified-cleanup-nan",
        lambda: UnifiedStageGraph(spec(), cleanup_timeout=math.nan),
        ValueError,
        r"^cleanup_timeout must be a non-negative number of seconds, got nan$",
    ),
    (
        "unified-cleanup-negative",
        lambda: UnifiedStageGraph(spec(), cleanup_timeout=-1.0),
        ValueError,
        r"^cleanup_timeout must be a non-negative number of seconds, got \-1\.0$",
    ),
    (
        "unified-guard-int",
        lambda: UnifiedStageGraph(spec(), guard_retry_strategy=5),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: guard_retry_strategy must be a GuardRetryStrategy or None; got int$",
    ),
    (
        "unified-guard-dict",
        lambda: UnifiedStageGraph(spec(), guard_retry_strategy={}),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: guard_retry_strategy must be a GuardRetryStrategy or None; got dict$",
    ),
    (
        "unified-interceptors-int",
        lambda: UnifiedStageGraph(spec(), interceptors=5),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: interceptors must be a list of BaseInterceptor instances or None; got int$",
    ),
    (
        "unified-interceptors-str",
        lambda: UnifiedStageGraph(spec(), interceptors="x"),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: interceptors must be a list of BaseInterceptor instances or None; got str$",
    ),
    (
        "unified-interceptors-object",
        lambda: UnifiedStageGraph(spec(), interceptors=[object()]),  # type: ignore[list-item]
        TypeError,
        r"^UnifiedStageGraph: interceptors\[0\] must be a BaseInterceptor \(or have name, priority, before\(\) and after\(\)\); got object$",
    ),
    (
        "unified-interceptors-none-item",
        lambda: UnifiedStageGraph(spec(), interceptors=[None]),  # type: ignore[list-item]
        TypeError,
        r"^UnifiedStageGraph: interceptors\[0\] must be a BaseInterceptor \(or have name, priority, before\(\) and after\(\)\); got NoneType$",
    ),
    (
        "unified-emitter-int",
        lambda: UnifiedStageGraph(spec(), wide_event_emitter=5),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: wide_event_emitter must be a WideEventEmitter \(or have emit_stage_event\(\) and emit_pipeline_event\(\)\) or None; got int$",
    ),
    (
        "unified-emitter-sink",
        lambda: UnifiedStageGraph(spec(), wide_event_emitter=LoggingEventSink()),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: wide_event_emitter must be a WideEventEmitter \(or have emit_stage_event\(\) and emit_pipeline_event\(\)\) or None; got LoggingEventSink$",
    ),
    (
        "unified-emit-stage-str",
        lambda: UnifiedStageGraph(spec(), emit_stage_wide_events="yes"),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: emit_stage_wide_events must be a bool; got str$",
    ),
    (
        "unified-emit-pipeline-none",
        lambda: UnifiedStageGraph(spec(), emit_pipeline_wide_event=None),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph: emit_pipeline_wide_event must be a bool; got NoneType$",
    ),
    (
        "unified-run-str",
        lambda: unified().run("junk"),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph\.run: ctx must be a StageContext; got str$",
    ),
    (
        "unified-run-none",
        lambda: unified().run(None),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph\.run: ctx must be a StageContext; got NoneType$",
    ),
    (
        "unified-run-token-str",
        lambda: unified().run(create_test_stage_context(), cancel_token="x"),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph\.run: cancel_token must be a CancellationToken or None; got str$",
    ),
    (
        "unified-run-token-bool",
        lambda: unified().run(create_test_stage_context(), cancel_token=True),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph\.run: cancel_token must be a CancellationToken or None; got bool$",
    ),
    (
        "unified-run-token-scope",
        lambda: unified().run(create_test_stage_context(), cancel_token=trio.CancelScope()),  # type: ignore[arg-type]
        TypeError,
        r"^UnifiedStageGraph\.run: cancel_token must be a CancellationToken or None; got CancelScope$",
    ),
    (
        "legacy-specs-none",
        lambda: StageGraph(None),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph: specs must be an iterable of stage specs; got NoneType$",
    ),
    (
        "legacy-specs-int",
        lambda: StageGraph(5),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph: specs must be an iterable of stage specs; got int$",
    ),
    (
        "legacy-specs-int-item",
        lambda: StageGraph([5]),  # type: ignore[list-item]
        TypeError,
        r"^StageGraph: specs\[0\] must be a StageSpec; got int$",
    ),
    (
        "legacy-specs-unified-spec",
        lambda: StageGraph(spec()),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph: specs\[0\] must be a StageSpec; got UnifiedStageSpec"
        r" \(a UnifiedStageGraph stage, as in Pipeline\.build\(\)\.stage_specs: pass the"
        r" interceptors to Pipeline\.build\(interceptors=\.\.\.\) instead\)$",
    ),
    (
        "legacy-specs-empty",
        lambda: StageGraph([]),
        ValueError,
        r"^StageGraph requires at least one StageSpec$",
    ),
    (
        "legacy-interceptors-object",
        lambda: StageGraph([StageSpec(name="a", runner=ok)], [object()]),  # type: ignore[list-item]
        TypeError,
        r"^StageGraph: interceptors\[0\] must be a BaseInterceptor \(or have name, priority, before\(\) and after\(\)\); got object$",
    ),
    (
        "legacy-interceptors-int",
        lambda: StageGraph([StageSpec(name="a", runner=ok)], 5),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph: interceptors must be a list of BaseInterceptor instances or None; got int$",
    ),
    (
        "legacy-emitter-str",
        lambda: StageGraph([StageSpec(name="a", runner=ok)], wide_event_emitter="x"),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph: wide_event_emitter must be a WideEventEmitter \(or have emit_stage_event\(\) and emit_pipeline_event\(\)\) or None; got str$",
    ),
    (
        "legacy-emit-stage-int",
        lambda: StageGraph([StageSpec(name="a", runner=ok)], emit_stage_wide_events=1),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph: emit_stage_wide_events must be a bool; got int$",
    ),
    (
        "legacy-emit-pipeline-str",
        lambda: StageGraph([StageSpec(name="a", runner=ok)], emit_pipeline_wide_event="no"),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph: emit_pipeline_wide_event must be a bool; got str$",
    ),
    (
        "legacy-run-str",
        lambda: legacy().run("junk"),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph\.run: ctx must be a PipelineContext; got str$",
    ),
    (
        "legacy-run-none",
        lambda: legacy().run(None),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph\.run: ctx must be a PipelineContext; got NoneType$",
    ),
    (
        "legacy-run-stage-context",
        lambda: legacy().run(create_test_stage_context()),  # type: ignore[arg-type]
        TypeError,
        r"^StageGraph\.run: ctx must be a PipelineContext; got StageContext$",
    ),
    (
        "graph-spec-name-int",
        lambda: GraphSpec(name=5, runner=ok),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec name must be a str; got int$",
    ),
    (
        "graph-spec-name-empty",
        lambda: GraphSpec(name="", runner=ok),
        StageDefinitionError,
        r"^UnifiedStageSpec name cannot be empty$",
    ),
    (
        "graph-spec-name-blank",
        lambda: GraphSpec(name="  ", runner=ok),
        StageDefinitionError,
        r"^UnifiedStageSpec name cannot be whitespace\-only$",
    ),
    (
        "graph-spec-runner-int",
        lambda: GraphSpec(name="a", runner=5),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': runner must be an async callable \(StageContext\) \-> StageOutput; got int$",
    ),
    (
        "graph-spec-deps-str",
        lambda: GraphSpec(name="a", runner=ok, dependencies="b"),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': dependencies must be a tuple or list of stage names; got str 'b'$",
    ),
    (
        "graph-spec-deps-int-item",
        lambda: GraphSpec(name="a", runner=ok, dependencies=[1]),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': dependencies must contain only str stage names; got int 1$",
    ),
    (
        "graph-spec-deps-int",
        lambda: GraphSpec(name="a", runner=ok, dependencies=5),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': dependencies must be a tuple or list of stage names; got int 5$",
    ),
    (
        "graph-spec-kind-str",
        lambda: GraphSpec(name="a", runner=ok, kind="junk"),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': kind must be a StageKind \(one of transform, enrich, route, guard, work, agent\); got 'junk'$",
    ),
    (
        "graph-spec-conditional-str",
        lambda: GraphSpec(name="a", runner=ok, conditional="yes"),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': conditional must be a bool; got str$",
    ),
    (
        "legacy-spec-name-int",
        lambda: StageSpec(name=5, runner=ok),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^StageSpec name must be a str; got int$",
    ),
    (
        "legacy-spec-runner-int",
        lambda: StageSpec(name="a", runner=5),
        StageDefinitionTypeError,
        r"^StageSpec 'a': runner must be a stage class, a stage instance with an execute\(\) method, or an async callable; got int$",
    ),
    (
        "legacy-spec-runner-class",
        lambda: StageSpec(name="a", runner=int),
        StageDefinitionTypeError,
        r"^StageSpec 'a': runner class int has no execute\(\) method$",
    ),
    (
        "legacy-spec-deps-str",
        lambda: StageSpec(name="a", runner=ok, dependencies="b"),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^StageSpec 'a': dependencies must be a tuple or list of stage names; got str 'b'$",
    ),
    (
        "legacy-spec-conditional-str",
        lambda: StageSpec(name="a", runner=ok, conditional="yes"),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^StageSpec 'a': conditional must be a bool; got str$",
    ),
    (
        "pipeline-name-int",
        lambda: Pipeline(5),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^Pipeline name must be a str; got int$",
    ),
    (
        "pipeline-stages-list",
        lambda: Pipeline("p", [1]),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^Pipeline stages must be a mapping of stage name to UnifiedStageSpec; got list$",
    ),
    (
        "pipeline-stages-bad-value",
        lambda: Pipeline("p", {"a": 5}),  # type: ignore[dict-item]
        StageDefinitionTypeError,
        r"^Pipeline stages\['a'\] must be a UnifiedStageSpec; got int$",
    ),
    (
        "pipeline-with-stage-name-int",
        lambda: Pipeline().with_stage(5, NoopStage, StageKind.WORK),  # type: ignore[call-overload]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec name must be a str; got int$",
    ),
    (
        "pipeline-with-stage-runner-int",
        lambda: Pipeline().with_stage("a", 5, StageKind.WORK),  # type: ignore[call-overload]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': runner must be a stage class, a stage instance with an execute\(\) method, or an async callable; got int$",
    ),
    (
        "pipeline-with-stage-kind-junk",
        lambda: Pipeline().with_stage("a", NoopStage, "junk"),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': kind must be a StageKind \(one of transform, enrich, route, guard, work, agent\); got 'junk'$",
    ),
    (
        "pipeline-with-stage-deps-str",
        lambda: Pipeline().with_stage("a", NoopStage, StageKind.WORK, dependencies="b"),  # type: ignore[call-overload]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': dependencies must be a tuple or list of stage names; got str 'b'$",
    ),
    (
        "pipeline-with-stage-config-list",
        lambda: Pipeline().with_stage("a", NoopStage, StageKind.WORK, config=[1]),  # type: ignore[call-overload]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': config must be a mapping of keyword arguments; got list$",
    ),
    (
        "pipeline-with-stage-config-instance",
        lambda: Pipeline().with_stage("a", NoopStage(), StageKind.WORK, config={"x": 1}),  # type: ignore[call-overload]
        PipelineConfigError,
        r"^config can only be used with stage classes$",
    ),
    (
        "pipeline-with-stage-conditional-str",
        lambda: Pipeline().with_stage("a", NoopStage, StageKind.WORK, conditional="x"),  # type: ignore[call-overload]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': conditional must be a bool; got str$",
    ),
    (
        "pipeline-compose-int",
        lambda: Pipeline().compose(5),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^Pipeline\.compose expects a Pipeline; got int$",
    ),
    (
        "pipeline-build-empty",
        lambda: Pipeline().build(),
        EmptyPipelineError,
        r"^UnifiedStageGraph requires at least one UnifiedStageSpec$",
    ),
    (
        "pipeline-spec-name-none",
        lambda: UnifiedStageSpec(None, NoopStage, StageKind.WORK),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec name must be a str; got NoneType$",
    ),
    (
        "pipeline-spec-kind-none",
        lambda: UnifiedStageSpec("a", NoopStage, None),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^UnifiedStageSpec 'a': kind must be a StageKind \(one of transform, enrich, route, guard, work, agent\); got None$",
    ),
    (
        "builder-name-int",
        lambda: PipelineBuilder(5),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^PipelineBuilder name must be a str; got int$",
    ),
    (
        "builder-stages-list",
        lambda: PipelineBuilder("p", [1]),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^PipelineBuilder stages must be a mapping of stage name to PipelineSpec; got list$",
    ),
    (
        "builder-stages-bad-value",
        lambda: PipelineBuilder("p", {"a": 5}),  # type: ignore[dict-item]
        StageDefinitionTypeError,
        r"^PipelineBuilder stages\['a'\] must be a PipelineSpec; got int$",
    ),
    (
        "builder-with-stage-runner-int",
        lambda: PipelineBuilder().with_stage("a", 5),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^PipelineSpec 'a': runner must be a stage class, a stage instance with an execute\(\) method, or an async callable; got int$",
    ),
    (
        "builder-with-stage-deps-int",
        lambda: PipelineBuilder().with_stage("a", NoopStage, dependencies=5),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^PipelineSpec 'a': dependencies must be a tuple or list of stage names; got int 5$",
    ),
    (
        "builder-compose-int",
        lambda: PipelineBuilder().compose(5),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^PipelineBuilder\.compose expects a PipelineBuilder; got int$",
    ),
    (
        "builder-build-empty",
        lambda: PipelineBuilder().build(),
        PipelineValidationError,
        r"^Cannot build empty pipeline$",
    ),
    (
        "pipeline-spec2-name-int",
        lambda: PipelineSpec(5, NoopStage),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^PipelineSpec name must be a str; got int$",
    ),
    (
        "pipeline-spec2-inputs-str",
        lambda: PipelineSpec("a", NoopStage, inputs="x"),
        StageDefinitionTypeError,
        r"^PipelineSpec 'a': inputs must be a tuple or list of stage names; got str 'x'$",
    ),
    (
        "pipeline-spec2-outputs-int",
        lambda: PipelineSpec("a", NoopStage, outputs=5),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^PipelineSpec 'a': outputs must be a tuple or list of stage names; got int 5$",
    ),
    (
        "pipeline-spec2-args-list",
        lambda: PipelineSpec("a", NoopStage, args=[1]),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^PipelineSpec 'a': args must be a mapping of keyword arguments; got list$",
    ),
    (
        "pipeline-spec2-conditional-int",
        lambda: PipelineSpec("a", NoopStage, conditional=1),  # type: ignore[arg-type]
        StageDefinitionTypeError,
        r"^PipelineSpec 'a': conditional must be a bool; got int$",
    ),
    (
        "guard-policy-stage-int",
        lambda: GuardRetryPolicy(5),  # type: ignore[arg-type]
        TypeError,
        r"^retry_stage must be a stage name \(str\), got int$",
    ),
    (
        "guard-policy-stage-empty",
        lambda: GuardRetryPolicy(""),
        ValueError,
        r"^retry_stage must be a non\-empty stage name$",
    ),
    (
        "guard-policy-attempts-str",
        lambda: GuardRetryPolicy("a", max_attempts="3"),  # type: ignore[arg-type]
        TypeError,
        r"^max_attempts must be an int, got str$",
    ),
    (
        "guard-policy-attempts-zero",
        lambda: GuardRetryPolicy("a", max_attempts=0),
        ValueError,
        r"^max_attempts must be >= 1$",
    ),
    (
        "guard-policy-attempts-bool",
        lambda: GuardRetryPolicy("a", max_attempts=True),
        TypeError,
        r"^max_attempts must be an int, got bool$",
    ),
    (
        "guard-policy-stagnation-float",
        lambda: GuardRetryPolicy("a", stagnation_limit=2.0),  # type: ignore[arg-type]
        TypeError,
        r"^stagnation_limit must be an int, got float$",
    ),
    (
        "guard-policy-hash-fields-int",
        lambda: GuardRetryPolicy("a", hash_fields=5),  # type: ignore[arg-type]
        TypeError,
        r"^hash_fields must be a str, an iterable of str or None, got int$",
    ),
    (
        "guard-policy-hash-fields-int-item",
        lambda: GuardRetryPolicy("a", hash_fields=[5]),  # type: ignore[list-item]
        TypeError,
        r"^hash_fields must contain only str keys, got int$",
    ),
    (
        "guard-policy-timeout-str",
        lambda: GuardRetryPolicy("a", timeout_seconds="x"),  # type: ignore[arg-type]
        TypeError,
        r"^timeout_seconds must be a number of seconds or None, got str$",
    ),
    (
        "guard-policy-timeout-nan",
        lambda: GuardRetryPolicy("a", timeout_seconds=math.nan),
        ValueError,
        r"^timeout_seconds must be a number of seconds, got nan$",
    ),
    (
        "guard-policy-timeout-zero",
        lambda: GuardRetryPolicy("a", timeout_seconds=0),
        ValueError,
        r"^timeout_seconds must be positive when provided$",
    ),
    (
        "guard-policy-timeout-bool",
        lambda: GuardRetryPolicy("a", timeout_seconds=True),
        TypeError,
        r"^timeout_seconds must be a number of seconds or None, got bool$",
    ),
    (
        "guard-strategy-str",
        lambda: GuardRetryStrategy("junk"),  # type: ignore[arg-type]
        TypeError,
        r"^policies must be a mapping of guard stage name to GuardRetryPolicy, got str$",
    ),
    (
        "guard-strategy-list",
        lambda: GuardRetryStrategy([GuardRetryPolicy("a")]),  # type: ignore[arg-type]
        TypeError,
        r"^policies must be a mapping of guard stage name to GuardRetryPolicy, got list$",
    ),
    (
        "guard-strategy-bad-value",
        lambda: GuardRetryStrategy({"g": "a"}),  # type: ignore[dict-item]
        TypeError,
        r"^policies\['g'\] must be a GuardRetryPolicy, got str$",
    ),
    (
        "guard-strategy-bad-key",
        lambda: GuardRetryStrategy({1: GuardRetryPolicy("a")}),  # type: ignore[dict-item]
        TypeError,
        r"^policies keys must be guard stage names \(str\), got int$",
    ),
    (
        "chain-interceptors-object",
        lambda: run_with_interceptors("s", legacy_ok, create_test_pipeline_context(), [object()]),  # type: ignore[list-item]
        TypeError,
        r"^run_with_interceptors: interceptors\[0\] must be a BaseInterceptor \(or have name, priority, before\(\) and after\(\)\); got object$",
    ),
    (
        "chain-interceptors-none",
        lambda: run_with_interceptors("s", legacy_ok, create_test_pipeline_context(), None),  # type: ignore[arg-type]
        TypeError,
        r"^run_with_interceptors: interceptors must be a list of BaseInterceptor instances; got NoneType$",
    ),
    (
        "chain-interceptors-int",
        lambda: run_with_interceptors("s", legacy_ok, create_test_pipeline_context(), 5),  # type: ignore[arg-type]
        TypeError,
        r"^run_with_interceptors: interceptors must be a list of BaseInterceptor instances or None; got int$",
    ),
    (
        "chain-stage-run-int",
        lambda: run_with_interceptors("s", 5, create_test_pipeline_context(), []),  # type: ignore[arg-type]
        TypeError,
        r"^run_with_interceptors: stage_run must be an async callable; got int$",
    ),
    (
        "chunk-queue-str",
        lambda: ChunkQueue("10"),  # type: ignore[arg-type]
        TypeError,
        r"^ChunkQueue: max_size must be an int; got str$",
    ),
    (
        "chunk-queue-float",
        lambda: ChunkQueue(1.5),  # type: ignore[arg-type]
        TypeError,
        r"^ChunkQueue: max_size must be an int; got float$",
    ),
    (
        "chunk-queue-none",
        lambda: ChunkQueue(None),  # type: ignore[arg-type]
        TypeError,
        r"^ChunkQueue: max_size must be an int; got NoneType$",
    ),
    (
        "chunk-queue-drop-str",
        lambda: ChunkQueue(drop_on_overflow="yes"),  # type: ignore[arg-type]
        TypeError,
        r"^ChunkQueue: drop_on_overflow must be a bool; got str$",
    ),
    (
        "chunk-queue-emitter-int",
        lambda: ChunkQueue(event_emitter=5),  # type: ignore[arg-type]
        TypeError,
        r"^ChunkQueue: event_emitter must be a callable or None; got int$",
    ),
    (
        "spawner-tracker-int",
        lambda: SubpipelineSpawner(child_tracker=5),  # type: ignore[arg-type]
        TypeError,
        r"^child_tracker must be a ChildRunTracker or None, got int$",
    ),
    (
        "spawner-emit-str",
        lambda: SubpipelineSpawner(emit_events="x"),  # type: ignore[arg-type]
        TypeError,
        r"^emit_events must be a bool, got str$",
    ),
    (
        "spawner-depth-str",
        lambda: SubpipelineSpawner(max_depth="5"),  # type: ignore[arg-type]
        TypeError,
        r"^max_depth must be an int, got str$",
    ),
    (
        "spawner-spawn-ctx-str",
        lambda: SubpipelineSpawner().spawn("child", "junk", uuid.uuid4(), "s", ok),  # type: ignore[arg-type]
        TypeError,
        r"^ctx must be a PipelineContext, got str$",
    ),
    (
        "spawner-spawn-runner-int",
        lambda: SubpipelineSpawner().spawn(
            "child",
            create_test_pipeline_context(),
            uuid.uuid4(),
            "s",
            5,  # type: ignore[arg-type]
        ),
        TypeError,
        r"^runner must be an async callable taking the child PipelineContext, got int$",
    ),
    (
        "pipeline-context-run-id-junk",
        lambda: create_test_pipeline_context(pipeline_run_id="not-a-uuid"),  # type: ignore[arg-type]
        ValueError,
        r"^pipeline_run_id must be a UUID string, got 'not\-a\-uuid'$",
    ),
    (
        "stage-output-status-junk",
        lambda: StageOutput("junk"),
        ValueError,
        r"^status must be a StageStatus or one of 'ok', 'skip', 'cancel', 'fail', 'retry', got 'junk'$",
    ),
    (
        "stage-output-data-list",
        lambda: StageOutput.ok(data=[1]),  # type: ignore[arg-type]
        TypeError,
        r"^data must be a mapping \(e\.g\. a dict\) or None, got list$",
    ),
    (
        "monitor-high-str",
        lambda: BackpressureMonitor(high_water_mark="80"),  # type: ignore[arg-type]
        TypeError,
        r"^BackpressureMonitor: high_water_mark must be a number; got str$",
    ),
    (
        "monitor-low-above-high",
        lambda: BackpressureMonitor(high_water_mark=10, low_water_mark=20),
        ValueError,
        r"^BackpressureMonitor: low_water_mark must be <= high_water_mark; got 20 > 10$",
    ),
    (
        "monitor-threshold-above-one",
        lambda: BackpressureMonitor(threshold=1.5),
        ValueError,
        r"^BackpressureMonitor: threshold must be a fill ratio <= 1; got 1.5$",
    ),
    (
        "monitor-threshold-str",
        lambda: BackpressureMonitor(threshold="0.5"),  # type: ignore[arg-type]
        TypeError,
        r"^BackpressureMonitor: threshold must be a number; got str$",
    ),
    (
        "monitor-low-nan",
        lambda: BackpressureMonitor(low_water_mark=math.nan),
        ValueError,
        r"^BackpressureMonitor: low_water_mark must be a finite number; got nan$",
    ),
    (
        "streaming-buffer-target-str",
        lambda: StreamingBuffer(target_duration_ms="x"),  # type: ignore[arg-type]
        TypeError,
        r"^StreamingBuffer: target_duration_ms must be a number; got str$",
    ),
    (
        "streaming-buffer-rate-zero",
        lambda: StreamingBuffer(sample_rate=0),
        ValueError,
        r"^StreamingBuffer: sample_rate must be at least 1; got 0$",
    ),
    (
        "streaming-buffer-channels-zero",
        lambda: StreamingBuffer(channels=0),
        ValueError,
        r"^StreamingBuffer: channels must be at least 1; got 0$",
    ),
    (
        "streaming-buffer-max-zero",
        lambda: StreamingBuffer(max_duration_ms=0),
        ValueError,
        r"^StreamingBuffer: max_duration_ms must be > 0; got 0$",
    ),
    (
        "streaming-buffer-emitter-int",
        lambda: StreamingBuffer(event_emitter=5),  # type: ignore[arg-type]
        TypeError,
        r"^StreamingBuffer: event_emitter must be a callable or None; got int$",
    ),
    (
        "buffered-exporter-none",
        lambda: BufferedExporter(None),
        TypeError,
        r"^BufferedExporter: exporter is required \(or its other name, sink\)$",
    ),
    (
        "buffered-exporter-str",
        lambda: BufferedExporter("console"),  # type: ignore[arg-type]
        TypeError,
        r"^BufferedExporter: exporter must be an AnalyticsExporter \(with async export_batch\(\) and close\(\)\); got str$",
    ),
    (
        "buffered-exporter-and-sink",
        lambda: BufferedExporter(ConsoleExporter(), sink=ConsoleExporter()),
        TypeError,
        r"^BufferedExporter: pass exporter or its other name sink, not both$",
    ),
    (
        "buffered-exporter-flush-interval-zero",
        lambda: BufferedExporter(ConsoleExporter(), flush_interval=0),
        ValueError,
        r"^BufferedExporter: flush_interval must be > 0; got 0$",
    ),
    (
        "buffered-exporter-batch-str",
        lambda: BufferedExporter(ConsoleExporter(), batch_size="x"),  # type: ignore[arg-type]
        TypeError,
        r"^BufferedExporter: batch_size must be an int; got str$",
    ),
    (
        "buffered-exporter-batch-zero",
        lambda: BufferedExporter(ConsoleExporter(), batch_size=0),
        ValueError,
        r"^BufferedExporter: batch_size must be at least 1; got 0$",
    ),
    (
        "buffered-exporter-interval-zero",
        lambda: BufferedExporter(ConsoleExporter(), flush_interval_seconds=0),
        ValueError,
        r"^BufferedExporter: flush_interval_seconds must be > 0; got 0$",
    ),
    (
        "buffered-exporter-high-water-percent",
        lambda: BufferedExporter(ConsoleExporter(), high_water_mark=80),
        ValueError,
        r"^BufferedExporter: high_water_mark must be a fill ratio <= 1; got 80$",
    ),
    (
        "buffered-exporter-overflow-int",
        lambda: BufferedExporter(ConsoleExporter(), on_overflow=5),  # type: ignore[arg-type]
        TypeError,
        r"^BufferedExporter: on_overflow must be a callable or None; got int$",
    ),
    (
        "buffered-exporter-nursery-int",
        lambda: BufferedExporter(ConsoleExporter(), nursery=5),  # type: ignore[arg-type]
        TypeError,
        r"^BufferedExporter: nursery must be a trio\.Nursery or None; got int$",
    ),
    (
        "console-exporter-colorize-str",
        lambda: ConsoleExporter(colorize="x"),  # type: ignore[arg-type]
        TypeError,
        r"^ConsoleExporter: colorize must be a bool; got str$",
    ),
    (
        "console-exporter-verbose-int",
        lambda: ConsoleExporter(verbose=1),  # type: ignore[arg-type]
        TypeError,
        r"^ConsoleExporter: verbose must be a bool; got int$",
    ),
    (
        "audio-chunk-rate-zero",
        lambda: AudioChunk(b"", sample_rate=0),
        ValueError,
        r"^AudioChunk: sample_rate must be at least 1; got 0$",
    ),
    (
        "audio-chunk-rate-str",
        lambda: AudioChunk(b"", sample_rate="16000"),  # type: ignore[arg-type]
        TypeError,
        r"^AudioChunk: sample_rate must be an int; got str$",
    ),
    (
        "audio-chunk-channels-zero",
        lambda: AudioChunk(b"", channels=0),
        ValueError,
        r"^AudioChunk: channels must be at least 1; got 0$",
    ),
    (
        "audio-chunk-format-str",
        lambda: AudioChunk(b"", format="pcm_16"),  # type: ignore[arg-type]
        TypeError,
        r"^AudioChunk: format must be an AudioFormat \(PCM_16, PCM_24, PCM_32, FLOAT_32, MP3, OGG_OPUS, WAV, WEBM\); got str 'pcm_16'$",
    ),
    (
        "audio-chunk-timestamp-str",
        lambda: AudioChunk(b"", timestamp_ms="0"),  # type: ignore[arg-type]
        TypeError,
        r"^AudioChunk: timestamp_ms must be a number; got str$",
    ),
    (
        "audio-chunk-sequence-float",
        lambda: AudioChunk(b"", sequence=1.5),  # type: ignore[arg-type]
        TypeError,
        r"^AudioChunk: sequence must be an int; got float$",
    ),
    (
        "audio-chunk-final-str",
        lambda: AudioChunk(b"", is_final="no"),  # type: ignore[arg-type]
        TypeError,
        r"^AudioChunk: is_final must be a bool; got str$",
    ),
    (
        "audio-chunk-metadata-int",
        lambda: AudioChunk(b"", metadata=5),  # type: ignore[arg-type]
        TypeError,
        r"^AudioChunk: metadata must be a mapping; got int$",
    ),
    (
        "stream-config-chunk-zero",
        lambda: StreamConfig(chunk_size=0),
        ValueError,
        r"^StreamConfig: chunk_size must be at least 1; got 0$",
    ),
    (
        "stream-config-rate-zero",
        lambda: StreamConfig(sample_rate=0),
        ValueError,
        r"^StreamConfig: sample_rate must be at least 1; got 0$",
    ),
    (
        "stream-config-format-str",
        lambda: StreamConfig(format="wav"),  # type: ignore[arg-type]
        TypeError,
        r"^StreamConfig: format must be an AudioFormat \(PCM_16, PCM_24, PCM_32, FLOAT_32, MP3, OGG_OPUS, WAV, WEBM\); got str 'wav'$",
    ),
    (
        "stream-config-duration-str",
        lambda: StreamConfig(buffer_duration_ms="x"),  # type: ignore[arg-type]
        TypeError,
        r"^StreamConfig: buffer_duration_ms must be an int; got str$",
    ),
    (
        "json-exporter-path-int",
        lambda: JSONFileExporter(5),  # type: ignore[arg-type]
        TypeError,
        r"^JSONFileExporter: file_path must be a str or os\.PathLike; got int$",
    ),
    (
        "json-exporter-path-empty",
        lambda: JSONFileExporter(""),
        ValueError,
        r"^JSONFileExporter: file_path must not be empty$",
    ),
    (
        "json-exporter-append-str",
        lambda: JSONFileExporter("out.jsonl", append="no"),  # type: ignore[arg-type]
        TypeError,
        r"^JSONFileExporter: append must be a bool; got str$",
    ),
    (
        "token-cancel-reason-int",
        lambda: CancellationToken().cancel(5),  # type: ignore[arg-type]
        TypeError,
        r"^CancellationToken\.cancel: reason must be a str; got int$",
    ),
    (
        "cleanup-register-int",
        lambda: CleanupRegistry().register(5),  # type: ignore[arg-type]
        TypeError,
        r"^CleanupRegistry\.register: callback must be a callable; got int$",
    ),
    (
        "tracker-register-str-ids",
        lambda: ChildRunTracker().register_child("a", "b"),  # type: ignore[arg-type]
        TypeError,
        r"^ChildRunTracker\.register_child: parent_id must be a UUID; got str$",
    ),
    (
        "tracker-unregister-str-ids",
        lambda: ChildRunTracker().unregister_child(uuid.uuid4(), "b"),  # type: ignore[arg-type]
        TypeError,
        r"^ChildRunTracker\.unregister_child: child_id must be a UUID; got str$",
    ),
    (
        "spawner-spawn-topology-int",
        lambda: SubpipelineSpawner().spawn(
            "child",
            create_test_pipeline_context(),
            uuid.uuid4(),
            "s",
            ok,
            topology=5,  # type: ignore[arg-type]
        ),
        TypeError,
        r"^topology must be a str or None, got int$",
    ),
    (
        "spawner-spawn-mode-int",
        lambda: SubpipelineSpawner().spawn(
            "child",
            create_test_pipeline_context(),
            uuid.uuid4(),
            "s",
            ok,
            execution_mode=5,  # type: ignore[arg-type]
        ),
        TypeError,
        r"^execution_mode must be a str or None, got int$",
    ),
    (
        "logging-sink-level-str",
        lambda: LoggingEventSink(level="x"),  # type: ignore[arg-type]
        TypeError,
        r"^LoggingEventSink: level must be an int \(e\.g\. logging\.INFO\); got str$",
    ),
    (
        "wide-emitter-stage-type-int",
        lambda: WideEventEmitter(stage_event_type=5),  # type: ignore[arg-type]
        TypeError,
        r"^WideEventEmitter: stage_event_type must be a str; got int$",
    ),
    (
        "wide-emitter-pipeline-type-empty",
        lambda: WideEventEmitter(pipeline_event_type=""),
        ValueError,
        r"^WideEventEmitter: pipeline_event_type must not be empty$",
    ),
    (
        "core-ports-send-status-int",
        lambda: CorePorts(send_status=5),  # type: ignore[arg-type]
        TypeError,
        r"^CorePorts: send_status must be an async callable or None; got int$",
    ),
    (
        "llm-ports-send-token-str",
        lambda: LLMPorts(send_token="x"),  # type: ignore[arg-type]
        TypeError,
        r"^LLMPorts: send_token must be an async callable or None; got str$",
    ),
    (
        "audio-ports-send-chunk-int",
        lambda: AudioPorts(send_audio_chunk=5),  # type: ignore[arg-type]
        TypeError,
        r"^AudioPorts: send_audio_chunk must be an async callable or None; got int$",
    ),
    (
        "audio-ports-data-str",
        lambda: AudioPorts(audio_data="abc"),  # type: ignore[arg-type]
        TypeError,
        r"^AudioPorts: audio_data must be bytes or None; got str$",
    ),
    (
        "audio-ports-format-int",
        lambda: AudioPorts(audio_format=5),  # type: ignore[arg-type]
        TypeError,
        r"^AudioPorts: audio_format must be a str or None; got int$",
    ),
    (
        "extension-register-key-int",
        lambda: ExtensionRegistry.register(5, dict),  # type: ignore[arg-type]
        TypeError,
        r"^ExtensionRegistry\.register: key must be a str; got int$",
    ),
    (
        "extension-register-type-int",
        lambda: ExtensionRegistry.register("k", 5),  # type: ignore[arg-type]
        TypeError,
        r"^ExtensionRegistry\.register: extension_type must be a class; got int$",
    ),
    (
        "extension-helper-type-int",
        lambda: ExtensionHelper.get({}, "k", 5),  # type: ignore[arg-type]
        TypeError,
        r"^ExtensionHelper\.get: ext_type must be a class; got int$",
    ),
]


async def _call(call: Callable[[], object]) -> None:
    # A run() is checked when awaited; a constructor when called.
    result = call()
    if inspect.isawaitable(result):
        await result


@pytest.mark.parametrize(
    ("call", "error", "message"), [pytest.param(*row[1:], id=row[0]) for row in ROWS]
)
async def test_bad_input_fails_at_the_call(
    call: Callable[[], object],
    error: type[BaseException],
    message: str,
    autojump_clock: trio.abc.Clock,
) -> None:
    with trio.fail_after(10), pytest.raises(error, match=message) as caught:
        await _call(call)
    assert type(caught.value) is error


def test_the_table_covers_the_issue_count() -> None:
    # Issue 13 tried 132 calls; the table keeps at least 100 of its kind.
    assert len(ROWS) >= 100
    assert len({row[0] for row in ROWS}) == len(ROWS)


async def test_a_context_without_inputs_runs_as_in_the_reference(
    autojump_clock: trio.abc.Clock,
) -> None:
    seen: list[object] = []

    async def stage(ctx: StageContext) -> StageOutput:
        seen.append(ctx.inputs.ports)
        return StageOutput.ok(value=1)

    graph = UnifiedStageGraph([GraphSpec(name="a", runner=stage)])
    # Typed as required; the reference accepts None.
    ctx = attrs.evolve(create_test_stage_context(), inputs=None)  # type: ignore[arg-type]
    results = await graph.run(ctx)
    assert results["a"].data == {"value": 1}
    assert seen == [None]
