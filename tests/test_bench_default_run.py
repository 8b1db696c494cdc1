"""benchmarks/bench_default_run.py: per-rule wall times of finished runs side by side, the end-to-end wall clock
from the benchmark files' times, Snakemake's elapsed time, and the verdict against the goal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_default_run import job_span, load_run, snakemake_elapsed, table  # noqa: E402

T0 = 1_700_000_000.0


def _job(bench: Path, rel: str, seconds: float, end: float) -> None:
    path = bench / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{seconds}\t0:00:00\t100\t{seconds}\n", encoding="utf-8")
    os.utime(path, (end, end))


def _run(root: Path, world_s: float, shipped: bool) -> Path:
    """A finished run: the world job, then two distill jobs side by side, then a summary."""
    bench = root / "benchmarks"
    _job(bench, "build_world.tsv", world_s, T0 + world_s)
    _job(bench, "distill/a_seed0.tsv", 100, T0 + world_s + 100)
    _job(bench, "distill/b_seed0.tsv", 120, T0 + world_s + 120)
    _job(bench, "summary.tsv", 5, T0 + world_s + 125)
    if shipped:
        (root / "world").mkdir()
        (root / "world" / "MANIFEST.json").write_text("{}", encoding="utf-8")
    return root


def test_span_runs_from_the_first_start_to_the_last_end(tmp_path):
    root = _run(tmp_path, world_s=360, shipped=False)
    assert job_span(root / "benchmarks") == pytest.approx(360 + 125)
    run = load_run(root)
    assert run.job_sum_s == pytest.approx(360 + 100 + 120 + 5)
    assert (run.rules["distill"].jobs, run.rules["distill"].wall_s) == (2, 220)
    assert run.label.endswith("(built world)")


def test_snakemake_elapsed_reads_the_last_elapsed_line(tmp_path):
    log = tmp_path / "x.snakemake.log"
    log.write_text("Elapsed time: 0:01:00.0\n...\nElapsed time: 0:14:03.500000\nWorkflowError\n", encoding="utf-8")
    assert snakemake_elapsed(log) == pytest.approx(14 * 60 + 3.5)
    log.write_text("Elapsed time: 1 day, 2:00:00\n", encoding="utf-8")
    assert snakemake_elapsed(log) == pytest.approx(86400 + 7200)
    log.write_text("no time here\n", encoding="utf-8")
    assert snakemake_elapsed(log) is None


def test_table_puts_runs_side_by_side_with_totals_and_the_goal(tmp_path):
    built = load_run(_run(tmp_path / "built", world_s=360, shipped=False))
    shipped = load_run(_run(tmp_path / "shipped", world_s=2, shipped=True))
    text = table([built, shipped], goal_min=5)
    rows = {line.split(" | ")[0].strip("| *"): line for line in text.splitlines()}
    assert "360 s (1 jobs)" in rows["build_world"] and "2 s (1 jobs)" in rows["build_world"]
    assert "220 s (2 jobs)" in rows["distill"]
    assert "485 s (8.1 min)" in rows["wall clock, first job start → last job end"]
    assert "127 s (2.1 min)" in rows["wall clock, first job start → last job end"]
    assert rows["goal ≤ 5 min end to end"].endswith("MISSES (1.62×) | meets (0.42×) |")
    assert "(shipped world)" in text.splitlines()[0]


def test_the_script_runs_on_a_results_directory(tmp_path):
    root = _run(tmp_path / "r", world_s=10, shipped=True)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_default_run.py"), str(root)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "meets (0.15×)" in proc.stdout  # 135 s of a 15-minute goal
