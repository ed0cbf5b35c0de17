"""Cases run through stageflow 1.2.0 and through stageflow_trio, with JSON-able results.

``run_cases("stageflow")`` runs under stageflow 1.2.0 (by ``make_ref12_golden.py``,
which records ``ref12_golden.json``); ``run_cases("stageflow_trio")`` runs here, and
``test_ref12_differential.py`` compares the two. Only plain Python: the 1.2.0 venv
has neither pytest nor trio. Everything that varies between runs (timers) is left out.
"""

from __future__ import annotations

import importlib
import warnings
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

RUN = UUID("11111111-1111-4111-8111-111111111111")
REQ = UUID("22222222-2222-4222-8222-222222222222")
SES = UUID("33333333-3333-4333-8333-333333333333")
USR = UUID("44444444-4444-4444-8444-444444444444")
ORG = UUID("55555555-5555-4555-8555-555555555555")
INT = UUID("66666666-6666-4666-8666-666666666666")
CHILD = UUID("77777777-7777-4777-8777-777777777777")
CORR = UUID("88888888-8888-4888-8888-888888888888")
CREATED = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def _output(output: Any) -> dict[str, Any]:
    return {
        "status": output.status.value,
        "data": _jsonable(output.data),
        "error": output.error,
    }


def _outcome(call: Any) -> Any:
    """What ``call()`` returns (JSON-able), or the exception it raises."""
    try:
        return {"value": _jsonable(call())}
    except Exception as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return {"raises": type(exc).__name__, "message": message}


def _payload_cases(pkg: str) -> dict[str, Any]:
    payloads = importlib.import_module(f"{pkg}.stages.payloads")
    core = importlib.import_module(f"{pkg}.core")
    inputs_mod = importlib.import_module(f"{pkg}.stages.inputs")
    testing = importlib.import_module(f"{pkg}.testing")
    if pkg == "stageflow":
        results_cls: Any = importlib.import_module(f"{pkg}.pipeline.results").PipelineResults
    else:
        results_cls = dict  # payload_from_results also takes a plain {name: StageOutput}
    result = payloads.StagePayloadResult
    out: dict[str, Any] = {}
    out["ok"] = _output(payloads.ok_output(result(payload={"n": [1, 2]}, summary={"count": 2})))
    out["ok_default_summary"] = _output(payloads.ok_output(result(payload="text")))
    out["cancel"] = _output(
        payloads.cancel_output(result(payload=[1], summary={"k": "v"}), reason="stop")
    )
    out["cancel_default_reason"] = _output(payloads.cancel_output(result(payload=None)))
    out["fail"] = _output(payloads.fail_output(error="boom", payload={"p": 1}, summary={"s": 2}))
    out["fail_defaults"] = _output(payloads.fail_output(error="boom"))
    out["summary_of_ok"] = payloads.summary_from_output(
        payloads.ok_output(result(payload=1, summary={"a": 1}))
    )
    out["summary_missing"] = payloads.summary_from_output(core.StageOutput.ok(data={"x": 1}))
    out["summary_not_a_dict"] = payloads.summary_from_output(
        core.StageOutput.ok(data={"summary": [1]})
    )
    out["result_fields"] = _jsonable(
        {"payload": result(payload=3).payload, "summary": result(payload=3).summary}
    )

    snapshot = testing.create_test_snapshot(pipeline_run_id=RUN)
    prior = {
        "producer": payloads.ok_output(result(payload={"v": 1})),
        "plain": core.StageOutput.ok(data={"x": 1}),
    }
    inputs = inputs_mod.create_stage_inputs(
        snapshot=snapshot,
        prior_outputs=prior,
        declared_deps=["producer", "plain"],
        stage_name="consumer",
    )
    stage_ctx = testing.create_test_stage_context(snapshot=snapshot, prior_outputs=prior)
    out["inputs_untyped"] = _outcome(lambda: payloads.payload_from_inputs(inputs, "producer"))
    out["inputs_typed"] = _outcome(
        lambda: payloads.payload_from_inputs(inputs, "producer", expected_type=dict)
    )
    out["inputs_wrong_type"] = _outcome(
        lambda: payloads.payload_from_inputs(inputs, "producer", expected_type=str)
    )
    out["inputs_no_payload"] = _outcome(lambda: payloads.payload_from_inputs(inputs, "plain"))
    out["inputs_from_stage_context"] = _outcome(
        lambda: payloads.payload_from_inputs(stage_ctx, "producer")
    )

    results = results_cls(
        {
            "good": payloads.ok_output(result(payload=[1, 2])),
            "bad": payloads.fail_output(error="it broke", payload=0),
            "stopped": payloads.cancel_output(result(payload=0), reason="user"),
            "skipped": core.StageOutput.skip(reason="nothing to do"),
        }
    )
    out["results_ok"] = _outcome(lambda: payloads.payload_from_results(results, "good"))
    out["results_typed"] = _outcome(
        lambda: payloads.payload_from_results(results, "good", expected_type=list)
    )
    out["results_wrong_type"] = _outcome(
        lambda: payloads.payload_from_results(results, "good", expected_type=dict)
    )
    out["results_missing"] = _outcome(lambda: payloads.payload_from_results(results, "nope"))
    out["results_failed"] = _outcome(lambda: payloads.payload_from_results(results, "bad"))
    out["results_cancelled"] = _outcome(lambda: payloads.payload_from_results(results, "stopped"))
    out["results_skipped"] = _outcome(lambda: payloads.payload_from_results(results, "skipped"))
    out["results_empty"] = _outcome(lambda: payloads.payload_from_results(results_cls(), "x"))
    return out


