"""What each process runs in tests/test_distributed.py: ``torchrun … _distributed_worker.py PHASE WORLD OUT``.

Phase ``main``: (a) one sharded fused step per divergence, (b) the teacher on every process,
(p) a bf16-compute step at lr 1e-6, (c) an uninterrupted sharded run, then a run killed
(``os._exit``) right after its step-2 checkpoint. Phase ``resume``: (c) the killed run resumed,
then (d) a NaN loss on rank 1 only. Every result is a file under OUT for the test to compare.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

STEP_DOCS = 6  # problems in the (a) step: 3 per process
WEIGHTS = np.array([0.25, 0.0, 0.5, 0.125, 1.0, 0.75])  # one zero: dropped, never forwarded
# (a) cases: name -> (divergence, teacher, extra config); the sharded teacher and the self-teacher (the
# sharded student itself, prompted with the answer) run the same step as the replicated separate teacher
STEP_CASES = {"forward_kl": ("forward_kl", "separate", {}), "reverse_kl": ("reverse_kl", "separate", {}),
              "adaptive_kl-checkpointed": ("adaptive_kl", "separate", {"gradient_checkpointing": True}),
              "forward_kl-sharded-teacher": ("forward_kl", "separate", {"teacher_sharding": "shard"}),
              "reverse_kl-self-teacher": ("reverse_kl", "self", {})}
KILL_AFTER = 2
# (c): an FKL stage (steps 1-2), then on-policy RKL (steps 3-4) sampled with HF generate from the sharded student
RUN_METHOD = {"preset": "paced-fkl-then-rkl", "refresh": "online"}


def write_passrates(world: dict[str, str], path: Path) -> str:
    """Base pass rates for the run's PACED weights: 1..6 of 8 correct, cycling over the problems."""
    ids = [json.loads(line)["id"] for line in Path(world["data"]).read_text().splitlines()]
    path.write_text("".join(json.dumps({"id": i, "num_correct": 1 + n % 6, "k": 8}) + "\n"
                            for n, i in enumerate(ids)))
    return str(path)


def config(world: dict[str, str], out: Path, **kw):
    from paced.trainer import DistillConfig

    base = dict(student=world["student"], teacher=world["teacher"], task="toy_arith", data=world["data"],
                out_dir=str(out), steps=4, batch_size=4, lr=1e-2, progress=False, max_new_tokens=6,
                teacher_cache="none", sampler=None, fused="on", chunk_size=3, fused_chunk_size=5)
    return DistillConfig(**{**base, **kw})


def step_method(divergence: str, teacher: str = "separate"):
    from paced.methods import StageSpec, get_method

    stage = StageSpec(divergence=divergence, fraction=1.0, source="references")
    if teacher == "self":
        return dataclasses.replace(get_method("uniform-fkl"), stages=(stage,), teacher="self")
    return dataclasses.replace(get_method("uniform-fkl"), stages=(stage,))


def run_config(world: dict[str, str], out: Path):
    return config(world, out, sharding="fsdp", save_steps=(KILL_AFTER,), micro_batch_size=1,
                  passrates=world["passrates"], sampler="hf")


def one_step(cfg, method) -> dict:
    """Build the run's context, take one optimizer step on the first STEP_DOCS problems with WEIGHTS;
    returns the loss, the gradients the optimizer saw and the updated parameters, all whole."""
    from paced.tasks.base import get_task
    from paced.trainer.distributed import full_state_dict, is_sharded, local_tensor
    from paced.trainer.loop import _train_step
    from paced.trainer.setup import build_context, make_accelerator

    acc = make_accelerator(cfg)
    task = get_task(cfg.task)
    ctx, optimizer, _, pool = build_context(cfg, method, task, task.load(cfg.data), acc, None)
    model = ctx.model if is_sharded(ctx.model) else acc.unwrap_model(ctx.model)
    init = {k: v.float().clone() for k, v in full_state_dict(model).items()}  # unsharded: views of params
    grads: dict[str, torch.Tensor] = {}

    def keep_grads(opt, args, kwargs):
        for name, p in model.named_parameters():
            if p.grad is not None:
                g = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
                grads[name] = g.detach().float().cpu().clone()

    getattr(optimizer, "optimizer", optimizer).register_step_pre_hook(keep_grads)  # under accelerate's wrapper
    loss = _train_step(ctx, acc, optimizer, pool[:STEP_DOCS], WEIGHTS, 0, 0)
    params = {k: v.float() for k, v in full_state_dict(model).items()}
    local = sum(local_tensor(p).numel() for p in model.parameters())
    total = sum(p.numel() for p in model.parameters())  # a DTensor's numel is the whole tensor's
    return {"loss": loss, "grads": grads, "params": params, "init": init,
            "param_dtype": str(next(model.parameters()).dtype), "sharded": is_sharded(model),
            "local_share": local / total}


