"""The evaluation stage: lm-eval's own tasks beside ours land in summary.csv, and the task YAMLs are kept."""

from __future__ import annotations

import pandas as pd

from paced.evaluation import stock
from paced.pipeline import evaluate
from paced.pipeline import report as report_stage


def _params(tmp_path, stock_tasks):
    return {"results": str(tmp_path), "method": "base", "seed": 0, "models": {"0": str(tmp_path / "student")},
            "tasks": [{"name": "arith", "task": "toy_arith", "path": "x.jsonl", "k": 4, "limit": None}],
            "stock_tasks": stock_tasks, "eval": {"max_new_tokens": 8, "temperature": 1.0, "batch_size": 4},
            "model_config": {"dtype": "float32", "trust_remote_code": False, "chat_template": False},
            "backend": "hf", "device": "cpu"}


def test_stock_tasks_are_scored_by_lm_eval_and_reach_the_summary(tmp_path, monkeypatch):
    seen = {}

    def fake_ours(model, data, **kw):
        seen["work_dir"] = kw["work_dir"]
        return {"toy_arith": {"model": model, "method": "base", "seed": 0, "step": 0, "task": "toy_arith",
                              "kind": "generate", "metrics": {"all": {"avg@k": 0.25, "pass@k": 0.5, "k": 4, "n": 8}}}}

    def fake_stock(model, names, *, config, model_name, method, step):
        raw = {"results": {n: {"exact_match,none": 0.1 * (i + 1), "alias": n} for i, n in enumerate(names)},
               "n-samples": {n: {"effective": 30} for n in names}}
        return {n: stock.stock_result(raw, n, model_name=model_name, method=method, step=step, seed=config.seed,
                                      run_config={}) for n in names}

    monkeypatch.setattr("paced.evaluation.evaluate_tasks", fake_ours)
    monkeypatch.setattr("paced.evaluation.stock.evaluate_stock_tasks", fake_stock)
    evaluate.run(_params(tmp_path, ["aime25", "mmlu"]), on_error="fail")
    step_dir = tmp_path / "eval/base/seed0/step0"
    assert seen["work_dir"] == step_dir / "lm_eval_tasks"  # kept under results/, beside the result
    files = sorted(p.name for p in step_dir.glob("*.json"))
    assert files == ["arith.json", "lmeval_aime25.json", "lmeval_mmlu.json"]
    report_stage.summary([str(step_dir / f) for f in files], str(tmp_path / "summary.csv"))
    df = pd.read_csv(tmp_path / "summary.csv")
    em = df[(df["task"] == "lmeval_mmlu") & (df["metric"] == "exact_match")]["value"].tolist()
    assert em == [0.2]
    assert set(df["task"]) == {"toy_arith", "lmeval_aime25", "lmeval_mmlu"}


def test_a_failing_stock_task_leaves_our_results_alone(tmp_path, monkeypatch):
    import json

    def fake_ours(model, data, **kw):
        return {"toy_arith": {"task": "toy_arith", "metrics": {"all": {"avg@k": 0.25, "k": 4, "n": 8}}}}

    def broken_stock(*a, **kw):
        raise ValueError("lm-eval task aime25: a malformed row")

    monkeypatch.setattr("paced.evaluation.evaluate_tasks", fake_ours)
    monkeypatch.setattr("paced.evaluation.stock.evaluate_stock_tasks", broken_stock)
    evaluate.run(_params(tmp_path, ["aime25"]), on_error="record")
    step_dir = tmp_path / "eval/base/seed0/step0"
    assert json.loads((step_dir / "arith.json").read_text())["metrics"]["all"]["avg@k"] == 0.25
    assert "malformed row" in json.loads((step_dir / "lmeval_aime25.json").read_text())["error"]
