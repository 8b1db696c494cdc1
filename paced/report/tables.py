"""Paper-style tables from the tidy summary: rows = methods, columns = task/tier metrics + forgetting.

Cells are ``mean ± std`` over seeds (sample std, ddof = 1), accuracies in per cent, forgetting in
percentage points; one table per budget (training step). The untouched student (``base``,
step 0) is the first row of every budget's table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from paced.report.collect import BASE_METHOD, FORGETTING_OF
from paced.report.format import MISSING, fmt_mean_std

# Preferred headline metric of a (task, tier), first present wins: avg@k is the paper's metric.
PRIMARY_METRICS = ("avg@k", r"avg@\d+", "mc_acc", "acc", "em", "pass@k", r"pass@\d+")
# forgetting in points / per cent of each probe metric (MC accuracy: the paper's; exact match: the toy probe's)
FORGETTING_PTS = tuple(f"{prefix}_pts" for prefix in FORGETTING_OF.values())
FORGETTING_PCT = tuple(f"{prefix}_pct" for prefix in FORGETTING_OF.values())
FORGETTING_METRICS = FORGETTING_PTS + FORGETTING_PCT
_PERCENT = re.compile(r"^(avg@(k|\d+)|pass@(k|\d+)|mc_acc|acc|em)$")
TIER_ORDER = ("all", "learnable", "hard", "intractable")


def metric_scale(metric: str) -> float:
    """Display factor: fractions in [0, 1] are shown in per cent; forgetting is already in points / %."""
    return 100.0 if _PERCENT.match(metric) else 1.0


def metric_unit(metric: str) -> str:
    if metric in FORGETTING_PTS:
        return "pts"
    return "%" if _PERCENT.match(metric) or metric in FORGETTING_PCT else ""


def __getattr__(name: str) -> Any:
    # METHOD_ORDER: table rows follow the presets' order in paced.methods (the one source), read on first
    # use because paced.methods imports torch, which a report job does not otherwise need
    if name == "METHOD_ORDER":
        from paced.methods import PRESET_ORDER

        return PRESET_ORDER
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def method_order(methods: Sequence[str]) -> list[str]:
    """Presets in the order of ``paced.methods.PRESET_ORDER`` (``METHOD_ORDER``); a ``self-`` id (the
    self-distillation rows) sits just after its preset (``self-uniform-rkl`` after ``uniform-rkl``); any
    other id follows, alphabetically."""
    from paced.methods import PRESET_ORDER

    rank = {m: i for i, m in enumerate(PRESET_ORDER)}

    def key(m: str) -> tuple[float, int, str]:
        if m in rank:
            return (rank[m], 0, m)
        bare = m.removeprefix("self-")
        return (rank[bare], 1, m) if bare in rank else (math.inf, 0, m)

    return sorted(set(methods), key=key)


def tier_key(tier: str) -> tuple[int, str]:
    return (TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER), tier)


def primary_metric(metrics: Sequence[str]) -> str | None:
    """The headline metric among ``metrics`` (see :data:`PRIMARY_METRICS`), or None."""
    for pattern in PRIMARY_METRICS:
        hits = sorted(m for m in metrics if re.fullmatch(pattern, m))
        if hits:
            return hits[0]
    return None


def table_columns(summary: pd.DataFrame, forgetting: Sequence[str] = FORGETTING_PTS) -> list[tuple[str, str, str]]:
    """(task, tier, metric) columns: each task/tier's primary metric, then forgetting metrics."""
    ok = summary.loc[summary["metric"] != "error", ["task", "tier", "metric"]].dropna().drop_duplicates()
    metrics: dict[tuple[str, str], set[str]] = {}
    for task, tier, metric in ok.itertuples(index=False):  # one pass: a groupby per cell is slow for many cells
        metrics.setdefault((task, tier), set()).add(metric)
    cols: list[tuple[str, str, str]] = []
    for task, tier in sorted(metrics, key=lambda k: (k[0], tier_key(k[1]))):
        metric = primary_metric(sorted(metrics[(task, tier)]))
        if metric is not None:
            cols.append((task, tier, metric))
        cols += [(task, tier, f) for f in forgetting if f in metrics[(task, tier)]]
    return cols


