"""Gather every evaluation result into the tidy results/summary.csv."""
from paced.pipeline import report
from paced.pipeline.cells import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
report.summary(snakemake.input, snakemake.output[0])  # noqa: F821
