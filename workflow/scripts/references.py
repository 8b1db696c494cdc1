"""Reference responses for every training problem (teacher-forced FKL trains on these)."""
from paced.pipeline import references
from paced.pipeline.cells import gpu_slot, setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
with gpu_slot(snakemake.resources.get("gpu", 0)):  # noqa: F821
    references.run(snakemake.params.stage, snakemake.output.refs, snakemake.output.summary)  # noqa: F821