def column_label(task: str, tier: str, metric: str) -> str:
    """``"toy_arith/hard avg@k (%)"``; the tier is omitted when it is ``all``."""
    unit = metric_unit(metric)
    where = task if tier == "all" else f"{task}/{tier}"
    return f"{where} {metric}" + (f" ({unit})" if unit else "")


def aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and number of seeds per (method, step, task, tier, metric); values unscaled."""
    ok = summary[(summary["metric"] != "error") & summary["value"].notna()]
    keys = ["method", "step", "task", "tier", "metric"]
    agg = ok.groupby(keys, dropna=False)["value"].agg(mean="mean", std="std", n_seeds="count").reset_index()
    # pandas' nullable dtypes give pd.NA for the std of one seed; downstream maths wants float NaN
    agg[["mean", "std"]] = agg[["mean", "std"]].astype(float)
    return agg


def budgets(summary: pd.DataFrame, base_method: str = BASE_METHOD) -> list[int]:
    """The training budgets (steps) of the distilled methods; ``[0]`` if only the base was run."""
    steps = summary.loc[summary["method"] != base_method, "step"].dropna().unique()
    return sorted(int(s) for s in steps) or [0]


def at_budget(summary: pd.DataFrame, step: int, base_method: str = BASE_METHOD) -> pd.DataFrame:
    """Rows at ``step``, plus the base student's rows (its first step) relabelled to ``step``."""
    base = summary[summary["method"] == base_method]
    if not base.empty:
        base = base[base["step"] == base["step"].min()].assign(step=step)
    rest = summary[(summary["method"] != base_method) & (summary["step"] == step)]
    return pd.concat([base, rest], ignore_index=True)


def _error_counts(rows: pd.DataFrame) -> dict[tuple[str, str], int]:
    """Failed evaluations per (method, task)."""
    err = rows[rows["metric"] == "error"]
    return err.groupby(["method", "task"]).size().to_dict()


def paper_style_table(
    summary: pd.DataFrame,
    step: int,
    columns: Sequence[tuple[str, str, str]] | None = None,
    digits: int = 1,
    base_method: str = BASE_METHOD,
) -> pd.DataFrame:
    """Rows = methods (canonical order), columns = labelled task/tier metrics, cells ``mean ± std``.

    A cell whose evaluations all failed shows ``error``, one with some failed seeds gets
    ``(k failed)`` appended; a cell never run shows ``—``.
    """
    rows = at_budget(summary, step, base_method)
    columns = list(columns) if columns is not None else table_columns(summary)
    agg = aggregate(rows).set_index(["method", "task", "tier", "metric"])
    errors = _error_counts(rows)
    methods = method_order(list(rows["method"].dropna().unique()))
    data: dict[str, list[str]] = {}
    for task, tier, metric in columns:
        cells = []
        for m in methods:
            key = (m, task, tier, metric)
            if key in agg.index:
                r, s = agg.loc[key], metric_scale(metric)
                std = float(r["std"]) * s if not pd.isna(r["std"]) else math.nan
                failed = errors.get((m, task), 0)
                note = f" ({failed} failed)" if failed else ""
                cells.append(fmt_mean_std(float(r["mean"]) * s, std, digits) + note)
            else:
                cells.append("error" if (m, task) in errors else MISSING)
        data[column_label(task, tier, metric)] = cells
    table = pd.DataFrame(data, index=pd.Index(methods, name="method"))
    seeds = rows.groupby("method")["seed"].nunique()
    table.insert(0, "seeds", [int(seeds.get(m, 0)) for m in methods])
    return table
