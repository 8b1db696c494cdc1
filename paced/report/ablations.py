"""Ablation runs as tidy CSVs: the main summary's columns plus the knob(s) each ablation varies.

An ablation is a config override (``config/ablations/<name>.yaml``) run into its own ``results_dir``, whose
``summary.csv`` has the main summary's schema. :func:`collect_ablation` adds ``ablation`` (the name), ``knobs``
(the knobs it varies, ``;``-joined) and one column per knob (``alpha``, ``beta``, ``k``, ...) holding each
method's value, read from the resolved method specs (never parsed from method ids); the base student's rows
keep empty knob values. :func:`knob_effects` and the ``plot_*`` functions turn that frame into figures.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paced.config_files import merge_config, read_config_file
from paced.methods import MethodSpec
from paced.report.collect import BASE_METHOD, SUMMARY_COLUMNS, read_summary, write_summary
from paced.report.tables import aggregate, budgets, column_label, metric_scale

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
# Knob columns, in order of precedence: a knob whose values follow from earlier varied knobs is not reported
# (kernels: weight_source follows from kernel; refresh: refresh_every follows from refresh).
KNOBS = (
    "kernel",
    "alpha",
    "beta",
    "floor",
    "normalisation",
    "k",
    "smoothing",
    "refresh",
    "refresh_every",
    "schedule",
    "first_stage_fraction",
    "teacher",
    "weight_source",
)
INT_KNOBS = ("k", "refresh_every")
NUMERIC_KNOBS = ("alpha", "beta", "floor", "first_stage_fraction", *INT_KNOBS)
ABLATION_SUMMARY = "ablation_summary.csv"


def load_ablation_config(path: PathLike, base: PathLike | None = None) -> dict[str, Any]:
    """The ablation file at ``path`` merged over ``base`` (default: ``config.yaml`` one folder up, if present)."""
    path = Path(path)
    base = Path(base) if base is not None else path.parent.parent / "config.yaml"
    return merge_config(read_config_file(base) if base.is_file() else {}, read_config_file(path))


def ablation_specs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{method id: resolved MethodSpec dict}`` for ``config['methods']``, as the suite resolves them.

    Raises ``ValueError`` naming the method and the key for unknown knobs, presets or out-of-range values.
    """
    from paced.pipeline.suite import resolve_methods

    defaults = {f: MethodSpec.__dataclass_fields__[f].default for f in ("k", "smoothing")}
    passrate = {**defaults, "refresh": "preset", **(config.get("passrate") or {})}
    cfg = {
        "methods": list(config.get("methods") or []),
        "passrate": passrate,
        "method_overrides": config.get("method_overrides") or {},
    }
    if not cfg["methods"]:
        raise ValueError("methods: an ablation config must list the methods it compares")
    return resolve_methods(cfg)[1]


