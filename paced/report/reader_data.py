"""Data shaping for the readers' figures (:mod:`paced.report.reader_figures`), from results files only.

Each function turns the tidy summary or the runs' ``log.jsonl`` files into a small frame that one figure draws;
they are kept apart from the drawing so that each can be tested against hand-computed values.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from paced.report.collect import BASE_METHOD, PROBE_TASKS, add_forgetting
from paced.report.tables import primary_metric

# Graded forgetting: probe metric -> the forgetting prefix add_forgetting writes (``<prefix>_pts``).
GRADED_FORGETTING = {"mc_acc": "forgetting", "mc_prob": "forgetting_prob", "em": "forgetting_em"}
GRADED_LABELS = {"forgetting": "MC accuracy", "forgetting_prob": "gold-choice probability",
                 "forgetting_em": "greedy exact match"}
SEED_STYLES: tuple[object, ...] = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)))
SEED_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def seed_style(seeds: Sequence[int]) -> dict[int, tuple[object, str]]:
    """One (line style, marker) per seed, in sorted seed order (cycling past 7 seeds)."""
    return {s: (SEED_STYLES[i % len(SEED_STYLES)], SEED_MARKERS[i % len(SEED_MARKERS)])
            for i, s in enumerate(sorted(set(int(x) for x in seeds)))}


def primary_target(summary: pd.DataFrame) -> tuple[str, str, str] | None:
    """(task, "all", metric) of the headline accuracy: the first non-probe task with a primary metric."""
    ok = summary[(summary["metric"] != "error") & ~summary["task"].isin(PROBE_TASKS)]
    for task in sorted(ok["task"].unique()):
        metric = primary_metric(sorted(ok.loc[ok["task"] == task, "metric"].unique()))
        if metric is not None:
            return task, "all", metric
    return None


def accuracy_bands(summary: pd.DataFrame, task: str, tier: str, metric: str) -> pd.DataFrame:
    """Per (method, step): mean, min and max over seeds of ``metric`` (unscaled), one row each.

    Every distilled method also gets a step-0 row: the base student's mean over its seeds (its band is the base's
    min..max), so that a line starts where training starts. Columns: method, step, mean, lo, hi, n_seeds.
    """
    sel = summary[(summary["task"] == task) & (summary["tier"] == tier) & (summary["metric"] == metric)
                  & summary["value"].notna()]
    grouped = sel.groupby(["method", "step"])["value"]
    out = grouped.agg(mean="mean", lo="min", hi="max", n_seeds="count").reset_index()
    base = out[out["method"] == BASE_METHOD]
    out = out[out["method"] != BASE_METHOD]
    if not base.empty:
        b = base.iloc[0]
        starts = pd.DataFrame([{"method": m, "step": 0, "mean": b["mean"], "lo": b["lo"], "hi": b["hi"],
                                "n_seeds": b["n_seeds"]} for m in out["method"].unique()])
        out = pd.concat([starts, out], ignore_index=True) if not starts.empty else out
    out = out.astype({"step": int, "mean": float, "lo": float, "hi": float})
    return out.sort_values(["method", "step"]).reset_index(drop=True)


def with_graded_forgetting(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with forgetting rows (points and per cent) for every graded probe metric present."""
    present = set(summary["metric"].unique())
    return add_forgetting(summary, metrics={m: p for m, p in GRADED_FORGETTING.items() if m in present})


def gain_forgetting_points(summary: pd.DataFrame, step: int | None = None,
                           target: tuple[str, str, str] | None = None) -> pd.DataFrame:
    """One row per distilled (method, seed) at ``step`` (default: the largest budget): the accuracy gain over the
    base student in points (base of the same seed, else the base mean) and the forgetting, in points, on each
    graded metric present (columns ``forgetting``, ``forgetting_prob``, ``forgetting_em``)."""
    target = target or primary_target(summary)
    if target is None:
        return pd.DataFrame(columns=["method", "seed", "step", "gain"])
    task, tier, metric = target
    df = with_graded_forgetting(summary)
    distilled = df[(df["method"] != BASE_METHOD) & (df["metric"] != "error")]
    step = int(distilled["step"].max()) if step is None and not distilled.empty else step
    acc = df[(df["task"] == task) & (df["tier"] == tier) & (df["metric"] == metric) & df["value"].notna()]
    base = acc[acc["method"] == BASE_METHOD]
    base_of = dict(zip(base["seed"].astype(int), base["value"], strict=True))
    base_mean = float(base["value"].mean()) if not base.empty else math.nan
    rows = []
    for r in acc[(acc["method"] != BASE_METHOD) & (acc["step"] == step)].itertuples():
        row = {"method": r.method, "seed": int(r.seed), "step": step,
               "gain": 100.0 * (r.value - base_of.get(int(r.seed), base_mean))}
        for prefix in GRADED_FORGETTING.values():
            hit = df[(df["method"] == r.method) & (df["seed"] == r.seed) & (df["step"] == step)
                     & (df["metric"] == f"{prefix}_pts") & (df["tier"] == "all")]
            if not hit.empty:
                row[prefix] = float(hit["value"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["method", "seed"]).reset_index(drop=True) if rows else \
        pd.DataFrame(columns=["method", "seed", "step", "gain"])


def run_identity(log_path: str | os.PathLike[str]) -> tuple[str, int]:
    """(method, seed) of ``.../runs/<method>/seed<N>/log.jsonl``."""
    path = Path(log_path)
    seed = path.parent.name
    if not seed.startswith("seed") or not seed[4:].isdigit():
        raise ValueError(f"{path}: expected a log at runs/<method>/seed<N>/log.jsonl")
    return path.parent.parent.name, int(seed[4:])


def tier_weight_shares(logs: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Share of each batch's total weight per tier over training, from the runs' ``log.jsonl`` step rows that carry
    ``tier_weight_share``. Columns: method, seed, step, tier, share (in [0, 1])."""
    rows = []
    for log in logs:
        method, seed = run_identity(log)
        for line in Path(log).read_text(encoding="utf-8").splitlines():
            rec = json.loads(line) if line.strip() else {}
            shares: Mapping[str, float] = rec.get("tier_weight_share") or {}
            rows += [{"method": method, "seed": seed, "step": int(rec["step"]), "tier": t, "share": float(v)}
                     for t, v in shares.items()]
    return pd.DataFrame(rows, columns=["method", "seed", "step", "tier", "share"])


def passrate_counts(rows: Sequence[Mapping[str, object]]) -> tuple[int, list[int]]:
    """(k, counts[j] = problems with j of k rollouts correct) from ``passrates.jsonl`` rows; k is the largest in
    the rows, and a row with another k is placed at the nearest j/k of its ``num_correct / k``."""
    rows = [r for r in rows if not r.get("overlong")]  # skipped by the pass-rate stage: no estimate
    k = max(int(r["k"]) for r in rows) if rows else 1  # type: ignore[call-overload]
    counts = [0] * (k + 1)
    for r in rows:
        counts[round(int(r["num_correct"]) / int(r["k"]) * k)] += 1  # type: ignore[call-overload]
    return k, counts
