"""stages.payloads: the payload + summary convention (behaviour against 1.2.0: test_ref12_differential)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from stageflow_trio.core import StageOutput, StageStatus
from stageflow_trio.stages import (
    StagePayloadResult,
    cancel_output,
    fail_output,
    ok_output,
    payload_from_results,
    summary_from_output,
)
from stageflow_trio.stages.payloads import PAYLOAD_KEY, SUMMARY_KEY


def test_result_is_frozen_and_copies_its_summary() -> None:
    summary = {"n": 1}
    result = StagePayloadResult(payload=[1], summary=summary)
    summary["n"] = 2
    assert result.summary == {"n": 1}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.payload = []  # type: ignore[misc]
    assert (PAYLOAD_KEY, SUMMARY_KEY) == ("payload", "summary")


def test_outputs_carry_payload_and_summary() -> None:
    result = StagePayloadResult(payload="text", summary={"chars": 4})
    assert ok_output(result).data == {"payload": "text", "summary": {"chars": 4}}
    cancelled = cancel_output(result, reason="user")
    assert cancelled.status is StageStatus.CANCEL
    assert cancelled.data == {"cancel_reason": "user", "payload": "text", "summary": {"chars": 4}}
    failed = fail_output(error="boom", summary={"partial": True})
    assert (failed.status, failed.error) == (StageStatus.FAIL, "boom")
    assert summary_from_output(failed) == {"partial": True}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: StagePayloadResult(payload=1, summary=[("a", 1)]),  # type: ignore[arg-type]
            r"^StagePayloadResult: summary must be a mapping; got list$",
        ),
        (
            lambda: ok_output({"payload": 1}),  # type: ignore[arg-type]
            r"^ok_output: result must be a StagePayloadResult; got dict$",
        ),
        (
            lambda: cancel_output(StageOutput.ok()),  # type: ignore[arg-type]
            r"^cancel_output: result must be a StagePayloadResult; got StageOutput$",
        ),
    ],
)
def test_bad_input_is_a_type_error_naming_the_parameter(call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()


def test_payload_from_results_asks_require_ok_when_there_is_one() -> None:
    asked: list[str] = []

    class Results(dict[str, StageOutput]):
        def require_ok(self, name: str) -> StageOutput:
            asked.append(name)
            return ok_output(StagePayloadResult(payload=7))

    assert payload_from_results(Results(), "any", expected_type=int) == 7
    assert asked == ["any"]
