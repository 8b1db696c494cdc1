"""K rollouts per training problem of one run's final checkpoint -> p̂ after distillation."""
from paced.pipeline import passrates
from paced.pipeline.cells import gpu_slot, setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
with gpu_slot(sm.resources.get("gpu", 0)):
    passrates.run_after(sm.params.stage, sm.output.rates, sm.output.summary, on_error=sm.config["on_error"],
                        context={"method": sm.wildcards.method, "seed": int(sm.wildcards.seed)})
