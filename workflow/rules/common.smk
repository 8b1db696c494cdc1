# Shared by every rule: the resolved, validated suite config and output paths.
from pathlib import Path

from snakemake.exceptions import WorkflowError

from paced.suite import resolve_suite

try:
    SUITE = resolve_suite(config)
except ValueError as err:
    raise WorkflowError(f"invalid config: {err}") from None

SUITE_DICT = SUITE.as_dict()  # computed once; every rule hands it to its script
R = SUITE.results_dir
LOGS = SUITE.logs_dir
BENCH = f"{R}/benchmarks"
EVAL_NAMES = [e.name for e in SUITE.eval_tasks]
EVAL_CELLS = SUITE.eval_cells()  # (method, seed, step) triples, base included
# shared resources of the whole config, handed to every script
wildcard_constraints:
    method=r"[a-z0-9][a-z0-9._-]*",
    seed=r"\d+",
    step=r"\d+",


def world_inputs():
    return [f"{R}/world/world.json"] if SUITE.builds_world else []


def all_outputs():
    outs = [f"{R}/summary.csv", f"{R}/tables/done.flag", f"{R}/figures/done.flag"]
    if SUITE.snr.enabled:
        outs.append(f"{R}/snr/snr.json")
    if SUITE.builds_world:
        outs.append(f"{R}/calibration/calibration.json")
    if Path(R).parent.name == "ablations":  # config/ablations/*.yaml write under results/ablations/<name>
        outs.append(f"{R}/ablation_summary.csv")
    return outs
