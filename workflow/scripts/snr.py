"""Gradient SNR vs pass rate on the base student (the paper's Figure 1 analogue)."""
from paced.pipeline import snr
from paced.pipeline.cells import gpu_slot, setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
with gpu_slot(snakemake.resources.get("gpu", 0)):  # noqa: F821
    snr.run(snakemake.params.stage, snakemake.input.rates, snakemake.input.refs, snakemake.output.snr)  # noqa: F821
