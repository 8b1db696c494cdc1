"""Stage ``distill``: one distillation run (method × seed) — its :class:`DistillConfig`, and how it is launched.

The rule's params are :func:`params`: the resolved run config and method spec, which are also the run's
identity (a checkpoint resumes only under the same identity, :mod:`paced.trainer.identity`).
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from paced.failures import CELL_ERROR_FILE, CellFailure
from paced.io import atomic_write_text, job_log, read_json
from paced.pipeline.common import decoding, device, training_engine
from paced.vllm_keys import TRAINING_IDENTITY_KEYS

log = logging.getLogger(__name__)

# train.* keys passed to DistillConfig as they are (the sharded path, micro-batches, precision)
SCALE_KEYS = ("sharding", "teacher_sharding", "master_dtype", "micro_batch_size", "micro_batch_tokens", "max_seq_len",
              "gradient_checkpointing")
# How a step is split into micro-batches and recomputed: the same sums in another order (equal up to float rounding),
# so not part of the params (an edit reruns nothing) nor of the run identity (a run killed for memory resumes with a
# smaller micro-batch); the script hands them over at run time (:func:`runtime`).
RUNTIME_KEYS = ("micro_batch_size", "micro_batch_tokens", "gradient_checkpointing")
NOT_PARAMS = ("out_dir", "progress", *RUNTIME_KEYS)  # plus where a run writes and whether it shows a bar


def distill_config(suite: Any, method: str, seed: int, *, passrates: str | None, references: str,
                   teacher_cache: str | None = None) -> Any:
    """The :class:`~paced.trainer.DistillConfig` of run (``method``, ``seed``) under the resolved suite."""
    from paced.methods import load_method
    from paced.trainer import DistillConfig
    from paced.trainer.setup import needs_live_sampler

    train, samp, models = suite.train, suite.sampling, suite.models
    spec = suite.method_specs[method]
    if spec["weight_source"] != "pass_rate":
        passrates = None  # not read: the base pass rates are no input of an unweighted run (nor of its identity)
    elif spec["k"] != suite.passrate.k:
        passrates = None  # the base file holds passrate.k rollouts; this method estimates its own K before step 1
    # the in-training sampler: sampling.backend for a run that samples its student (on-policy stages, p̂ estimates),
    # with the engine's identity keys; a run that never samples keeps the (unused) hf default and no engine settings
    live = needs_live_sampler(SimpleNamespace(passrates=passrates), load_method(spec))
    sampler = samp.backend if live else "hf"
    engine = ({k: v for k, v in suite.vllm.values.items() if k in TRAINING_IDENTITY_KEYS}
              if live and samp.backend == "vllm" else None)
    return DistillConfig(
        student=suite.student, teacher=suite.teacher, task=suite.train_task, data=suite.train_path,
        out_dir=suite.layout.run_dir(method, seed), references=references,
        passrates=passrates, steps=train.steps, batch_size=train.batch_size, lr=train.lr,
        warmup_steps=train.warmup_steps, save_steps=tuple(s for s in train.save_steps if s < train.steps),
        seed=seed, sampler=sampler, sampler_batch_size=train.sampler_batch_size or samp.batch_size,
        vllm=engine,  # its run-time settings reach the job through runtime()
        max_new_tokens=samp.max_new_tokens,
        temperature=samp.temperature, decoding=decoding(samp.values), chunk_size=train.chunk_size,
        device=device(suite.resources.gpus_train),
        dtype=models.dtype, teacher_cache_path=teacher_cache, teacher_cache_top_k=train.teacher_cache_top_k,
        chat_tokenizer=suite.student if models.chat_template else None,
        enable_thinking=models.get("enable_thinking") if models.chat_template else None,
        trust_remote_code=models.trust_remote_code,
        **{k: train[k] for k in SCALE_KEYS})


def params(suite: Any, method: str, seed: int) -> dict[str, Any]:
    """The run's identity as the rule's params: the resolved config (paths of its inputs included), the
    resolved method spec and the launcher."""
    lay = suite.layout
    cfg = distill_config(suite, method, seed, passrates=lay.passrates(), references=lay.references,
                         teacher_cache=lay.teacher_cache).to_dict()
    cfg = {k: v for k, v in cfg.items() if k not in NOT_PARAMS and not (k == "vllm" and v is None)}
    return {"config": cfg, "method": suite.method_specs[method],
            "accelerate_config": suite.train.accelerate_config, "nproc": max(1, int(suite.resources.gpus_train))}


def runtime(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run-time settings from the workflow's validated config: :data:`RUNTIME_KEYS`, and (``vllm``) how the
    in-training vLLM engine runs (:func:`paced.pipeline.common.training_engine`)."""
    return {**{k: config["train"][k] for k in RUNTIME_KEYS}, "vllm": training_engine(config)}


