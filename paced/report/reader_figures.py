"""The figures a reader of a distillation paper expects, from results files only.

- :func:`plot_accuracy_vs_budget`: accuracy vs training step per method, mean line and a min..max band over seeds;
- :func:`plot_gain_vs_forgetting`: accuracy gain over the base student against forgetting on exact match and on
  the gold choice's probability, a point per method × seed;
- :func:`plot_tier_weight_mass`: the share of each batch's weight on each tier over training (the mechanism PACED
  claims: weight leaves the intractable tier), a line per run;
- :func:`plot_passrate_hists`: p̂ histograms of the base student and, per method, after distillation;
- :func:`plot_graded_forgetting`: forgetting on MC accuracy, gold-choice probability and exact match vs step.

One colour per method (:func:`paced.report._plot.method_colors`) and one line style / marker per seed throughout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paced.io import read_jsonl
from paced.report._plot import empty_note, method_colors, new_figure, save_figure
from paced.report.collect import BASE_METHOD
from paced.report.reader_data import (
    GRADED_FORGETTING,
    GRADED_LABELS,
    accuracy_bands,
    gain_forgetting_points,
    passrate_counts,
    primary_target,
    seed_style,
    tier_weight_shares,
    with_graded_forgetting,
)
from paced.report.tables import column_label, method_order, metric_scale, table_columns

PathLike = str | os.PathLike[str]


def _accuracy_targets(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [c for c in table_columns(summary, forgetting=()) if not c[2].startswith("forgetting")]


def _band_panel(ax: Any, bands: pd.DataFrame, colors: Mapping[str, object], scale: float) -> None:
    for m in method_order(list(bands["method"].unique())):
        cur = bands[bands["method"] == m]
        ax.plot(cur["step"], cur["mean"] * scale, marker="o", ms=3, color=colors[m], label=m)
        ax.fill_between(cur["step"], cur["lo"] * scale, cur["hi"] * scale, color=colors[m], alpha=0.18, lw=0)


def plot_accuracy_vs_budget(summary: pd.DataFrame, out_stem: PathLike) -> list[Path]:
    """Accuracy (%) vs training step per task/tier; line = mean over seeds, band = min..max over seeds; step 0 is
    the base student."""
    targets = _accuracy_targets(summary)
    ncols = min(3, max(len(targets), 1))
    nrows = max(1, -(-len(targets) // ncols))
    fig, axes = new_figure(nrows, ncols, width=4.6, height=3.6)
    colors = method_colors(list(summary["method"].unique()))
    for ax in axes.flat[len(targets):]:
        empty_note(ax, "" if targets else "no accuracy results")
    for ax, (task, tier, metric) in zip(axes.flat, targets, strict=False):
        _band_panel(ax, accuracy_bands(summary, task, tier, metric), colors, metric_scale(metric))
        ax.set_xlabel("training step (0 = base student)")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(column_label(task, tier, metric), fontsize="medium")
    if targets:
        axes.flat[0].legend(fontsize="x-small")
    fig.suptitle("Accuracy vs training budget (line: mean over seeds; band: min..max over seeds)")
    return save_figure(fig, out_stem)


def plot_gain_vs_forgetting(summary: pd.DataFrame, out_stem: PathLike, step: int | None = None) -> list[Path]:
    """Accuracy gain over the base (points, y) against forgetting (points, x) on exact match and on the gold
    choice's probability; a point per method (colour) × seed (marker)."""
    points = gain_forgetting_points(summary, step)
    target = primary_target(summary)
    panels = [p for p in ("forgetting_em", "forgetting_prob") if p in points.columns] or ["forgetting_em"]
    fig, axes = new_figure(1, len(panels), width=5.0, height=4.2)
    colors = method_colors(list(summary["method"].unique()))
    styles = seed_style(points["seed"].tolist()) if not points.empty else {}
    for ax, col in zip(axes[0], panels, strict=True):
        if points.empty or col not in points.columns:
            empty_note(ax, f"no {GRADED_LABELS[col]} forgetting (needs base and probe evaluations)")
            continue
        for r in points.itertuples():
            ax.scatter(getattr(r, col), r.gain, color=colors[r.method], marker=styles[r.seed][1], s=36,
                       edgecolors="black", linewidths=0.4)
        for m in method_order(list(points["method"].unique())):
            ax.scatter([], [], color=colors[m], marker="o", label=m)
        for s, (_, marker) in styles.items():
            ax.scatter([], [], color="white", edgecolors="black", marker=marker, label=f"seed {s}")
        ax.axhline(0.0, color="black", lw=0.6)
        ax.axvline(0.0, color="black", lw=0.6)
        ax.set_xlabel(f"forgetting on {GRADED_LABELS[col]} (points; right = forgets more)")
        ax.set_ylabel(f"gain on {column_label(*target) if target else 'accuracy'} (points)")
        ax.legend(fontsize="x-small", ncols=2)
    at = int(points["step"].iloc[0]) if not points.empty else step
    fig.suptitle(f"Gain vs forgetting at step {at}\n(a point per method × seed; up-left is better)",
                 fontsize="medium")
    return save_figure(fig, out_stem)


