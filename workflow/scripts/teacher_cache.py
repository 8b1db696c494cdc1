"""Teacher log-probs on every fixed reference, computed once and shared by every method and seed."""
from paced.pipeline import teacher_cache
from paced.pipeline.cells import gpu_slot, setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
with gpu_slot(snakemake.resources.get("gpu", 0)):  # noqa: F821
    teacher_cache.run(snakemake.params.stage, snakemake.input.refs, snakemake.output.cache)  # noqa: F821