def _teacher_state(cfg) -> dict[str, torch.Tensor]:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    from paced.trainer.setup import load_teacher

    teacher = load_teacher(cfg, torch.device("cpu"))
    return get_model_state_dict(teacher, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=False))


def teachers(world: dict[str, str], out: Path, rank: int) -> None:
    """(b) under accelerate's FSDP loading flags, which zero ranks > 0 for a plain from_pretrained."""
    from transformers import AutoModelForCausalLM

    os.environ.update(ACCELERATE_USE_FSDP="true", FSDP_CPU_RAM_EFFICIENT_LOADING="true")
    try:
        plain = AutoModelForCausalLM.from_pretrained(world["teacher"])
        plain_abs = float(sum(p.detach().abs().sum() for p in plain.parameters()))
        for mode in ("replicate", "shard"):
            cfg = config(world, out / "unused", sharding="fsdp", teacher_sharding=mode)
            torch.save(_teacher_state(cfg), out / f"b_{mode}_rank{rank}.pt")
    finally:
        for key in ("ACCELERATE_USE_FSDP", "FSDP_CPU_RAM_EFFICIENT_LOADING"):
            os.environ.pop(key, None)
    (out / f"b_plain_rank{rank}.json").write_text(json.dumps({"abs_sum": plain_abs}))


def _patch_checkpoint(out: Path, name: str, rank: int, kill_after: int | None) -> None:
    """Dump this rank's optimizer shard at every checkpoint; exit hard after ``kill_after``."""
    from paced.trainer import loop
    from paced.trainer.distributed import local_tensor

    real = loop._checkpoint

    def checkpoint(ctx, acc, optimizer, scheduler, step, skipped):
        real(ctx, acc, optimizer, scheduler, step, skipped)
        torch.save(_local_optimizer(optimizer, local_tensor), out / f"c_{name}_opt_s{step}_rank{rank}.pt")
        if step == kill_after:
            os._exit(17)  # a kill: no cleanup, no later step

    loop._checkpoint = checkpoint


def _local_optimizer(optimizer, local_tensor) -> dict:
    return {f"{i}.{k}": local_tensor(v).detach().clone() if isinstance(v, torch.Tensor) else v
            for i, st in enumerate(optimizer.state.values()) for k, v in st.items()}


def run_main(world: dict[str, str], out: Path, rank: int) -> None:
    from paced.trainer import distill

    for case, (div, teacher, extra) in STEP_CASES.items():
        cfg = config(world, out / "unused", sharding="fsdp", micro_batch_size=1, **extra)
        res = one_step(cfg, step_method(div, teacher))
        if rank == 0:
            torch.save(res, out / f"a_{case}.pt")
    teachers(world, out, rank)
    cfg = config(world, out / "unused", sharding="fsdp", dtype="bfloat16", lr=1e-6, micro_batch_tokens=64)
    res = one_step(cfg, step_method("forward_kl"))
    if rank == 0:
        torch.save(res, out / "p_bf16.pt")
    _patch_checkpoint(out, "full", rank, None)
    distill(run_config(world, out / "full"), RUN_METHOD)
    _patch_checkpoint(out, "killed", rank, KILL_AFTER)
    distill(run_config(world, out / "killed"), RUN_METHOD)


def run_resume(world: dict[str, str], out: Path, rank: int) -> None:
    from paced.trainer import NonFiniteLossError, distill, loop
    from paced.trainer.distributed import local_tensor

    real_load = loop.load_training_state

    def load(ckpt, saved, model, optimizer):
        real_load(ckpt, saved, model, optimizer)
        torch.save(_local_optimizer(optimizer, local_tensor), out / f"c_loaded_rank{rank}.pt")

    loop.load_training_state = load
    _patch_checkpoint(out, "resumed", rank, None)
    distill(run_config(world, out / "killed"), RUN_METHOD, resume=True)
    real_loss = loop.batch_loss

    def nan_on_rank1(ctx, docs, weights, stage, step, *rows):
        loss = real_loss(ctx, docs, weights, stage, step, *rows)
        return loss * float("nan") if rank == 1 and step == 1 else loss

    loop.batch_loss = nan_on_rank1
    try:
        distill(config(world, out / "nan", sharding="fsdp"), "uniform-fkl")
    except NonFiniteLossError as err:
        (out / f"d_rank{rank}.txt").write_text(str(err))
        dist.barrier()
        raise


def main() -> None:
    phase, world_dir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    torch.set_num_threads(1)
    world = json.loads((world_dir / "world.json").read_text())
    rank = int(os.environ["RANK"])
    {"main": run_main, "resume": run_resume}[phase](world, out, rank)
    (out / f"{phase}_done_rank{rank}").write_text("ok")


if __name__ == "__main__":
    main()
