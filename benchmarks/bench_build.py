"""Building an N-stage chain pipeline, stageflow vs stageflow_trio.

One build = N ``with_stage`` calls (stage i depends on stage i-1) followed by
``build()``, with ``PipelineBuilder`` (legacy StageGraph) and with ``Pipeline``
(UnifiedStageGraph). Timings are interleaved in one process, build by build, so
machine noise hits both libraries alike; each row is the median seconds per build.

The reference's builders copy their stage dict on every ``with_stage`` and
``PipelineBuilder`` also re-validates the whole graph each time, so building is
about quadratic there; the 10,000-stage rows run stageflow_trio only
(``reference_s`` is None).

Run ``python benchmarks/bench_build.py`` (add ``--smoke`` for a quick check).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class _Stage:
    async def execute(self, _ctx: Any) -> None:
        return None


def _builder_chain(builder_cls: Any, n: int) -> Callable[[], object]:
    def build() -> object:
        builder = builder_cls("bench").with_stage("s0", _Stage)
        for i in range(1, n):
            builder = builder.with_stage(f"s{i}", _Stage, (f"s{i - 1}",))
        return builder.build()

    return build


def _pipeline_chain(pipeline_cls: Any, kind: Any, n: int) -> Callable[[], object]:
    def build() -> object:
        pipeline = pipeline_cls("bench").with_stage("s0", _Stage, kind)
        for i in range(1, n):
            pipeline = pipeline.with_stage(f"s{i}", _Stage, kind, (f"s{i - 1}",))
        return pipeline.build()

    return build


def _timed(build: Callable[[], object]) -> float:
    start = time.perf_counter()
    build()
    return time.perf_counter() - start


def _libraries() -> tuple[dict[str, Any], dict[str, Any] | None]:
    from stageflow_trio.core.stage_enums import StageKind
    from stageflow_trio.pipeline.builder import PipelineBuilder
    from stageflow_trio.pipeline.pipeline import Pipeline

    trio_lib = {"builder": PipelineBuilder, "pipeline": Pipeline, "kind": StageKind.TRANSFORM}
    try:
        from stageflow.core import StageKind as RefKind
        from stageflow.pipeline.builder import PipelineBuilder as RefBuilder
        from stageflow.pipeline.pipeline import Pipeline as RefPipeline
    except ImportError:
        return trio_lib, None
    return trio_lib, {"builder": RefBuilder, "pipeline": RefPipeline, "kind": RefKind.TRANSFORM}


def _factories(lib: dict[str, Any], n: int) -> dict[str, Callable[[], object]]:
    return {
        f"PipelineBuilder chain N={n} (with_stage x N + build)": _builder_chain(lib["builder"], n),
        f"Pipeline chain N={n} (with_stage x N + build)": _pipeline_chain(
            lib["pipeline"], lib["kind"], n
        ),
    }


def run(smoke: bool = False) -> list[dict[str, object]]:
    """Time chain builds for both libraries, interleaved.

    Args:
        smoke: Tiny sizes and one repeat, only to check that the benchmark works.

    Returns:
        Rows ``{"workload", "reference_s", "trio_s"}``: median seconds per build
        (``reference_s`` is None for the sizes only stageflow_trio runs).
    """
    trio_lib, ref_lib = _libraries()
    shared_sizes, trio_only_sizes, repeats = (
        ((10, 30), (100,), 1) if smoke else ((100, 1000), (10_000,), 7)
    )
    rows: list[dict[str, object]] = []
    for n in shared_sizes:
        ours = _factories(trio_lib, n)
        theirs = _factories(ref_lib, n) if ref_lib is not None else {}
        for workload, build in ours.items():
            ref_build = theirs.get(workload)
            build()  # warm-up: imports, first-call caches
            if ref_build is not None:
                ref_build()
            ref_times: list[float] = []
            trio_times: list[float] = []
            for _ in range(repeats):
                if ref_build is not None:
                    ref_times.append(_timed(ref_build))
                trio_times.append(_timed(build))
            rows.append(
                {
                    "workload": workload,
                    "reference_s": statistics.median(ref_times) if ref_times else None,
                    "trio_s": statistics.median(trio_times),
                }
            )
    for n in trio_only_sizes:
        for workload, build in _factories(trio_lib, n).items():
            build()
            times = [_timed(build) for _ in range(repeats)]
            rows.append(
                {
                    "workload": workload,
                    "reference_s": None,
                    "trio_s": statistics.median(times),
                    "note": "reference not run (about quadratic)",
                }
            )
    return rows


if __name__ == "__main__":
    for row in run(smoke="--smoke" in sys.argv[1:]):
        ref_s = row["reference_s"]
        trio_s = float(row["trio_s"])  # type: ignore[arg-type]
        ref_text = f"{float(ref_s) * 1e3:.2f} ms" if isinstance(ref_s, float) else "-"
        ratio = f", speed-up x{float(ref_s) / trio_s:.1f}" if isinstance(ref_s, float) else ""
        print(
            f"{row['workload']}: reference {ref_text}, stageflow_trio {trio_s * 1e3:.2f} ms{ratio}"
        )
