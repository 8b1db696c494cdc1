"""Evaluate one model — the base student, or every budget of one run — on every evaluation task."""
from collections import defaultdict
from pathlib import Path

from paced.evaluation import evaluate_tasks, write_eval_result
from paced.runlog import run_cell, setup_logging
from paced.suite_runs import chat_kwargs
from paced.trainer.checkpoint import checkpoint_dir

setup_logging(snakemake.log[0])  # noqa: F821
suite, params = snakemake.params.suite, snakemake.params  # noqa: F821
method, seed = params.method, int(snakemake.wildcards.seed)  # noqa: F821
R, ev, models = Path(suite["results_dir"]), suite["eval"], suite["models"]


def model_path(step: int) -> str:
    return suite["student"] if method == "base" else str(checkpoint_dir(R / "runs" / method / f"seed{seed}", step))


def evaluate(step: int) -> None:
    out_dir, model = R / "eval" / method / f"seed{seed}" / f"step{step}", model_path(step)
    groups: dict[int, list[dict]] = defaultdict(list)  # one lm-eval call per distinct k; the model loads once
    for task in suite["eval_tasks"]:
        groups[task["k"]].append(task)
    for k, tasks in groups.items():
        limits = [t["limit"] for t in tasks if t["limit"]]
        results = evaluate_tasks(
            model, {t["task"]: t["path"] for t in tasks}, k=k, seed=seed, method=method, step=step,
            task_kwargs={t["task"]: chat_kwargs(suite, model) for t in tasks},
            model_name=f"{method}/seed{seed}/step{step}", max_new_tokens=ev["max_new_tokens"],
            temperature=ev["temperature"], batch_size=ev["batch_size"], dtype=models["dtype"],
            backend=suite["sampling"]["backend"], limit=min(limits) if limits else None,
            model_args={"trust_remote_code": models["trust_remote_code"]},
            device="cuda" if suite["resources"]["gpus_eval"] > 0 else "cpu",
            samples_paths={t["task"]: out_dir / "samples" / f"{t['name']}.jsonl" for t in tasks})
        for t in tasks:
            write_eval_result(out_dir / f"{t['name']}.json", results[t["task"]])


for step in params.steps:  # a failed checkpoint is recorded, the others still run
    out_dir = R / "eval" / method / f"seed{seed}" / f"step{step}"
    outputs = [str(out_dir / f"{t['name']}.json") for t in suite["eval_tasks"]]
    run_cell(lambda step=step: evaluate(step), outputs, on_error=suite["config"]["on_error"],
             context={"method": method, "seed": seed, "step": step, "model": model_path(step)},
             per_output={o: {"task": t["task"]} for o, t in zip(outputs, suite["eval_tasks"], strict=True)})
