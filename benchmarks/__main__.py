"""Run every benchmark module and print one table: ``python -m benchmarks [--smoke] [names...]``.

Each module ``benchmarks/bench_*.py`` exposes ``run(smoke: bool) -> list[dict]`` whose
rows carry ``workload``, ``reference_s`` and ``trio_s`` (median seconds per
operation, measured interleaved in this one process) and optionally ``note``
and ``unit`` (``"B"`` for byte counts).
The ratio column is trio / reference: below 1.0 means stageflow_trio is faster.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path


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
    parser.add_argument("names", nargs="*", help="bench modules to run (default: all)")
    args = parser.parse_args(argv)
    here = Path(__file__).parent
    modules = sorted(
        info.name for info in pkgutil.iter_modules([str(here)]) if info.name.startswith("bench_")
    )
    if args.names:
        modules = [m for m in modules if m in args.names or m.removeprefix("bench_") in args.names]
    rows: list[dict[str, object]] = []
    failed: list[str] = []
    for name in modules:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            rows.extend(module.run(smoke=args.smoke))
        except Exception as exc:
            failed.append(f"{name}: {exc!r}")
        print(f"# {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    width = max([len(str(r["workload"])) for r in rows] + [8])
    print(f"{'workload':<{width}}  {'reference':>12}  {'trio':>12}  {'ratio':>6}  note")
    for row in rows:
        ref, ours = row.get("reference_s"), row.get("trio_s")
        ratio = (
            f"{ours / ref:.2f}"
            if isinstance(ref, int | float) and isinstance(ours, int | float) and ref
            else "-"
        )
        print(
            f"{row['workload']!s:<{width}}  {_fmt(ref, row.get('unit', 's')):>12}"
            f"  {_fmt(ours, row.get('unit', 's')):>12}  {ratio:>6}"
            f"  {row.get('note', '')}"
        )
    for failure in failed:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
