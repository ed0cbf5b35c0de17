"""PipelineResults: a dict of stage outputs with require / require_ok / data / ok / failed."""

from __future__ import annotations

import pytest

from stageflow_trio.core import StageOutput, StageStatus
from stageflow_trio.pipeline.results import PipelineResults


def _results() -> PipelineResults:
    return PipelineResults(
        ok=StageOutput.ok(value=1),
        skipped=StageOutput.skip(reason="not today"),
        failed=StageOutput.fail(error="bad input"),
        cancelled=StageOutput.cancel(reason="enough"),
        quiet_fail=StageOutput(status=StageStatus.FAIL),  # no error, no reason
        retry=StageOutput.retry(error="later"),
    )


def test_is_a_plain_dict() -> None:
    results = _results()
    assert isinstance(results, dict)
    assert dict(results) == results
    with pytest.raises(AttributeError):
        results.extra = 1  # type: ignore[attr-defined]  # __slots__: no instance dict


def test_require() -> None:
    results = _results()
    assert results.require("ok") is results["ok"]
    with pytest.raises(KeyError) as info:
        results.require("nope")
    assert info.value.args == (
        "Stage 'nope' not found in pipeline results. Available: cancelled, failed, ok, "
        "quiet_fail, retry, skipped",
    )
    assert info.value.__suppress_context__
    with pytest.raises(KeyError) as empty:
        PipelineResults().require("x")
    assert empty.value.args == ("Stage 'x' not found in pipeline results. Available: <none>",)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("skipped", "Stage 'skipped' did not complete with OK status (skip): not today"),
        ("failed", "Stage 'failed' did not complete with OK status (fail): bad input"),
        ("cancelled", "Stage 'cancelled' did not complete with OK status (cancel): enough"),
        ("quiet_fail", "Stage 'quiet_fail' did not complete with OK status (fail)"),
        ("retry", "Stage 'retry' did not complete with OK status (retry): later"),
    ],
)
def test_require_ok_names_the_status_and_detail(name: str, message: str) -> None:
    with pytest.raises(RuntimeError) as info:
        _results().require_ok(name)
    assert str(info.value) == message


def test_require_ok_returns_an_ok_output() -> None:
    results = _results()
    assert results.require_ok("ok") is results["ok"]
    with pytest.raises(KeyError, match="Stage 'nope' not found"):
        results.require_ok("nope")


def test_data() -> None:
    results = _results()
    assert results.data("ok") == {"value": 1}
    assert results.data("nope", {"d": 1}) == {"d": 1}
    with pytest.raises(KeyError) as info:
        results.data("nope")
    assert info.value.args == ("nope",)


def test_ok_failed_output() -> None:
    results = _results()
    assert [results.ok(name) for name in ("ok", "skipped", "failed", "nope")] == [
        True,
        False,
        False,
        False,
    ]
    assert results.failed() == ["failed", "quiet_fail"]
    fallback = StageOutput.ok()
    assert results.output("nope") is None
    assert results.output("nope", fallback) is fallback
    assert results.output("ok", fallback) is results["ok"]
