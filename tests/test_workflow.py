"""End to end: the .test config through the real Snakemake DAG (tiny world, 2 methods x 1 seed).

One run (module-scoped, ~1-3 min on 2 cores) feeds every assertion below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOMP_SPINCOUNT": "1000", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1500)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wf") / "results"
    proc = _snakemake("--cores", "2", "--configfile", ".test/config/config.yaml", "--config", f"results_dir={out}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out


def test_summary_has_every_cell(run: Path) -> None:
    df = pd.read_csv(run / "summary.csv")
    cells = set(zip(df["method"], df["step"], strict=True))
    assert cells == {("base", 0), ("uniform-fkl", 8), ("paced-fkl", 8)}
    assert set(df["task"]) == {"toy_arith", "toy_probe"}
    acc = df[(df["metric"] == "avg@k") & (df["tier"] == "all")]["value"]
    assert len(acc) == 3 and acc.between(0, 1).all()
    assert "forgetting_pts" in set(df["metric"])
    assert "error" not in set(df["metric"]), df[df["metric"] == "error"]["note"].tolist()


def test_eval_results_carry_provenance(run: Path) -> None:
    res = json.loads((run / "eval/paced-fkl/seed0/step8/arith.json").read_text())
    assert res["method"] == "paced-fkl" and res["step"] == 8 and res["seed"] == 0
    assert {"config", "versions", "git"} <= set(res["provenance"])
    assert res["metrics"]["all"]["k"] == 4  # eval.k of config/config.yaml (the .test config keeps it)


def test_training_log_and_checkpoints(run: Path) -> None:
    rows = [json.loads(x) for x in (run / "runs/paced-fkl/seed0/log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r.get("event", "step") == "step"]
    assert steps == list(range(1, 9))
    assert any(r.get("event") == "refresh" for r in rows)  # passrate.refresh: every_n, refresh_every: 4
    for step in (4, 8):
        assert (run / f"runs/paced-fkl/seed0/checkpoints/step{step}/config.json").is_file()


def test_tables_figures_and_snr(run: Path) -> None:
    tables = run / "tables/all"
    for name in ("table_step8", "verdicts", "paper_vs_run", "paired_vs_uniform-fkl"):
        for ext in ("csv", "md", "tex"):
            assert (tables / f"{name}.{ext}").stat().st_size > 0
    md = (tables / "table_step8.md").read_text()
    assert "paced-fkl" in md and "uniform-fkl" in md and "base" in md
    figs = {p.name for p in (run / "figures/png").iterdir()}
    for stem in ("snr", "kernels", "accuracy_step8", "forgetting", "passrate_hist", "training_curves"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= figs
    snr = json.loads((run / "snr/snr.json").read_text())
    assert {b["group"] for b in snr["bins"]} >= {"all", "learnable", "intractable"}


def test_world_calibration_evidence(run: Path) -> None:
    cal = json.loads((run / "calibration/calibration.json").read_text())
    assert cal["method"] == "uniform-fkl"
    assert [p["step"] for p in cal["accuracy_avg_at_k"]["learnable"]] == [0, 8]
    assert sum(map(sum, cal["pool_histogram"].values())) == sum(1 for _ in open(run / "world/train.jsonl"))
    assert set(cal["checks"]) >= {"intractable_at_chance_every_budget", "probe_degrades", "learnable_improves"}
    assert (run / "calibration/calibration.png").stat().st_size > 1000


def test_rerun_is_a_no_op(run: Path) -> None:
    proc = _snakemake("-n", "--configfile", ".test/config/config.yaml", "--config", f"results_dir={run}")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_html_report_bundles_figures_and_tables(run: Path) -> None:
    report = run.parent / "report.html"
    proc = _snakemake("--configfile", ".test/config/config.yaml", "--config", f"results_dir={run}",
                      "--report", str(report))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = report.read_text(encoding="utf-8", errors="replace")
    for name in ("snr.png", "kernels.png", "accuracy_step8.png", "table_step8.md", "summary.csv", "calibration.png",
                 "accuracy_vs_budget.png", "gain_vs_forgetting.png", "tier_weight_mass.png", "forgetting_graded.png",
                 "passrate_hist_per_method.png"):
        assert name in html


# --- what a config edit reruns: each rule's params are its slice of the config ------------------------------

def _planned(run: Path, edit: dict) -> dict[str, int]:
    """Jobs a dry run plans after ``edit`` (merged over the .test config) on the finished run: {rule: count}."""
    override = run.parent / "edit.yaml"
    override.write_text(yaml.safe_dump({**edit, "results_dir": str(run)}))
    proc = _snakemake("-n", "--configfile", ".test/config/config.yaml", str(override))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].splitlines()
    rows = [line.split() for line in table[3:] if line.strip() and not line.startswith("total")]
    jobs = {}
    for row in rows:
        if len(row) != 2 or not row[1].isdigit():
            break
        jobs[row[0]] = int(row[1])
    return jobs


REPORTS = {"summary", "tables", "figures", "calibration", "all"}


def test_adding_a_seed_plans_only_that_seeds_jobs_and_the_reports(run: Path) -> None:
    jobs = _planned(run, {"seeds": [0, 1]})
    assert jobs["distill"] == 2 and jobs["evaluate_run"] == 2 and jobs["evaluate_base"] == 1, jobs
    assert set(jobs) <= {"distill", "evaluate_run", "evaluate_base"} | REPORTS, jobs


def test_adding_a_method_plans_only_that_methods_jobs_and_the_reports(run: Path) -> None:
    jobs = _planned(run, {"methods": ["uniform-fkl", "paced-fkl", "hardfilter-fkl"]})
    assert jobs["distill"] == 1 and jobs["evaluate_run"] == 1, jobs
    assert set(jobs) <= {"distill", "evaluate_run"} | REPORTS, jobs


def test_snr_only_and_report_only_edits_plan_no_training_or_evaluation(run: Path) -> None:
    jobs = _planned(run, {"snr": {"n_bootstrap": 60}})
    assert jobs.get("snr") == 1 and set(jobs) <= {"snr", "tables", "figures", "all"}, jobs
    jobs = _planned(run, {"report": {"alpha": 0.1}})
    assert set(jobs) <= {"tables", "all"} and jobs.get("tables") == 1, jobs


def test_an_eval_batch_size_edit_plans_nothing_upstream_of_evaluation(run: Path) -> None:
    jobs = _planned(run, {"eval": {"batch_size": 32}})
    assert jobs.get("evaluate_run") == 2 and jobs.get("evaluate_base") == 1, jobs
    assert set(jobs) <= {"evaluate_run", "evaluate_base"} | REPORTS, jobs


def test_a_training_edit_reruns_the_runs_and_what_follows_only(run: Path) -> None:
    jobs = _planned(run, {"train": {"lr": 5.0e-4}})
    assert jobs.get("distill") == 2 and "build_world" not in jobs and "passrates_base" not in jobs, jobs
    assert set(jobs) <= {"distill", "evaluate_run", "passrates_after"} | REPORTS, jobs

