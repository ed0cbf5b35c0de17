"""The payload + summary output convention: a stage's result under ``"payload"``, metadata under ``"summary"``.

A stage that produces one typed value returns it wrapped in a
:class:`StagePayloadResult` through :func:`ok_output` (or :func:`cancel_output` /
:func:`fail_output`); a later stage reads it back with :func:`payload_from_inputs`,
and the caller of a run with :func:`payload_from_results`, both optionally
checking its type. :func:`summary_from_output` reads the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.stages.inputs import StageInputs

if TYPE_CHECKING:
    # Only for typing: core.stage_context imports stages.inputs, whose package imports this.
    from stageflow_trio.core.stage_context import StageContext

__all__ = [
    "PAYLOAD_KEY",
    "SUMMARY_KEY",
    "StagePayloadResult",
    "cancel_output",
    "fail_output",
    "ok_output",
    "payload_from_inputs",
    "payload_from_results",
    "summary_from_output",
]

PAYLOAD_KEY = "payload"
"""The ``StageOutput.data`` key holding the payload."""

SUMMARY_KEY = "summary"
"""The ``StageOutput.data`` key holding the summary dict."""

_PayloadT = TypeVar("_PayloadT")


def _summary(value: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"StagePayloadResult: summary must be a mapping; got {type(value).__name__}"
        )
    return dict(value)


@frozen_compat
@attrs.frozen
class StagePayloadResult(Generic[_PayloadT]):
    """A stage's typed payload and an optional summary (a copy is kept).

    Attributes:
        payload: The value the stage produced.
        summary: Small metadata about it (counts, timings), a dict.
    """

    payload: _PayloadT
    summary: dict[str, Any] = attrs.field(factory=dict, converter=_summary)


def _data(payload: Any, summary: Mapping[str, Any]) -> dict[str, Any]:
    return {PAYLOAD_KEY: payload, SUMMARY_KEY: dict(summary)}


def _check_result(owner: str, result: object) -> StagePayloadResult[Any]:
    if not isinstance(result, StagePayloadResult):
        raise TypeError(
            f"{owner}: result must be a StagePayloadResult; got {type(result).__name__}"
        )
    return result


def ok_output(result: StagePayloadResult[Any]) -> StageOutput:
    """``StageOutput.ok`` with data ``{"payload": ..., "summary": {...}}``.

    Raises:
        TypeError: ``result`` is not a StagePayloadResult.
    """
    result = _check_result("ok_output", result)
    return StageOutput.ok(data=_data(result.payload, result.summary))


def cancel_output(result: StagePayloadResult[Any], *, reason: str = "") -> StageOutput:
    """``StageOutput.cancel(reason=...)`` carrying the payload and summary.

    Raises:
        TypeError: ``result`` is not a StagePayloadResult.
    """
    result = _check_result("cancel_output", result)
    return StageOutput.cancel(reason=reason, data=_data(result.payload, result.summary))


def fail_output(
    *, error: str, payload: Any = None, summary: Mapping[str, Any] | None = None
) -> StageOutput:
    """``StageOutput.fail(error=...)`` carrying a (partial) payload and summary."""
    return StageOutput.fail(error=error, data=_data(payload, summary or {}))


def summary_from_output(output: StageOutput) -> dict[str, Any]:
    """A copy of the output's summary; ``{}`` when absent or not a mapping."""
    if not isinstance(output, StageOutput):
        raise TypeError(
            f"summary_from_output: output must be a StageOutput; got {type(output).__name__}"
        )
    summary = output.data.get(SUMMARY_KEY)
    return dict(summary) if isinstance(summary, Mapping) else {}


def _coerce(
    payload: Any, stage_name: str, source: str, expected_type: type[_PayloadT] | None
) -> _PayloadT:
    if expected_type is not None and not isinstance(payload, expected_type):
        raise TypeError(
            f"Stage {stage_name!r} payload from {source} did not match "
            f"{expected_type.__name__}; got {type(payload).__name__}"
        )
    return cast("_PayloadT", payload)


def payload_from_inputs(
    ctx_or_inputs: StageContext | StageInputs,
    stage_name: str,
    *,
    expected_type: type[_PayloadT] | None = None,
) -> _PayloadT:
    """The payload a dependency stage produced, read from a stage's inputs.

    Raises:
        KeyError: ``stage_name`` has no output, or its data has no payload.
        UndeclaredDependencyError: ``stage_name`` is not a declared dependency (strict inputs).
        TypeError: ``expected_type`` is given and the payload is not one, or
            ``ctx_or_inputs`` is neither a StageInputs nor a context with ``inputs``.
    """
    inputs = ctx_or_inputs if isinstance(ctx_or_inputs, StageInputs) else None
    if inputs is None:
        inputs = getattr(ctx_or_inputs, "inputs", None)
        if not isinstance(inputs, StageInputs):
            raise TypeError(
                "payload_from_inputs: ctx_or_inputs must be a StageContext or StageInputs; "
                f"got {type(ctx_or_inputs).__name__}"
            )
    payload = inputs.require_from(stage_name, PAYLOAD_KEY)
    return _coerce(payload, stage_name, "stage inputs", expected_type)


def payload_from_results(
    results: Mapping[str, StageOutput],
    stage_name: str,
    *,
    expected_type: type[_PayloadT] | None = None,
) -> _PayloadT:
    """The payload of ``stage_name`` in a run's results, which must be OK.

    ``results`` is what a graph run returns (a ``{name: StageOutput}`` mapping);
    an object with a ``require_ok(name)`` method (stageflow 1.2's
    ``PipelineResults``) is asked through that method.

    Raises:
        KeyError: ``stage_name`` is not in ``results``, or its data has no payload.
        RuntimeError: The stage did not finish with status OK.
        TypeError: ``expected_type`` is given and the payload is not one, ``stage_name``
            is not a str, or ``results`` is neither a mapping nor has ``require_ok``.
    """
    if not isinstance(stage_name, str):
        raise TypeError(
            f"payload_from_results: stage_name must be a str; got {type(stage_name).__name__}"
        )
    require_ok = getattr(results, "require_ok", None)
    if not callable(require_ok) and not isinstance(results, Mapping):
        raise TypeError(
            "payload_from_results: results must be a mapping of stage outputs "
            f"(or have require_ok); got {type(results).__name__}"
        )
    output = require_ok(stage_name) if callable(require_ok) else _require_ok(results, stage_name)
    return _coerce(output.data[PAYLOAD_KEY], stage_name, "pipeline results", expected_type)


def _require_ok(results: Mapping[str, StageOutput], stage_name: str) -> StageOutput:
    """``PipelineResults.require_ok`` for a plain mapping (same messages)."""
    if stage_name not in results:
        available = ", ".join(sorted(results)) or "<none>"
        raise KeyError(
            f"Stage {stage_name!r} not found in pipeline results. Available: {available}"
        )
    output = results[stage_name]
    if output.status is not StageStatus.OK:
        data = output.data
        detail = output.error or data.get("reason") or data.get("cancel_reason")
        suffix = f": {detail}" if detail else ""
        raise RuntimeError(
            f"Stage {stage_name!r} did not complete with OK status ({output.status.value}){suffix}"
        )
    return output
