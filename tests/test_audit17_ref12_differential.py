"""Audit 17: the same programs on stageflow 1.2.0 (asyncio) and stageflow_trio (trio).

Each scenario below is written once against a library root (``stageflow`` or
``stageflow_trio``) and an :class:`Env` that hides the event loop. It returns what a
user observes (return values, output data, exception types and messages, event
types and payloads in order, wide-event fields, agent results and tool-call
records), normalised (ids, timestamps, durations) and JSON-ready.

1.2.0 is not installed where the tests run (the dev venv has 0.9.1 under the same
package name), so its observations are recorded in
``tests/golden/ref12_differential.json``. To regenerate it, run this file with a
Python that has stageflow-core 1.2.0 (and no trio or pytest: this module imports
only the standard library at the top), from the repository root::

    /tmp/ref12/bin/python -m tests.test_audit17_ref12_differential --record

or call :func:`regenerate_golden` (``STAGEFLOW_REF12_RECORD=1 pytest
tests/test_audit17_ref12_differential.py`` does it through
``test_regenerate_golden``). Review the diff of the JSON before committing it.

Where stageflow_trio deliberately differs (a row in docs/parity.md, or one this audit
proposes), :data:`KNOWN` names the path in the scenario's result, the reason and what
we observe there; the test checks that path against it and the rest against the
golden. ``python -m tests.test_audit17_ref12_differential --ours [NAME ...]`` prints
our observations, for reviewing a difference.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden" / "ref12_differential.json"
REF12_PYTHON = os.environ.get("STAGEFLOW_REF12_PYTHON", "/tmp/ref12/bin/python")

Scenario = Callable[["Env"], Awaitable[Any]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


class Env:
    """A library root and its event loop's primitives."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.trio = root == "stageflow_trio"

    def mod(self, name: str = "") -> ModuleType:
        return importlib.import_module(f"{self.root}.{name}" if name else self.root)

    async def sleep(self, seconds: float) -> None:
        if self.trio:
            import trio

            await trio.sleep(seconds)
        else:
            import asyncio

            await asyncio.sleep(seconds)


# --------------------------------------------------------------------------- normalising

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")
_TIMING_KEYS = frozenset({"duration_ms", "started_at", "ended_at", "timestamp", "created_at"})


def normalise(value: Any) -> Any:
    """JSON-ready, with ids, timestamps and durations blanked."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if str(key) in _TIMING_KEYS and item is not None:
                out[str(key)] = "<time>"
            else:
                out[str(key)] = normalise(item)
        return out
    if isinstance(value, list | tuple):
        return [normalise(item) for item in value]
    if isinstance(value, str):
        return _ISO.sub("<ts>", _UUID.sub("<uuid>", value))
    if value is None or isinstance(value, bool | int | float):
        return value
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return normalise(str(value))


def _error(exc: BaseException) -> dict[str, Any]:
    return {"raises": type(exc).__name__, "message": str(exc)}


def _cancel_error(exc: BaseException) -> dict[str, Any]:
    """:func:`_error` plus a cancellation's stage, reason and partial results."""
    outcome = _error(exc)
    outcome.update(
        stage=getattr(exc, "stage", None),
        reason=getattr(exc, "reason", None),
        results={k: _output(v) for k, v in (getattr(exc, "results", {}) or {}).items()},
    )
    return outcome


def _output(output: Any) -> dict[str, Any]:
    return {
        "status": str(output.status.value),
        "data": dict(output.data),
        "error": output.error,
        "version": getattr(output, "version", None),
    }


# The unified graph's lifecycle events are ours only (docs/parity.md, "Lifecycle events
# from UnifiedStageGraph", "Pipeline-level terminal events"): kept apart, never compared.
_LIFECYCLE = re.compile(
    r"^(?:stage\.[^.]+\.(?:started|completed|failed|cancelled)|pipeline_(?:completed|failed|cancelled))$"
)


