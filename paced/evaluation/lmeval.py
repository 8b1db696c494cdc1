"""Evaluate a model on a paced task through lm-eval's ``simple_evaluate``.

The flow: load the task's docs, write a prepared jsonl + task YAMLs (:mod:`paced.evaluation.prepare`),
register them with a ``TaskManager`` that sees only them, run ``simple_evaluate`` with logged
samples, and fold the per-problem scores into the result JSON of ``docs/ARCHITECTURE.md``:
``metrics[<tier or "all">] = {"avg@k", "avg@k_std", "pass@k", "k", "n"}`` for generation tasks and
``{"mc_acc", "mc_prob", "em", "n"}`` for multiple-choice tasks (``mc_prob``: the gold choice's probability
renormalised over the choices). Several tasks can share one lm-eval run (and one
model load) through :func:`evaluate_tasks`, each with its own k.

One engine per call: :func:`run_lm_eval` builds the lm-eval model itself and, for vLLM, shuts its engine
down before returning (lm-eval never does: four engines at 0.9 of a GPU's memory each would pile up in one
evaluation process), so the next budget's engine starts on a free device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paced.evaluation.backends import backend_args
from paced.evaluation.config import EvalConfig
from paced.evaluation.metrics import generation_metrics, mean_by_tier
from paced.evaluation.prepare import PreparedTasks, prepare_tasks
from paced.io import provenance, write_json, write_jsonl
from paced.tasks.base import Task, get_task

log = logging.getLogger(__name__)

_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(EvalConfig))


def run_lm_eval(model_path: str | Path, prepared: Sequence[PreparedTasks], cfg: EvalConfig) -> dict[str, Any]:
    """``lm_eval.simple_evaluate`` over the prepared tasks only; returns its raw output (with samples)."""
    import lm_eval
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    model, model_args = backend_args(model_path, cfg)
    manager = TaskManager(include_path=[str(p.include_path) for p in prepared], include_defaults=False)
    lm = get_model(model).create_from_arg_obj(dict(model_args), {"batch_size": cfg.batch_size,
                                                                 "device": cfg.device})
    try:
        with progress_to_log():
            out = lm_eval.simple_evaluate(
                model=lm, tasks=[n for p in prepared for n in p.names()], task_manager=manager,
                log_samples=True, bootstrap_iters=0, random_seed=cfg.seed, numpy_random_seed=cfg.seed,
                torch_random_seed=cfg.seed, fewshot_random_seed=cfg.seed)
    finally:
        release_model(lm)
    if out is None:  # non-zero ranks of a distributed run get nothing back
        raise RuntimeError("lm_eval.simple_evaluate returned no results (not the main process?)")
    return dict(out)


# lm-eval's model modules whose request loops show a tqdm bar (bound by name at their import)
_LM_EVAL_BAR_MODULES = ("lm_eval.models.vllm_causallms", "lm_eval.models.huggingface")


@contextlib.contextmanager
def progress_to_log() -> Any:
    """While active, lm-eval's request bars also log coarse progress lines (the rule's log receives logging,
    not a tqdm bar on stderr): their ``tqdm`` is swapped for :class:`paced.rollouts.progress.LoggingTqdm`."""
    from paced.rollouts.progress import LoggingTqdm

    swapped = {name: sys.modules[name].tqdm for name in _LM_EVAL_BAR_MODULES
               if name in sys.modules and hasattr(sys.modules[name], "tqdm")}
    for name in swapped:
        sys.modules[name].tqdm = LoggingTqdm
    try:
        yield
    finally:
        for name, original in swapped.items():
            sys.modules[name].tqdm = original


def release_model(lm: Any) -> None:
    """Free an lm-eval model: a vLLM engine is shut down (its workers end, its memory is returned); an HF
    model is dropped. The object cannot evaluate afterwards."""
    engine = getattr(lm, "model", None)
    if engine is not None and type(engine).__module__.startswith("vllm"):
        from paced.rollouts.vllm import shutdown_engine

        shutdown_engine(engine)
        lm.model = None  # lm-eval's VLLM keeps the engine in a plain attribute
        log.info("lm-eval's vLLM engine shut down")
    elif hasattr(lm, "_model"):  # lm-eval's HFLM: `model` is a read-only property over `_model`
        lm._model = None


def _generate_metrics(raw: Mapping[str, Any], name: str, k: int) -> tuple[dict[str, Any], list[dict]]:
    rows = [{"id": s["doc"]["id"], "tier": s["doc"]["tier"], "correct": list(s["avg@k_std"]),
             "completions": list(s["filtered_resps"][0])} for s in raw["samples"][name]]
    metrics = generation_metrics(rows)
    if metrics["all"]["k"] != k:
        raise RuntimeError(f"lm-eval returned {metrics['all']['k']} samples per problem, expected k={k}")
    return metrics, rows


def _mc_metrics(raw: Mapping[str, Any], prepared: PreparedTasks) -> tuple[dict[str, Any], list[dict]]:
    assert prepared.multiple_choice is not None
    rows = {}
    for s in raw["samples"][prepared.multiple_choice]:
        lls = [r[0] for r in s["filtered_resps"]]
        rows[s["doc"]["id"]] = {"id": s["doc"]["id"], "tier": s["doc"]["tier"], "mc_acc": s["acc"],
                                "mc_prob": gold_choice_prob(lls, int(s["doc"]["mc_gold"])), "loglikelihoods": lls}
    names = ["mc_acc", "mc_prob"]
    if prepared.greedy is not None:
        names.append("em")
        for s in raw["samples"][prepared.greedy]:
            rows[s["doc"]["id"]].update(em=s["em"], completions=list(s["filtered_resps"]))
    return mean_by_tier(rows.values(), names), list(rows.values())


def gold_choice_prob(loglikelihoods: list[float], gold: int) -> float:
    """Probability of the gold choice renormalised over the choices: a graded knowledge score that
    falls before accuracy does (accuracy only flips when another choice overtakes the gold one)."""
    top = max(loglikelihoods)
    weights = [math.exp(ll - top) for ll in loglikelihoods]
    return weights[gold] / sum(weights)


def _sha256(path: str | Path) -> str | None:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def _resolve_config(config: EvalConfig | None, knobs: Mapping[str, Any]) -> EvalConfig:
    if config is not None and knobs:
        raise ValueError(f"pass either config or EvalConfig fields, not both (got {sorted(knobs)})")
    unknown = sorted(set(knobs) - set(_CONFIG_FIELDS))
    if unknown:
        raise ValueError(f"unknown evaluation option(s) {unknown}; allowed: {', '.join(_CONFIG_FIELDS)}")
    return config if config is not None else EvalConfig(**knobs)


def _task_result(raw: Mapping[str, Any], prepared: PreparedTasks, name: str, task: Task, cfg: EvalConfig,
                 run_config: dict[str, Any]) -> tuple[dict[str, Any], list[dict]]:
    """The result body (task, kind, metrics, provenance) and per-problem rows of one paced task."""
    if task.kind == "generate":
        assert prepared.generate is not None
        metrics, rows = _generate_metrics(raw, prepared.generate, cfg.k)
    else:
        metrics, rows = _mc_metrics(raw, prepared)
    run_config["lm_eval"]["tasks"] = prepared.names()
    run_config["lm_eval"]["results"] = {n: raw["results"][n] for n in prepared.names()}
    prov = provenance(run_config, seed=cfg.seed)
    prov["cwd"] = os.getcwd()
    return {"task": name, "kind": task.kind, "metrics": metrics, "provenance": prov}, rows


PER_TASK_FIELDS = ("k", "limit", "max_new_tokens", "temperature", "top_p", "em")


def _task_configs(base: EvalConfig, data: Mapping[str, Any],
                  overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, EvalConfig]:
    unknown = sorted(set(overrides) - set(data))
    if unknown:
        raise ValueError(f"task_overrides names task(s) {unknown} that are not evaluated; evaluated: {sorted(data)}")
    for name, fields in overrides.items():
        bad = sorted(set(fields) - set(PER_TASK_FIELDS))
        if bad:
            raise ValueError(f"task_overrides[{name!r}] sets {bad}; per task only {', '.join(PER_TASK_FIELDS)} "
                             "(the rest is one value for the whole lm-eval run)")
    return {name: dataclasses.replace(base, **overrides.get(name, {})) for name in data}


def _scoring_kwargs(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A multiple-choice task under a chat template is scored with thinking off (``enable_thinking=False``)
    unless the caller says otherwise: as lm-eval's ``mmlu``, the choice's log-likelihood follows the answer turn,
    not the spot where a thinking template expects ``<think>``, and greedy EM reads an answer, not a trace."""
    from paced.tasks.base import TASKS

    out = dict(kwargs)
    if "chat_tokenizer" in out and "enable_thinking" not in out and name in TASKS \
            and TASKS.get(name).kind == "multiple_choice":
        out["enable_thinking"] = False
    return out


