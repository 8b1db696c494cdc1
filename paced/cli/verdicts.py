"""``paced verdicts``: a ``summary.csv`` -> the verdict table and every paper-style table (CSV, Markdown, LaTeX)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from paced.cli._common import Command, require

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("summary", type=Path, help="summary.csv (tidy: one row per number) of a run")
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder for the tables")
    parser.add_argument("--reference", default="uniform-fkl", help="method the paired differences are taken "
                        "against (default uniform-fkl)")
    parser.add_argument("--snr", type=Path, action="append", default=[],
                        help="an SNR result JSON (repeatable): adds the SNR-bell verdict")
    parser.add_argument("--alpha", type=float, default=0.05, help="familywise error rate of the primary claims "
                        "(default 0.05; the config's report.alpha)")
    parser.add_argument("--margin", type=float, default=1.0, help="non-inferiority margin of 'forgets no more "
                        "than', in points (default 1.0; the config's report.noninferiority_margin_pts)")


def run(args: argparse.Namespace) -> None:
    require("pandas", "workflow")
    from paced.report import read_summary, write_tables

    if not args.summary.is_file():
        raise FileNotFoundError(f"{args.summary}: no such summary file; give the summary.csv of a run")
    for snr in args.snr:
        if not snr.is_file():
            raise FileNotFoundError(f"--snr {snr}: no such file")
    paths = write_tables(read_summary(args.summary), args.out, reference=args.reference, snr=list(args.snr),
                         alpha=args.alpha, noninferiority_margin_pts=args.margin)
    verdicts = args.out / "verdicts.md"
    log.info("%d table files written under %s", len(paths), args.out)
    if verdicts.is_file():
        print(verdicts.read_text(encoding="utf-8"))


COMMAND = Command("verdicts", "summary.csv -> the verdict table and the paper-style tables", add_arguments, run,
                  description="Read a run's summary.csv and write, under OUT, a verdict per paper claim "
                              "(verdicts.*: paired t-intervals over seeds), the paper-style table per budget, "
                              "paired differences, the paper's numbers beside the run's and the oracle gap. "
                              "The verdict table is also printed.")