class CaptureSink:
    """An event sink for both libraries: keeps (type, data) in arrival order.

    The documented lifecycle events (ours only) go to ``lifecycle``, the rest to ``events``.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lifecycle: list[dict[str, Any]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.try_emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        event = {"type": type, "keys": sorted(data or {}), "data": dict(data or {})}
        if _LIFECYCLE.match(type):
            self.lifecycle.append(event)
        else:
            self.events.append(event)

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


async def _echo(ctx: Any) -> dict[str, Any]:
    return {"text": ctx.snapshot.input_text}


# --------------------------------------------------------------------------- curated API


@scenario
async def run_stage_runner_shapes(sf: Env) -> Any:
    """run_stage with a coroutine function, a Stage class, a Stage instance and configs."""
    api = sf.mod("api")
    out: dict[str, Any] = {}

    async def returns_none(ctx: Any) -> None:
        return None

    async def returns_output(ctx: Any) -> Any:
        return api.StageOutput.ok(data={"x": 1}, version="v9")

    class Upper:
        name = "upper"
        kind = api.StageKind.TRANSFORM

        def __init__(self, suffix: str = "") -> None:
            self.suffix = suffix

        async def execute(self, ctx: Any) -> Any:
            return api.StageOutput.ok(text=(ctx.snapshot.input_text or "").upper() + self.suffix)

    out["none"] = _output(await api.run_stage("n", returns_none, "work"))
    out["output"] = _output(await api.run_stage("o", returns_output, "work"))
    out["dict"] = _output(await api.run_stage("d", _echo, "transform", input_text="hi"))
    out["class"] = _output(await api.run_stage("c", Upper, input_text="hi"))
    out["class_config"] = _output(
        await api.run_stage("c", Upper, config={"suffix": "!"}, input_text="hi")
    )
    out["instance"] = _output(await api.run_stage("i", Upper("?"), input_text="hi"))
    for label, call in (
        ("config_on_function", lambda: api.run_stage("f", _echo, "work", config={"a": 1})),
        ("no_kind", lambda: api.run_stage("f", _echo)),
        ("bad_kind_str", lambda: api.run_stage("f", _echo, "nope")),
    ):
        try:
            await call()  # type: ignore[no-untyped-call]
            out[label] = "no error"
        except Exception as exc:
            out[label] = {
                "raises": type(exc).__name__,
                "is_value_error": isinstance(exc, ValueError),
            }
    return out


@scenario
async def run_stage_bad_returns(sf: Env) -> Any:
    """A stage returning an unsupported type, raising, or returning fail/skip/cancel."""
    api = sf.mod("api")
    out: dict[str, Any] = {}

    async def returns_int(ctx: Any) -> Any:
        return 5

    async def raises(ctx: Any) -> Any:
        raise KeyError("missing")

    async def fails(ctx: Any) -> Any:
        return api.StageOutput.fail(error="bad input", data={"k": 1})

    async def skips(ctx: Any) -> Any:
        return api.StageOutput.skip(reason="nothing to do")

    async def cancels(ctx: Any) -> Any:
        return api.StageOutput.cancel(reason="user left", data={"partial": True})

    async def requests_cancel(ctx: Any) -> Any:
        raise api.StageCancellationRequested("stop here")

    for label, fn in (
        ("int", returns_int),
        ("raises", raises),
        ("fail", fails),
        ("skip", skips),
        ("cancel", cancels),
        ("cancel_requested", requests_cancel),
    ):
        try:
            out[label] = {"output": _output(await api.run_stage(label, fn, "work"))}
        except Exception as exc:
            record = _error(exc)
            for attr in ("stage", "reason"):
                if hasattr(exc, attr):
                    record[attr] = getattr(exc, attr)
            original = getattr(exc, "original", None)
            if original is not None:
                record["original"] = _error(original)
            results = getattr(exc, "results", None)
            if results is not None:
                record["results"] = {k: _output(v) for k, v in results.items()}
                record["results_type"] = type(results).__name__
            cause = exc.__cause__
            record["cause"] = None if cause is None else type(cause).__name__
            out[label] = record
    return out


@scenario
async def pipeline_results_helpers_on_failure_statuses(sf: Env) -> Any:
    """PipelineResults helpers over skip and a soft-failing guard-free run."""
    api = sf.mod("api")

    async def skips(ctx: Any) -> Any:
        return api.StageOutput.skip(reason="no work")

    async def after(ctx: Any) -> Any:
        return {"seen": ctx.inputs.get_from("s", "reason")}

    results = (
        await api.Pipeline(name="p")
        .with_stage("s", skips, "work")
        .with_stage("t", after, "work", after="s")
        .run()
    )
    out: dict[str, Any] = {
        "type": type(results).__name__,
        "keys": list(results),
        "ok_s": results.ok("s"),
        "ok_t": results.ok("t"),
        "ok_missing": results.ok("zz"),
        "failed": results.failed(),
        "data_t": results.data("t"),
        "data_missing_default": results.data("zz", {"d": 1}),
        "output_missing": results.output("zz"),
        "t": _output(results.require("t")),
    }
    for label, call in (
        ("require_ok_skip", lambda: results.require_ok("s")),
        ("require_missing", lambda: results.require("zz")),
        ("data_missing", lambda: results.data("zz")),
    ):
        try:
            call()  # type: ignore[no-untyped-call]
            out[label] = "no error"
        except Exception as exc:
            out[label] = _error(exc)
    return out


@scenario
async def events_of_a_run(sf: Env) -> Any:
    """Events a user's sink sees for a run with a skip, a custom event and a failure."""
    api = sf.mod("api")
    sink = CaptureSink()

    async def first(ctx: Any) -> Any:
        ctx.try_emit_event("custom.one", {"n": 1})
        ctx.emit_event("custom.two", {"n": 2})
        return {"a": 1}

    async def skipper(ctx: Any) -> Any:
        return api.StageOutput.skip(reason="skipped on purpose")

    async def boom(ctx: Any) -> Any:
        raise ValueError("boom")

    ctx = api.PipelineContext.create(event_sink=sink, topology="topo", input_text="x")
    outcome: Any
    try:
        await (
            api.Pipeline(name="events")
            .with_stage("first", first, "transform")
            .with_stage("skipper", skipper, "work", after="first")
            .with_stage("boom", boom, "work", after="skipper")
            .run(ctx)
        )
        outcome = "no error"
    except Exception as exc:
        outcome = _error(exc)
    return {"outcome": outcome, "events": sink.events}


@scenario
async def conditional_skip_reason(sf: Env) -> Any:
    """A conditional stage skipped by an upstream ``skip_reason``, and its event."""
    api = sf.mod("api")
    sink = CaptureSink()

    async def router(ctx: Any) -> Any:
        return {"skip_reason": "not needed"}

    async def maybe(ctx: Any) -> Any:
        return {"ran": True}

    ctx = api.PipelineContext.create(event_sink=sink)
    results = await (
        api.Pipeline(name="cond")
        .with_stage("router", router, "route")
        .with_stage("maybe", maybe, "work", after="router", conditional=True)
        .run(ctx)
    )
    return {
        "results": {k: _output(v) for k, v in results.items()},
        "events": sink.events,
    }


@scenario
async def wide_events_completed(sf: Env) -> Any:
    """Stage and pipeline wide events of a successful run, on the context's sink."""
    api = sf.mod("api")
    sink = CaptureSink()

    async def second(ctx: Any) -> Any:
        return {"b": 2, "a": 1}

    ctx = api.PipelineContext.create(event_sink=sink, topology="chat", execution_mode="fast")
    results = await (
        api.Pipeline(name="wide")
        .with_stage("first", _echo, "transform")
        .with_stage("second", second, "work", after="first")
        .run(ctx, emit_stage_wide_events=True, emit_pipeline_wide_event=True)
    )
    return {"keys": list(results), "events": sink.events}


@scenario
async def wide_events_failed_and_cancelled(sf: Env) -> Any:
    """The pipeline wide event of a failed and of a cancelled run."""
    api = sf.mod("api")
    out: dict[str, Any] = {}

    async def ok(ctx: Any) -> Any:
        return {"ok": True}

    async def boom(ctx: Any) -> Any:
        raise RuntimeError("kaput")

    async def soft_fail(ctx: Any) -> Any:
        return api.StageOutput.fail(error="soft failure")

    async def cancel(ctx: Any) -> Any:
        return api.StageOutput.cancel(reason="enough")

    for label, fn in (("raised", boom), ("soft_fail", soft_fail), ("cancel", cancel)):
        sink = CaptureSink()
        ctx = api.PipelineContext.create(event_sink=sink)
        try:
            await (
                api.Pipeline(name=f"wide_{label}")
                .with_stage("ok", ok, "work")
                .with_stage("last", fn, "work", after="ok")
                .run(ctx, emit_stage_wide_events=True, emit_pipeline_wide_event=True)
            )
            outcome: Any = "no error"
        except Exception as exc:
            outcome = _error(exc)
        out[label] = {"outcome": outcome, "events": sink.events}
    return out