def run_fields(p_config: Mapping[str, Any], rt: Mapping[str, Any]) -> dict[str, Any]:
    """The run's DistillConfig fields: its params' with the run-time settings; the engine's run-time settings
    join its identity keys only when the run samples with vLLM."""
    vllm = None if p_config.get("vllm") is None else {**rt.get("vllm", {}), **p_config["vllm"]}  # identity keys win
    return {**p_config, **{k: v for k, v in rt.items() if k != "vllm"}, "vllm": vllm}


def run(p: Mapping[str, Any], run_json: str, *, runtime: Mapping[str, Any], on_error: str,
        context: Mapping[str, Any]) -> None:
    """Train into ``run_json``'s directory; a failure that belongs to the cell is recorded in ``run_json``."""
    from paced.pipeline.cells import run_cell
    from paced.trainer import DistillConfig

    config = DistillConfig.from_dict({**run_fields(p["config"], runtime), "out_dir": str(Path(run_json).parent)})
    run_cell(lambda: run_distill(config, p["method"], accelerate_config=p["accelerate_config"],
                                 nproc=p.get("nproc", 1)), [run_json], on_error=on_error, context=context)


def run_distill(config: Any, method: Mapping[str, Any], *, accelerate_config: str | None = None,
                resume: bool = True, nproc: int = 1) -> None:
    """Train in this process; under ``torchrun`` with ``nproc`` processes when ``config.sharding == "fsdp"``
    (FSDP2, a free port per launch, so concurrent runs never collide); or under ``accelerate launch`` (DDP) when
    ``accelerate_config`` is given.

    ``resume=True`` continues a killed run from its latest complete checkpoint of the same run identity.
    """
    from paced.trainer import distill

    sharded = config.sharding == "fsdp"
    if accelerate_config is None and not sharded:
        distill(config, dict(method), resume=resume)
        return
    spec = Path(config.out_dir) / "launch.json"
    atomic_write_text(spec, json.dumps({"config": config.to_dict(), "method": dict(method)}, indent=2))
    args = ["-m", "paced.trainer", str(spec)] + (["--resume"] if resume else [])
    if sharded:
        from paced.trainer.distributed import torchrun_command

        cmd = torchrun_command(max(1, int(nproc)), args)
    else:
        from paced.trainer.distributed import free_port

        # a port of its own: concurrent launches on one node would otherwise all take accelerate's 29500
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config,
               "--main_process_port", str(free_port()), *args]
    marker = Path(config.out_dir) / CELL_ERROR_FILE
    marker.unlink(missing_ok=True)
    log.info("launching: %s", shlex.join(cmd))
    with job_log() as out:  # the launched processes' lines go where this job's own do (the rule's log)
        proc = subprocess.run(cmd, check=False, stdout=out, stderr=subprocess.STDOUT if out else None)
    if proc.returncode != 0 and marker.is_file():  # a process reported its cell's failure: record it, go on
        raise CellFailure(f"training process failed: {read_json(marker).get('error')}")
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
