"""lm-eval's registered tasks beside ours: their scores in paced's result format, names checked up front."""

from __future__ import annotations

import math

import pytest

from paced.evaluation.stock import check_stock_tasks, stock_metrics, stock_result
from paced.report.collect import result_rows

RAW = {
    "results": {"aime25": {"alias": "aime25", "exact_match,none": 0.2, "exact_match_stderr,none": 0.07,
                           "exact_match,flexible-extract": 0.3, "weird,none": math.nan}},
    "n-samples": {"aime25": {"original": 30, "effective": 30}},
}


def test_stock_metrics_keep_numbers_and_name_non_default_filters() -> None:
    assert stock_metrics(RAW["results"]["aime25"]) == {"exact_match": 0.2, "exact_match_stderr": 0.07,
                                                       "exact_match/flexible-extract": 0.3}


def test_stock_result_becomes_summary_rows() -> None:
    result = stock_result(RAW, "aime25", model_name="m", method="paced-fkl", step=300, seed=1, run_config={})
    rows = {r["metric"]: r for r in result_rows(result)}
    assert set(rows) == {"exact_match", "exact_match_stderr", "exact_match/flexible-extract"}
    row = rows["exact_match"]
    assert (row["method"], row["seed"], row["step"], row["task"], row["tier"], row["value"], row["n"]) == \
        ("paced-fkl", 1, 300, "lmeval_aime25", "all", 0.2, 30)
    with pytest.raises(RuntimeError, match="no results for task 'mmlu'"):
        stock_result(RAW, "mmlu", model_name="m", method=None, step=None, seed=0, run_config={})


def test_unknown_stock_task_names_close_matches() -> None:
    class Manager:
        all_tasks = ("aime24", "aime25", "mmlu")

    check_stock_tasks(["aime25", "mmlu"], Manager())
    with pytest.raises(ValueError, match=r"no registered task 'aime52'.*'aime25'"):
        check_stock_tasks(["aime52"], Manager())


def test_lm_eval_registers_the_paper_benchmarks() -> None:
    from lm_eval.tasks import TaskManager

    check_stock_tasks(["aime24", "aime25", "mmlu"], TaskManager())
