"""One-call entry point for the workflow: every table from the summary (and SNR results) to a folder."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from paced.io import atomic_write_text
from paced.report.collect import add_forgetting, error_cells
from paced.report.format import fmt_ci, write_frame
from paced.report.paper import paper_vs_run
from paced.report.stats import paired_differences
from paced.report.tables import budgets, paper_style_table
from paced.report.verdicts import DEFAULT_ALPHA, DEFAULT_MARGIN_PTS, oracle_gap, verdict_table

log = logging.getLogger(__name__)


def _readable_paired(paired: pd.DataFrame) -> pd.DataFrame:
    out = paired[["step", "task", "tier", "metric", "method", "reference", "n_pairs"]].copy()
    out["difference [CI]"] = [fmt_ci(r.mean_diff, r.ci_lo, r.ci_hi, 2) for r in paired.itertuples()]
    return out


def _readable_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    keys = ["claim", "track", "family", "step", "task", "tier", "metric", "method", "reference", "n_pairs", "verdict"]
    out = verdicts[keys].copy()
    out["difference [CI]"] = [fmt_ci(r.mean_diff, r.ci_lo, r.ci_hi, 2) for r in verdicts.itertuples()]
    out["CI level"] = [f"{x:.4g}" if pd.notna(x) else "" for x in verdicts["level"]]
    out["detail"] = verdicts["detail"]
    return out


def skipped_batches(runs: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """method, seed, skipped_batches of each ``runs/<method>/seed<s>/run.json`` (a missing or failed run is left out).

    ``train.steps`` counts batches drawn, so every method sees the same data budget; a batch whose
    weights are all zero is drawn but gives no update, and this table says how many there were.
    """
    rows = []
    for path in map(Path, runs):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if "skipped_batches" not in rec:
            continue
        seed = path.parent.name.removeprefix("seed")
        rows.append({"method": path.parent.parent.name, "seed": int(seed) if seed.isdigit() else seed,
                     "skipped_batches": int(rec["skipped_batches"])})
    return pd.DataFrame(rows, columns=["method", "seed", "skipped_batches"])


def write_tables(
    summary: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    reference: str = "uniform-fkl",
    snr: Iterable[Mapping[str, Any] | str | os.PathLike[str]] = (),
    roles: Mapping[str, str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    noninferiority_margin_pts: float = DEFAULT_MARGIN_PTS,
    methods: Mapping[str, Any] | None = None,
    train_steps: int | None = None,
    runs: Iterable[str | os.PathLike[str]] = (),
) -> list[Path]:
    """Write every table (CSV + Markdown + LaTeX) under ``out_dir``; returns the paths written.

    ``table_step<N>``: the paper-style table per budget; ``paired_vs_<reference>``: each method −
    reference with paired t-intervals (descriptive, level 1 − ``alpha``); ``paper_vs_run``; ``verdicts``
    (pre-registered claims, primary and exploratory, and the SNR bell for each SNR result in ``snr``);
    ``oracle_gap``; ``skipped_batches`` (from the ``run.json`` files in ``runs``); ``errors`` (only if a
    cell failed). ``alpha``, ``noninferiority_margin_pts``: the ``report`` config; ``methods`` (id ->
    resolved spec) and ``train_steps``: to tell when a multi-stage run has left its first stage.
    Forgetting rows are added when the summary lacks them. Raw numbers are in the CSVs.
    """
    out_dir = Path(out_dir)
    if not summary["metric"].isin(["forgetting_pts"]).any():
        summary = add_forgetting(summary)
    paths: list[Path] = []
    for step in budgets(summary):
        table = paper_style_table(summary, step)
        paths += write_frame(
            table,
            out_dir / f"table_step{step}",
            caption=f"Accuracy (mean ± std over seeds) and forgetting at step {step}",
        )
    paired = paired_differences(summary, reference, level=1.0 - alpha)
    paths += write_frame(
        _readable_paired(paired),
        out_dir / f"paired_vs_{reference}",
        index=False,
        caption=f"Paired difference vs {reference} (matched seeds, paired t-interval at {1 - alpha:.0%}, descriptive)",
    )
    raw = out_dir / f"paired_vs_{reference}_raw.csv"
    atomic_write_text(raw, paired.to_csv(index=False))
    paths.append(raw)
    paths += write_frame(
        paper_vs_run(summary),
        out_dir / "paper_vs_run",
        index=False,
        caption="The paper's numbers beside this run's (different settings)",
    )
    verdicts = verdict_table(summary, snr=snr, roles=roles, alpha=alpha,
                             noninferiority_margin_pts=noninferiority_margin_pts, methods=methods,
                             train_steps=train_steps)
    paths += write_frame(
        _readable_verdicts(verdicts),
        out_dir / "verdicts",
        index=False,
        caption=f"Paper claims: primary (familywise error ≤ {alpha:g}, Bonferroni) and exploratory (per cell)",
    )
    raw = out_dir / "verdicts_raw.csv"
    atomic_write_text(raw, verdicts.to_csv(index=False))
    paths.append(raw)
    paths += write_frame(
        oracle_gap(summary, roles).round(3),
        out_dir / "oracle_gap",
        index=False,
        caption="PACED vs the oracle control: gap and share of the uniform→oracle gain",
    )
    skipped = skipped_batches(runs)
    if not skipped.empty:
        paths += write_frame(skipped, out_dir / "skipped_batches", index=False,
                             caption="All-zero-weight batches skipped per run (each still counts as a step)")
    errors = error_cells(summary)
    if not errors.empty:
        log.warning("%d failed cells; see errors.csv", len(errors))
        paths += write_frame(errors, out_dir / "errors", index=False, caption="Failed evaluation cells")
    return paths
