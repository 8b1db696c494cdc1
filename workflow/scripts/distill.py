"""One distillation run (method x seed): checkpoints at the evaluated budgets, log.jsonl, run.json."""
from paced.runlog import run_cell, setup_logging
from paced.suite_runs import distill_config, run_distill

setup_logging(snakemake.log[0])  # noqa: F821
suite, wc, inp = snakemake.params.suite, snakemake.wildcards, snakemake.input  # noqa: F821
config = distill_config(suite, wc.method, int(wc.seed), passrates=inp.rates, references=inp.refs,
                        teacher_cache=inp.cache)
run_cell(lambda: run_distill(config, suite["method_specs"][wc.method],
                             accelerate_config=suite["train"]["accelerate_config"]),
         snakemake.output, on_error=suite["config"]["on_error"],  # noqa: F821
         context={"method": wc.method, "seed": int(wc.seed)})
