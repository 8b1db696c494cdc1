"""Paper-style tables, paired differences, paper-vs-run and verdicts from summary.csv."""
from pathlib import Path

from paced.io import atomic_write_text
from paced.report import read_summary, write_tables
from paced.runlog import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
out_dir = Path(snakemake.output.tables)  # noqa: F821
paths = write_tables(read_summary(snakemake.input.summary), out_dir, snr=list(snakemake.input.snr))  # noqa: F821
atomic_write_text(snakemake.output.flag, "\n".join(str(p) for p in paths) + "\n")  # noqa: F821
