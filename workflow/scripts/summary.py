"""Gather every evaluation result into the tidy results/summary.csv."""
from paced.report import add_forgetting, collect_eval_results, write_summary
from paced.runlog import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
summary = add_forgetting(collect_eval_results(list(snakemake.input)))  # noqa: F821
write_summary(summary, snakemake.output[0])  # noqa: F821
