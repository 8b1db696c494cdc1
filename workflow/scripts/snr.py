"""Gradient SNR vs pass rate on the base student (the paper's Figure 1 analogue)."""
import json

from paced.io import provenance, write_json
from paced.runlog import setup_logging
from paced.snr_measure import SNRConfig, measure_snr
from paced.suite_runs import suite_task
from paced.trainer.setup import load_model, load_tokenizer, read_references

setup_logging(snakemake.log[0])  # noqa: F821
suite = snakemake.params.suite  # noqa: F821
cfg = SNRConfig(**{k: suite["snr"][k] for k in ("max_problems", "heldout_problems", "sketch_dim", "n_bootstrap",
                                                 "bins")})
task = suite_task(suite, suite["train_task"], suite["student"])
docs = task.load(suite["train_path"])
rates = [json.loads(line) for line in open(snakemake.input.rates, encoding="utf-8") if line.strip()]  # noqa: F821
# the held-out reference gradient: the training task's own eval set if there is one, else the first other
# generation task (MATH-500 in the paper setting); only learnable problems count
evals = sorted(suite["eval_tasks"], key=lambda t: t["task"] != suite["train_task"])
gen = [t for t in evals if suite_task(suite, t["task"], suite["student"]).kind == "generate"]
held_task = suite_task(suite, gen[0]["task"], suite["student"]) if gen else None
heldout = [d for d in held_task.load(gen[0]["path"]) if d.tier in (None, "learnable")] if gen else []
dtype = suite["models"]["dtype"]
result = measure_snr(load_model(suite["student"], dtype, trainable=True), load_model(suite["teacher"], dtype, False),
                     load_tokenizer(suite["student"]), task, docs, read_references(snakemake.input.refs),  # noqa: F821
                     {r["id"]: r["p_hat"] for r in rates}, heldout, cfg, heldout_task=held_task)
write_json(snakemake.output.snr, {**result, "provenance": provenance(suite["config"])})  # noqa: F821