def knob_values(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`KNOBS` of one resolved spec dict; a knob that does not apply to the method is ``None``
    (alpha/beta without the Beta kernel; K, smoothing, refresh without pass-rate weights)."""
    kern, stages = spec["kernel"], spec["stages"]
    uses_p, is_beta = spec["weight_source"] == "pass_rate", kern["name"] == "beta"
    return {
        "kernel": kern["name"],
        "alpha": float(kern["alpha"]) if is_beta else None,
        "beta": float(kern["beta"]) if is_beta else None,
        "floor": float(kern["floor"]),
        "normalisation": kern["normalisation"] if spec["weight_source"] != "none" else None,
        "k": int(spec["k"]) if uses_p else None,
        "smoothing": spec["smoothing"] if uses_p else None,
        "refresh": spec["refresh"] if uses_p else None,
        "refresh_every": spec["refresh_every"] if uses_p else None,
        "schedule": ">".join(f"{s['divergence']}:{s['source']}" for s in stages),
        "first_stage_fraction": float(stages[0]["fraction"]) if len(stages) > 1 and stages[0]["fraction"] else None,
        "teacher": spec["teacher"],
        "weight_source": spec["weight_source"],
    }


def varied_knobs(values: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Knobs that differ between methods and do not follow from the knobs already chosen (see :data:`KNOBS`)."""
    chosen: list[str] = []
    for knob in KNOBS:
        col = {m: v[knob] for m, v in values.items()}
        if len(set(col.values())) <= 1:
            continue
        implied: dict[tuple[Any, ...], set[Any]] = {}
        for m, v in values.items():
            implied.setdefault(tuple(v[c] for c in chosen), set()).add(col[m])
        if not chosen or any(len(s) > 1 for s in implied.values()):
            chosen.append(knob)
    return chosen


def _name_of(results_dir: PathLike) -> str:
    return Path(results_dir).name


def collect_ablation(
    results_dir: PathLike,
    config: PathLike | Mapping[str, Any],
    knobs: Sequence[str] | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """``results_dir/summary.csv`` plus ``ablation``, ``knobs`` and one column per knob.

    ``config`` is the ablation's config dict (as Snakemake merged it) or its YAML path (merged over the
    ``config.yaml`` next to ``config/ablations/``). ``knobs`` default to :func:`varied_knobs`.
    """
    path = Path(results_dir) / "summary.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: run the ablation first "
            f"(snakemake --cores all --configfile config/ablations/<name>.yaml)"
        )
    cfg = config if isinstance(config, Mapping) else load_ablation_config(config)
    values = {m: knob_values(s) for m, s in ablation_specs(cfg).items()}
    knobs = list(knobs) if knobs is not None else varied_knobs(values)
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise ValueError(f"knobs: unknown {unknown}; allowed: {', '.join(KNOBS)}")
    df = read_summary(path)
    stray = sorted(set(df["method"].dropna()) - set(values) - {BASE_METHOD})
    if stray:
        log.warning("%s: methods %s are not in the ablation config; their knob values are empty", path, stray)
    df.insert(len(SUMMARY_COLUMNS), "ablation", name or _name_of(results_dir))
    df.insert(len(SUMMARY_COLUMNS) + 1, "knobs", ";".join(knobs))
    for knob in knobs:
        df[knob] = df["method"].map(lambda m, k=knob: values.get(m, {}).get(k))
    return _typed(df, knobs)


def _typed(df: pd.DataFrame, knobs: Iterable[str]) -> pd.DataFrame:
    for knob in knobs:
        if knob in INT_KNOBS:
            df[knob] = pd.to_numeric(df[knob], errors="coerce").astype("Int64")
        elif knob in NUMERIC_KNOBS:
            df[knob] = pd.to_numeric(df[knob], errors="coerce").astype(float)
        else:
            df[knob] = df[knob].astype(object).where(df[knob].notna(), None)
    return df


def write_ablation_summary(
    results_dir: PathLike, config: PathLike | Mapping[str, Any], out: PathLike | None = None, **kwargs: Any
) -> Path:
    """Collect one ablation (:func:`collect_ablation`) into ``out`` (default ``results_dir/ablation_summary.csv``)."""
    df = collect_ablation(results_dir, config, **kwargs)
    return write_summary(df, out if out is not None else Path(results_dir) / ABLATION_SUMMARY)


def ablation_knobs(df: pd.DataFrame) -> list[str]:
    """The knob columns of an ablation frame (from its ``knobs`` column)."""
    names = df["knobs"].dropna().unique() if "knobs" in df else []
    return [k for k in str(names[0]).split(";") if k] if len(names) else []


def read_ablation_summary(path: PathLike) -> pd.DataFrame:
    """Read an ``ablation_summary.csv`` back with the summary's dtypes and typed knob columns."""
    df = read_summary(path)
    df["ablation"] = df["ablation"].astype(str)
    df["knobs"] = df["knobs"].fillna("").astype(str)
    return _typed(df, ablation_knobs(df))


def load_ablation(results: PathLike, name: str, config_dir: PathLike | None = None) -> pd.DataFrame:
    """Ablation ``name`` under ``results/ablations/``: collected from ``summary.csv`` and
    ``config_dir/<name>.yaml`` when both exist, else read from its ``ablation_summary.csv``."""
    run_dir = Path(results) / "ablations" / name
    config = Path(config_dir) / f"{name}.yaml" if config_dir is not None else None
    if (run_dir / "summary.csv").is_file() and config is not None and config.is_file():
        return collect_ablation(run_dir, config, name=name)
    if (run_dir / ABLATION_SUMMARY).is_file():
        return read_ablation_summary(run_dir / ABLATION_SUMMARY)
    raise FileNotFoundError(
        f"no results for ablation {name!r} in {run_dir}: run "
        f"`snakemake --cores all --configfile config/ablations/{name}.yaml`"
    )


def knob_effects(df: pd.DataFrame, targets: Sequence[tuple[str, str, str]], step: int | None = None) -> pd.DataFrame:
    """Mean, std and seeds per method for each (task, tier, metric) target at ``step`` (default: the last
    budget), with the method's knob values and ``arm`` (a label naming them all); the base student's row
    (step 0) is kept with empty knobs."""
    knobs = ablation_knobs(df)
    step = budgets(df)[-1] if step is None else step
    rows = df[(df["step"] == step) | (df["method"] == BASE_METHOD)]
    agg = aggregate(rows)
    keep = (
        pd.concat([(agg["task"] == t) & (agg["tier"] == r) & (agg["metric"] == m) for t, r, m in targets], axis=1).any(
            axis=1
        )
        if targets
        else pd.Series(False, index=agg.index)
    )
    agg = agg[keep]
    per_method = df.drop_duplicates("method").set_index("method")[knobs]
    out = agg.join(per_method, on="method").reset_index(drop=True)
    out["arm"] = [_arm_label({k: getattr(r, k) for k in knobs}) for r in out[knobs].itertuples()] if knobs else ""
    return out


def _arm_label(values: Mapping[str, Any]) -> str:
    """``"kernel=beta, floor=0.02"`` from an arm's knob values (empty ones left out)."""
    parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items() if not pd.isna(v)]
    return ", ".join(parts)


