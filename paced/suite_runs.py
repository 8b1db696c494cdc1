"""From the suite config to one distillation run: the DistillConfig and how to launch it."""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paced.io import atomic_write_text
from paced.trainer import DistillConfig, distill

log = logging.getLogger(__name__)


def suite_task(suite: Mapping[str, Any], name: str, model: str) -> Any:
    """The task ``name`` as the suite's models see it: wrapped in ``model``'s chat template when
    ``models.chat_template`` is on (prompts then match between sampling, training and evaluation)."""
    from paced.tasks import get_task

    return get_task(name, **chat_kwargs(suite, model))


def sampler_kwargs(suite: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the sampler backend that the suite's stages build."""
    kwargs: dict[str, Any] = {"trust_remote_code": suite["models"]["trust_remote_code"]}
    if suite["sampling"]["backend"] == "hf":  # vLLM schedules its own batches and devices
        kwargs["batch_size"] = suite["sampling"]["batch_size"]
        kwargs["device"] = "cuda" if suite["resources"]["gpus_sample"] > 0 else "cpu"
    return kwargs


def chat_kwargs(suite: Mapping[str, Any], model: str) -> dict[str, Any]:
    """``get_task`` keyword arguments for ``model`` (the chat tokenizer, when the suite uses chat templates)."""
    return {"chat_tokenizer": model} if suite["models"]["chat_template"] else {}


def distill_config(suite: Mapping[str, Any], method: str, seed: int, *, passrates: str | None, references: str,
                   teacher_cache: str | None = None) -> DistillConfig:
    """The :class:`DistillConfig` of run (``method``, ``seed``) under the resolved suite dict."""
    train, samp, models = suite["train"], suite["sampling"], suite["models"]
    spec = suite["method_specs"][method]
    if spec["weight_source"] == "pass_rate" and spec["k"] != suite["passrate"]["k"]:
        passrates = None  # the base file holds passrate.k rollouts; this method estimates its own K before step 1
    device = "cuda" if suite["resources"]["gpus_train"] > 0 else "cpu"
    return DistillConfig(
        student=suite["student"], teacher=suite["teacher"], task=suite["train_task"], data=suite["train_path"],
        out_dir=str(Path(suite["results_dir"]) / "runs" / method / f"seed{seed}"), references=references,
        passrates=passrates, steps=train["steps"], batch_size=train["batch_size"], lr=train["lr"],
        warmup_steps=train["warmup_steps"], save_steps=tuple(s for s in train["save_steps"] if s < train["steps"]),
        seed=seed, sampler="hf", sampler_batch_size=samp["batch_size"], max_new_tokens=samp["max_new_tokens"],
        temperature=samp["temperature"], chunk_size=train["chunk_size"], device=device, dtype=models["dtype"],
        teacher_cache_path=teacher_cache, teacher_cache_top_k=train["teacher_cache_top_k"],
        chat_tokenizer=suite["student"] if models["chat_template"] else None,
        trust_remote_code=models["trust_remote_code"])


def run_distill(config: DistillConfig, method: Mapping[str, Any], *, accelerate_config: str | None = None,
                resume: bool = True) -> None:
    """Train in this process, or under ``accelerate launch`` when ``accelerate_config`` is given.

    ``resume=True`` continues a killed run from its latest complete checkpoint.
    """
    if accelerate_config is None:
        distill(config, dict(method), resume=resume)
        return
    spec = Path(config.out_dir) / "launch.json"
    atomic_write_text(spec, json.dumps({"config": config.to_dict(), "method": dict(method)}, indent=2))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config,
           "-m", "paced.trainer", str(spec)] + (["--resume"] if resume else [])
    log.info("launching: %s", shlex.join(cmd))
    subprocess.run(cmd, check=True)
