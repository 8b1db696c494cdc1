"""``distill``: the accelerate training loop (CPU single-process, or ``accelerate launch`` with DDP/FSDP).

Per step: pick the stage, refresh p̂ if the schedule says so, draw the batch (seeded, resumable),
weight each problem, and either skip the batch (all weights zero: no forward, no optimizer step,
but the step counter and the lr schedule advance and the skip is logged) or take one optimizer
step on the weighted divergence. Steps count batches drawn, so every method spends the same budget.
Under N processes each step's batch is split across processes (``batch[rank::N]``), then into
micro-batches (gradients accumulated); the weights are normalised over the whole batch, so the loss
and gradient equal the one-process, one-pass values (see ``paced.trainer.step.batch_loss``).
``sharding='fsdp'`` runs the same loop under ``torchrun`` with an FSDP2-sharded student.
"""

from __future__ import annotations

import logging
import math
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from paced.io import provenance, write_json
from paced.kernels import Kernel
from paced.methods import MethodSpec, load_method
from paced.problem_weights import problem_weights, tier_weight_share
from paced.tasks.base import Doc, get_task
from paced.trainer.batches import batch_indices
from paced.trainer.checkpoint import (
    SHARDED_DIR,
    checkpoint_dir,
    load_state,
    load_training_state,
    remove_partial_checkpoints,
    resumable_checkpoint,
    rng_state,
    save_checkpoint,
    save_sharded_state,
    set_rng_state,
    sharded_staging_dir,
)
from paced.trainer.config import DistillConfig
from paced.trainer.distributed import (
    any_rank,
    clip_grad_norm_,
    compute_autocast,
    full_state_dict,
    is_sharded,
    max_over_ranks,
    nonfinite_parameters,
    sum_over_ranks,
)
from paced.trainer.identity import run_identity
from paced.trainer.refresh import apply_online, initial_state, maybe_refresh
from paced.trainer.setup import build_context, load_model, load_tokenizer, make_accelerator, validate_run
from paced.trainer.step import NonFiniteLossError, StepContext, batch_loss, presample, rank_micro_batches
from paced.trainer.train_log import TrainingLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillResult:
    out_dir: Path
    final_checkpoint: Path
    steps: int
    skipped_batches: int
    last_loss: float | None


def stage_of(step: int, stage_steps: list[int]) -> int:
    """Index of the stage that 0-based ``step`` belongs to."""
    edge = 0
    for i, n in enumerate(stage_steps):
        edge += n
        if step < edge:
            return i
    raise IndexError(f"step {step} is past the schedule {stage_steps}")


def without_overlong(docs: list[Doc], config: DistillConfig, method: MethodSpec) -> list[Doc]:
    """The training pool less the problems the pass-rate stage skipped as over-long (``sampling.overlong: skip``;
    their rows carry 0 of K correct and a flag, and no reference), logged with their count."""
    if not (method.uses_pass_rates and config.passrates):
        return docs
    from paced.passrate.files import overlong_ids

    skipped = overlong_ids(config.passrates)
    if skipped:
        log.warning("%d of %d training problems are left out: their prompt + budget exceeds the model's context "
                    "(flagged over-long in %s; e.g. %s)", len(skipped), len(docs), config.passrates,
                    ", ".join(sorted(skipped)[:5]))
    return [d for d in docs if d.id not in skipped]


