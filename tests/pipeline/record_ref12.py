"""Record stageflow 1.2.0's behaviour for the curated-API differential tests.

Run with the Python that has stageflow-core 1.2.0 (asyncio):

    /tmp/ref12/bin/python tests/pipeline/record_ref12.py

It writes ``tests/pipeline/ref12_curated.json``: each scenario of
``curated_scenarios.py``, the ``__all__`` of ``stageflow.api`` and
``stageflow.advanced``, and the three 1.2.0 behaviours that stageflow_trio
deliberately does not copy (see docs/parity.md, "Curated API (1.2.0)"). Review
the diff of the JSON before committing it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import stageflow  # noqa: E402
import stageflow.advanced  # noqa: E402
import stageflow.api  # noqa: E402
from stageflow.pipeline import interceptors as chain  # noqa: E402
from stageflow.tools.approval import ApprovalStatus  # noqa: E402

from tests.pipeline import curated_scenarios  # noqa: E402


async def _regressions() -> dict[str, Any]:
    api = stageflow.api

    async def noop(ctx: Any) -> Any:
        return None

    graph = api.Pipeline().with_stage("s", noop, "work").build(interceptors=[])
    calls: list[int] = []

    async def failing(ctx: Any) -> Any:
        calls.append(1)
        raise RuntimeError("boom")

    breaker = chain.CircuitBreakerInterceptor()
    pipeline = api.Pipeline().with_stage("f", failing, "work")
    runs = []
    for _ in range(4):
        try:
            results = await pipeline.run(interceptors=[breaker])
            runs.append({"status": results["f"].status.value, "error": results["f"].error})
        except Exception as exc:
            runs.append({"raised": type(exc).__name__, "message": str(exc)})
        runs[-1]["calls"] = len(calls)

    async def slow(ctx: Any) -> Any:
        await asyncio.sleep(0.05)
        return None

    # A 10 ms stand-in for the 30 s default, so the script stays short.
    default_ms = chain.TimeoutInterceptor.DEFAULT_TIMEOUT_MS
    chain.TimeoutInterceptor.DEFAULT_TIMEOUT_MS = 10
    timeouts: dict[str, str | None] = {}
    for label, interceptors in (
        ("default_chain", None),
        ("logging_only", [chain.LoggingInterceptor()]),
    ):
        try:
            await api.Pipeline().with_stage("slow", slow, "work").run(interceptors=interceptors)
            timeouts[label] = None
        except Exception as exc:
            timeouts[label] = str(exc)
    chain.TimeoutInterceptor.DEFAULT_TIMEOUT_MS = default_ms
    return {
        "empty_interceptors_chain": [i.name for i in graph._interceptors],
        "circuit_breaker_runs": runs,
        "default_timeout_ms": default_ms,
        "timeouts_at_10ms": timeouts,
    }


async def main() -> dict[str, Any]:
    warnings.simplefilter("ignore")
    scenarios = {}
    for name, fn in curated_scenarios.SCENARIOS.items():
        scenarios[name] = await fn(stageflow.api)
    return {
        "version": stageflow.__version__ if hasattr(stageflow, "__version__") else "1.2.0",
        "api_all": sorted(stageflow.api.__all__),
        "advanced_all": sorted(stageflow.advanced.__all__),
        "approval_status": [[str(m), f"{m}", json.dumps(m)] for m in ApprovalStatus],
        "scenarios": scenarios,
        "regressions": await _regressions(),
    }


if __name__ == "__main__":
    import logging

    logging.disable(logging.CRITICAL)
    data = asyncio.run(main())
    out = HERE / "ref12_curated.json"
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")