@scenario
async def wide_event_emitter_custom_types(sf: Env) -> Any:
    """A WideEventEmitter with its own event types, passed to run_stage."""
    api = sf.mod("api")
    advanced = sf.mod("advanced")
    sink = CaptureSink()
    emitter = advanced.WideEventEmitter(stage_event_type="my.stage", pipeline_event_type="my.run")
    output = await api.run_stage(
        "solo",
        _echo,
        "transform",
        wide_event_emitter=emitter,
        emit_stage_wide_events=True,
        emit_pipeline_wide_event=True,
        event_sink=sink,
        input_text="hello",
    )
    only_emitter = CaptureSink()
    await api.run_stage(
        "solo", _echo, "transform", wide_event_emitter=emitter, event_sink=only_emitter
    )
    return {"output": _output(output), "events": sink.events, "no_flags": only_emitter.events}


@scenario
async def graph_run_with_pipeline_context(sf: Env) -> Any:
    """UnifiedStageGraph(pipeline_name=...).run(PipelineContext) and its wide event."""
    dag = sf.mod("pipeline.dag")
    api = sf.mod("api")
    sink = CaptureSink()
    graph = dag.UnifiedStageGraph(
        [dag.UnifiedStageSpec(name="a", runner=_echo, kind=api.StageKind.TRANSFORM)],
        pipeline_name="named",
        emit_pipeline_wide_event=True,
    )
    ctx = api.PipelineContext.create(event_sink=sink, input_text="in", topology="t")
    results = await graph.run(ctx)
    unnamed = dag.UnifiedStageGraph(
        [dag.UnifiedStageSpec(name="a", runner=_echo, kind=api.StageKind.TRANSFORM)],
        emit_pipeline_wide_event=True,
    )
    sink2 = CaptureSink()
    await unnamed.run(api.PipelineContext.create(event_sink=sink2, topology="fallback"))
    return {
        "results": {k: _output(v) for k, v in results.items()},
        "named": [e["data"].get("pipeline_name") for e in sink.events],
        "unnamed": [e["data"].get("pipeline_name") for e in sink2.events],
    }


@scenario
async def compose_and_stage_names(sf: Env) -> Any:
    """compose() names, conflicts, stage_names order, get/has_stage."""
    api = sf.mod("api")
    a = api.Pipeline(name="a").with_stage("x", _echo, "transform")
    b = api.Pipeline(name="b").with_stage("y", _echo, "transform", after="x")
    same = api.Pipeline(name="a").with_stage("z", _echo, "work")
    composed = a.compose(b)
    out: dict[str, Any] = {
        "composed_name": composed.name,
        "same_name": a.compose(same).name,
        "names": composed.stage_names(),
        "has": [composed.has_stage("x"), composed.has_stage("q")],
        "get_missing": composed.get_stage("q"),
        "compatible": a.compose(a).stage_names(),
    }
    clash = api.Pipeline(name="c").with_stage("x", _echo, "work")
    try:
        a.compose(clash)
        out["conflict"] = "no error"
    except Exception as exc:
        out["conflict"] = {"raises": type(exc).__name__, "value_error": isinstance(exc, ValueError)}
    results = await composed.run(input_text="go")
    out["run"] = {k: _output(v) for k, v in results.items()}
    return out


@scenario
async def guard_retry_through_pipeline_run(sf: Env) -> Any:
    """Pipeline.run(guard_retry_strategy=...): guard_retry events and the final results."""
    api = sf.mod("api")
    advanced = sf.mod("advanced")
    sink = CaptureSink()
    attempts: list[int] = []

    async def draft(ctx: Any) -> Any:
        attempts.append(len(attempts) + 1)
        return {"text": f"draft {len(attempts)}"}

    async def guard(ctx: Any) -> Any:
        text = ctx.inputs.get_from("draft", "text")
        if text != "draft 3":
            return api.StageOutput.fail(error=f"rejected {text}", data={"text": text})
        return {"approved": text}

    strategy = advanced.GuardRetryStrategy(
        policies={
            "guard": advanced.GuardRetryPolicy(
                retry_stage="draft", max_attempts=4, stagnation_limit=3
            )
        }
    )
    results = await (
        api.Pipeline(name="gr")
        .with_stage("draft", draft, "transform")
        .with_stage("guard", guard, "guard", after="draft")
        .run(guard_retry_strategy=strategy, event_sink=sink, execution_mode="m")
    )
    return {
        "results": {k: _output(v) for k, v in results.items()},
        "attempts": attempts,
        "events": sink.events,
    }


@scenario
async def run_with_a_stage_context(sf: Env) -> Any:
    """Pipeline.run(StageContext) (deprecated in 1.2.0, no warning here): same results."""
    api = sf.mod("api")
    sink = CaptureSink()
    pipeline_ctx = api.PipelineContext.create(input_text="via stage ctx", event_sink=sink)
    stage_ctx = pipeline_ctx.derive_root_stage_context(stage_name="root")

    async def reader(ctx: Any) -> Any:
        ctx.try_emit_event("reader.saw", {"text": ctx.snapshot.input_text})
        return {"text": ctx.snapshot.input_text, "stage": ctx.stage_name}

    results = await api.Pipeline(name="sc").with_stage("reader", reader, "work").run(stage_ctx)
    return {"results": {k: _output(v) for k, v in results.items()}, "events": sink.events}


# --------------------------------------------------------------------------- cancellation


