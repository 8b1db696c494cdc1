"""Aggregation of results into ``summary.csv``, paper-style tables, verdicts and figures.

Workflow entry points, one line each::

    summary = add_forgetting(collect_eval_results(paths)); write_summary(summary, "results/summary.csv")
    write_tables(summary, "results/tables", snr=snr_paths)
    make_all_figures(summary, "results/figures", snr=snr_paths, passrates=(before, after), logs=log_paths)

Figure functions import matplotlib, so they are loaded on first use (no work at import).
"""

from __future__ import annotations

import importlib
from typing import Any

from paced.report.claims import CLAIMS, TRACKS
from paced.report.collect import (
    SUMMARY_COLUMNS,
    add_forgetting,
    collect_eval_results,
    error_cells,
    read_summary,
    write_summary,
)
from paced.report.format import fmt_mean_std, to_latex, to_markdown
from paced.report.paper import PAPER_NUMBERS, paper_table, paper_vs_run
from paced.report.stats import paired_differences, t_interval
from paced.report.tables import aggregate, method_order, paper_style_table
from paced.report.verdicts import claim_verdicts, oracle_gap, snr_verdicts, verdict_table
from paced.report.write import skipped_batches, write_tables

_LAZY = {
    "METHOD_ORDER": "paced.report.tables",  # read from paced.methods (torch) on first use
    "make_all_figures": "paced.report.figures",
    "plot_accuracy": "paced.report.figures",
    "plot_forgetting": "paced.report.figures",
    "plot_vs_steps": "paced.report.figures",
    "plot_snr": "paced.report.stage_figures",
    "plot_kernels": "paced.report.stage_figures",
    "plot_passrate_hist": "paced.report.stage_figures",
    "plot_training_curves": "paced.report.stage_figures",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'paced.report' has no attribute {name!r}")


__all__ = [
    "CLAIMS",
    "METHOD_ORDER",
    "PAPER_NUMBERS",
    "TRACKS",
    "SUMMARY_COLUMNS",
    "add_forgetting",
    "aggregate",
    "claim_verdicts",
    "collect_eval_results",
    "error_cells",
    "fmt_mean_std",
    "method_order",
    "oracle_gap",
    "paired_differences",
    "paper_style_table",
    "paper_table",
    "paper_vs_run",
    "read_summary",
    "skipped_batches",
    "snr_verdicts",
    "t_interval",
    "to_latex",
    "to_markdown",
    "verdict_table",
    "write_summary",
    "write_tables",
    *_LAZY,
]
