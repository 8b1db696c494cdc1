"""Every figure of the report, from results files only."""
from paced.pipeline import report
from paced.pipeline.cells import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
i, o = snakemake.input, snakemake.output  # noqa: F821
report.figures(snakemake.params.stage, i.summary, i.snr, i.base_rates, i.after_rates, i.runs,  # noqa: F821
               o.figures, o.flag)
