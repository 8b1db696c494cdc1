"""K rollouts per training problem of one run's final checkpoint -> p̂ after distillation."""
from paced.pipeline import passrates
from paced.pipeline.cells import gpu_slot, setup_logging
from paced.pipeline.common import with_runtime

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
gpus = int(sm.resources.get("gpu", 0))
with gpu_slot(gpus):
    passrates.run_after(with_runtime(sm.params.stage, sm.config), sm.output.rates, sm.output.summary,
                        on_error=sm.config["on_error"], context={"method": sm.wildcards.method,
                                                                 "seed": int(sm.wildcards.seed)},
                        workers=sm.threads, gpus=gpus)
