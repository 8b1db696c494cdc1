"""Stage ``evaluate``: one model — the base student, or every budget of one run — on every evaluation task,
through lm-eval (one lm-eval call per checkpoint for all tasks, each with its own k: one engine, shut down before
the next budget's)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from paced.fingerprint import canonical_digest
from paced.pipeline.cells import check_run
from paced.pipeline.common import chat_kwargs, device, models_slice, vllm_slice
from paced.pipeline.layout import Layout

EVAL_KEYS = ("max_new_tokens", "temperature", "batch_size", "em")


def params(suite: Any, method: str, seed: int | str, steps: list[int]) -> dict[str, Any]:
    """What determines the evaluation of (``method``, ``seed``) at ``steps``: the models evaluated, the tasks
    (name, task, data, k, limit), the generation settings (with ``sampling.overlong``: refuse or skip a problem
    whose prompt does not fit), the backend and device."""
    lay = suite.layout
    models = {str(t): suite.student if method == "base" else lay.checkpoint(method, seed, t) for t in steps}
    return {"results": lay.results, "method": method, "seed": int(seed), "models": models,
            "tasks": [asdict(t) for t in suite.eval_tasks], "stock_tasks": list(suite.stock_tasks),
            "eval": {**{k: suite.eval[k] for k in EVAL_KEYS if k in suite.eval}, "overlong": suite.sampling.overlong},
            "model_config": models_slice(suite.models),
            "backend": suite.sampling.backend, "device": device(suite.resources.gpus_eval), "vllm": vllm_slice(suite)}


def _evaluate_step(p: Mapping[str, Any], step: int, lay: Layout) -> None:
    from paced.evaluation import evaluate_tasks, write_eval_result

    method, seed, model, ev = p["method"], p["seed"], p["models"][str(step)], p["eval"]
    mc = p["model_config"]
    if method != "base":
        check_run(lay.run_json(method, seed), model)
    tasks = p["tasks"]
    # one lm-eval call (one engine, shut down on return) for every task; each keeps its own k and limit
    results = evaluate_tasks(
        model, {t["task"]: t["path"] for t in tasks}, seed=seed, method=method, step=step,
        task_overrides={t["task"]: {"k": t["k"], "limit": t["limit"]} for t in tasks},
        task_kwargs={t["task"]: chat_kwargs(model, mc) for t in tasks},
        model_name=f"{method}/seed{seed}/step{step}", max_new_tokens=ev["max_new_tokens"],
        temperature=ev["temperature"], batch_size=ev["batch_size"], dtype=mc["dtype"], em=ev.get("em", True),
        overlong=ev.get("overlong", "refuse"),
        backend=p["backend"], vllm=p.get("vllm") or {},
        model_args={"trust_remote_code": mc["trust_remote_code"]}, device=p["device"],
        samples_paths={t["task"]: lay.eval_samples(method, seed, step, t["name"]) for t in tasks},
        work_dir=Path(lay.eval_dir(method, seed, step)) / "lm_eval_tasks")  # kept: `lm_eval --include_path` reruns them
    fingerprint = {"stage": canonical_digest(p), "model": _model_fingerprint(lay, method, seed, model)}
    for t in tasks:
        write_eval_result(lay.eval_json(method, seed, step, t["name"]), {**results[t["task"]],
                                                                        "fingerprint": fingerprint})


def _evaluate_stock(p: Mapping[str, Any], step: int, lay: Layout) -> None:
    """lm-eval's own registered tasks, scored by lm-eval, one result file each (task ``lmeval_<name>``)."""
    from paced.evaluation import write_eval_result
    from paced.evaluation.config import EvalConfig
    from paced.evaluation.stock import TASK_PREFIX, evaluate_stock_tasks

    method, seed, ev, mc = p["method"], p["seed"], p["eval"], p["model_config"]
    model = p["models"][str(step)]
    if method != "base":
        check_run(lay.run_json(method, seed), model)
    fingerprint = {"stage": canonical_digest(p), "model": _model_fingerprint(lay, method, seed, model)}
    config = EvalConfig(max_new_tokens=ev["max_new_tokens"], temperature=ev["temperature"], seed=seed,
                        backend=p["backend"], batch_size=ev["batch_size"], device=p["device"], dtype=mc["dtype"],
                        model_args={"trust_remote_code": mc["trust_remote_code"]}, vllm=p.get("vllm") or {})
    results = evaluate_stock_tasks(model, p["stock_tasks"], config=config, model_name=f"{method}/seed{seed}/step{step}",
                                   method=method, step=step)
    for name, result in results.items():
        write_eval_result(lay.eval_json(method, seed, step, TASK_PREFIX + name), {**result, "fingerprint": fingerprint})


def _model_fingerprint(lay: Layout, method: str, seed: int, model: str) -> str | None:
    """The run identity digest of a checkpoint (from its run.json), or the content digest of the base model."""
    from paced.fingerprint import path_digest
    from paced.io import read_json

    if method == "base":
        return path_digest(model)
    return (read_json(lay.run_json(method, seed)).get("identity") or {}).get("digest")


def run(p: Mapping[str, Any], *, on_error: str) -> None:
    """Evaluate every step of ``p``; a failure that belongs to one checkpoint is recorded for it, the others
    still run (:func:`paced.pipeline.cells.run_cell`)."""
    from paced.pipeline.cells import run_cell

    lay = Layout.for_results(p["results"])
    method, seed = p["method"], p["seed"]
    for step in sorted(map(int, p["models"])):  # our tasks and lm-eval's own are separate cells
        context = {"method": method, "seed": seed, "step": step, "model": p["models"][str(step)]}
        ours = [lay.eval_json(method, seed, step, t["name"]) for t in p["tasks"]]
        run_cell(lambda step=step: _evaluate_step(p, step, lay), ours, on_error=on_error, context=context,
                 per_output={o: {"task": t["task"]} for o, t in zip(ours, p["tasks"], strict=True)})
        stock = [f"lmeval_{t}" for t in p.get("stock_tasks", [])]
        if stock:
            theirs = [lay.eval_json(method, seed, step, n) for n in stock]
            run_cell(lambda step=step: _evaluate_stock(p, step, lay), theirs, on_error=on_error, context=context,
                     per_output={o: {"task": n} for o, n in zip(theirs, stock, strict=True)})
