"""Scenarios of the curated API that run unchanged on stageflow 1.2.0 and on stageflow_trio.

Each scenario takes the library's ``api`` module and returns plain JSON data.
Nothing here imports either library or awaits anything library-specific, so
``record_ref12.py`` runs the scenarios under asyncio with 1.2.0 and
``test_curated_differential.py`` runs them under trio and compares.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

Scenario = Callable[[ModuleType], Awaitable[Any]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _output(output: Any) -> dict[str, Any]:
    return {
        "status": output.status.value,
        "data": _jsonable(dict(output.data)),
        "error": output.error,
    }


def _results(results: Any, *, ordered: bool = True) -> dict[str, Any]:
    # Stages that run side by side finish in a scheduling-dependent order.
    return {
        "type": type(results).__name__,
        "is_dict": isinstance(results, dict),
        "order": list(results) if ordered else sorted(results),
        "outputs": {name: _output(out) for name, out in results.items()},
    }


async def _error(call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    try:
        await call()
    except Exception as exc:
        return {
            "error": type(exc).__name__,
            "message": str(exc),
            "value_error": isinstance(exc, ValueError),
            "type_error": isinstance(exc, TypeError),
            "key_error": isinstance(exc, KeyError),
        }
    return {"error": None}


def _sync_error(call: Callable[[], Any]) -> dict[str, Any]:
    try:
        call()
    except Exception as exc:
        return {
            "message": str(exc),
            "value_error": isinstance(exc, ValueError),
            "type_error": isinstance(exc, TypeError),
            "key_error": isinstance(exc, KeyError),
        }
    return {"message": None}


async def echo(ctx: Any) -> dict[str, Any]:
    snapshot = ctx.snapshot
    return {
        "text": snapshot.input_text,
        "topology": snapshot.topology,
        "mode": snapshot.execution_mode,
        "run_id": str(snapshot.pipeline_run_id),
        "user_id": str(snapshot.user_id),
        "stage": ctx.stage_name,
    }


async def upper(ctx: Any) -> dict[str, Any]:
    return {"text": str(ctx.inputs.get_from("echo", "text")).upper()}


async def joined(ctx: Any) -> dict[str, Any]:
    return {
        "joined": f"{ctx.inputs.get_from('echo', 'text')}+{ctx.inputs.get_from('upper', 'text')}"
    }


@scenario
async def run_with_context_keywords(api: ModuleType) -> Any:
    pipeline = api.Pipeline().with_stage("echo", echo, "transform")
    results = await pipeline.run(
        input_text="hi",
        execution_mode="practice",
        user_id="6f1c2f0e-54b1-4a9e-9a59-2b3a2f6f0c11",
    )
    return _results(results)


@scenario
async def run_with_pipeline_context_keywords(api: ModuleType) -> Any:
    """The PipelineContext-only keywords (1.2.0: ``PipelineContext.create(**kwargs)``)."""
    advanced = importlib.import_module(api.__name__.rpartition(".")[0] + ".advanced")
    seen: list[dict[str, Any]] = []

    class See(advanced.BaseInterceptor):  # type: ignore[misc,name-defined]
        name = "see"
        priority = 1

        async def before(self, stage_name: str, ctx: Any) -> None:
            seen.append(
                {
                    "stage": stage_name,
                    "type": type(ctx).__name__,
                    "data": {k: v for k, v in ctx.data.items() if not k.startswith("_")},
                    "configuration": ctx.configuration,
                    "service": ctx.service,
                    "db": ctx.db,
                    "artifacts": [[a.type, dict(a.payload)] for a in ctx.artifacts],
                    "canceled": ctx.canceled,
                    "topology": ctx.topology,
                    "input_text": ctx.input_text,
                }
            )

        async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
            return None

    async def probe(ctx: Any) -> dict[str, Any]:
        ports = ctx.inputs.ports
        return {
            "ports": type(ports).__name__,
            "db": getattr(ports, "db", None),
            "text": ctx.snapshot.input_text,
            "topology": ctx.snapshot.topology,
        }

    pipeline = api.Pipeline(name="kw").with_stage("probe", probe, "work")
    data = {"k": 1}
    configuration = {"c": 2}
    results = await pipeline.run(
        data=data,
        configuration=configuration,
        service="svc",
        db="DB",
        artifacts=[api.StageArtifact(type="note", payload={"n": 1})],
        input_text="hi",
        interceptors=[See()],
    )
    invoked = await pipeline.invoke("inv", data={"i": 1}, interceptors=[See()])
    single = await api.run_stage(
        "probe", probe, "work", configuration={"s": 1}, db="D2", interceptors=[See()]
    )
    canceled = await _error(lambda: pipeline.run(canceled=True))
    return {
        "results": _results(results),
        "invoked": _results(invoked),
        "single": _output(single),
        "seen": _jsonable(seen),
        "inputs_unchanged": [data, configuration],
        "canceled": canceled,
    }


@scenario
async def run_defaults_topology_to_pipeline_name(api: ModuleType) -> Any:
    pipeline = api.Pipeline(name="chat").with_stage("echo", echo, api.StageKind.TRANSFORM)
    return [
        _results(await pipeline.run()),
        _results(await pipeline.run(topology="other")),
    ]


@scenario
async def from_stages_with_after(api: ModuleType) -> Any:
    pipeline = api.Pipeline.from_stages(
        api.stage("echo", echo, "transform"),
        api.stage("upper", upper, "transform", after="echo"),
        api.stage("joined", joined, api.StageKind.WORK, after=["echo", "upper"]),
        name="chain",
    )
    results = await pipeline.run(input_text="abc")
    specs = {
        name: [spec.kind.value, list(spec.dependencies), spec.conditional]
        for name, spec in pipeline.stages.items()
    }
    return {"name": pipeline.name, "specs": specs, "results": _results(results)}


@scenario
async def with_stage_after_and_dependencies(api: ModuleType) -> Any:
    pipeline = (
        api.Pipeline()
        .with_stage("echo", echo, "transform")
        .with_stage("upper", upper, "transform", after="echo")
        .with_stage("joined", joined, "work", ("echo", "upper"))
    )
    both = _sync_error(lambda: api.Pipeline().with_stage("x", echo, "work", ("a",), after="b"))
    return {"results": _results(await pipeline.invoke("q")), "both": both}


@scenario
async def kind_inferred_from_runner(api: ModuleType) -> Any:
    @api.stage_metadata(name="decorated", kind="enrich")
    class Decorated:
        async def execute(self, ctx: Any) -> Any:
            cls: Any = type(self)  # the decorator added name and kind
            return api.StageOutput.ok(name=cls.name, kind=cls.kind.value)

    class WithStrKind:
        kind = "guard"

        async def execute(self, ctx: Any) -> Any:
            return {"ok": True}

    class BadKind:
        kind = "nope"

        async def execute(self, ctx: Any) -> Any:
            return None

    pipeline = api.Pipeline().with_stage("d", Decorated).with_stage("g", WithStrKind(), after="d")
    decorated: Any = Decorated
    return {
        "attrs": [decorated.name, decorated.kind.value, type(decorated.kind).__name__],
        "kinds": {name: spec.kind.value for name, spec in pipeline.stages.items()},
        "results": _results(await pipeline.run()),
        "missing": _sync_error(lambda: api.Pipeline().with_stage("f", echo)),
        "bad": _sync_error(lambda: api.stage("b", BadKind)),
        "config_on_function": _sync_error(lambda: api.stage("c", echo, "work", config={"x": 1})),
    }


@scenario
async def stage_class_with_config(api: ModuleType) -> Any:
    class Greeter:
        kind = "transform"

        def __init__(self, greeting: str = "hello") -> None:
            self.greeting = greeting

        async def execute(self, ctx: Any) -> Any:
            return api.StageOutput.ok(text=f"{self.greeting}, {ctx.snapshot.input_text}")

    output = await api.run_stage("greet", Greeter, config={"greeting": "hey"}, input_text="bob")
    spec = api.stage("greet", Greeter, conditional=True, config={"greeting": "yo"})
    return {
        "output": _output(output),
        "spec": [spec.kind.value, spec.conditional, dict(spec.config)],
    }


@scenario
async def run_stage_topology(api: ModuleType) -> Any:
    plain = await api.run_stage("echo", echo, "transform", input_text="x")
    named = await api.run_stage("echo", echo, "transform", topology="custom")
    return [_output(plain), _output(named)]


@scenario
async def invoke_shapes(api: ModuleType) -> Any:
    pipeline = api.Pipeline().with_stage("echo", echo, "transform")
    return {
        "positional": _results(await pipeline.invoke("hello")),
        "keyword": _results(await pipeline.invoke(input_text="kw")),
        "none": _results(await pipeline.invoke()),
        "twice": await _error(lambda: pipeline.invoke("a", input_text="b")),
    }


@scenario
async def results_helpers(api: ModuleType) -> Any:
    async def skipper(ctx: Any) -> Any:
        return api.StageOutput.skip(reason="not today")

    async def failing_output(ctx: Any) -> Any:
        return None

    pipeline = (
        api.Pipeline()
        .with_stage("echo", echo, "transform")
        .with_stage("skipper", skipper, "route")
        .with_stage("none", failing_output, "work")
    )
    results = await pipeline.run(input_text="r")
    missing_data = _sync_error(lambda: results.data("missing"))
    return {
        "results": _results(results, ordered=False),
        "require": _output(results.require("echo")),
        "require_missing": _sync_error(lambda: results.require("missing")),
        "require_ok_skip": _sync_error(lambda: results.require_ok("skipper")),
        "require_ok": _output(results.require_ok("none")),
        "data": _jsonable(dict(results.data("echo"))),
        "data_default": results.data("missing", {"d": 1}),
        "data_missing": missing_data,
        "ok": [results.ok("echo"), results.ok("skipper"), results.ok("missing")],
        "failed": results.failed(),
        "output": [results.output("missing") is None, results.output("echo") is results["echo"]],
        "empty_require": _sync_error(lambda: type(results)().require("x")),
    }


@scenario
async def failing_stage(api: ModuleType) -> Any:
    async def boom(ctx: Any) -> Any:
        raise RuntimeError("boom")

    async def fails(ctx: Any) -> Any:
        return api.StageOutput.fail(error="bad input")

    return {
        "raised": await _error(lambda: api.run_stage("boom", boom, "work")),
        "fail_output": await _error(lambda: api.run_stage("fails", fails, "work")),
    }


@scenario
async def run_argument_errors(api: ModuleType) -> Any:
    pipeline = api.Pipeline().with_stage("echo", echo, "transform")
    results = await pipeline.run(input_text="x")
    return {
        "empty": await _error(lambda: api.Pipeline().run()),
        "results_type": type(results).__name__,
    }


@scenario
async def enums(api: ModuleType) -> Any:
    return {
        enum.__name__: [[str(m), f"{m}", repr(m), json.dumps(m), m == m.value] for m in enum]
        for enum in (api.StageKind, api.StageStatus)
    }
