"""Gradient SNR vs pass rate on the base student (the paper's Figure 1 analogue)."""
import json

from paced.io import provenance, write_json
from paced.runlog import setup_logging
from paced.snr_measure import SNRConfig, measure_snr
from paced.tasks import get_task
from paced.trainer.setup import load_model, load_tokenizer, read_references

setup_logging(snakemake.log[0])  # noqa: F821
suite = snakemake.params.suite  # noqa: F821
cfg = SNRConfig(**{k: suite["snr"][k] for k in ("max_problems", "heldout_problems", "sketch_dim", "n_bootstrap",
                                                 "bins")})
task = get_task(suite["train_task"])
docs = task.load(suite["train_path"])
rates = [json.loads(line) for line in open(snakemake.input.rates, encoding="utf-8") if line.strip()]  # noqa: F821
eval_gen = next((t for t in suite["eval_tasks"] if t["task"] == suite["train_task"]), None)
heldout = get_task(eval_gen["task"]).load(eval_gen["path"]) if eval_gen else []
heldout = [d for d in heldout if d.tier in (None, "learnable")]
dtype = suite["models"]["dtype"]
result = measure_snr(load_model(suite["student"], dtype, trainable=True), load_model(suite["teacher"], dtype, False),
                     load_tokenizer(suite["student"]), task, docs, read_references(snakemake.input.refs),  # noqa: F821
                     {r["id"]: r["p_hat"] for r in rates}, heldout, cfg)
write_json(snakemake.output.snr, {**result, "provenance": provenance(suite["config"])})  # noqa: F821
