"""Figures from stage outputs: SNR vs pass rate, kernel shapes, pass-rate histograms, training curves."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from paced.report._plot import empty_note, new_figure, save_figure
from paced.report.tables import tier_key

if TYPE_CHECKING:
    from paced.methods import KernelConfig

PathLike = str | os.PathLike[str]
BETA_SHAPES = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (2.0, 2.0), (0.5, 0.5))
TRAINING_KEYS = ("loss", "divergence", "mean_weight", "zero_weight_share", "lr")


def _load_snr(snr: Mapping[str, Any] | PathLike) -> Mapping[str, Any]:
    return snr if isinstance(snr, Mapping) else json.loads(Path(snr).read_text(encoding="utf-8"))


def _read_jsonl(path: PathLike) -> pd.DataFrame:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return pd.DataFrame([json.loads(line) for line in lines if line.strip()])


def _read_step_log(path: PathLike) -> pd.DataFrame:
    """The per-step rows of a training ``log.jsonl`` (refresh events dropped), numeric where possible."""
    df = _read_jsonl(path)
    if "event" in df:
        df = df[df["event"].fillna("step") == "step"]
    for key in TRAINING_KEYS:
        if key in df:
            df[key] = pd.to_numeric(df[key], errors="coerce").astype(float)
    return df.reset_index(drop=True)


def snr_kernel(snr: Mapping[str, Any], kernel: KernelConfig | Mapping[str, Any] | None = None) -> KernelConfig:
    """The kernel drawn over an SNR figure: ``kernel`` (the run's configured one, a
    :class:`~paced.methods.KernelConfig` or its dict) if given, else the one the SNR result records."""
    from paced.methods import KernelConfig  # on use, as paced.kernels below: it imports torch

    if isinstance(kernel, KernelConfig):
        return kernel
    spec = dict(kernel if kernel is not None else snr.get("kernel", {}))
    spec.setdefault("name", "beta")
    return KernelConfig(**{k: v for k, v in spec.items() if k in KernelConfig.__dataclass_fields__})


def kernel_label(kernel: KernelConfig) -> str:
    """``w(p) = p^1(1−p)^1`` for a Beta kernel, ``w(p): hard_filter`` otherwise (+ the floor if set)."""
    if kernel.name == "beta":
        label = f"w(p) = p^{kernel.alpha:g}(1−p)^{kernel.beta:g}"
    else:
        label = f"w(p): {kernel.name}"
    return label + (f", floor {kernel.floor:g}" if kernel.floor else "")


def _snr_panel(ax: Any, grp: pd.DataFrame, kernel: KernelConfig) -> None:
    grp = grp.sort_values("bin_lo")
    centre = (grp["bin_lo"] + grp["bin_hi"]) / 2
    err = np.vstack([(grp["snr"] - grp["ci_lo"]).clip(lower=0), (grp["ci_hi"] - grp["snr"]).clip(lower=0)])
    ax.errorbar(
        centre,
        grp["snr"],
        yerr=np.nan_to_num(err),
        marker="o",
        capsize=3,
        color="C0",
        label="SNR, 95% bootstrap CI",
    )
    ax.set_xlabel("student pass rate p̂ (bin centre)")
    ax.set_ylabel("gradient SNR ‖E g‖² / tr Cov g (debiased)")
    ax.set_xlim(-0.03, 1.03)
    twin = ax.twinx()
    p = np.linspace(0.0, 1.0, 201)
    twin.plot(p, np.asarray(kernel.build()(p), dtype=float), color="C3", ls="--", label=kernel_label(kernel))
    twin.set_ylabel("kernel weight w(p)", color="C3")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize="small", loc="upper right")


def plot_snr(
    snr: Mapping[str, Any] | PathLike, out_stem: PathLike, kernel: KernelConfig | Mapping[str, Any] | None = None
) -> list[Path]:
    """SNR vs pass rate per bin group (all / learnable / intractable) with bootstrap CIs and w(p) on a
    twin axis; a second row shows each bin's cosine with the held-out gradient when present.

    ``kernel``: the weighting kernel the run was configured with (drawn as w(p)); None draws the one
    recorded in the SNR result (see :func:`snr_kernel`)."""
    result = _load_snr(snr)
    bins = pd.DataFrame(list(result.get("bins", [])))
    kern = snr_kernel(result, kernel)
    groups = list(dict.fromkeys(bins["group"])) if not bins.empty else ["(none)"]
    has_cos = not bins.empty and "cosine" in bins and bins["cosine"].notna().any()
    fig, axes = new_figure(2 if has_cos else 1, len(groups), width=5.2, height=3.8)
    for j, group in enumerate(groups):
        grp = bins[bins["group"] == group] if not bins.empty else bins
        if grp.empty:
            empty_note(axes[0, j], "no SNR bins")
            continue
        _snr_panel(axes[0, j], grp, kern)
        axes[0, j].set_title(f"Gradient SNR vs pass rate: {group} problems")
        if has_cos:
            g = grp.sort_values("bin_lo")
            ax = axes[1, j]
            ax.plot((g["bin_lo"] + g["bin_hi"]) / 2, g["cosine"], marker="s", color="C2")
            ax.axhline(0.0, color="black", lw=0.8)
            ax.set_xlabel("student pass rate p̂ (bin centre)")
            ax.set_ylabel("cosine(bin mean gradient, held-out gradient)")
            ax.set_title(f"Alignment with held-out objective: {group}")
    fig.suptitle("Base-student gradient SNR by pass rate (the paper predicts a bell)")
    return save_figure(fig, out_stem)


def _kernel_panel(ax: Any, kernels: Sequence[tuple[str, Any, str]], p: np.ndarray, grid: np.ndarray) -> None:
    for i, (label, kern, style) in enumerate(kernels):
        w, wg = np.asarray(kern(p), dtype=float), np.asarray(kern(grid), dtype=float)
        top = max(w.max(), wg.max()) or 1.0
        line = ax.plot(p[1:-1], w[1:-1] / top, style, label=label, color=f"C{i}", lw=1.8)[0]
        ax.plot(grid, wg / top, ls="none", marker="o", ms=4, color=line.get_color())
    ax.set_xlabel("student pass rate p")
    ax.set_ylabel("weight w(p) / max w (dimensionless)")
    ax.set_ylim(-0.05, 1.12)
    ax.legend(fontsize="small", loc="lower center", ncols=2)


def plot_kernels(out_stem: PathLike, shapes: Sequence[tuple[float, float]] = BETA_SHAPES, k: int = 8) -> list[Path]:
    """Weight kernels w(p), each scaled to max 1: left, Beta(α, β) for ``shapes``; right, the baselines
    (uniform, hard filter, inverse) beside p(1−p). Dots mark the p̂ grid {0, 1/k, …, 1} of K = k rollouts
    (the hard filter's zeros at p̂ = 0 and 1 show only there)."""
    from paced.kernels import get_kernel

    p, grid = np.linspace(0.0, 1.0, 401), np.arange(k + 1) / k
    betas = [(f"Beta α={a:g}, β={b:g}", get_kernel("beta", alpha=a, beta=b), "-") for a, b in shapes]
    baselines = [
        ("p(1−p) (PACED default)", get_kernel("beta"), "-"),
        ("uniform 1", get_kernel("uniform"), "--"),
        ("hard filter 1[0<p<1]", get_kernel("hard_filter"), ":"),
        ("inverse 1−p", get_kernel("inverse"), "-."),
    ]
    fig, axes = new_figure(1, 2, width=5.4, height=4.2)
    _kernel_panel(axes[0, 0], betas, p, grid)
    axes[0, 0].set_title("Beta kernels p^α (1−p)^β")
    _kernel_panel(axes[0, 1], baselines, p, grid)
    axes[0, 1].set_title("Baseline kernels")
    fig.suptitle(f"Pass-rate weight kernels (dots: p̂ grid for K = {k})")
    return save_figure(fig, out_stem)


def plot_passrate_hist(
    before: PathLike, after: PathLike, out_stem: PathLike, labels: tuple[str, str] = ("before", "after")
) -> list[Path]:
    """Histograms of p̂ from two ``passrates.jsonl`` files side by side, overall and per tier."""
    frames = [_read_jsonl(before), _read_jsonl(after)]
    frames = [f[~f["overlong"].fillna(False).astype(bool)] if "overlong" in f else f for f in frames]  # no estimate
    tiers = ["all", *sorted({t for f in frames if "tier" in f for t in f["tier"].dropna().unique()}, key=tier_key)]
    k = int(max(f["k"].max() for f in frames))
    fig, axes = new_figure(1, len(tiers), width=4.4, height=3.6)
    grid, width = np.arange(k + 1) / k, 0.4 / k
    for ax, tier in zip(axes[0], tiers, strict=True):
        for i, (f, label) in enumerate(zip(frames, labels, strict=True)):
            sel = f if tier == "all" else f[f.get("tier") == tier]
            counts = np.bincount(np.rint(sel["p_hat"].to_numpy() * k).astype(int), minlength=k + 1)
            ax.bar(grid + (i - 0.5) * width, counts, width, label=f"{label} (n = {len(sel)})")
        ax.set_xlabel(f"pass rate p̂ = correct / {k}")
        ax.set_ylabel("problems (count)")
        ax.set_title(f"Pass-rate histogram: {tier}")
        ax.legend(fontsize="small")
    fig.suptitle(f"Student pass rates, {labels[0]} vs {labels[1]}")
    return save_figure(fig, out_stem)


def _run_label(path: Path) -> str:
    parts = path.parent.parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else path.stem


def plot_training_curves(
    logs: Sequence[PathLike], out_stem: PathLike, keys: Sequence[str] = TRAINING_KEYS
) -> list[Path]:
    """One panel per logged quantity (loss, divergence, weights, lr) vs step; a line per ``log.jsonl``."""
    runs = [(_run_label(Path(p)), _read_step_log(p)) for p in logs]
    present = [k for k in keys if any(k in df for _, df in runs)]
    ncols = min(3, max(len(present), 1))
    nrows = max(1, -(-len(present) // ncols))
    fig, axes = new_figure(nrows, ncols, width=4.6, height=3.4)
    for ax in axes.flat[len(present) :]:
        empty_note(ax, "" if present else "no logged quantities")
    for ax, key in zip(axes.flat, present, strict=False):
        for label, df in runs:
            if key in df and "step" in df:
                ax.plot(df["step"], df[key], label=label, lw=1)
        ax.set_xlabel("training step")
        ax.set_ylabel(key.replace("_", " "))
        ax.set_title(key.replace("_", " ") + " vs step", fontsize="medium")
    if present:
        axes.flat[0].legend(fontsize="x-small")
    fig.suptitle("Training curves (from log.jsonl)")
    return save_figure(fig, out_stem)
