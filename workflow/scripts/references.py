"""Reference responses for every training problem (teacher-forced FKL trains on these)."""
from paced.pipeline import references
from paced.pipeline.cells import gpu_slot, setup_logging
from paced.pipeline.common import with_runtime

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
gpus = int(sm.resources.get("gpu", 0))
with gpu_slot(gpus):
    references.run(with_runtime(sm.params.stage, sm.config), sm.output.refs, sm.output.summary,
                    workers=sm.threads, gpus=gpus)
