"""The auth interceptors fail closed: when a check cannot be made, the stage never runs.

The interceptor chain logs and swallows hook errors (except CriticalInterceptorError), so
an authorization hook that merely raised would let the stage run unauthenticated. These
tests go through real runs (the legacy StageGraph and ``Pipeline.run``), not ``before``
alone, since the chain is where the error used to be swallowed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from stageflow_trio.auth import AuthInterceptor, OrgEnforcementInterceptor
from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.dag import (
    StageExecutionError,
    StageGraph,
    StageSpec,
    UnifiedStageExecutionError,
)
from stageflow_trio.pipeline.interceptors import CriticalInterceptorError
from stageflow_trio.stages.context import PipelineContext
from tests.auth.helpers import ORG, OTHER_ORG, USER, our_ctx
from tests.fakes import FailingSink

DOWN = "auth interceptor failed, so stage 'report' does not run: RuntimeError: JWKS endpoint down"


class KeyServerDown:
    """A JwtValidator whose key server is unreachable."""

    def __init__(self) -> None:
        self.tokens: list[Any] = []

    async def validate(self, token: str) -> dict[str, Any]:
        self.tokens.append(token)
        raise RuntimeError("JWKS endpoint down")


class Report:
    """A stage that records every call it gets."""

    def __init__(self) -> None:
        self.calls = 0

    async def legacy(self, ctx: PipelineContext) -> dict[str, Any]:
        self.calls += 1
        return {"secret": "payroll"}

    async def unified(self, ctx: Any) -> StageOutput:
        self.calls += 1
        return StageOutput.ok(secret="payroll")


async def test_a_key_server_outage_fails_a_legacy_run_without_running_the_stage() -> None:
    report = Report()
    validator = KeyServerDown()
    graph = StageGraph(
        [StageSpec(name="report", runner=report.legacy)], [AuthInterceptor(validator)]
    )
    ctx, sink = our_ctx({"_auth_token": "t"})
    with pytest.raises(StageExecutionError) as info:
        await graph.run(ctx)
    assert str(info.value) == f"Stage report failed: {DOWN}"
    critical = info.value.__cause__
    assert isinstance(critical, CriticalInterceptorError)
    assert critical.interceptor_name == "auth"
    assert isinstance(critical.__cause__, RuntimeError)
    assert validator.tokens == ["t"]
    assert report.calls == 0
    assert "_auth_context" not in ctx.data
    assert [t for t, _ in sink.events if t.startswith(("auth.", "tenant."))] == []


async def test_a_key_server_outage_fails_a_pipeline_run_without_running_the_stage() -> None:
    report = Report()
    pipeline = Pipeline(name="p").with_stage("report", report.unified, StageKind.TRANSFORM)
    with pytest.raises(
        UnifiedStageExecutionError, match=rf"^Stage 'report' failed: {DOWN}$"
    ) as info:
        await pipeline.run(
            data={"_auth_token": "t"}, interceptors=[AuthInterceptor(KeyServerDown())]
        )
    assert isinstance(info.value.__cause__, CriticalInterceptorError)
    assert report.calls == 0


@pytest.mark.parametrize(
    ("token", "kind"),
    [(123, "int"), (b"valid_x", "bytes"), (["t"], "list")],
)
async def test_a_token_of_the_wrong_type_is_an_invalid_credential(token: Any, kind: str) -> None:
    # bytes reach the validator (SignedJwtValidator takes them); the mock refuses them.
    report = Report()
    graph = StageGraph(
        [StageSpec(name="report", runner=report.legacy)],
        [AuthInterceptor(), OrgEnforcementInterceptor()],
    )
    ctx, sink = our_ctx({"_auth_token": token})
    results = await graph.run(ctx)
    assert report.calls == 0
    assert results["report"].error == f"Invalid token: expected a string; got {kind}"
    assert results["report"].data == {}
    assert [(t, d and d["reason"]) for t, d in sink.events if t.startswith("auth.")] == [
        ("auth.failure", "invalid_token")
    ]


async def test_a_token_of_the_wrong_type_never_runs_a_pipeline_stage() -> None:
    report = Report()
    pipeline = Pipeline(name="p").with_stage("report", report.unified, StageKind.TRANSFORM)
    with pytest.raises(
        UnifiedStageExecutionError,
        match=r"^Stage 'report' failed: Invalid token: expected a string; got int$",
    ):
        await pipeline.run(data={"_auth_token": 123}, interceptors=[AuthInterceptor()])
    assert report.calls == 0


async def test_a_denial_whose_event_cannot_be_sent_still_denies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    report = Report()
    graph = StageGraph(
        [StageSpec(name="report", runner=report.legacy)],
        [AuthInterceptor(), OrgEnforcementInterceptor()],
    )
    sink = FailingSink("tenant.access_denied")
    ctx, _ = our_ctx(
        {"_auth_token": f"valid_{USER}_{ORG}_admin", "_resource_org_id": UUID(OTHER_ORG)}
    )
    ctx.event_sink = sink
    results = await graph.run(ctx)
    assert (results["report"].status, results["report"].error) == (
        "completed",
        "Cross-tenant access denied",
    )
    assert report.calls == 0
    assert "Failed to emit tenant.access_denied: sink down" in caplog.messages


async def test_a_login_event_that_cannot_be_sent_is_logged_and_the_stage_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The user is authenticated: a broken sink must not turn that into an outage.
    report = Report()
    graph = StageGraph([StageSpec(name="report", runner=report.legacy)], [AuthInterceptor()])
    ctx, _ = our_ctx({"_auth_token": f"valid_{USER}"})
    ctx.event_sink = FailingSink("auth.login")
    results = await graph.run(ctx)
    assert results["report"].status == "completed"
    assert report.calls == 1
    assert "Failed to emit auth.login: sink down" in caplog.messages
