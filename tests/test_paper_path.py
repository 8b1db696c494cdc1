"""config/paper.yaml's code path on CPU: hub-schema loaders, chat templates, \\boxed{} grading, MMLU multiple choice.

Tiny random-init models (paced.fixtures) stand in for Qwen3 and local rows in the real data sets' schemas for the
hub (.test/config-paper); the answers are random, the plumbing is what is checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_workflow import ROOT, _snakemake

from paced.fixtures import build_paper_fixture


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = ROOT / ".test/config-paper/models"
    if not (models / "student/config.json").is_file() or not (models / "teacher/config.json").is_file():
        build_paper_fixture(models)
    out = tmp_path_factory.mktemp("paper") / "results"
    proc = _snakemake("--cores", "2", "--configfile", "config/paper.yaml", ".test/config-paper/config.yaml",
                      "--config", f"results_dir={out}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out


def test_every_paper_benchmark_is_scored(run: Path) -> None:
    df = pd.read_csv(run / "summary.csv")
    assert "error" not in set(df["metric"]), df[df["metric"] == "error"]["note"].tolist()
    assert set(df["task"]) == {"math500", "aime24", "aime25", "mmlu"}
    assert set(zip(df["method"], df["step"], strict=True)) == {("base", 0), ("uniform-fkl", 2), ("paced-fkl", 2)}
    mc = df[(df["task"] == "mmlu") & (df["metric"] == "mc_acc")]["value"]
    assert len(mc) == 3 and mc.between(0, 1).all()
    assert "forgetting_pts" in set(df[df["task"] == "mmlu"]["metric"])


def test_dapo_split_and_chat_template_reach_the_stages(run: Path) -> None:
    rates = [json.loads(x) for x in (run / "passrates/base/passrates.jsonl").read_text().splitlines()]
    from paced.tasks import get_task

    train = get_task("dapo_math").load(str(ROOT / ".test/config-paper/data/dapo_math_17k.jsonl"))
    assert {r["id"] for r in rates} == {d.id for d in train}  # the 80% split, de-duplicated
    assert all(r["k"] == 2 and 0 <= r["p_hat"] <= 1 for r in rates)
    res = json.loads((run / "eval/paced-fkl/seed0/step2/math500.json").read_text())
    assert res["metrics"]["all"]["k"] == 2 and res["metrics"]["all"]["n"] == 3
    assert (run / "runs/paced-fkl/seed0/checkpoints/step2/chat_template.jinja").is_file()
