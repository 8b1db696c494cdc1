# paced: the whole PACED benchmark as one DAG.
#   snakemake --cores all                                   # embedded default (toy world, CPU)
#   snakemake --cores all --configfile config/paper.yaml    # the paper's setting (GPUs)
#   snakemake --report results/report.html                  # HTML report of every figure and table
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from paced.pipeline.config_checks import check_finite, check_integers, check_size
from paced.pipeline.schema_errors import describe_schema_error, load_schema
from paced.plan import check_config

# CPU torch stalls 2-5x in OpenMP spin-waits without this; every job inherits it.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

min_version("9.0")


configfile: "config/config.yaml"


SCHEMA = "workflow/schemas/config.schema.yaml"
try:
    check_size(config)  # before anything walks it: an alias bomb or a huge list is refused at once
    check_finite(config)  # .nan / .inf pass the schema's ranges
    validate(config, SCHEMA)
    check_integers(config, load_schema(os.path.join(workflow.basedir, SCHEMA)))
    check_config(config, gpu_mem_gb=float(config["resources"]["gpu_mem_gb"]))  # paced plan: memory, context
except (WorkflowError, ValueError) as err:  # one line naming the key, not the whole failing sub-schema
    raise WorkflowError(f"invalid config: {describe_schema_error(err)}") from None

include: "workflow/rules/common.smk"
include: "workflow/rules/world.smk"
include: "workflow/rules/passrates.smk"
include: "workflow/rules/snr.smk"
include: "workflow/rules/distill.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
