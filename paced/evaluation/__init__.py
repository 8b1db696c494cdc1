"""Evaluation through lm-eval: our own task YAMLs over local jsonl, avg@k / pass@k / MC accuracy.

Importing this package is cheap; lm-eval itself is imported only when an evaluation runs.
"""

from paced.evaluation.config import EvalConfig
from paced.evaluation.lmeval import evaluate_model, evaluate_tasks, run_lm_eval, write_eval_result
from paced.evaluation.metrics import generation_metrics, mean_by_tier, sample_scores

__all__ = ["EvalConfig", "evaluate_model", "evaluate_tasks", "generation_metrics", "mean_by_tier", "run_lm_eval",
           "sample_scores", "write_eval_result"]
