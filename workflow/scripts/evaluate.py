"""Evaluate one model — the base student, or every budget of one run — on every evaluation task."""
from paced.pipeline import evaluate
from paced.pipeline.cells import gpu_slot, setup_logging
from paced.pipeline.common import with_runtime

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
with gpu_slot(sm.resources.get("gpu", 0)):
    evaluate.run(with_runtime(sm.params.stage, sm.config), on_error=sm.config["on_error"])