@scenario
async def cooperative_cancellation_in_stage(sf: Env) -> Any:
    """is_cancelled / cancellation_reason / raise_if_cancelled seen from a stage."""
    api = sf.mod("api")
    seen: dict[str, Any] = {}
    ctx = api.PipelineContext.create(input_text="x")

    async def watcher(stage_ctx: Any) -> Any:
        seen["before"] = [stage_ctx.is_cancelled, stage_ctx.cancellation_reason]
        try:
            stage_ctx.raise_if_cancelled()
            seen["raise_before"] = "no error"
        except Exception as exc:
            seen["raise_before"] = _error(exc)
        return {"ok": 1}

    async def canceller(stage_ctx: Any) -> Any:
        ctx.mark_canceled("operator stop")
        seen["after_mark"] = [stage_ctx.is_cancelled, stage_ctx.cancellation_reason]
        return {"marked": True}

    try:
        await (
            api.Pipeline(name="coop")
            .with_stage("watcher", watcher, "work")
            .with_stage("canceller", canceller, "work", after="watcher")
            .with_stage("never", watcher, "work", after="canceller")
            .run(ctx)
        )
        outcome: Any = "no error"
    except Exception as exc:
        outcome = _error(exc)
        outcome.update(
            stage=getattr(exc, "stage", None),
            reason=getattr(exc, "reason", None),
            results=sorted(getattr(exc, "results", {}) or {}),
        )
    return {"outcome": outcome, "seen": seen, "ctx": [ctx.is_canceled, ctx.cancellation_reason]}


@scenario
async def stage_raises_if_cancelled_after_mark(sf: Env) -> Any:
    """A stage that marks its run cancelled and then calls raise_if_cancelled()."""
    api = sf.mod("api")
    ctx = api.PipelineContext.create()

    async def stage(stage_ctx: Any) -> Any:
        ctx.mark_canceled("halt")
        stage_ctx.raise_if_cancelled()
        return {"unreachable": True}

    try:
        await api.Pipeline(name="r").with_stage("s", stage, "work").run(ctx)
        outcome: Any = "no error"
    except Exception as exc:
        outcome = _cancel_error(exc)
    return outcome


@scenario
async def before_stage_start_hooks(sf: Env) -> Any:
    """Hooks run in order with the stage's name and kind; a hook that cancels."""
    api = sf.mod("api")
    calls: list[Any] = []
    ctx = api.PipelineContext.create()

    def sync_hook(name: str, kind: Any, stage_ctx: Any, pipeline_ctx: Any) -> None:
        calls.append(["sync", name, str(kind.value), stage_ctx.stage_name, pipeline_ctx is ctx])

    async def async_hook(name: str, kind: Any, stage_ctx: Any, pipeline_ctx: Any) -> None:
        calls.append(["async", name])
        if name == "second":
            pipeline_ctx.mark_canceled("hook says no")

    ctx.add_before_stage_start_hook(sync_hook)
    ctx.add_before_stage_start_hook(async_hook)

    async def stage(stage_ctx: Any) -> Any:
        calls.append(["ran", stage_ctx.stage_name])
        return {"ran": stage_ctx.stage_name}

    try:
        await (
            api.Pipeline(name="hooks")
            .with_stage("first", stage, "guard")
            .with_stage("second", stage, "work", after="first")
            .with_stage("third", stage, "work", after="second")
            .run(ctx)
        )
        outcome: Any = "no error"
    except Exception as exc:
        outcome = _cancel_error(exc)
    return {"outcome": outcome, "calls": calls}


@scenario
async def created_cancelled_context(sf: Env) -> Any:
    """A context created with canceled=True, and cancellation_checkpoint on contexts."""
    api = sf.mod("api")
    ran: list[str] = []

    async def stage(stage_ctx: Any) -> Any:
        ran.append("s")
        return None

    try:
        await api.Pipeline(name="pre").with_stage("s", stage, "work").run(canceled=True)
        outcome: Any = "no error"
    except Exception as exc:
        outcome = _error(exc)
        outcome.update(stage=getattr(exc, "stage", None), reason=getattr(exc, "reason", None))
    ctx = api.PipelineContext.create()
    ctx.mark_canceled()
    ctx.mark_canceled("second reason ignored")
    checkpoint: Any
    try:
        await ctx.cancellation_checkpoint()
        checkpoint = "no error"
    except Exception as exc:
        checkpoint = _error(exc)
    stage_ctx = ctx.derive_root_stage_context(stage_name="probe")
    return {
        "outcome": outcome,
        "ran": ran,
        "checkpoint": checkpoint,
        "reason": ctx.cancellation_reason,
        "root_stage_view": [stage_ctx.is_cancelled, stage_ctx.cancellation_reason],
    }


@scenario
async def cancellation_checkpoint_in_stage(sf: Env) -> Any:
    """A stage that marks its run cancelled and then awaits cancellation_checkpoint()."""
    api = sf.mod("api")
    out: dict[str, Any] = {}
    for label in ("pipeline_ctx", "stage_ctx"):
        ctx = api.PipelineContext.create()
        after: list[str] = []

        async def stage(
            stage_ctx: Any, label: str = label, ctx: Any = ctx, after: list[str] = after
        ) -> Any:
            ctx.mark_canceled("halt")
            if label == "pipeline_ctx":
                await ctx.cancellation_checkpoint()
            else:
                await stage_ctx.cancellation_checkpoint()
            after.append("resumed")
            return {"unreachable": True}

        try:
            await api.Pipeline(name="r").with_stage("s", stage, "work").run(ctx)
            outcome: Any = "no error"
        except Exception as exc:
            outcome = _cancel_error(exc)
        out[label] = {"outcome": outcome, "after": after}
    return out


@scenario
async def sibling_marks_run_cancelled(sf: Env) -> Any:
    """One stage marks the run cancelled; the run ends for ``<external>``."""
    api = sf.mod("api")
    ctx = api.PipelineContext.create()
    order: list[str] = []

    async def marker(stage_ctx: Any) -> Any:
        order.append("marker")
        ctx.mark_canceled("sibling said stop")
        return {"marked": True}

    async def later(stage_ctx: Any) -> Any:
        order.append("later")
        return None

    try:
        await (
            api.Pipeline(name="sib")
            .with_stage("marker", marker, "work")
            .with_stage("later", later, "work", after="marker")
            .run(ctx, emit_pipeline_wide_event=True)
        )
        outcome: Any = "no error"
    except Exception as exc:
        outcome = _cancel_error(exc)
    return {"outcome": outcome, "order": order}


