"""Functions the generated lm-eval task YAMLs call (``process_results`` and one aggregation).

Each prepared row carries the paced task name (``paced_task``), its constructor kwargs and the
original doc row (``doc_json``), so scoring always goes through the one verifier,
:meth:`paced.tasks.base.Task.check`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from paced.evaluation.metrics import sample_scores
from paced.passrate import avg_at_k_std
from paced.tasks.base import Doc, Task, doc_from_row, get_task


@functools.lru_cache(maxsize=32)
def _task(name: str, kwargs_json: str) -> Task:
    return get_task(name, **json.loads(kwargs_json))


def task_and_doc(row: Mapping[str, Any]) -> tuple[Task, Doc]:
    """The paced :class:`Task` and :class:`Doc` behind one prepared lm-eval row."""
    task = _task(row["paced_task"], row["task_kwargs_json"])
    return task, doc_from_row(json.loads(row["doc_json"]), where=f"eval doc {row['id']}")


def process_samples(doc: Mapping[str, Any], results: Sequence[Sequence[str]]) -> dict[str, Any]:
    """avg@k and pass@k of one problem; ``results[0]`` holds the k samples kept by ``take_first_k``.

    ``avg@k_std`` carries the per-sample correctness [c_1..c_k] (logged with the sample); lm-eval
    folds these lists with :func:`sample_index_std`.
    """
    task, paced_doc = task_and_doc(doc)
    correct = [bool(task.check(paced_doc, c)) for c in results[0]]
    return {**sample_scores(correct), "avg@k_std": [int(c) for c in correct]}


def sample_index_std(items: Sequence[Sequence[int]]) -> float:
    """lm-eval aggregation: std over sample indices j of mean_i correct[i][j] (the avg@k ± std)."""
    return avg_at_k_std([list(c) for c in items])


def process_greedy(doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, float]:
    """Exact match of one greedy completion, judged by the task's verifier."""
    task, paced_doc = task_and_doc(doc)
    return {"em": float(task.check(paced_doc, results[0]))}
