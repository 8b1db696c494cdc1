"""``distill``: the accelerate training loop (CPU single-process, or ``accelerate launch`` with DDP/FSDP).

Per step: pick the stage, refresh p̂ if the schedule says so, draw the batch (seeded, resumable),
weight each problem, and either skip the batch (all weights zero: no forward, no optimizer step,
but the step counter and the lr schedule advance and the skip is logged) or take one optimizer
step on the weighted divergence. Steps count batches drawn, so every method spends the same budget.
Under N processes each step's batch is split across processes (``batch[rank::N]``) and weights are
normalised per process micro-batch, as the authors' trainer does.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from paced.io import atomic_write_text, provenance, write_json
from paced.methods import MethodSpec, load_method
from paced.tasks.base import Doc, get_task
from paced.trainer.batches import batch_indices
from paced.trainer.checkpoint import (
    checkpoint_dir,
    latest_checkpoint,
    load_state,
    remove_partial_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from paced.trainer.config import DistillConfig
from paced.trainer.refresh import apply_online, initial_state, maybe_refresh
from paced.trainer.setup import build_context, load_model, load_tokenizer, make_accelerator, validate_run
from paced.trainer.step import NonFiniteLossError, StepContext, batch_loss
from paced.trainer.weights import problem_weights, tier_weight_share

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


class RunLog:
    """``log.jsonl`` rows, appended by the main process; a resumed run drops rows past its checkpoint."""

    def __init__(self, path: Path, enabled: bool, resume_step: int | None) -> None:
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        rows = []
        if resume_step is not None and path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            for i, line in enumerate(lines):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    if i < len(lines) - 1:
                        raise
                    log.warning("%s: dropping a truncated last line (the run was killed mid-write)", path)
                    break
                keep = row["step"] <= resume_step if row["event"] == "step" else row["step"] < resume_step
                if keep:
                    rows.append(line + "\n")
        atomic_write_text(path, "".join(rows))

    def write(self, row: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, sort_keys=True) + "\n")


def _train_step(ctx: StepContext, acc: Any, optimizer: Any, docs: list[Doc],
                weights: np.ndarray, stage_idx: int, step: int) -> float | None:
    """One optimizer step on the local micro-batch; returns the (global mean) loss, or None if skipped."""
    stage = ctx.method.stages[stage_idx]
    local = slice(acc.process_index, None, acc.num_processes)
    loss = batch_loss(ctx, docs[local], weights[local], stage, step)
    bad = torch.tensor([0.0 if bool(torch.isfinite(loss.detach())) else 1.0], device=ctx.device)
    if float(acc.reduce(bad, reduction="sum").item()) > 0:
        ids = [d.id for d in docs]
        raise NonFiniteLossError(f"non-finite loss ({loss.item()}) at step {step + 1} (stage {stage_idx}, "
                                 f"{stage.divergence}); batch problem ids: {ids}. No checkpoint was "
                                 "written from this step.")
    acc.backward(loss)
    if ctx.config.max_grad_norm is not None:
        acc.clip_grad_norm_(ctx.model.parameters(), ctx.config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(acc.reduce(loss.detach().reshape(1), reduction="mean").item())


def _step_row(step: int, stage_idx: int, method: MethodSpec, docs: list[Doc], weights: np.ndarray,
              loss: float | None, lr: float, skipped_total: int) -> dict[str, Any]:
    return {"event": "step", "step": step, "stage": stage_idx,
            "divergence": method.stages[stage_idx].divergence, "loss": loss,
            "mean_weight": float(weights.mean()), "zero_weight_share": float((weights == 0).mean()),
            "lr": lr, "skipped": loss is None, "skipped_total": skipped_total,
            "tier_weight_share": tier_weight_share(docs, weights), "problem_ids": [d.id for d in docs]}


def _restore(ckpt: Path, ctx: StepContext, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load optimizer, scheduler and pass-rate state from ``ckpt``; returns the saved state."""
    saved = load_state(ckpt)
    if saved.get("method") != ctx.method.to_dict():
        raise ValueError(f"cannot resume from {ckpt}: it was trained with method "
                         f"{saved.get('method', {}).get('id')!r}, this run is {ctx.method.id!r}")
    for key in ("seed", "batch_size", "student", "data"):
        if saved["config"][key] != getattr(ctx.config, key):
            raise ValueError(f"cannot resume from {ckpt}: its {key}={saved['config'][key]!r} differs from "
                             f"this run's {key}={getattr(ctx.config, key)!r}")
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    ctx.state.load_state_dict(saved["passrate_state"])
    log.info("resuming from %s (step %d)", ckpt, saved["step"])
    return saved