def plot_tier_weight_mass(logs: Sequence[PathLike], out_stem: PathLike, methods: Sequence[str] = ()) -> list[Path]:
    """Share of each batch's total weight per tier vs step, a panel per tier, a line per run (colour = method,
    line style = seed); runs without ``tier_weight_share`` rows are left out. ``methods``: every method of the run,
    so that each keeps the colour it has in the other figures."""
    shares = tier_weight_shares(logs)
    tiers = sorted(shares["tier"].unique(), key=lambda t: (t != "intractable", t)) or ["(none)"]
    fig, axes = new_figure(1, len(tiers), width=5.0, height=3.8)
    colors = method_colors(list(methods) or list(shares["method"].unique()))
    styles = seed_style(shares["seed"].tolist()) if not shares.empty else {}
    for ax, tier in zip(axes[0], tiers, strict=True):
        sel = shares[shares["tier"] == tier]
        if sel.empty:
            empty_note(ax, "no tier_weight_share in the runs' logs")
            continue
        for (m, s), cur in sel.groupby(["method", "seed"]):
            cur = cur.sort_values("step")
            ax.plot(cur["step"], 100 * cur["share"], color=colors[m], ls=styles[s][0], lw=1.2,
                    label=f"{m} seed {s}")
        ax.set_ylim(-2, 102)
        ax.set_xlabel("training step")
        ax.set_ylabel("share of the batch's weight (%)")
        ax.set_title(f"Weight mass on the {tier} tier")
    if not shares.empty:
        axes[0, 0].legend(fontsize="xx-small", ncols=2)
    fig.suptitle("Where the weight goes during training (colour: method; line style: seed)")
    return save_figure(fig, out_stem)


def plot_passrate_hists(before: PathLike, after: Mapping[str, PathLike], out_stem: PathLike,
                        all_methods: Sequence[str] = ()) -> list[Path]:
    """p̂ histograms: the base student (first panel) and each method's student after distillation, with the base's
    histogram as an outline for comparison. Panels are titled by method; colours as in the other figures when
    ``all_methods`` lists every method of the run."""
    k, base_counts = passrate_counts(read_jsonl(before))
    methods = method_order(list(after))
    fig, axes = new_figure(1, 1 + len(methods), width=3.6, height=3.4)
    colors = method_colors([*all_methods, *methods, BASE_METHOD])
    grid = np.arange(k + 1) / k
    panels = [(BASE_METHOD, before), *((m, after[m]) for m in methods)]
    for ax, (name, path) in zip(axes[0], panels, strict=True):
        kk, counts = passrate_counts(read_jsonl(path))
        ax.bar(np.arange(kk + 1) / kk, counts, width=0.8 / kk, color=colors[name], label=f"{name} (n = {sum(counts)})")
        if name != BASE_METHOD:
            ax.step(grid, base_counts, where="mid", color="black", lw=0.8, label="base")
        ax.set_xlabel("p̂ = correct / k")
        ax.set_title("before: base student" if name == BASE_METHOD else f"after: {name}", fontsize="medium")
        ax.legend(fontsize="x-small")
    axes[0, 0].set_ylabel("problems (count)")
    fig.suptitle("Student pass rates before and after distillation, per method")
    return save_figure(fig, out_stem)


def plot_graded_forgetting(summary: pd.DataFrame, out_stem: PathLike) -> list[Path]:
    """Forgetting (points, base − distilled) vs step on each graded probe metric present; line = mean over seeds,
    band = min..max over seeds."""
    df = with_graded_forgetting(summary)
    prefixes = [p for p in GRADED_FORGETTING.values() if df["metric"].eq(f"{p}_pts").any()]
    fig, axes = new_figure(1, max(len(prefixes), 1), width=4.6, height=3.6)
    colors = method_colors(list(df["method"].unique()))
    if not prefixes:
        empty_note(axes[0, 0], "no forgetting results (needs base and probe evaluations)")
    for ax, prefix in zip(axes[0], prefixes, strict=False):
        tasks = sorted(df.loc[df["metric"] == f"{prefix}_pts", "task"].unique())
        _band_panel(ax, accuracy_bands(df, tasks[0], "all", f"{prefix}_pts"), colors, 1.0)
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_xlabel("training step")
        ax.set_ylabel("forgetting (points)")
        ax.set_title(f"{tasks[0]}: {GRADED_LABELS[prefix]}", fontsize="medium")
    if prefixes:
        axes[0, 0].legend(fontsize="x-small")
    fig.suptitle("Forgetting on the graded probe metrics (line: mean over seeds; band: min..max)")
    return save_figure(fig, out_stem)
