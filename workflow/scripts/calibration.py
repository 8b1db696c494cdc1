"""The toy world's regime evidence: pool p̂ by tier, and the uniform run's tiers and probe vs step."""
from paced.pipeline import report
from paced.pipeline.cells import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
i, o = snakemake.input, snakemake.output  # noqa: F821
report.calibration(i.world, i.base_rates, i.summary, o.record, o.figure, method=snakemake.params.method)  # noqa: F821