def distill(config: DistillConfig, method: MethodSpec | str | dict[str, Any], *,
            resume: bool = False) -> DistillResult:
    """Train ``config.student`` with ``method``; write checkpoints, ``log.jsonl`` and ``run.json``
    under ``config.out_dir``. ``resume=True`` continues from the latest complete checkpoint (if any)."""
    method = load_method(method)
    acc = make_accelerator(config)
    stage_steps = validate_run(config, method, acc.num_processes)  # before any weights load
    task = get_task(config.task, chat_tokenizer=config.chat_tokenizer)
    docs = task.load(config.data)
    out = Path(config.out_dir)
    if not method.stages:
        return _save_untouched(config, method, out, acc)
    ckpt = latest_checkpoint(out) if resume else None
    if resume and acc.is_main_process:
        remove_partial_checkpoints(out)
    if ckpt is None and acc.is_main_process and (out / "checkpoints").exists():
        log.warning("fresh run: removing old checkpoints in %s", out / "checkpoints")
        shutil.rmtree(out / "checkpoints")
    acc.wait_for_everyone()
    ctx, optimizer, scheduler, docs = build_context(config, method, task, docs, acc, ckpt)
    saved = _restore(ckpt, ctx, optimizer, scheduler) if ckpt is not None else None
    if saved is None:
        initial_state(ctx, config, method, docs)
    start = int(saved["step"]) if saved else 0
    runlog = RunLog(out / "log.jsonl", acc.is_main_process, start if saved else None)
    if saved:
        set_rng_state(saved["rng"])  # last, so nothing in setup consumes the restored streams
    skipped, last_loss = _run_steps(ctx, acc, optimizer, scheduler, docs, stage_steps, runlog, start,
                                    int(saved["skipped_batches"]) if saved else 0)
    if acc.is_main_process:
        write_json(out / "run.json", {"method": method.to_dict(), "skipped_batches": skipped,
                                      "last_loss": last_loss, "stage_steps": stage_steps,
                                      "provenance": provenance(config.to_dict(), config.seed)})
    acc.wait_for_everyone()
    return DistillResult(out, checkpoint_dir(out, config.steps), config.steps, skipped, last_loss)


def _run_steps(ctx: StepContext, acc: Any, optimizer: Any, scheduler: Any, docs: list[Doc],
               stage_steps: list[int], runlog: RunLog, start: int, skipped: int) -> tuple[int, float | None]:
    """Steps ``start`` … ``steps − 1``; returns (skipped batches so far, last loss)."""
    config, method = ctx.config, ctx.method
    last_loss: float | None = None
    for step in tqdm(range(start, config.steps), desc=f"distill {method.id}", initial=start,
                     total=config.steps, disable=not (config.progress and acc.is_main_process)):
        stage_idx = stage_of(step, stage_steps)
        maybe_refresh(ctx, acc, docs, step, stage_idx, stage_steps, runlog)
        batch = [docs[i] for i in batch_indices(step, len(docs), config.batch_size, config.seed)]
        weights = problem_weights(method.weight_source, batch, ctx.state, method.kernel.build(),
                                  method.oracle_zero_tiers)
        loss = None
        if weights.sum() > 0:
            loss = last_loss = _train_step(ctx, acc, optimizer, batch, weights, stage_idx, step)
        else:
            skipped += 1
        apply_online(ctx, acc)
        lr = float(scheduler.get_last_lr()[0])
        with warnings.catch_warnings():  # a skipped first step advances the schedule without an update
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            scheduler.step()
        runlog.write(_step_row(step + 1, stage_idx, method, batch, weights, loss, lr, skipped))
        if step + 1 in config.save_steps or step + 1 == config.steps:
            _checkpoint(ctx, acc, optimizer, scheduler, step + 1, skipped)
    return skipped, last_loss


def _checkpoint(ctx: StepContext, acc: Any, optimizer: Any, scheduler: Any, step: int, skipped: int) -> None:
    state_dict = acc.get_state_dict(ctx.model)
    # a finite loss can still leave NaN/inf weights (an overflowing update); never save them
    bad = [k for k, v in (state_dict or {}).items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise NonFiniteLossError(f"non-finite parameters after step {step} ({', '.join(bad[:5])}); no checkpoint "
                                 "was written from this step (lower train.lr or check the data)")
    if acc.is_main_process:
        state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "rng": rng_state(), "passrate_state": ctx.state.state_dict(), "skipped_batches": skipped,
                 "data_position": step * ctx.config.batch_size, "config": ctx.config.to_dict(),
                 "method": ctx.method.to_dict()}
        save_checkpoint(ctx.config.out_dir, step, model=acc.unwrap_model(ctx.model), tokenizer=ctx.tokenizer,
                        state=state, state_dict=state_dict)
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
