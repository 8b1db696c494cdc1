"""lm-eval's own registered tasks (``aime25``, ``mmlu``, ...) beside ours, with their scores in our result format.

:func:`evaluate_stock_tasks` runs named stock tasks through ``lm_eval.simple_evaluate`` with lm-eval's default task
index, and :func:`stock_result` folds each task's entry of lm-eval's ``results`` into the result JSON that
:mod:`paced.report.collect` turns into ``summary.csv`` rows: task ``lmeval_<name>`` (so it never collides with a
paced task of the same name), tier ``all``, one metric per lm-eval metric (``exact_match``; ``acc/<filter>`` when
the filter is not ``none``). Stock tasks download their data sets from the hub unless they are cached.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paced.evaluation.backends import backend_args
from paced.evaluation.config import EvalConfig
from paced.io import provenance

log = logging.getLogger(__name__)

TASK_PREFIX = "lmeval_"


def stock_metrics(entry: Mapping[str, Any]) -> dict[str, float]:
    """``{"exact_match,none": 0.3, "exact_match_stderr,none": 0.1, "alias": "aime25"}`` ->
    ``{"exact_match": 0.3, "exact_match_stderr": 0.1}``; a filter other than ``none`` is kept as ``metric/filter``;
    non-numeric and non-finite values are left out."""
    out: dict[str, float] = {}
    for key, value in entry.items():
        name, sep, filt = str(key).partition(",")
        if not sep or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        out[name if filt == "none" else f"{name}/{filt}"] = float(value)
    return out


def stock_result(raw: Mapping[str, Any], name: str, *, model_name: str, method: str | None, step: int | None,
                 seed: int, run_config: Mapping[str, Any]) -> dict[str, Any]:
    """The paced result dict of stock task ``name`` from ``simple_evaluate``'s output ``raw``."""
    if name not in raw.get("results", {}):
        raise RuntimeError(f"lm-eval returned no results for task {name!r} (got {sorted(raw.get('results', {}))})")
    metrics: dict[str, Any] = dict(stock_metrics(raw["results"][name]))
    n = raw.get("n-samples", {}).get(name, {})
    metrics["n"] = int(n.get("effective", n.get("original", 0))) if isinstance(n, Mapping) else 0
    return {"model": model_name, "method": method, "seed": seed, "step": step, "task": TASK_PREFIX + name,
            "kind": "lm_eval", "metrics": {"all": metrics}, "provenance": provenance(dict(run_config), seed)}


def check_stock_tasks(names: Sequence[str], manager: Any = None) -> None:
    """Raise ``ValueError`` naming any task lm-eval does not know, with close matches."""
    import difflib

    from lm_eval.tasks import TaskManager

    known = set((manager or TaskManager()).all_tasks)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"lm-eval has no registered task {name!r}.{hint}")


def evaluate_stock_tasks(model_path: str | Path, names: Sequence[str], *, config: EvalConfig | None = None,
                         model_name: str | None = None, method: str | None = None,
                         step: int | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate ``model_path`` on lm-eval's registered tasks ``names`` in one run; ``{name: result}``."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    cfg = config if config is not None else EvalConfig()
    manager = TaskManager()
    check_stock_tasks(names, manager)
    model, model_args = backend_args(model_path, cfg)
    t0 = time.perf_counter()
    raw = lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=list(names), task_manager=manager,
                                  batch_size=cfg.batch_size, device=cfg.device, limit=cfg.limit,
                                  random_seed=cfg.seed, numpy_random_seed=cfg.seed, torch_random_seed=cfg.seed,
                                  fewshot_random_seed=cfg.seed, bootstrap_iters=0)
    if raw is None:
        raise RuntimeError("lm_eval.simple_evaluate returned no results (not the main process?)")
    run_config = {"eval": dataclasses.asdict(cfg), "model_path": str(model_path), "wall_s":
                  round(time.perf_counter() - t0, 3), "lm_eval": {"model": model, "model_args": model_args,
                                                                   "tasks": list(names)}}
    label = model_name if model_name is not None else str(model_path)
    out = {n: stock_result(raw, n, model_name=label, method=method, step=step, seed=cfg.seed,
                           run_config=run_config) for n in names}
    log.info("evaluated %s on lm-eval tasks %s", model_path, ", ".join(names))
    return out
