"""K student rollouts per training problem -> p̂ per problem (the base student)."""
from paced.pipeline import passrates
from paced.pipeline.cells import gpu_slot, setup_logging
from paced.pipeline.common import with_runtime

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
gpus = int(sm.resources.get("gpu", 0))
with gpu_slot(gpus):
    passrates.run(with_runtime(sm.params.stage, sm.config), sm.output.rates, sm.output.summary,
                   workers=sm.threads, gpus=gpus)
