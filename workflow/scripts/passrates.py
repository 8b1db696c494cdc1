"""K student rollouts per training problem -> p̂ per problem (the base student)."""
from paced.pipeline import passrates
from paced.pipeline.cells import gpu_slot, setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
with gpu_slot(snakemake.resources.get("gpu", 0)):  # noqa: F821
    passrates.run(snakemake.params.stage, snakemake.output.rates, snakemake.output.summary)  # noqa: F821
