"""Paper-style tables, paired differences, paper-vs-run and verdicts from summary.csv."""
from paced.pipeline import report
from paced.pipeline.cells import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
report.tables(sm.params.stage, sm.input.summary, sm.input.snr, sm.input.runs, sm.output.tables, sm.output.flag)
