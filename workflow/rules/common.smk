# Shared by every rule: the resolved, validated suite, its results layout, and the wildcard shapes.
# A rule's params hold only what changes its outputs (paced.pipeline.<stage>.params): Snakemake reruns a job
# whose params change, so the params are the job's identity. Operational settings (on_error) are read from
# the config inside the script, never passed as params.
from snakemake.exceptions import WorkflowError

from paced.pipeline import distill as distill_stage
from paced.pipeline import evaluate as evaluate_stage
from paced.pipeline import passrates as passrates_stage
from paced.pipeline import references as references_stage
from paced.pipeline import report as report_stage
from paced.pipeline import snr as snr_stage
from paced.pipeline import teacher_cache as teacher_cache_stage
from paced.pipeline import world as world_stage
from paced.pipeline.results_lock import ResultsLock
from paced.pipeline.suite import resolve_suite

try:
    SUITE = resolve_suite(config)
except ValueError as err:
    raise WorkflowError(f"invalid config: {err}") from None

L = SUITE.layout
LOCK = ResultsLock(L.lock)
EVAL_NAMES = [e.name for e in SUITE.eval_tasks] + [f"lmeval_{t}" for t in SUITE.stock_tasks]
EVAL_CELLS = SUITE.eval_cells()  # (method, seed, step) triples, base included


wildcard_constraints:
    method=r"[a-z0-9][a-z0-9._-]*",
    seed=r"\d+",
    step=r"\d+",


def world_inputs():
    return [L.world_json] if SUITE.builds_world else []


def all_outputs():
    outs = [L.summary, L.tables_flag, L.figures_flag]
    if SUITE.snr.enabled:
        outs.append(L.snr)
    if SUITE.builds_world:
        outs.append(L.calibration_json)
    if L.is_ablation:
        outs.append(L.ablation_summary)
    return outs


onstart:
    LOCK.acquire()  # one workflow per results directory, whatever its working directory


onsuccess:
    LOCK.release()


onerror:
    LOCK.release()