def _context_cases(pkg: str) -> dict[str, Any]:
    context_mod = importlib.import_module(f"{pkg}.stages.context")
    events = importlib.import_module(f"{pkg}.events")
    core = importlib.import_module(f"{pkg}.core")
    pctx_cls = context_mod.PipelineContext
    sink = events.NoOpEventSink()
    ids = {
        "pipeline_run_id": RUN,
        "request_id": REQ,
        "session_id": SES,
        "user_id": USR,
        "org_id": ORG,
        "interaction_id": INT,
    }
    out: dict[str, Any] = {}

    def make(**kwargs: Any) -> Any:
        return pctx_cls.create(
            **ids,
            topology="chat_fast",
            execution_mode="practice",
            input_text="hello",
            input_audio_duration_ms=1500,
            metadata={"channel": "web"},
            created_at=CREATED,
            configuration={"c": 1},
            event_sink=sink,
            data={"a": 1, "b": 2, "c": 3},
            **kwargs,
        )

    ctx = make()
    out["create_to_dict"] = _jsonable(ctx.to_dict())
    out["bare_to_dict"] = _jsonable(pctx_cls(event_sink=sink).to_dict())
    snapshot = ctx.to_snapshot()
    out["to_snapshot"] = _jsonable(snapshot.to_dict())
    out["snapshot_property"] = _jsonable(ctx.snapshot.to_dict())
    back = pctx_cls.from_snapshot(snapshot, event_sink=sink, data={"d": 4}, service="svc")
    out["from_snapshot_to_dict"] = _jsonable(back.to_dict())
    out["from_snapshot_round_trip"] = _jsonable(back.to_snapshot().to_dict())

    forks: dict[str, dict[str, Any]] = {
        "fork_default": {},
        "fork_inherit_all": {"inherit_data": True},
        "fork_inherit_keys": {"inherit_data": ["a", "c", "missing"]},
        "fork_inherit_generator": {"inherit_data": (k for k in ["b"])},
        "fork_overrides": {"inherit_data": ["a"], "data_overrides": {"a": 9, "z": 0}},
        "fork_overrides_only": {"data_overrides": {"z": 0}},
        "fork_labels": {"topology": "voice_fast", "execution_mode": "roleplay"},
    }
    for label, kwargs in forks.items():
        child = ctx.fork(CHILD, "spawner", CORR, **kwargs)
        out[label] = {
            "to_dict": _jsonable(child.to_dict()),
            "snapshot": _jsonable(child.to_snapshot().to_dict()),
            "parent_a": child.get_parent_data("a"),
        }
    out["fork_inherit_str"] = _outcome(lambda: ctx.fork(CHILD, "s", CORR, inherit_data="a"))

    canceled = make()
    canceled.mark_canceled()
    canceled.mark_canceled("second reason is ignored")
    out["mark_canceled_default"] = _jsonable(canceled.to_dict())
    reasoned = make()
    reasoned.mark_canceled(reason="user left")
    out["mark_canceled_reason"] = _jsonable(reasoned.to_dict())
    out["raise_if_cancelled_reason"] = _outcome(reasoned.raise_if_cancelled)
    out["raise_if_cancelled_not_cancelled"] = _outcome(make().raise_if_cancelled)
    no_reason = make()
    no_reason.canceled = True
    out["raise_if_cancelled_flag_only"] = _outcome(no_reason.raise_if_cancelled)

    root_source = make()
    root = root_source.derive_root_stage_context()
    named = root_source.derive_root_stage_context(stage_name="entry")

    def stage_view(stage_ctx: Any) -> dict[str, Any]:
        result = stage_ctx.to_dict()
        result.pop("started_at")
        return {
            "to_dict": _jsonable(result),
            "stage_name": stage_ctx.stage_name,
            "declared_deps": sorted(stage_ctx.inputs.declared_deps),
            "prior": sorted(stage_ctx.inputs.prior_outputs),
            "is_cancelled": stage_ctx.is_cancelled,
            "cancellation_reason": stage_ctx.cancellation_reason,
        }

    out["root_stage_context"] = stage_view(root)
    out["root_stage_context_named"] = stage_view(named)
    root_source.mark_canceled("stop now")
    out["root_after_cancel"] = stage_view(root)
    out["root_raise_if_cancelled"] = _outcome(root.raise_if_cancelled)
    flag_only = make()
    flag_root = flag_only.derive_root_stage_context(stage_name="s1")
    flag_only.canceled = True
    out["root_raise_flag_only"] = _outcome(flag_root.raise_if_cancelled)

    bag_mod = importlib.import_module(f"{pkg}.context.output_bag")
    bag = bag_mod.OutputBag()
    derived = make().derive_for_stage("llm", bag, declared_deps=["stt"])
    out["derive_for_stage_without_snapshot"] = stage_view(derived)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        as_pctx = root.as_pipeline_context(data={"k": 1}, service="svc")
    out["as_pipeline_context"] = _jsonable(as_pctx.to_dict())
    out["as_pipeline_context_snapshot"] = _jsonable(as_pctx.to_snapshot().to_dict())
    out["stage_cancellation_default"] = str(core.StageCancellationRequested())
    out["stage_cancellation_reason"] = core.StageCancellationRequested("r").reason
    return out


def run_cases(pkg: str) -> dict[str, Any]:
    """Every case's result under the library ``pkg`` (``"stageflow"`` or ``"stageflow_trio"``)."""
    return {"payloads": _payload_cases(pkg), "context": _context_cases(pkg)}
