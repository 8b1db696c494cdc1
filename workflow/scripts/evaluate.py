"""Evaluate one model — the base student, or every budget of one run — on every evaluation task."""
from paced.pipeline import evaluate
from paced.pipeline.cells import gpu_slot, setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
with gpu_slot(snakemake.resources.get("gpu", 0)):  # noqa: F821
    evaluate.run(snakemake.params.stage, on_error=snakemake.config["on_error"])  # noqa: F821
