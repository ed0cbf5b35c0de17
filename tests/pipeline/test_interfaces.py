"""stageflow_trio.pipeline.interfaces: the capability ABCs for legacy stages."""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

import pytest

from stageflow_trio._time import utc_now
from stageflow_trio.pipeline import interfaces
from stageflow_trio.pipeline.interfaces import (
    ConditionalStage,
    ConfigurableStage,
    DependentStage,
    ObservableStage,
    RetryableStage,
    Stage,
)
from stageflow_trio.stages.result import StageResult
from tests.fakes import pipeline_context

if TYPE_CHECKING:
    from types import ModuleType

    from stageflow_trio.stages.context import PipelineContext


def test_abstract_methods_match_the_reference(reference: ModuleType) -> None:
    ref = importlib.import_module("stageflow.pipeline.interfaces")
    assert sorted(interfaces.__all__) == sorted(ref.__all__)
    for name in interfaces.__all__:
        ours, theirs = getattr(interfaces, name), getattr(ref, name)
        assert ours.__abstractmethods__ == theirs.__abstractmethods__, name
        for method in ours.__abstractmethods__:
            assert list(inspect.signature(getattr(ours, method)).parameters) == list(
                inspect.signature(getattr(theirs, method)).parameters
            )


@pytest.mark.parametrize("cls", [getattr(interfaces, n) for n in interfaces.__all__])
def test_each_interface_is_abstract(cls: type[Any]) -> None:
    with pytest.raises(TypeError, match=r"^Can't instantiate abstract class"):
        cls()


_T = utc_now()


class Fetch(Stage, RetryableStage, ConditionalStage, ObservableStage):
    name = "fetch"
    max_retries = 2
    retryable_errors: tuple[type, ...] = (ConnectionError,)

    async def run(self, ctx: PipelineContext) -> StageResult:
        ctx.data["ran"] = True
        return StageResult(
            name=self.name, status="completed", started_at=_T, ended_at=_T, data={"ok": 1}
        )

    def should_run(self, ctx: PipelineContext) -> bool:
        return bool(ctx.data.get("go"))


class Configured(ConfigurableStage, DependentStage):
    def __init__(self, service: str) -> None:
        self.service = service
        self.config: dict[str, Any] = {}

    def configure(self, config: dict[str, Any]) -> None:
        self.config = dict(config)

    def get_config(self) -> dict[str, Any]:
        return self.config


async def test_a_combined_stage_runs_and_answers() -> None:
    stage = Fetch()
    ctx = pipeline_context(data={"go": 1})
    assert stage.should_run(ctx) is True
    result = await stage.run(ctx)
    assert (result.name, dict(result.data), ctx.data["ran"]) == ("fetch", {"ok": 1}, True)
    assert stage.should_retry(ConnectionResetError()) is True
    assert stage.should_retry(ValueError()) is False


def test_retryable_defaults_retry_nothing() -> None:
    class Plain(RetryableStage):
        async def run(self, ctx: PipelineContext) -> StageResult:
            raise NotImplementedError

    assert (Plain.max_retries, Plain.retryable_errors) == (0, ())
    assert Plain().should_retry(ConnectionError()) is False


def test_configurable_round_trip() -> None:
    stage = Configured("db")
    stage.configure({"limit": 3})
    assert (stage.service, stage.get_config()) == ("db", {"limit": 3})
