"""Evaluate one checkpoint (method, seed, step) on every evaluation task with lm-eval."""
from collections import defaultdict
from pathlib import Path

from paced.evaluation import evaluate_tasks, write_eval_result
from paced.runlog import run_cell, setup_logging
from paced.suite_runs import chat_kwargs
from paced.trainer.checkpoint import checkpoint_dir

setup_logging(snakemake.log[0])  # noqa: F821
wc, suite = snakemake.wildcards, snakemake.params.suite  # noqa: F821
method, seed, step = wc.method, int(wc.seed), int(wc.step)
out_dir = Path(snakemake.params.out_dir)  # noqa: F821
if method == "base":
    model = suite["student"]
else:
    model = str(checkpoint_dir(Path(suite["results_dir"]) / "runs" / method / f"seed{seed}", step))
ev, models = suite["eval"], suite["models"]


def evaluate() -> None:
    # one lm-eval call per distinct k (the model loads once per call); task names are unique per call
    groups: dict[int, list[dict]] = defaultdict(list)
    for task in suite["eval_tasks"]:
        groups[task["k"]].append(task)
    for k, tasks in groups.items():
        results = evaluate_tasks(
            model, {t["task"]: t["path"] for t in tasks}, k=k, seed=seed, method=method, step=step,
            task_kwargs={t["task"]: chat_kwargs(suite, model) for t in tasks},
            model_name=f"{method}/seed{seed}/step{step}", max_new_tokens=ev["max_new_tokens"],
            temperature=ev["temperature"], batch_size=ev["batch_size"], dtype=models["dtype"],
            backend=suite["sampling"]["backend"], limit=min((t["limit"] or 10**9) for t in tasks) if any(
                t["limit"] for t in tasks) else None,
            samples_paths={t["task"]: out_dir / "samples" / f"{t['name']}.jsonl" for t in tasks})
        for t in tasks:
            write_eval_result(out_dir / f"{t['name']}.json", results[t["task"]])


run_cell(evaluate, snakemake.output, on_error=suite["config"]["on_error"],  # noqa: F821
         context={"method": method, "seed": seed, "step": step, "model": model},
         per_output={str(out_dir / f"{t['name']}.json"): {"task": t["task"]} for t in suite["eval_tasks"]})