@scenario
async def cancelled_context_views(sf: Env) -> Any:
    """Reasons and messages of contexts cancelled without and with a reason."""
    api = sf.mod("api")
    out: dict[str, Any] = {}

    def probe(ctx: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "is_canceled": ctx.is_canceled,
            "reason": ctx.cancellation_reason,
        }
        try:
            ctx.raise_if_cancelled()
            record["raise"] = "no error"
        except Exception as exc:
            record["raise"] = _error(exc)
            record["raise_reason"] = getattr(exc, "reason", None)
        view = ctx.derive_root_stage_context(stage_name="v")
        record["view"] = [view.is_cancelled, view.cancellation_reason]
        try:
            view.raise_if_cancelled()
            record["view_raise"] = "no error"
        except Exception as exc:
            record["view_raise"] = _error(exc)
        return record

    out["created_canceled"] = probe(api.PipelineContext.create(canceled=True))
    assigned = api.PipelineContext.create()
    assigned.canceled = True
    out["assigned"] = probe(assigned)
    default_reason = api.PipelineContext.create()
    default_reason.mark_canceled()
    out["default_reason"] = probe(default_reason)
    out["fresh"] = probe(api.PipelineContext.create())
    exc = api.StageCancellationRequested()
    out["exception_default"] = [str(exc), getattr(exc, "reason", None)]
    return out


@scenario
async def curated_argument_errors(sf: Env) -> Any:
    """ValueErrors of run / invoke / stage() for contradictory arguments."""
    api = sf.mod("api")
    pipe = api.Pipeline(name="e").with_stage("a", _echo, "transform")
    ctx = api.PipelineContext.create(input_text="c")
    out: dict[str, Any] = {}
    for label, call in (
        ("run_ctx_and_kwargs", lambda: pipe.run(ctx, input_text="x")),
        ("invoke_ctx_and_input_text", lambda: pipe.invoke(ctx, input_text="x")),
        ("invoke_text_twice", lambda: pipe.invoke("a", input_text="b")),
    ):
        try:
            await call()  # type: ignore[no-untyped-call]
            out[label] = "no error"
        except Exception as exc:
            out[label] = _error(exc)
    try:
        api.stage("s", _echo, "work", dependencies=("a",), after="a")
        out["stage_after_and_dependencies"] = "no error"
    except Exception as exc:
        out["stage_after_and_dependencies"] = _error(exc)
    results = await pipe.invoke("hello")
    out["invoke_text"] = _output(results["a"])
    results = await pipe.invoke(ctx)
    out["invoke_ctx"] = _output(results["a"])
    spec = api.stage("b", _echo, "work", after=["a"])
    out["from_stages"] = api.Pipeline.from_stages(
        api.stage("a", _echo, "transform"), spec, name="fs"
    ).stage_names()
    return out


@scenario
async def timeout_from_context_data(sf: Env) -> Any:
    """A stage slower than ``data["_timeout_ms"]`` (the timeout interceptor's limit)."""
    api = sf.mod("api")

    async def slow(ctx: Any) -> Any:
        await sf.sleep(5)
        return {"late": True}

    try:
        await api.run_stage("slow", slow, "work", data={"_timeout_ms": 20})
        outcome: Any = "no error"
    except Exception as exc:
        outcome = _error(exc)
        original = getattr(exc, "original", None)
        if original is not None:
            outcome["original"] = _error(original)
    return outcome


@scenario
async def stage_metadata_and_kind_inference(sf: Env) -> Any:
    """@stage_metadata classes and runner ``kind`` strings in run_stage / with_stage."""
    api = sf.mod("api")

    @api.stage_metadata(name="meta", kind="enrich")
    class Meta:
        async def execute(self, ctx: Any) -> Any:
            return {"kind": str(getattr(type(self), "kind").value)}  # noqa: B009

    class StrKind:
        kind = "guard"

        async def execute(self, ctx: Any) -> Any:
            return None

    out: dict[str, Any] = {
        "meta_attrs": [getattr(Meta, "name"), str(getattr(Meta, "kind").value)],  # noqa: B009
        "meta": _output(await api.run_stage("m", Meta)),
        "str_kind_spec": str(api.stage("g", StrKind).kind.value),
        "str_kind_type": type(api.stage("g", StrKind).kind).__name__,
        "explicit_wins": str(api.stage("g", StrKind, "work").kind.value),
    }
    return out


# --------------------------------------------------------------------------- agent runtime


class _ScriptedClient:
    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.calls = 0

    async def chat(self, *, messages: list[dict[str, Any]], model: str, **kwargs: Any) -> Any:
        self.calls += 1
        return {
            "content": self.replies.pop(0),
            "model": model,
            "provider": "scripted",
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }


def _registry(sf: Env, seen: list[Any]) -> Any:
    tools = sf.mod("tools")

    class Lookup(tools.BaseTool):  # type: ignore[misc,name-defined]
        name = "lookup"
        description = "Look a key up"
        action_type = "lookup"

        async def execute(self, input: Any, ctx: dict[str, Any]) -> Any:  # noqa: A002
            payload = dict(input.action.payload)
            seen.append({"tool": "lookup", "payload": payload, "ctx_keys": sorted(ctx)})
            if payload.get("key") == "missing":
                return tools.ToolOutput(success=False, error="no such key")
            return tools.ToolOutput(success=True, data={"value": payload.get("key", "") * 2})

    class Explode(tools.BaseTool):  # type: ignore[misc,name-defined]
        name = "explode"
        description = ""
        action_type = "explode"

        async def execute(self, input: Any, ctx: dict[str, Any]) -> Any:  # noqa: A002
            raise RuntimeError("tool blew up")

    registry = tools.ToolRegistry()
    registry.register(Lookup())
    registry.register(Explode())
    return registry


def _calls(*calls: dict[str, Any]) -> str:
    return json.dumps({"tool_calls": list(calls)})


