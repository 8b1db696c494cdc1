"""Is the toy world in the paper's regime? Evidence from the run's own results files.

The world builder selects its teacher and student by fixed criteria; whether the *distillation*
regime holds — intractable problems stay at chance under uniform distillation while the learnable
tier improves, and the probe starts high and degrades — can only be seen after distilling. This
module reads what the workflow already wrote (``world.json``, the base pass rates and
``summary.csv``) and states it as numbers, checks and a figure; it measures nothing itself.

:func:`world_calibration` → a dict (written as ``calibration.json``); :func:`plot_world_calibration`
→ a three-panel figure (pool p̂ by tier; tier accuracy vs step; probe vs step).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paced.report.collect import BASE_METHOD

ARITH_TASK, PROBE_TASK = "toy_arith", "toy_probe"
TIERS = ("learnable", "hard", "intractable")
PROBE_METRICS = ("mc_acc", "mc_prob", "em")
CHANCE_MARGIN = 0.05  # "at chance": within this of 1/modulus (a sample is right by luck 1/24 of the time)
INTRACTABLE_CHANCE = 1 / 24


def pool_histograms(rates: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """``{tier: [#problems with j correct of k, j = 0..k]}`` from ``passrates.jsonl`` rows."""
    out: dict[str, list[int]] = {}
    for r in rates:
        if r.get("overlong"):  # skipped by the pass-rate stage: no estimate
            continue
        k = int(r["k"])
        hist = out.setdefault(str(r.get("tier")), [0] * (k + 1))
        if len(hist) != k + 1:
            raise ValueError(f"passrates rows mix k values ({len(hist) - 1} and {k}) for tier {r.get('tier')!r}")
        hist[int(r["num_correct"])] += 1
    return out


def trajectory(summary: pd.DataFrame, method: str, task: str, tier: str, metric: str) -> list[dict[str, float]]:
    """``[{step, mean, min, max, n_seeds}]`` of one metric, the base student as step 0."""
    rows = summary[(summary["task"] == task) & (summary["tier"] == tier) & (summary["metric"] == metric)]
    base = rows[rows["method"] == BASE_METHOD].assign(step=0)
    run = rows[rows["method"] == method]
    out = []
    for step, grp in pd.concat([base, run]).groupby("step"):
        vals = pd.to_numeric(grp["value"], errors="coerce").dropna()
        if len(vals):
            out.append({"step": int(step), "mean": float(vals.mean()), "min": float(vals.min()),
                        "max": float(vals.max()), "n_seeds": len(vals)})
    return out


def final_gain(curve: Sequence[Mapping[str, float]]) -> float | None:
    """Last mean minus the first (step 0); ``None`` without at least two points."""
    return curve[-1]["mean"] - curve[0]["mean"] if len(curve) >= 2 else None


def degrades(curve: Sequence[Mapping[str, float]]) -> bool | None:
    gain = final_gain(curve)
    return gain < 0 if gain is not None else None


def regime_checks(hist: Mapping[str, Sequence[int]], curves: Mapping[str, Sequence[Mapping[str, float]]],
                  probe: Sequence[Mapping[str, float]]) -> dict[str, bool | None]:
    """The paper's regime as booleans; ``None`` where the run has no data to decide."""
    learn = list(hist.get("learnable", []))
    k = len(learn) - 1
    intr = curves.get("intractable", [])
    gain = final_gain(curves.get("learnable", []))
    return {
        "pool_learnable_mass_at_0": learn[0] > 0 if learn else None,
        "pool_learnable_mass_interior": sum(learn[1:k]) > 0 if learn else None,
        "pool_learnable_mass_at_1": learn[k] > 0 if learn else None,
        "intractable_at_chance_every_budget": (all(p["mean"] <= INTRACTABLE_CHANCE + CHANCE_MARGIN for p in intr)
                                               if len(intr) >= 2 else None),
        "learnable_improves": gain > 0 if gain is not None else None,
        "probe_starts_at_least_0.9": probe[0]["mean"] >= 0.9 if probe else None,
        "probe_degrades": degrades(probe),
    }


def world_calibration(world: Mapping[str, Any], rates: Iterable[Mapping[str, Any]], summary: pd.DataFrame,
                      method: str = "uniform-fkl") -> dict[str, Any]:
    """The calibration record: pool histograms, ``method``'s trajectories by tier and on the probe, checks."""
    hist = pool_histograms(rates)
    curves = {tier: trajectory(summary, method, ARITH_TASK, tier, "avg@k") for tier in TIERS}
    probe = {m: trajectory(summary, method, PROBE_TASK, "all", m) for m in PROBE_METRICS}
    checks = regime_checks(hist, curves, probe["mc_acc"])
    checks.update({f"probe_{metric}_degrades": degrades(probe[metric]) for metric in PROBE_METRICS[1:]})
    has_run = any(len(c) > 1 for c in curves.values())
    return {
        "method": method if has_run else None,
        "note": None if has_run else f"no {method!r} evaluations in summary.csv: only the base student is shown",
        "pool_histogram": hist,
        "accuracy_avg_at_k": curves,
        "probe": probe,
        "checks": checks,
        "chance": {"intractable": INTRACTABLE_CHANCE, "margin": CHANCE_MARGIN},
        "teacher": {key: world.get("teacher", {}).get(key) for key in ("step", "metrics", "criteria_met")},
        "student": {key: world.get("student", {}).get(key) for key in ("step", "metrics", "criteria_met")},
        "world_timings_s": world.get("timings", {}),
    }


def plot_world_calibration(record: Mapping[str, Any], out_stem: str | os.PathLike[str]) -> list[Path]:
    """Pool p̂ histogram by tier | avg@k by tier vs step | probe MC and EM vs step."""
    from paced.report._plot import new_figure, save_figure

    fig, axes = new_figure(1, 3, width=5.0, height=4.0)
    ax1, ax2, ax3 = axes[0]
    hist = record["pool_histogram"]
    tiers = sorted(hist)
    width = 0.8 / max(1, len(tiers))
    for i, tier in enumerate(tiers):
        counts = np.asarray(hist[tier])
        x = np.arange(len(counts))
        ax1.bar(x + (i - (len(tiers) - 1) / 2) * width, counts, width=width, label=f"{tier} (n={counts.sum()})")
        ax1.set_xticks(x, [f"{j}/{len(counts) - 1}" for j in x])
    ax1.set_xlabel("base-student pass rate p̂ over the pool")
    ax1.set_ylabel("problems")
    ax1.set_title("pool pass rates (base student)")
    ax1.legend(fontsize=8)
    method = record.get("method") or "base only"
    for tier, curve in record["accuracy_avg_at_k"].items():
        _curve(ax2, curve, tier)
    ax2.axhline(record["chance"]["intractable"], color="gray", ls=":", lw=1, label="chance (1/24)")
    ax2.set_title(f"held-out avg@k under {method}")
    ax2.set_xlabel("distillation step")
    ax2.set_ylabel("avg@k")
    ax2.set_ylim(0, 1)
    ax2.legend(fontsize=8)
    for metric, curve in record["probe"].items():
        _curve(ax3, curve, {"mc_acc": "MC accuracy", "mc_prob": "gold-choice probability (graded)",
                           "em": "exact match (sensitive)"}.get(metric, metric))
    ax3.set_title(f"forgetting probe under {method}")
    ax3.set_xlabel("distillation step")
    ax3.set_ylabel("accuracy / probability")
    lows = [p["min"] for curve in record["probe"].values() for p in curve]
    ax3.set_ylim(max(0.0, min(lows, default=0.0) - 0.15), 1.01)  # zoomed: forgetting is a few points
    ax3.legend(fontsize=8)
    fig.suptitle("toy world calibration: is the run in the paper's regime?")
    return save_figure(fig, out_stem)


def _curve(ax: Any, curve: Sequence[Mapping[str, float]], label: str) -> None:
    if not curve:
        return
    steps = [p["step"] for p in curve]
    ax.plot(steps, [p["mean"] for p in curve], marker="o", label=label)
    ax.fill_between(steps, [p["min"] for p in curve], [p["max"] for p in curve], alpha=0.2)
