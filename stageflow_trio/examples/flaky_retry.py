"""Retries with exponential backoff against a flaky provider, in virtual time.

``ask`` calls a fake model provider that is unavailable for its first two calls
(a ServiceUnavailableError, one of the transient errors). A RetryInterceptor in
the graph's chain calls the stage again after 100 ms, then 200 ms (exponential
backoff, no jitter so the times are exact); the third call succeeds. Each
``stage.retry_scheduled`` event is printed with its delay.

Run it: ``python -m stageflow_trio.examples flaky_retry`` (or
``stageflow-trio run stageflow_trio.examples.flaky_retry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.examples import _run_main
from stageflow_trio.pipeline import (
    Pipeline,
    RetryInterceptor,
    ServiceUnavailableError,
    TransientError,
)
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context

if TYPE_CHECKING:
    from stageflow_trio.pipeline.dag import UnifiedStageGraph

__all__ = ["FlakyProvider", "build_graph", "main"]


class FlakyProvider:
    """Fails its first ``failures`` calls, then answers; every call takes 50 ms."""

    def __init__(self, failures: int = 2) -> None:
        self.failures = failures
        self.calls: list[float] = []

    async def complete(self, prompt: str) -> str:
        self.calls.append(trio.current_time())
        await trio.sleep(0.05)
        if len(self.calls) <= self.failures:
            raise ServiceUnavailableError(f"provider busy (call {len(self.calls)})")
        return f"answer to {prompt!r}"


def build_graph(provider: FlakyProvider | None = None) -> UnifiedStageGraph:
    """The one-stage graph, with the retry interceptor in its chain."""
    llm = provider if provider is not None else FlakyProvider()

    async def ask(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text=await llm.complete(ctx.snapshot.input_text or "hello"))

    retry = RetryInterceptor(
        max_attempts=4,
        base_delay_ms=100,
        max_delay_ms=1000,
        backoff_strategy="exponential",
        jitter_strategy="none",
        retryable_errors=(TransientError,),
    )
    return (
        Pipeline(name="flaky")
        .with_stage("ask", ask, StageKind.TRANSFORM)
        .build(interceptors=[retry])
    )


async def main() -> dict[str, Any]:
    provider = FlakyProvider(failures=2)
    sink = RecordingEventSink()
    started = trio.current_time()
    results = await build_graph(provider).run(
        create_test_stage_context(event_sink=sink, input_text="what is trio?")
    )
    for data in sink.of_type("stage.retry_scheduled"):
        assert data is not None
        print(f"retry {data['attempt']} in {data['delay_ms']} ms: {data['error']}")
    print(f"{results['ask'].data['text']} after {trio.current_time() - started:.2f}s")
    return {
        "results": results,
        "calls": [round(t - started, 3) for t in provider.calls],
        "retries": sink.of_type("stage.retry_scheduled"),
    }


if __name__ == "__main__":
    # Virtual time: the backoff delays pass at once and the printed times are exact.
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main, clock=trio.testing.MockClock(autojump_threshold=0))
