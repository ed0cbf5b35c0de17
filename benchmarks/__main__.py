"""Run every benchmark module and print one table: ``python -m benchmarks [--smoke] [--check] [names...]``.

Each module ``benchmarks/bench_*.py`` exposes ``run(smoke: bool) -> list[dict]`` whose
rows carry ``workload``, ``reference_s`` and ``trio_s`` (median seconds per
operation, measured interleaved in this one process) and optionally ``note``
and ``unit`` (``"B"`` for byte counts).
The ratio column is trio / reference: below 1.0 means stageflow_trio is faster.

``--check`` runs the modules that have targets (or the ``names`` given), then
compares each targeted row with its target (:data:`TARGETS`) and exits 1 when
one is missed. With ``--smoke`` the sizes are too small for the ratios to mean
anything: the comparison is printed but never fails (CI runs it only to see
that it runs).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

Row = dict[str, object]


def _ratio(row: Row) -> float | None:
    ref, ours = row.get("reference_s"), row.get("trio_s")
    if isinstance(ref, int | float) and isinstance(ours, int | float) and ref:
        return float(ours) / float(ref)
    return None


def _find(rows: list[Row], workload: str) -> Row | None:
    return next((row for row in rows if row["workload"] == workload), None)


def _max_ratio(workload: str, limit: float) -> Callable[[list[Row]], tuple[bool, str] | None]:
    def check(rows: list[Row]) -> tuple[bool, str] | None:
        row = _find(rows, workload)
        ratio = None if row is None else _ratio(row)
        if ratio is None:
            return None
        return ratio <= limit, f"ratio {ratio:.2f} (at most {limit:.2f})"

    return check


def _legacy_per_stage(rows: list[Row]) -> tuple[bool, str] | None:
    row = _find(rows, LEGACY_50)
    ratio = None if row is None else _ratio(row)
    if row is None or ratio is None:
        return None
    per_stage = float(row["trio_s"])  # type: ignore[arg-type]
    return (
        per_stage <= 20e-6 and ratio <= 0.25,
        f"{per_stage * 1e6:.1f} us per stage (at most 20), ratio {ratio:.2f} (at most 0.25)",
    )


def _children_flat(rows: list[Row]) -> tuple[bool, str] | None:
    few, many = _find(rows, "concurrent_10"), _find(rows, "concurrent_1000")
    if few is None or many is None:
        return None
    growth = float(many["trio_s"]) / float(few["trio_s"])  # type: ignore[arg-type]
    return growth <= 1.25, f"per child at 1,000 / at 10 = {growth:.2f} (at most 1.25)"


LEGACY_50 = "legacy StageGraph, default interceptors, 50-stage chain (per stage)"

TARGETS: dict[str, list[tuple[str, Callable[[list[Row]], tuple[bool, str] | None]]]] = {
    "bench_observability": [
        (
            "realistic 5-stage + collecting sink: at least 1.5x the reference's runs/s",
            _max_ratio("realistic 5-stage + collecting sink (per run)", 1 / 1.5),
        ),
        (
            "1,000 concurrent realistic runs + sink: at least 1.7x the reference's runs/s",
            _max_ratio("realistic 5-stage + collecting sink, 1,000 concurrent (per run)", 1 / 1.7),
        ),
        (
            "ContextBag.write: at least the reference's rate",
            _max_ratio("ContextBag.write (1 task)", 1.0),
        ),
        (
            "snapshot round trip, 10 messages: at least 2x the reference's rate",
            _max_ratio("snapshot round trip, 10 messages", 0.5),
        ),
    ],
    "bench_interceptors": [
        (
            "legacy StageGraph + default interceptors: at most 20 us and 0.25x per stage",
            _legacy_per_stage,
        ),
    ],
    "bench_helpers": [
        (
            "PIIDetector + ContentFilter on 1 KB texts: at least the reference's rate",
            _max_ratio("PIIDetector + ContentFilter, 1 KB text", 1.0),
        ),
        (
            "compute_delta on a 200-key context: at least 1.5x the reference's rate",
            _max_ratio("compute_delta, 200-key context", 1 / 1.5),
        ),
    ],
    "bench_mocks": [
        (
            "MockLLMProvider streaming of 1,000 chunks: at least the reference's rate",
            _max_ratio("mock_llm_stream_1000_chunks", 1.0),
        ),
    ],
    "bench_subpipeline": [
        (
            "subpipeline spawn + run + collect: at most 0.7x the reference's time",
            _max_ratio("spawn_one_stage", 0.7),
        ),
        ("1,000 concurrent children: no growth in per-child cost", _children_flat),
    ],
}
"""Per bench module: (target, check of the rows); a check returns None when its row is absent."""


def _check(rows: list[Row], modules: list[str], smoke: bool) -> int:
    missed = 0
    print()
    print("targets" + (" (smoke sizes: reported, never failed)" if smoke else ""))
    for module in modules:
        for label, check in TARGETS.get(module, []):
            outcome = check(rows)
            if outcome is None:
                print(f"  not measured  {label}")
                continue
            met, detail = outcome
            missed += not met
            print(f"  {'met' if met else 'MISSED':<12}  {label}: {detail}")
    return 1 if missed and not smoke else 0


def _fmt(seconds: object, unit: object = "s") -> str:
    if not isinstance(seconds, int | float):
        return "-"
    if unit == "B":
        return f"{seconds:,.0f} B"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.2f} us"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument(
        "--check", action="store_true", help="fail when a measured ratio misses its target"
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the rows as a Markdown table (docs/performance.md's format)",
    )
    parser.add_argument("names", nargs="*", help="bench modules to run (default: all)")
    args = parser.parse_args(argv)
    here = Path(__file__).parent
    modules = sorted(
        info.name for info in pkgutil.iter_modules([str(here)]) if info.name.startswith("bench_")
    )
    if args.names:
        modules = [m for m in modules if m in args.names or m.removeprefix("bench_") in args.names]
    elif args.check:
        modules = [m for m in modules if m in TARGETS]
    rows: list[Row] = []
    failed: list[str] = []
    for name in modules:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            rows.extend(module.run(smoke=args.smoke))
        except Exception as exc:
            failed.append(f"{name}: {exc!r}")
        print(f"# {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.markdown:
        _print_markdown(rows)
    else:
        _print_table(rows)
    for failure in failed:
        print(f"FAILED {failure}", file=sys.stderr)
    if failed:
        return 1
    return _check(rows, modules, args.smoke) if args.check else 0


def _print_table(rows: list[Row]) -> None:
    width = max([len(str(r["workload"])) for r in rows] + [8])
    print(f"{'workload':<{width}}  {'reference':>12}  {'trio':>12}  {'ratio':>6}  note")
    for row in rows:
        ref, ours = row.get("reference_s"), row.get("trio_s")
        value = _ratio(row)
        ratio = "-" if value is None else f"{value:.2f}"
        print(
            f"{row['workload']!s:<{width}}  {_fmt(ref, row.get('unit', 's')):>12}"
            f"  {_fmt(ours, row.get('unit', 's')):>12}  {ratio:>6}"
            f"  {row.get('note', '')}"
        )


def _print_markdown(rows: list[Row]) -> None:
    print("| workload | reference | stageflow_trio | ratio | note |")
    print("|---|---|---|---|---|")
    for row in rows:
        unit = row.get("unit", "s")
        value = _ratio(row)
        cells = [
            str(row["workload"]),
            _fmt(row.get("reference_s"), unit).replace("us", "µs"),
            _fmt(row.get("trio_s"), unit).replace("us", "µs"),
            "" if value is None else f"{value:.2f}",
            str(row.get("note", "")).replace("|", "\\|"),
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
