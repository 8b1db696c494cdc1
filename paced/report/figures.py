"""Figures made only from the tidy summary: accuracy per method and tier, forgetting, curves vs steps.

Every ``plot_*`` takes the summary frame and an output stem and returns the PNG and PDF paths.
:func:`make_all_figures` draws these plus the stage figures (SNR, kernels, pass rates, training).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paced.report._plot import empty_note, method_colors, new_figure, save_figure
from paced.report.collect import BASE_METHOD, add_forgetting
from paced.report.reader_figures import (
    plot_accuracy_vs_budget,
    plot_gain_vs_forgetting,
    plot_graded_forgetting,
    plot_passrate_hists,
    plot_tier_weight_mass,
)
from paced.report.stage_figures import plot_kernels, plot_passrate_hist, plot_snr, plot_training_curves
from paced.report.tables import (
    aggregate,
    at_budget,
    budgets,
    column_label,
    method_order,
    metric_scale,
    table_columns,
)

log = logging.getLogger(__name__)


def _accuracy_targets(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [c for c in table_columns(summary, forgetting=()) if not c[2].startswith("forgetting")]


def _grouped_bars(
    ax: Any, agg: pd.DataFrame, groups: Sequence[Any], group_key: Any, methods: Sequence[str], scale_of: Any
) -> None:
    """Bars per method within each group, error bars = std over seeds."""
    colors, width = method_colors(methods), 0.8 / max(len(methods), 1)
    for i, m in enumerate(methods):
        means, stds = [], []
        for g in groups:
            hit = agg[(agg["method"] == m) & group_key(agg, g)]
            s = scale_of(g)
            means.append(hit["mean"].iloc[0] * s if len(hit) else np.nan)
            stds.append(np.nan_to_num(hit["std"].iloc[0] * s) if len(hit) else 0.0)
        x = np.arange(len(groups)) + (i - (len(methods) - 1) / 2) * width
        ax.bar(x, means, width, yerr=stds, capsize=2, label=m, color=colors[m])


def plot_accuracy(summary: pd.DataFrame, out_stem: str | os.PathLike[str], step: int | None = None) -> list[Path]:
    """Accuracy (%) per method for every task/tier at one budget (default: the largest), mean ± std."""
    step = budgets(summary)[-1] if step is None else step
    rows = at_budget(summary, step)
    targets = _accuracy_targets(rows)
    agg = aggregate(rows)
    methods = method_order(list(agg["method"].unique()))
    fig, axes = new_figure(width=max(6.0, 1.2 * len(targets) * max(len(methods), 1) ** 0.5), height=4.2)
    ax = axes[0, 0]
    if not targets:
        empty_note(ax, "no accuracy results")
    else:

        def key(a: pd.DataFrame, t: tuple[str, str, str]) -> pd.Series:
            return (a["task"] == t[0]) & (a["tier"] == t[1]) & (a["metric"] == t[2])

        _grouped_bars(ax, agg, targets, key, methods, lambda t: metric_scale(t[2]))
        ax.set_xticks(np.arange(len(targets)), [column_label(*t) for t in targets], rotation=20, ha="right")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize="small", ncols=2)
    ax.set_title(f"Accuracy per method and tier at step {step} (mean ± std over seeds)")
    return save_figure(fig, out_stem)


def _forgetting_frame(summary: pd.DataFrame) -> pd.DataFrame:
    if not summary["metric"].eq("forgetting_pts").any():
        summary = add_forgetting(summary)
    return summary[summary["metric"] == "forgetting_pts"]


def plot_forgetting(summary: pd.DataFrame, out_stem: str | os.PathLike[str]) -> list[Path]:
    """Probe forgetting (percentage points, base − distilled) per method at each budget, mean ± std."""
    forg = _forgetting_frame(summary)
    tasks = sorted(forg["task"].unique()) or ["(none)"]
    fig, axes = new_figure(1, len(tasks), width=6.0, height=4.0)
    for ax, task in zip(axes[0], tasks, strict=True):
        agg = aggregate(forg[(forg["task"] == task) & (forg["tier"] == "all")])
        if agg.empty:
            empty_note(ax, "no forgetting results (needs base and probe evaluations)")
            continue
        steps = sorted(int(s) for s in agg["step"].unique())
        methods = method_order(list(agg["method"].unique()))
        _grouped_bars(ax, agg, steps, lambda a, s: a["step"] == s, methods, lambda s: 1.0)
        ax.set_xticks(np.arange(len(steps)), [str(s) for s in steps])
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xlabel("training step (budget)")
        ax.set_ylabel("forgetting: base − distilled accuracy (points)")
        ax.set_title(f"Forgetting on {task} (mean ± std over seeds)")
        ax.legend(fontsize="small")
    return save_figure(fig, out_stem)


def plot_vs_steps(summary: pd.DataFrame, out_stem: str | os.PathLike[str]) -> list[Path]:
    """Accuracy per task/tier and probe forgetting vs training step, a line per method (mean ± std)."""
    forg = _forgetting_frame(summary)
    panels = _accuracy_targets(summary) + [(t, "all", "forgetting_pts") for t in sorted(forg["task"].unique())]
    agg = aggregate(pd.concat([summary, forg], ignore_index=True).drop_duplicates())
    colors = method_colors(list(agg["method"].unique()))
    ncols = min(3, max(len(panels), 1))
    nrows = max(1, -(-len(panels) // ncols))
    fig, axes = new_figure(nrows, ncols, width=4.6, height=3.6)
    for ax in axes.flat[len(panels) :]:
        empty_note(ax, "")
    for ax, (task, tier, metric) in zip(axes.flat, panels, strict=False):
        sel = agg[(agg["task"] == task) & (agg["tier"] == tier) & (agg["metric"] == metric)]
        s = metric_scale(metric)
        for m in method_order(list(sel["method"].unique())):
            cur = sel[sel["method"] == m].sort_values("step")
            if m == BASE_METHOD:
                ax.axhline(cur["mean"].iloc[0] * s, color=colors[m], ls="--", label="base (step 0)")
                continue
            ax.errorbar(
                cur["step"].astype(float),
                cur["mean"] * s,
                yerr=np.nan_to_num(cur["std"] * s),
                marker="o",
                ms=3,
                capsize=2,
                label=m,
                color=colors[m],
            )
        ax.set_xlabel("training step")
        ax.set_ylabel("forgetting (points)" if metric == "forgetting_pts" else f"{metric} (%)")
        ax.set_title(column_label(task, tier, metric), fontsize="medium")
    if panels:
        axes.flat[0].legend(fontsize="x-small")
    fig.suptitle("Accuracy and forgetting vs training budget (mean ± std over seeds)")
    return save_figure(fig, out_stem)


def make_all_figures(
    summary: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    snr: Iterable[Mapping[str, Any] | str | os.PathLike[str]] = (),
    passrates: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    logs: Sequence[str | os.PathLike[str]] = (),
    after_passrates: Mapping[str, str | os.PathLike[str]] | None = None,
    base_passrates: str | os.PathLike[str] | None = None,
    kernel: Any = None,
) -> list[Path]:
    """Every figure into ``out_dir``: accuracy per budget, forgetting, vs steps, kernels, accuracy vs budget with
    seed bands, gain vs forgetting, forgetting on the graded metrics, and, when their inputs are given, SNR (one
    per SNR result), pass-rate histograms (before, after), training curves and the weight mass per tier (``logs``:
    ``runs/<method>/seed<N>/log.jsonl``), and p̂ histograms before and after per method (``after_passrates``:
    ``{method: passrates.jsonl}``; before: ``base_passrates``, else ``passrates[0]``). ``kernel``: the
    configured PACED kernel (a ``KernelConfig`` or its dict) drawn over the SNR figures; None = the SNR result's."""
    out = Path(out_dir)
    paths = [p for step in budgets(summary) for p in plot_accuracy(summary, out / f"accuracy_step{step}", step)]
    paths += plot_forgetting(summary, out / "forgetting")
    paths += plot_vs_steps(summary, out / "vs_steps")
    paths += plot_kernels(out / "kernels")
    paths += plot_accuracy_vs_budget(summary, out / "accuracy_vs_budget")
    paths += plot_gain_vs_forgetting(summary, out / "gain_vs_forgetting")
    paths += plot_graded_forgetting(summary, out / "forgetting_graded")
    before = base_passrates if base_passrates is not None else (passrates[0] if passrates is not None else None)
    if after_passrates and before is not None:
        paths += plot_passrate_hists(before, after_passrates, out / "passrate_hist_per_method",
                                     all_methods=list(summary["method"].unique()))
    seen: set[str] = set()
    for i, s in enumerate(snr):
        parts = [] if isinstance(s, Mapping) else [Path(s).parent.name, Path(s).stem]
        name = "_".join(["snr", *dict.fromkeys(x for x in parts if x and x != "snr")])
        name = f"{name}_{i}" if name in seen else name
        seen.add(name)
        paths += plot_snr(s, out / name, kernel=kernel)
    if passrates is not None:
        paths += plot_passrate_hist(passrates[0], passrates[1], out / "passrate_hist")
    if logs:
        paths += plot_training_curves(logs, out / "training_curves")
        paths += plot_tier_weight_mass(logs, out / "tier_weight_mass", methods=list(summary["method"].unique()))
    log.info("wrote %d figure files to %s", len(paths), out)
    return paths
