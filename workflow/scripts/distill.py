"""One distillation run (method x seed): checkpoints at the evaluated budgets, log.jsonl, run.json."""
from paced.pipeline import distill
from paced.pipeline.cells import gpu_slot, setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
with gpu_slot(sm.resources.get("gpu", 0)):
    distill.run(sm.params.stage, sm.output.run, runtime=distill.runtime(sm.config), on_error=sm.config["on_error"],
                context={"method": sm.wildcards.method, "seed": int(sm.wildcards.seed)})