@scenario
async def agent_stage_in_pipeline(sf: Env) -> Any:
    """AgentStage run by a pipeline: events, output data and version, tool records."""
    api = sf.mod("api")
    agent = sf.mod("agent")
    seen: list[Any] = []
    client = _ScriptedClient(
        [
            _calls(
                {"name": "lookup", "arguments": {"key": "ab"}, "call_id": "c1"},
                {"name": "lookup", "arguments": {"key": "missing"}, "call_id": "c2"},
            ),
            _calls(
                {"name": "explode", "arguments": {}, "call_id": "c3"},
                {"name": "nosuch", "arguments": {"q": 1}, "call_id": "c4"},
            ),
            json.dumps({"final_answer": "done: abab"}),
        ]
    )
    built = agent.Agent(llm_client=client, tool_registry=_registry(sf, seen))
    sink = CaptureSink()
    results = (
        await api.Pipeline(name="agentic")
        .with_stage("agent", agent.AgentStage(built, output_version="agent/v7"))
        .run(event_sink=sink, input_text="find ab")
    )
    output = results.require("agent")
    return {
        "output": _output(output),
        "events": sink.events,
        "tool_saw": seen,
        "llm_calls": client.calls,
    }


@scenario
async def agent_stage_failures(sf: Env) -> Any:
    """AgentStage when the turn budget runs out or validation never succeeds."""
    api = sf.mod("api")
    agent = sf.mod("agent")
    out: dict[str, Any] = {}
    loop = _ScriptedClient([_calls({"name": "lookup", "arguments": {"key": "a"}})] * 2)
    looping = agent.Agent(
        llm_client=loop,
        config=agent.AgentConfig(max_turns=2),
        tool_registry=_registry(sf, []),
    )
    garbage = _ScriptedClient(["not json", "still not", "nope"])
    invalid = agent.Agent(
        llm_client=garbage,
        config=agent.AgentConfig(max_validation_retries=1),
        tool_registry=_registry(sf, []),
    )

    class Down:
        async def chat(self, *, messages: Any, model: str, **kwargs: Any) -> Any:
            raise ConnectionError("model endpoint down")

    class HangsUp:
        async def chat(self, *, messages: Any, model: str, **kwargs: Any) -> Any:
            raise api.StageCancellationRequested("user hung up")

    down = agent.Agent(llm_client=Down(), tool_registry=_registry(sf, []))
    hangs_up = agent.Agent(llm_client=HangsUp(), tool_registry=_registry(sf, []))
    for label, built in (
        ("turn_limit", looping),
        ("invalid", invalid),
        ("client_raises", down),
        ("client_requests_cancel", hangs_up),
    ):
        sink = CaptureSink()
        try:
            await (
                api.Pipeline(name="a")
                .with_stage("agent", agent.AgentStage(built))
                .run(event_sink=sink, input_text="q")
            )
            outcome: Any = "no error"
        except Exception as exc:
            outcome = _error(exc)
            original = getattr(exc, "original", None)
            if original is not None:
                outcome["original"] = _error(original)
        out[label] = {"outcome": outcome, "events": [e["type"] for e in sink.events]}
    # run_stage gives the failed output back unraised? (it raises, like run)
    try:
        output = await api.run_stage("agent", agent.AgentStage(looping), input_text="q")
        out["run_stage_turn_limit"] = _output(output)
    except Exception as exc:
        out["run_stage_turn_limit"] = _error(exc)
    out["llm_calls"] = [loop.calls, garbage.calls]
    return out


@scenario
async def agent_run_direct_with_stage_context(sf: Env) -> Any:
    """Agent.run with a stage context: events on its sink, result fields."""
    api = sf.mod("api")
    agent = sf.mod("agent")
    seen: list[Any] = []
    sink = CaptureSink()
    ctx = api.PipelineContext.create(event_sink=sink, input_text="q", topology="t")
    stage_ctx = ctx.derive_root_stage_context(stage_name="agent_stage")
    client = _ScriptedClient(
        [
            _calls({"name": "lookup", "arguments": {"key": "z"}}),
            json.dumps({"thought": "ok", "final_answer": "zz"}),
        ]
    )
    built = agent.Agent(llm_client=client, tool_registry=_registry(sf, seen))
    result = await built.run("what is z", stage_context=stage_ctx, prompt_variables={"x": 1})
    data = result.model_dump() if hasattr(result, "model_dump") else result.to_dict()
    return {"result": data, "events": sink.events, "tool_saw": seen}


def _blank_model_text(text: str) -> str:
    """Blank what the agent parity rows allow to differ in prompts: the schema's
    descriptions (each library's docstrings) and the validator's wording."""
    text = re.sub(r'"description": "[^"]*", ', "", text)
    return re.sub(r"Validation error: .*\Z", "Validation error: <error>", text, flags=re.DOTALL)


class _RecordingClient(_ScriptedClient):
    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies)
        self.seen: list[list[dict[str, Any]]] = []

    async def chat(self, *, messages: list[dict[str, Any]], model: str, **kwargs: Any) -> Any:
        self.seen.append(
            [
                {
                    "role": m["role"],
                    "content": _blank_model_text(m["content"]) if m["role"] != "system" else "",
                }
                for m in messages
            ]
        )
        return await super().chat(messages=messages, model=model, **kwargs)


@scenario
async def agent_history_and_pipeline_context(sf: Env) -> Any:
    """Conversation history in the model's messages; a PipelineContext as stage_context."""
    api = sf.mod("api")
    agent = sf.mod("agent")
    context = sf.mod("context")
    seen: list[Any] = []
    sink = CaptureSink()
    conversation = context.Conversation(
        messages=[
            context.Message(role="user", content="earlier question"),
            context.Message(role="assistant", content="earlier answer"),
            context.Message(role="user", content=""),
        ]
    )
    ctx = api.PipelineContext.create(
        event_sink=sink, input_text="now", topology="chat_fast", conversation=conversation
    )
    client = _RecordingClient(
        [
            _calls({"name": "lookup", "arguments": {"key": "k"}, "call_id": "same"}),
            _calls(
                {"name": "lookup", "arguments": {"key": "k"}, "call_id": "same"},
                {"name": "lookup", "arguments": {"key": "missing"}, "call_id": "same"},
            ),
            json.dumps({"final_answer": "ok"}),
        ]
    )
    built = agent.Agent(llm_client=client, tool_registry=_registry(sf, seen))
    result = await built.run("now", stage_context=ctx)
    data = result.model_dump() if hasattr(result, "model_dump") else result.to_dict()
    data.pop("llm", None)
    return {"result": data, "events": sink.events, "messages": client.seen, "tool_saw": seen}


