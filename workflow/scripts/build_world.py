"""Build the embedded toy world (data, tokenizer, teacher, student) offline."""
from paced.pipeline import world
from paced.pipeline.cells import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
world.run(snakemake.params.world, snakemake.output.world, threads=snakemake.threads)  # noqa: F821
