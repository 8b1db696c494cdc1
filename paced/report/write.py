"""One-call entry point for the workflow: every table from the summary (and SNR results) to a folder."""

from __future__ import annotations

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
from paced.report.verdicts import oracle_gap, verdict_table

log = logging.getLogger(__name__)


def _readable_paired(paired: pd.DataFrame) -> pd.DataFrame:
    out = paired[["step", "task", "tier", "metric", "method", "reference", "n_pairs"]].copy()
    out["difference [95% CI]"] = [fmt_ci(r.mean_diff, r.ci_lo, r.ci_hi, 2) for r in paired.itertuples()]
    return out


def _readable_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    out = verdicts[["claim", "step", "task", "tier", "metric", "method", "reference", "n_pairs", "verdict"]].copy()
    out["difference [95% CI]"] = [fmt_ci(r.mean_diff, r.ci_lo, r.ci_hi, 2) for r in verdicts.itertuples()]
    out["detail"] = verdicts["detail"]
    return out


def write_tables(
    summary: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    reference: str = "uniform-fkl",
    snr: Iterable[Mapping[str, Any] | str | os.PathLike[str]] = (),
    roles: Mapping[str, str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[Path]:
    """Write every table (CSV + Markdown + LaTeX) under ``out_dir``; returns the paths written.

    ``table_step<N>``: the paper-style table per budget; ``paired_vs_<reference>``: each method −
    reference with bootstrap CIs; ``paper_vs_run``; ``verdicts`` (claims, and the SNR bell for each
    SNR result in ``snr``); ``oracle_gap``; ``errors`` (only if a cell failed). Forgetting rows are
    added when the summary lacks them. Raw numbers are in the CSVs of ``paired``/``verdicts``.
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
    paired = paired_differences(summary, reference, n_boot=n_boot, seed=seed)
    paths += write_frame(
        _readable_paired(paired),
        out_dir / f"paired_vs_{reference}",
        index=False,
        caption=f"Paired difference vs {reference} (matched seeds, bootstrap 95% CI)",
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
    verdicts = verdict_table(summary, snr=snr, roles=roles, n_boot=n_boot, seed=seed)
    paths += write_frame(
        _readable_verdicts(verdicts),
        out_dir / "verdicts",
        index=False,
        caption="Paper claims: reproduced / not reproduced / inconclusive / not run",
    )
    paths += write_frame(
        oracle_gap(summary, roles).round(3),
        out_dir / "oracle_gap",
        index=False,
        caption="PACED vs the oracle control: gap and share of the uniform→oracle gain",
    )
    errors = error_cells(summary)
    if not errors.empty:
        log.warning("%d failed cells; see errors.csv", len(errors))
        paths += write_frame(errors, out_dir / "errors", index=False, caption="Failed evaluation cells")
    return paths