def fit_docs(model_path: str | Path, tasks: Mapping[str, Task], docs: Mapping[str, list[Any]],
             data: Mapping[str, Any], cfgs: Mapping[str, EvalConfig]) -> dict[str, list[Any]]:
    """The docs whose prompt + ``max_new_tokens`` fits the model's context (its ``config.json``, capped by
    ``vllm.max_model_len`` on the vLLM backend): a budget with no room for any prompt is refused before any
    work, then each over-long row is refused or skipped as ``overlong`` says (lm-eval would cut the prompt)."""
    from paced.rollouts.context import check_context, fit_rows
    from paced.rollouts.vllm_config import VLLMConfig

    out = dict(docs)
    for name, cfg in cfgs.items():
        cap = VLLMConfig.from_mapping(dict(cfg.vllm)).max_model_len if cfg.backend == "vllm" else None
        limit = check_context(str(model_path), cfg.max_new_tokens, key="model", budget_key="eval.max_new_tokens",
                              max_model_len=cap)
        if limit is None or not docs[name]:
            continue  # no context known here (a hub id not in the cache): the backend checks
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(model_path),
                                            trust_remote_code=bool(cfg.model_args.get("trust_remote_code", False)))
        prompts = [tasks[name].format_prompt(d) for d in docs[name]]
        lengths = [len(ids) for ids in tok(prompts, add_special_tokens=False)["input_ids"]]
        keep = fit_rows(lengths, [d.id for d in docs[name]], limit=limit, max_new_tokens=cfg.max_new_tokens,
                        source=str(data[name]), policy=cfg.overlong)
        out[name] = [docs[name][i] for i in keep]
    return out


