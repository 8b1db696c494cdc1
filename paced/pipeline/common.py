"""What several stages share: the task as the suite's models see it, sampler arguments, the device.

Stage parameters are plain dicts (they are Snakemake ``params``, so they are the job's identity); these
helpers turn their common parts into library objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paced.vllm_keys import DEFAULT_TRAIN_GPU_MEMORY_UTILIZATION, IDENTITY_KEYS, TRAINING_ONLY_KEYS

DECODING_KEYS = ("top_p", "top_k", "min_p", "presence_penalty")  # beside max_new_tokens and temperature


def decoding(sampling: Mapping[str, Any]) -> dict[str, Any]:
    """The decoding settings of ``sampling:`` beyond length and temperature (those the config sets)."""
    return {k: sampling[k] for k in DECODING_KEYS if k in sampling}


def device(gpus: int) -> str:
    """``cuda`` when the rule asks for GPUs, else ``cpu``."""
    return "cuda" if int(gpus) > 0 else "cpu"


def models_slice(models: Mapping[str, Any]) -> dict[str, Any]:
    """The ``models`` keys that change what a stage computes (not the model paths: stages name those)."""
    return {k: models[k] for k in ("dtype", "trust_remote_code", "chat_template", "enable_thinking") if k in models}


def task_for(name: str, model: str, models: Mapping[str, Any]) -> Any:
    """The task ``name`` as ``model`` sees it: wrapped in its chat template when ``models.chat_template`` is on
    (prompts then match between sampling, training and evaluation)."""
    from paced.tasks import get_task

    return get_task(name, **chat_kwargs(model, models))


def chat_kwargs(model: str, models: Mapping[str, Any]) -> dict[str, Any]:
    """``get_task`` keyword arguments for ``model`` (its chat tokenizer, when the suite uses chat templates)."""
    if not models["chat_template"]:
        return {}
    thinking = models.get("enable_thinking")
    return {"chat_tokenizer": model, **({"enable_thinking": thinking} if thinking is not None else {})}


def sampler_kwargs(sampling: Mapping[str, Any], models: Mapping[str, Any], dev: str,
                   engine: Mapping[str, Any] | None = None, *, seed: int = 0) -> dict[str, Any]:
    """Keyword arguments of the sampler backend a stage builds (vLLM schedules its own batches and devices;
    ``engine`` is its ``vllm:`` section, :func:`vllm_slice`). ``seed``: the job's seed, which a vLLM engine takes
    once when it starts (the HF sampler takes it per call, from the sampling params)."""
    # progress: coarse logging lines in the rule's log (a tqdm bar alone never reaches it)
    kwargs: dict[str, Any] = {"trust_remote_code": models["trust_remote_code"], "progress": True}
    if sampling["backend"] == "hf":
        kwargs["batch_size"] = sampling["batch_size"]
        kwargs["device"] = dev
    else:
        kwargs.update(config=dict(engine or {}), dtype=models["dtype"], seed=int(seed))
    return kwargs


def vllm_slice(suite: Any) -> dict[str, Any] | None:
    """The identity keys (:mod:`paced.vllm_keys`) of the ``vllm:`` section when the suite samples with vLLM, else
    ``None`` (so engine arguments are not part of an ``hf`` job's identity); the others reach a job at run time
    (:func:`with_runtime`)."""
    if suite.sampling.backend != "vllm":
        return None
    return {k: v for k, v in suite.vllm.values.items() if k in IDENTITY_KEYS}


def with_runtime(p: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """A stage's params with the run-time ``vllm:`` settings of the workflow's config filled in."""
    if not p.get("vllm"):
        return dict(p)
    runtime = {k: v for k, v in (config.get("vllm") or {}).items()
               if k not in IDENTITY_KEYS + TRAINING_ONLY_KEYS}
    return {**p, "vllm": {**runtime, **p["vllm"]}}


def training_engine(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run-time ``vllm:`` settings of the trainer's in-training engine (the p̂ refresh and on-policy samples):
    the sampling engine's, with the memory share of ``train_gpu_memory_utilization`` (the engine shares the GPU
    with the student, its optimizer state and the teacher)."""
    section = dict(config.get("vllm") or {})
    share = section.pop("train_gpu_memory_utilization", DEFAULT_TRAIN_GPU_MEMORY_UTILIZATION)
    runtime = {k: v for k, v in section.items() if k not in IDENTITY_KEYS}
    return {**runtime, "gpu_memory_utilization": share}


def without_runtime(p: Mapping[str, Any]) -> dict[str, Any]:
    """A stage's params as its job identity: :func:`with_runtime`'s run-time ``vllm:`` settings taken out again."""
    if not p.get("vllm"):
        return dict(p)
    return {**p, "vllm": {k: v for k, v in p["vllm"].items() if k in IDENTITY_KEYS}}


def sampling_job_kwargs(p: Mapping[str, Any], *, workers: int, gpus: int) -> dict[str, Any]:
    """What a sampling stage (pass rates, references) hands its library function beside model, task and data:
    decoding and seed, the backend and its arguments, parts, the over-long policy, and the job's ``gpus`` and
    ``workers`` (threads) split into replicas (one per GPU, per ``vllm.tensor_parallel_size`` GPUs) and their
    verification processes."""
    from paced.rollouts.replicas import split_job

    samp = p["sampling"]
    kwargs = sampler_kwargs(samp, p["models"], p["device"], p["vllm"], seed=p["seed"])
    replicas, per_replica = split_job(gpus, workers, kwargs)
    return {"max_new_tokens": samp["max_new_tokens"], "temperature": samp["temperature"], "seed": p["seed"],
            "sampler": samp["backend"], "sampler_kwargs": kwargs, "decoding": decoding(samp),
            "part_size": samp["part_size"], "overlong": samp["overlong"], "workers": per_replica,
            "resume_key": without_runtime(p), "replicas": replicas}