def _train_step(ctx: StepContext, acc: Any, optimizer: Any, docs: list[Doc],
                weights: np.ndarray, stage_idx: int, step: int) -> float | None:
    """One optimizer step on the whole batch ``docs`` (all processes), micro-batch by micro-batch, with
    gradients accumulated; returns the batch's weighted loss (summed over processes: the one-batch value)."""
    config, stage = ctx.config, ctx.method.stages[stage_idx]
    groups = rank_micro_batches(ctx, docs, weights, stage, acc.process_index, acc.num_processes)
    groups += [[]] * (max_over_ranks(max(1, len(groups)), ctx.device) - len(groups))  # same passes everywhere
    if stage.on_policy and getattr(ctx.sampler, "whole_batch", False):
        presample(ctx, docs, weights, groups, step)  # one sampler call per process, as a collective reload needs
    try:
        total = _accumulate(ctx, acc, docs, weights, stage_idx, step, groups)
    finally:
        ctx.presampled = None
    if config.max_grad_norm is not None:
        clip_grad_norm_(list(ctx.model.parameters()), config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def _accumulate(ctx: StepContext, acc: Any, docs: list[Doc], weights: np.ndarray, stage_idx: int, step: int,
                groups: list[list[int]]) -> float:
    """Forward and backward of each micro-batch in ``groups``; returns the summed loss."""
    config, stage = ctx.config, ctx.method.stages[stage_idx]
    sharded, total = is_sharded(ctx.model), 0.0
    for rows in groups:
        with compute_autocast(ctx.device, config.torch_dtype, config.torch_master_dtype, sharded):
            loss = batch_loss(ctx, docs, weights, stage, step, rows)
        value = float(sum_over_ranks(loss.detach().float().reshape(1)).item())  # nan/inf if any process has one
        if not math.isfinite(value):
            raise NonFiniteLossError(f"non-finite loss ({value}) at step {step + 1} (stage {stage_idx}, "
                                     f"{stage.divergence}); batch problem ids: {[d.id for d in docs]}. No "
                                     "checkpoint was written from this step.")
        acc.backward(loss * acc.num_processes)  # DDP and FSDP average gradients over processes; shares add up
        total += value
    return total


def _step_row(step: int, stage_idx: int, method: MethodSpec, docs: list[Doc], weights: np.ndarray,
              loss: float | None, lr: float, skipped_total: int) -> dict[str, Any]:
    return {"event": "step", "step": step, "stage": stage_idx,
            "divergence": method.stages[stage_idx].divergence, "loss": loss,
            "mean_weight": float(weights.mean()), "zero_weight_share": float((weights == 0).mean()),
            "lr": lr, "skipped": loss is None, "skipped_total": skipped_total,
            "tier_weight_share": tier_weight_share(docs, weights), "problem_ids": [d.id for d in docs]}


def _restore(ckpt: Path, ctx: StepContext, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load optimizer, scheduler and pass-rate state from ``ckpt`` (its identity already matched)."""
    saved = load_state(ckpt)
    load_training_state(ckpt, saved, ctx.model, optimizer)  # sharded runs: each process its shard
    scheduler.load_state_dict(saved["scheduler"])
    ctx.state.load_state_dict(saved["passrate_state"])
    log.info("resuming from %s (step %d): same run identity %s", ckpt, saved["step"], ctx.identity["digest"])
    return saved


def _resume_point(out: Path, identity: dict[str, Any], resume: bool, acc: Any) -> Path | None:
    """The checkpoint to resume from, or None; a fresh run clears old checkpoints and says why."""
    ckpt, why = resumable_checkpoint(out, identity) if resume else (None, "resume=False")
    if acc.is_main_process:
        if resume:
            remove_partial_checkpoints(out)
        if ckpt is None and (out / "checkpoints").exists():
            log.warning("starting fresh in %s (%s); removing its old checkpoints", out, why)
            shutil.rmtree(out / "checkpoints")
    acc.wait_for_everyone()
    return ckpt


def distill(config: DistillConfig, method: MethodSpec | str | dict[str, Any], *,
            resume: bool = False) -> DistillResult:
    """Train ``config.student`` with ``method``; write checkpoints, ``log.jsonl`` and ``run.json``
    under ``config.out_dir``. ``resume=True`` continues from the latest complete checkpoint (if any)."""
    method = load_method(method)
    acc = make_accelerator(config)
    stage_steps = validate_run(config, method, acc.num_processes)  # before any weights load
    task = get_task(config.task, chat_tokenizer=config.chat_tokenizer, enable_thinking=config.enable_thinking)
    docs = without_overlong(task.load(config.data), config, method)
    out = Path(config.out_dir)
    if not method.stages:
        return _save_untouched(config, method, out, acc)
    identity = run_identity(config, method, processes=acc.num_processes)
    ckpt = _resume_point(out, identity, resume, acc)
    ctx, optimizer, scheduler, docs = build_context(config, method, task, docs, acc, ckpt)
    ctx.identity = identity
    try:
        saved = _restore(ckpt, ctx, optimizer, scheduler) if ckpt is not None else None
        if saved is None:
            initial_state(ctx, config, method, docs)
        start = int(saved["step"]) if saved else 0
        runlog = TrainingLog(out / "log.jsonl", acc.is_main_process, start if saved else None)
        if saved:
            set_rng_state(saved["rng"])  # last, so nothing in setup consumes the restored streams
        skipped, last_loss = _run_steps(ctx, acc, optimizer, scheduler, docs, stage_steps, runlog, start,
                                        int(saved["skipped_batches"]) if saved else 0)
    finally:
        close = getattr(ctx.sampler, "close", None)
        if close is not None:  # a vLLM engine: free its memory (also when the run fails)
            close()
    if acc.is_main_process:
        write_json(out / "run.json", {"method": method.to_dict(), "skipped_batches": skipped,
                                      "last_loss": last_loss, "stage_steps": stage_steps,
                                      "identity": identity, "resumed_from_step": start,
                                      "provenance": provenance(config.to_dict(), config.seed)})
    acc.wait_for_everyone()
    return DistillResult(out, checkpoint_dir(out, config.steps), config.steps, skipped, last_loss)


def _run_steps(ctx: StepContext, acc: Any, optimizer: Any, scheduler: Any, docs: list[Doc],
               stage_steps: list[int], runlog: TrainingLog, start: int, skipped: int) -> tuple[int, float | None]:
    """Steps ``start`` … ``steps − 1``; returns (skipped batches so far, last loss)."""
    config, method = ctx.config, ctx.method
    kernel: Kernel = method.kernel.build()  # once per run
    last_loss: float | None = None
    for step in tqdm(range(start, config.steps), desc=f"distill {method.id}", initial=start,
                     total=config.steps, disable=not (config.progress and acc.is_main_process)):
        stage_idx = stage_of(step, stage_steps)
        maybe_refresh(ctx, acc, docs, step, stage_idx, stage_steps, runlog)
        batch = [docs[i] for i in batch_indices(step, len(docs), config.batch_size, config.seed)]
        weights = problem_weights(method.weight_source, batch, ctx.state, kernel, method.oracle_zero_tiers)
        loss = None
        if weights.sum() > 0:
            loss = last_loss = _train_step(ctx, acc, optimizer, batch, weights, stage_idx, step)
        else:
            skipped += 1
        apply_online(ctx, acc, batch, weights, step)
        lr = float(scheduler.get_last_lr()[0])
        with warnings.catch_warnings():  # a skipped first step advances the schedule without an update
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            scheduler.step()
        runlog.write(_step_row(step + 1, stage_idx, method, batch, weights, loss, lr, skipped))
        if step + 1 in config.save_steps or step + 1 == config.steps:
            _checkpoint(ctx, acc, optimizer, scheduler, step + 1, skipped)
    return skipped, last_loss


def _checkpoint(ctx: StepContext, acc: Any, optimizer: Any, scheduler: Any, step: int, skipped: int) -> None:
    """Model files gathered whole and written in ``dtype`` by the main process; the optimizer state in
    ``trainer_state.pt``, or (sharded) each process's shard with torch.distributed.checkpoint."""
    config, model = ctx.config, ctx.model
    # a finite loss can still leave NaN/inf weights (an overflowing update); never save them
    bad = nonfinite_parameters(model)
    if any_rank(bool(bad), ctx.device):
        raise NonFiniteLossError(f"non-finite parameters after step {step} ({', '.join(bad[:5]) or 'another process'})"
                                 "; no checkpoint was written from this step (lower train.lr or check the data)")
    sharded = is_sharded(model)
    staging = sharded_staging_dir(config.out_dir, step)
    if sharded:
        if acc.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        acc.wait_for_everyone()
        save_sharded_state(staging, model, optimizer)
    inner = model if sharded else acc.unwrap_model(model)
    state_dict = full_state_dict(inner)  # gathered on the main process when sharded
    if acc.is_main_process:
        state = {"step": step, "optimizer": None if sharded else optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "rng": rng_state(), "passrate_state": ctx.state.state_dict(),
                 "skipped_batches": skipped, "data_position": step * config.batch_size, "config": config.to_dict(),
                 "method": ctx.method.to_dict(), "identity": ctx.identity}
        if not sharded and config.master_dtype != config.dtype:
            state["master_weights"] = state_dict  # the files hold them cast to dtype; resume needs them exact
        save_checkpoint(config.out_dir, step, model=inner, tokenizer=ctx.tokenizer, state=state,
                        state_dict=state_dict, dtype=config.torch_dtype,
                        move_in={SHARDED_DIR: staging} if sharded else None)
    acc.wait_for_everyone()


def _save_untouched(config: DistillConfig, method: MethodSpec, out: Path, acc: Any) -> DistillResult:
    """A method with no stages (``base``) trains nothing: the student is saved as ``step0``."""
    path = checkpoint_dir(out, 0)
    if acc.is_main_process:
        trc = config.trust_remote_code
        model = load_model(config.student, config.torch_dtype, trainable=False, trust_remote_code=trc)
        save_checkpoint(out, 0, model=model, tokenizer=load_tokenizer(config.student, trust_remote_code=trc),
                        state={"step": 0, "method": method.to_dict()})
        write_json(out / "run.json", {"method": method.to_dict(), "skipped_batches": 0, "last_loss": None,
                                      "stage_steps": [], "provenance": provenance(config.to_dict(), config.seed)})
    acc.wait_for_everyone()
    return DistillResult(out, path, 0, 0, None)