def _target_rows(eff: pd.DataFrame, target: tuple[str, str, str]) -> pd.DataFrame:
    t, r, m = target
    return eff[(eff["task"] == t) & (eff["tier"] == r) & (eff["metric"] == m)]


def plot_knob_heatmap(
    eff: pd.DataFrame, x: str, y: str, targets: Sequence[tuple[str, str, str]], out_stem: PathLike, title: str = ""
) -> list[Path]:
    """One heatmap per target over knobs ``y`` (rows) × ``x`` (columns), cells annotated mean ± std over seeds."""
    from paced.report._plot import empty_note, new_figure, save_figure

    fig, axes = new_figure(1, max(len(targets), 1), width=5.2, height=4.4)
    for ax, target in zip(axes[0], targets, strict=False):
        sel, scale = _target_rows(eff, target).dropna(subset=[x, y]), metric_scale(target[2])
        if sel.empty:
            empty_note(ax, f"no results for {column_label(*target)}")
            continue
        xs, ys = sorted(sel[x].unique()), sorted(sel[y].unique())
        mean = np.full((len(ys), len(xs)), np.nan)
        std = np.full_like(mean, np.nan)
        for r in sel.itertuples():
            i, j = ys.index(getattr(r, y)), xs.index(getattr(r, x))
            mean[i, j], std[i, j] = r.mean * scale, r.std * scale
        img = ax.imshow(mean, origin="lower", cmap="viridis", aspect="auto")
        mid = np.nanmean([np.nanmin(mean), np.nanmax(mean)])
        for (i, j), v in np.ndenumerate(mean):
            if np.isfinite(v):  # dark text on the bright end of viridis
                txt = f"{v:.1f}" + (f"\n±{std[i, j]:.1f}" if np.isfinite(std[i, j]) else "")
                ax.text(j, i, txt, ha="center", va="center", fontsize="small", color="black" if v > mid else "white")
        ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
        ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        fig.colorbar(img, ax=ax, label=column_label(*target))
        ax.set_title(column_label(*target), fontsize="medium")
    fig.suptitle(title or f"{y} × {x} (mean ± std over seeds)")
    return save_figure(fig, out_stem)


def plot_knob_effect(
    eff: pd.DataFrame, knob: str, targets: Sequence[tuple[str, str, str]], out_stem: PathLike, title: str = ""
) -> list[Path]:
    """One panel per target: mean ± std over seeds against ``knob`` (a line for numeric knobs, bars otherwise;
    ``knob="arm"`` labels bars by every knob); the base student is a dashed line where it was evaluated."""
    from paced.report._plot import empty_note, new_figure, save_figure

    fig, axes = new_figure(1, max(len(targets), 1), width=4.8, height=3.8)
    for ax, target in zip(axes[0], targets, strict=False):
        sel, scale = _target_rows(eff, target), metric_scale(target[2])
        arms = sel[sel["method"] != BASE_METHOD].dropna(subset=[knob])
        if arms.empty:
            empty_note(ax, f"no results for {column_label(*target)}")
            continue
        arms = arms.sort_values(knob)
        mean, err = arms["mean"] * scale, np.nan_to_num(arms["std"] * scale)
        if knob in NUMERIC_KNOBS:
            xs = arms[knob].astype(float)
            ax.errorbar(xs, mean, yerr=err, marker="o", capsize=3)
            if knob == "k":  # K doubles from arm to arm
                ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(set(xs)), [f"{v:g}" for v in sorted(set(xs))])
        else:
            ax.bar(range(len(arms)), mean, yerr=err, capsize=3, color="C0")
            ax.set_xticks(range(len(arms)), [str(v) for v in arms[knob]], rotation=25, ha="right")
        base = sel[sel["method"] == BASE_METHOD]
        if len(base) and not target[2].startswith("forgetting"):
            ax.axhline(base["mean"].iloc[0] * scale, color="grey", ls="--", label="base student")
            ax.legend(fontsize="small")
        ax.set_xlabel(knob)
        ax.set_ylabel(column_label(*target))
        ax.set_title(column_label(*target), fontsize="medium")
    fig.suptitle(title or f"Effect of {knob} (mean ± std over seeds)")
    return save_figure(fig, out_stem)