def evaluate_tasks(model_path: str | Path, data: Mapping[str, str | Path], *,
                   config: EvalConfig | None = None, work_dir: str | Path | None = None,
                   task_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
                   model_name: str | None = None, method: str | None = None, step: int | None = None,
                   samples_paths: Mapping[str, str | Path] | None = None,
                   task_overrides: Mapping[str, Mapping[str, Any]] | None = None,
                   **knobs: Any) -> dict[str, dict[str, Any]]:
    """Evaluate ``model_path`` on several paced tasks (``{task_name: data_path}``) in one lm-eval run,
    so the model loads once (one engine); returns ``{task_name: result}``. Arguments as for
    :func:`evaluate_model`, with ``task_kwargs`` and ``samples_paths`` keyed by task name.
    ``task_overrides`` sets a task's own :data:`PER_TASK_FIELDS` (``{"aime25": {"k": 8, "limit": 30}}``);
    what the engine depends on (backend, dtype, seed, ...) is one value for the call."""
    base = _resolve_config(config, knobs)
    cfgs = _task_configs(base, data, task_overrides or {})
    cfg = base
    model, model_args = backend_args(model_path, cfg)  # a missing backend package fails before any work
    kwargs = {name: _scoring_kwargs(name, (task_kwargs or {}).get(name, {})) for name in data}
    tasks = {name: get_task(name, **kwargs[name]) for name in data}  # unknown: ValueError, suggestions
    docs = {name: tasks[name].load(path)[: cfgs[name].limit] for name, path in data.items()}
    docs = fit_docs(model_path, tasks, docs, data, cfgs)
    with tempfile.TemporaryDirectory(prefix="paced-eval-") as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp)
        prepared = {n: prepare_tasks(n, docs[n], root / n, cfgs[n], kwargs[n]) for n in data}
        t0 = time.perf_counter()
        raw = run_lm_eval(model_path, list(prepared.values()), cfg)
        wall = time.perf_counter() - t0
    results = {}
    for name, path in data.items():
        cfg = cfgs[name]
        run_config = {"eval": dataclasses.asdict(cfg), "model_path": str(model_path), "data_path": str(path),
                      "data_sha256": _sha256(path), "task_kwargs": kwargs[name], "wall_s": round(wall, 3),
                      "lm_eval": {"model": model, "model_args": model_args}}
        body, rows = _task_result(raw, prepared[name], name, tasks[name], cfg, run_config)
        log.info("evaluated %s on %s (%d docs): %s", model_path, name, len(docs[name]), body["metrics"]["all"])
        if samples_paths is not None and name in samples_paths:
            write_jsonl(samples_paths[name], rows)
        results[name] = {"model": model_name if model_name is not None else str(model_path),
                         "method": method, "seed": cfg.seed, "step": step, **body}
    return results


def evaluate_model(model_path: str | Path, task_name: str, data_path: str | Path, *,
                   config: EvalConfig | None = None, work_dir: str | Path | None = None,
                   task_kwargs: Mapping[str, Any] | None = None, model_name: str | None = None,
                   method: str | None = None, step: int | None = None,
                   samples_path: str | Path | None = None, **knobs: Any) -> dict[str, Any]:
    """Evaluate ``model_path`` on the paced task ``task_name`` over the docs in ``data_path``.

    ``knobs`` are :class:`EvalConfig` fields (``k``, ``max_new_tokens``, ``temperature``, ``seed``,
    ``backend``, ``batch_size``, ``device``, ``dtype``, ``limit``, ...), or pass ``config``. Task YAMLs
    and the prepared jsonl go under ``work_dir`` (a temporary directory if ``None``). ``samples_path``,
    if given, receives one jsonl row per problem (completions or log-likelihoods, and scores).
    Returns the result dict (model, method, seed, step, task, kind, metrics by tier, provenance).
    """
    return evaluate_tasks(
        model_path, {task_name: data_path}, config=config, work_dir=work_dir,
        task_kwargs={task_name: task_kwargs or {}}, model_name=model_name, method=method, step=step,
        samples_paths=None if samples_path is None else {task_name: samples_path}, **knobs)[task_name]


def write_eval_result(path: str | Path, result: Mapping[str, Any]) -> None:
    """Write an evaluation result JSON atomically."""
    write_json(path, dict(result))
