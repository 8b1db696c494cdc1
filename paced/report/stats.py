"""Paired differences between methods over matched seeds, with a seeded bootstrap CI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from paced.report.collect import BASE_METHOD
from paced.report.tables import at_budget, budgets, method_order, metric_scale

NON_OUTCOMES = ("error", "k")  # rows that are not outcomes to compare (k: samples per problem)
PAIRED_COLUMNS = (
    "step",
    "task",
    "tier",
    "metric",
    "method",
    "reference",
    "n_pairs",
    "mean_diff",
    "ci_lo",
    "ci_hi",
)


def bootstrap_mean_ci(
    diffs: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile bootstrap CI of the mean of ``diffs`` [n], resampling with replacement.

    With n = 1 the interval is the point itself (lo = hi = mean); callers decide what a single
    pair means (the verdicts call it inconclusive). An empty array gives NaNs.
    """
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.size == 0:
        return math.nan, math.nan, math.nan
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diffs.size, size=(n_boot, diffs.size))  # (n_boot, n)
    means = diffs[idx].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(diffs.mean()), float(lo), float(hi)


def _pivot_by_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """Values indexed by (task, tier, metric, seed), one column per method."""
    ok = rows[~rows["metric"].isin(NON_OUTCOMES) & rows["value"].notna()]
    return ok.pivot_table(index=["task", "tier", "metric", "seed"], columns="method", values="value", aggfunc="mean")


def paired_differences(
    summary: pd.DataFrame,
    reference: str = "uniform-fkl",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    scaled: bool = True,
    base_method: str = BASE_METHOD,
) -> pd.DataFrame:
    """Each method − ``reference`` per (step, task, tier, metric), over seeds both have.

    ``mean_diff`` is the mean paired difference and ``ci_lo``/``ci_hi`` its bootstrap CI (seeded);
    with ``scaled`` the numbers are in display units (per cent / points, see ``metric_scale``).
    The base student is paired with the reference at every budget.
    """
    out = []
    for step in budgets(summary, base_method):
        wide = _pivot_by_seed(at_budget(summary, step, base_method))
        if reference not in wide.columns:
            continue
        for method in method_order([c for c in wide.columns if c != reference]):
            pairs = wide[[method, reference]].dropna()
            for (task, tier, metric), grp in pairs.groupby(level=["task", "tier", "metric"]):
                s = metric_scale(metric) if scaled else 1.0
                d = (grp[method] - grp[reference]).to_numpy() * s
                mean, lo, hi = bootstrap_mean_ci(d, n_boot, level, seed)
                out.append(
                    {
                        "step": step,
                        "task": task,
                        "tier": tier,
                        "metric": metric,
                        "method": method,
                        "reference": reference,
                        "n_pairs": int(d.size),
                        "mean_diff": mean,
                        "ci_lo": lo,
                        "ci_hi": hi,
                    }
                )
    return pd.DataFrame(out, columns=list(PAIRED_COLUMNS))


def paired_difference(
    summary: pd.DataFrame,
    method: str,
    reference: str,
    step: int,
    task: str,
    tier: str,
    metric: str,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    base_method: str = BASE_METHOD,
) -> dict[str, float]:
    """One cell of :func:`paired_differences` (scaled units); ``n_pairs = 0`` when nothing matches."""
    rows = at_budget(summary, step, base_method)
    rows = rows[(rows["task"] == task) & (rows["tier"] == tier) & (rows["metric"] == metric)]
    wide = _pivot_by_seed(rows)
    if method not in wide.columns or reference not in wide.columns:
        return {"n_pairs": 0, "mean_diff": math.nan, "ci_lo": math.nan, "ci_hi": math.nan}
    pairs = wide[[method, reference]].dropna()
    d = (pairs[method] - pairs[reference]).to_numpy() * metric_scale(metric)
    mean, lo, hi = bootstrap_mean_ci(d, n_boot, level, seed)
    return {"n_pairs": int(d.size), "mean_diff": mean, "ci_lo": lo, "ci_hi": hi}