@scenario
async def agent_stage_inputs(sf: Env) -> Any:
    """AgentStage with no input text, and an Agent whose tool call has bad arguments."""
    api = sf.mod("api")
    agent = sf.mod("agent")
    client = _RecordingClient(
        [
            json.dumps({"tool_calls": [{"name": "lookup", "arguments": "not a dict"}]}),
            json.dumps({"tool_calls": [{"arguments": {}}]}),
            json.dumps({"final_answer": "fine"}),
        ]
    )
    built = agent.Agent(
        llm_client=client,
        config=agent.AgentConfig(max_validation_retries=2),
        tool_registry=_registry(sf, []),
    )
    output = await api.run_stage("agent", agent.AgentStage(built))
    data = dict(output.data)
    data.pop("llm", None)
    return {
        "status": str(output.status.value),
        "data": data,
        "user_messages": [
            [m["content"] for m in call if m["role"] == "user"] for call in client.seen
        ],
        "calls": len(client.seen),
    }


@scenario
async def tool_registry_aliases_and_stage_inputs(sf: Env) -> Any:
    """ToolRegistry's 1.2.0 aliases; StageInputs.tool_registry inside a stage."""
    api = sf.mod("api")
    tools = sf.mod("tools")
    registry = _registry(sf, [])
    seen: dict[str, Any] = {}

    async def stage(ctx: Any) -> Any:
        seen["same_global"] = ctx.inputs.tool_registry is tools.get_tool_registry()
        return None

    await api.run_stage("s", stage, "work")
    return {
        "get": registry.get("lookup").name,
        "get_missing": registry.get("nope"),
        "by_action": registry.get_by_action_type("explode").name,
        "list": sorted(tool.name for tool in registry.list()),
        "has": [registry.has("lookup"), registry.has("nope")],
        "seen": seen,
    }


@scenario
async def payload_helpers_through_a_run(sf: Env) -> Any:
    """ok_output / payload_from_inputs in stages, payload_from_results on the results."""
    api = sf.mod("api")
    seen: dict[str, Any] = {}

    async def produce(ctx: Any) -> Any:
        return api.ok_output(api.StagePayloadResult(payload={"n": 3}, summary={"count": 1}))

    async def consume(ctx: Any) -> Any:
        seen["payload"] = api.payload_from_inputs(ctx, "produce")
        seen["typed"] = api.payload_from_inputs(ctx, "produce", expected_type=dict)
        try:
            api.payload_from_inputs(ctx, "produce", expected_type=list)
            seen["wrong_type"] = "no error"
        except Exception as exc:
            seen["wrong_type"] = _error(exc)
        return api.fail_output(error="consumer unhappy", payload={"why": "test"}, summary={"s": 1})

    async def stop(ctx: Any) -> Any:
        return api.cancel_output(api.StagePayloadResult(payload=[1, 2]), reason="halted")

    results = await api.Pipeline(name="pl").with_stage("produce", produce, "transform").run()
    out: dict[str, Any] = {
        "produce": _output(results["produce"]),
        "from_results": api.payload_from_results(results, "produce"),
        "summary": api.summary_from_output(results["produce"]),
    }
    try:
        await (
            api.Pipeline(name="pl2")
            .with_stage("produce", produce, "transform")
            .with_stage("consume", consume, "work", after="produce")
            .run()
        )
        out["consume_run"] = "no error"
    except Exception as exc:
        out["consume_run"] = _error(exc)
    out["seen"] = seen
    try:
        await api.Pipeline(name="pl3").with_stage("side", stop, "work").run()
        out["cancel_run"] = "no error"
    except Exception as exc:
        cancelled = getattr(exc, "results", {}) or {}
        out["cancel_run"] = {
            **_error(exc),
            "results": {k: _output(v) for k, v in cancelled.items()},
        }
        try:
            api.payload_from_results(cancelled, "side")
            out["payload_of_cancelled"] = "no error"
        except Exception as inner:
            out["payload_of_cancelled"] = _error(inner)
    return out


# --------------------------------------------------------------------------- differences

_PROPOSED = "parity row (audit 17)"

# Where stageflow_trio's observation differs from 1.2.0's: the path in the scenario's
# result, the reason (a docs/parity.md row, or a proposed one), and what we observe
# (a value, a tuple of accepted values, or a check).
KNOWN: dict[tuple[str, ...], tuple[str, Any]] = {
    ("run_stage_runner_shapes", "bad_kind_str"): (
        "parity: Curated API, `kind` given but invalid",
        {"raises": "StageDefinitionTypeError", "is_value_error": False},
    ),
    ("run_stage_runner_shapes", "config_on_function", "raises"): (
        "parity: the builders' field errors (a ValueError subclass)",
        "PipelineConfigError",
    ),
    ("run_stage_runner_shapes", "no_kind", "raises"): (
        "parity: Spec classes, StageDefinitionError (a ValueError)",
        "StageDefinitionError",
    ),
    ("curated_argument_errors", "stage_after_and_dependencies", "raises"): (
        "parity: Spec classes, StageDefinitionError (a ValueError)",
        "StageDefinitionError",
    ),
    ("run_stage_bad_returns", "int", "original", "raises"): (
        f"{_PROPOSED}: an unsupported stage return keeps its TypeError (0.9.1)",
        "TypeError",
    ),
    ("run_stage_bad_returns", "int", "cause"): (
        "parity: UnifiedStageGraph interceptors (`__cause__` the stage's exception)",
        "TypeError",
    ),
    ("run_stage_bad_returns", "raises", "cause"): (
        "parity: UnifiedStageGraph interceptors (`__cause__` the stage's exception)",
        "KeyError",
    ),
    ("compose_and_stage_names", "composed_name"): (
        f"{_PROPOSED}: Pipeline.compose keeps 0.9.1's left name and right-wins merge",
        "a",
    ),
    ("compose_and_stage_names", "conflict"): (
        f"{_PROPOSED}: Pipeline.compose keeps 0.9.1's left name and right-wins merge",
        "no error",
    ),
    ("cancellation_checkpoint_in_stage", "pipeline_ctx", "outcome"): (
        "parity: `cancellation_checkpoint()` (inside a cancelled run the checkpoint "
        "raises trio.Cancelled first) and `mark_canceled` (at once)",
        {
            "raises": "UnifiedPipelineCancelled",
            "message": "Pipeline cancelled by stage '<external>': halt",
            "stage": "<external>",
            "reason": "halt",
            "results": {},
        },
    ),
    ("cancellation_checkpoint_in_stage", "stage_ctx", "outcome"): (
        "parity: `cancellation_checkpoint()` and `mark_canceled` (as above)",
        {
            "raises": "UnifiedPipelineCancelled",
            "message": "Pipeline cancelled by stage '<external>': halt",
            "stage": "<external>",
            "reason": "halt",
            "results": {},
        },
    ),
    ("wide_events_failed_and_cancelled", "raised", "events"): (
        f"{_PROPOSED}: a raising stage has its `stage.wide` and is counted in `pipeline.wide`",
        lambda events: _raised_stage_reported(events),
    ),
}


