"""Small stage interfaces, one per capability, for legacy stages to combine.

A legacy stage (``run(ctx: PipelineContext) -> StageResult``) inherits the
abstract base classes for what it supports, for example::

    class FetchStage(Stage, RetryableStage):
        name = "fetch"
        max_retries = 3
        retryable_errors = (ConnectionError,)

        async def run(self, ctx: PipelineContext) -> StageResult: ...

The graphs do not read these classes; they document intent and give
:meth:`RetryableStage.should_retry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult

__all__ = [
    "ConditionalStage",
    "ConfigurableStage",
    "DependentStage",
    "ObservableStage",
    "RetryableStage",
    "Stage",
]


class Stage(ABC):
    """The minimal stage: a ``name`` and an async ``run``."""

    name: str

    @abstractmethod
    async def run(self, ctx: PipelineContext) -> StageResult:
        """Run the stage on the run's context and return its result."""


class DependentStage(ABC):
    """A stage built with injected dependencies (services, ports)."""

    @abstractmethod
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Take the stage's dependencies; concrete classes name them."""


class RetryableStage(ABC):
    """A stage that may be retried after a transient failure.

    Attributes:
        max_retries: Retries allowed (default 0).
        retryable_errors: The exception classes worth a retry (default none).
    """

    max_retries: int = 0
    retryable_errors: tuple[type, ...] = ()

    @abstractmethod
    async def run(self, ctx: PipelineContext) -> StageResult:
        """Run the stage; the caller retries per :meth:`should_retry`."""

    def should_retry(self, error: Exception) -> bool:
        """Whether ``error`` is an instance of one of ``retryable_errors``."""
        return isinstance(error, self.retryable_errors) if self.retryable_errors else False


class ConditionalStage(ABC):
    """A stage the caller may skip: it runs only if :meth:`should_run` says so."""

    @abstractmethod
    async def run(self, ctx: PipelineContext) -> StageResult:
        """Run the stage."""

    @abstractmethod
    def should_run(self, ctx: PipelineContext) -> bool:
        """Whether the stage should run on ``ctx``."""


class ObservableStage(ABC):
    """A stage that emits its own events (``ctx.record_stage_event``) while it runs."""

    @abstractmethod
    async def run(self, ctx: PipelineContext) -> StageResult:
        """Run the stage, emitting events along the way."""


class ConfigurableStage(ABC):
    """A stage whose behaviour is configured at run time."""

    @abstractmethod
    def configure(self, config: dict[str, Any]) -> None:
        """Apply ``config``."""

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The current configuration."""
