"""The ablation's tidy summary: summary.csv plus one column per ablated knob."""
from paced.pipeline import report
from paced.pipeline.cells import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
report.ablation_summary(snakemake.params.stage, snakemake.input[0], snakemake.output[0])  # noqa: F821