def _raised_stage_reported(events: list[dict[str, Any]]) -> bool:
    """1.2.0 leaves a raising stage out of the wide events; we report it as failed."""
    types = [event["type"] for event in events]
    wide = events[-1]["data"]
    failed = [
        e["data"] for e in events if e["type"] == "stage.wide" and e["data"]["stage"] == "last"
    ]
    return (
        types == ["stage.wide", "stage.wide", "pipeline.wide"]
        and failed[0]["status"] == "failed"
        and failed[0]["error"] == "kaput"
        and wide["status"] == "failed"
        and wide["stage_counts"] == {"completed": 1, "failed": 1}
        and [d["stage"] for d in wide["stage_details"]] == ["ok", "last"]
    )


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _blank(tree: Any, path: tuple[str, ...]) -> None:
    _get(tree, path[:-1])[path[-1]] = "<known difference>"


def check(name: str, golden: Any, ours: Any) -> None:
    """Assert that ``ours`` is ``golden`` but for the KNOWN differences of scenario ``name``."""
    for path, (why, expected) in KNOWN.items():
        if path[0] != name:
            continue
        theirs, mine = _get(golden, path[1:]), _get(ours, path[1:])
        if callable(expected):
            assert expected(mine), f"{path}: {why}; ours is {mine!r}"
        elif isinstance(expected, tuple):
            assert mine in expected, f"{path}: {why}; ours is {mine!r}"
        else:
            assert mine == expected, f"{path}: {why}; ours is {mine!r}"
            assert theirs != expected, f"{path} no longer differs from 1.2.0: drop it from KNOWN"
        _blank(golden, path[1:])
        _blank(ours, path[1:])
    assert ours == golden


# --------------------------------------------------------------------------- running


async def _as_coroutine(fn: Scenario, env: Env) -> Any:
    return await fn(env)


def _run_one_reference(name: str) -> Any:
    import asyncio
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    env = Env("stageflow")
    try:
        value: Any = asyncio.run(_as_coroutine(SCENARIOS[name], env))
    except Exception as exc:  # the scenario itself crashed: record it
        value = {"scenario_raised": _error(exc)}
    return normalise(value)


def run_ours(name: str) -> Any:
    """The scenario on stageflow_trio, under trio with a MockClock (no real sleeps)."""
    import trio
    import trio.testing

    from stageflow_trio.testing import reset_globals

    reset_globals()
    env = Env("stageflow_trio")

    async def main() -> Any:
        try:
            return await SCENARIOS[name](env)
        except Exception as exc:
            return {"scenario_raised": _error(exc)}

    return normalise(trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)))


def record() -> dict[str, Any]:
    """Every scenario's 1.2.0 observations (run under 1.2.0's Python)."""
    import importlib.metadata

    version = importlib.metadata.version("stageflow-core")
    if version != "1.2.0":
        raise SystemExit(f"needs stageflow-core 1.2.0, found {version}")
    return {
        "stageflow-core": version,
        "scenarios": {name: _run_one_reference(name) for name in sorted(SCENARIOS)},
    }


def regenerate_golden(python: str = REF12_PYTHON) -> Path:
    """Rewrite the golden file by running this module under 1.2.0's Python."""
    subprocess.run(
        [python, "-m", "tests.test_audit17_ref12_differential", "--record"],
        check=True,
        cwd=HERE.parent,
    )
    return GOLDEN


def _load_golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


def _make_test(name: str) -> Callable[[], None]:
    def test() -> None:
        golden = _load_golden()["scenarios"][name]
        check(name, golden, run_ours(name))

    test.__name__ = test.__qualname__ = f"test_{name}"
    test.__doc__ = SCENARIOS[name].__doc__
    return test


# One test per scenario (no pytest import at the top: 1.2.0's venv records this module).
for _name in SCENARIOS:
    globals()[f"test_{_name}"] = _make_test(_name)


def test_golden_covers_every_scenario() -> None:
    golden = _load_golden()
    assert golden["stageflow-core"] == "1.2.0"
    assert sorted(golden["scenarios"]) == sorted(SCENARIOS)
    assert all("scenario_raised" not in value for value in golden["scenarios"].values())


def test_known_paths_name_scenarios() -> None:
    assert {path[0] for path in KNOWN} <= set(SCENARIOS)


def test_regenerate_golden() -> None:
    """``STAGEFLOW_REF12_RECORD=1``: rewrite the golden file from 1.2.0 (needs its venv)."""
    import pytest

    if os.environ.get("STAGEFLOW_REF12_RECORD") != "1":
        pytest.skip("set STAGEFLOW_REF12_RECORD=1 to regenerate the 1.2.0 golden file")
    if not Path(REF12_PYTHON).exists():
        pytest.skip(f"no 1.2.0 venv at {REF12_PYTHON}")
    assert regenerate_golden().exists()


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        text = json.dumps(record(), indent=1, sort_keys=True, ensure_ascii=False)
        GOLDEN.write_text(text + "\n", encoding="utf-8")
        print(GOLDEN)
    elif sys.argv[1:2] == ["--ours"]:
        names = sys.argv[2:] or sorted(SCENARIOS)
        print(json.dumps({n: run_ours(n) for n in names}, indent=1, sort_keys=True))
    else:
        raise SystemExit(__doc__)
