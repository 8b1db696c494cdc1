"""Paired differences between methods over matched seeds, with a paired t-interval.

Why a t-interval. The unit of replication is the distillation seed: a run gives one number per
seed and cell, and that is all ``summary.csv`` holds for most metrics. With n seeds a percentile
bootstrap of the mean is no interval at all: for n ≤ 3 it is [min, max] of the n differences, so
"the CI excludes 0" means "every seed agrees in sign", which two identical methods do with
probability 2 · 2⁻ⁿ (25% at n = 3, 50% at n = 2). The paired t-interval

    d̄ ± t_{n−1, 1−a/2} · s_d / √n        (d: the n per-seed differences, s_d their sample std)

has coverage exactly 1 − a when the per-seed differences are normal, for every n ≥ 2, and each
per-seed value is a mean over many problems × samples, so near-normal by the central limit
theorem. It uses per-seed values only. Its price is width at small n (t_{2, 0.975} = 4.30), which
the calibration test (``tests/test_verdict_calibration.py``) turns into a power table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from paced.report.collect import BASE_METHOD
from paced.report.tables import at_budget, budgets, method_order, metric_scale

NON_OUTCOMES = ("error", "k")  # rows that are not outcomes to compare (k: samples per problem)
CELL = ("task", "tier", "metric")
PAIRED_COLUMNS = (
    "step",
    "task",
    "tier",
    "metric",
    "method",
    "reference",
    "n_pairs",
    "mean_diff",
    "sd_diff",
    "level",
    "ci_lo",
    "ci_hi",
)


def t_bounds(mean: np.ndarray, sd: np.ndarray, n: np.ndarray, level: float | np.ndarray) -> tuple[np.ndarray, ...]:
    """(lo, hi) of the t-interval mean ± t_{n−1, (1+level)/2} · sd / √n, elementwise over arrays [c].

    NaN where n < 2 (one seed has no spread) or sd is NaN; an sd of 0 gives lo = hi = mean.
    """
    mean, sd = np.asarray(mean, dtype=np.float64), np.asarray(sd, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    level = np.broadcast_to(np.asarray(level, dtype=np.float64), mean.shape)
    if np.any((level <= 0) | (level >= 1)):
        raise ValueError(f"level must be in (0, 1); got {np.unique(level).tolist()}")
    from scipy import stats  # on use: scipy.stats takes a while to import

    ok = n >= 2
    q = np.full(mean.shape, np.nan)
    q[ok] = stats.t.ppf((1 + level[ok]) / 2, n[ok] - 1)
    half = q * sd / np.sqrt(np.where(ok, n, np.nan))
    return mean - half, mean + half


def t_interval(diffs: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): the paired t-interval of the mean of ``diffs`` [n] (see the module docstring).

    n = 1 gives (mean, NaN, NaN); an empty array gives NaNs.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    sd = d.std(ddof=1) if d.size > 1 else math.nan
    lo, hi = t_bounds(np.array([d.mean()]), np.array([sd]), np.array([d.size]), level)
    return float(d.mean()), float(lo[0]), float(hi[0])


def pivot_by_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """Values indexed by (task, tier, metric, seed), one column per method."""
    ok = rows[~rows["metric"].isin(NON_OUTCOMES) & rows["value"].notna()]
    return ok.pivot_table(index=[*CELL, "seed"], columns="method", values="value", aggfunc="mean")


def paired_cells(
    summary: pd.DataFrame,
    method: str,
    reference: str,
    step: int,
    scaled: bool = True,
    base_method: str = BASE_METHOD,
) -> pd.DataFrame:
    """``method − reference`` per (task, tier, metric) at ``step`` over the seeds both have.

    Index: (task, tier, metric); columns ``n_pairs``, ``mean_diff``, ``sd_diff`` (sample std of the
    per-seed differences, ddof = 1); display units with ``scaled``. Empty when either method is absent.
    """
    return paired_from_wide(pivot_by_seed(at_budget(summary, step, base_method)), method, reference, scaled)


def paired_from_wide(wide: pd.DataFrame, method: str, reference: str, scaled: bool = True) -> pd.DataFrame:
    """:func:`paired_cells` from a values-by-seed frame (index task, tier, metric, seed; a column per method)."""
    if method not in wide.columns or reference not in wide.columns:
        return pd.DataFrame(columns=["n_pairs", "mean_diff", "sd_diff"])
    d = (wide[method] - wide[reference]).dropna()
    if scaled and len(d):
        scale = np.array([metric_scale(m) for m in d.index.get_level_values("metric")])
        d = d * scale
    out = d.groupby(level=list(CELL)).agg(n_pairs="count", mean_diff="mean", sd_diff="std")
    out["n_pairs"] = out["n_pairs"].astype(int)
    return out


def paired_differences(
    summary: pd.DataFrame,
    reference: str = "uniform-fkl",
    level: float = 0.95,
    scaled: bool = True,
    base_method: str = BASE_METHOD,
) -> pd.DataFrame:
    """Each method − ``reference`` per (step, task, tier, metric), with its paired t-interval at ``level``.

    Descriptive: these are per-cell intervals with no multiplicity adjustment (the verdicts, not this
    table, carry the error-rate statement). The base student is paired with the reference at every budget.
    """
    out = []
    for step in budgets(summary, base_method):
        methods = set(at_budget(summary, step, base_method)["method"].dropna()) - {reference}
        for method in method_order(sorted(methods)):
            cells = paired_cells(summary, method, reference, step, scaled, base_method)
            if cells.empty:
                continue
            lo, hi = t_bounds(cells["mean_diff"], cells["sd_diff"], cells["n_pairs"], level)
            cells = cells.assign(step=step, method=method, reference=reference, level=level, ci_lo=lo, ci_hi=hi)
            out.append(cells.reset_index())
    if not out:
        return pd.DataFrame(columns=list(PAIRED_COLUMNS))
    return pd.concat(out, ignore_index=True)[list(PAIRED_COLUMNS)]
