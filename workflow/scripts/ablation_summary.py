"""The ablation's tidy summary: summary.csv plus one column per ablated knob."""
from pathlib import Path

from paced.report.ablations import write_ablation_summary
from paced.runlog import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
write_ablation_summary(Path(snakemake.input[0]).parent, snakemake.params.config,  # noqa: F821
                       out=snakemake.output[0])  # noqa: F821
