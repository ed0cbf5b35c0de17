"""The benchmark runner's output and target check (benchmarks/__main__.py), on made-up rows."""

from __future__ import annotations

import pytest

from benchmarks import __main__ as bench_main


def test_markdown_rows_keep_units_ratio_and_escape_pipes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench_main._print_markdown(
        [
            {"workload": "w1", "reference_s": 2e-6, "trio_s": 1e-6, "note": "a | b"},
            {"workload": "floor", "reference_s": None, "trio_s": 3e-3},
            {"workload": "peak", "reference_s": 2048, "trio_s": 1024, "unit": "B"},
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| workload | reference | stageflow_trio | ratio | note |"
    assert lines[1] == "|---|---|---|---|---|"
    assert lines[2] == "| w1 | 2.00 µs | 1.00 µs | 0.50 | a \\| b |"
    assert lines[3] == "| floor | - | 3.000 ms |  |  |"
    assert lines[4] == "| peak | 2,048 B | 1,024 B | 0.50 |  |"


def test_check_fails_only_a_missed_target_outside_smoke(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [{"workload": "compute_delta, 200-key context", "reference_s": 3.0, "trio_s": 2.1}]
    assert bench_main._check(rows, ["bench_helpers"], smoke=False) == 1
    out = capsys.readouterr().out
    assert "MISSED" in out
    assert "ratio 0.70 (at most 0.67)" in out
    assert "not measured  PIIDetector" in out
    assert bench_main._check(rows, ["bench_helpers"], smoke=True) == 0
    rows[0]["trio_s"] = 1.9
    assert bench_main._check(rows, ["bench_helpers"], smoke=False) == 0
