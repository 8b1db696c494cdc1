"""Part 4 of ``gpu_check.py``: one FSDP2-sharded distillation step at the paper's shapes, beside ``paced plan``.

A student with Qwen3-1.7B's dimensions (fp32 master weights, bf16 compute, FSDP2 over a 1-process group, the
trainer's ``paced.trainer.distributed.shard``) and a replicated bf16 teacher with Qwen3-8B's dimensions
(V = 151,936), both random-init (no download); one micro-batch of the configured size (``train.*`` of the config
files, as ``paced plan`` reads them) through the fused FKL, backward and AdamW. Prints the measured peak memory
and step time beside the plan's estimate of the same step on one GPU. ``tiny=True`` (CPU dry run): small dims
and a 2 × 64-token micro-batch, over gloo; the figures then only show that the code runs.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import replace
from typing import Any

import torch
import torch.distributed as dist

from paced.fused import causal_lm_hidden, fused_divergence
from paced.plan import PAPER_ARCHS, PlanSettings, load_config
from paced.plan.arch import ArchFacts
from paced.plan.memory import GB, forward_flops
from paced.plan.rules import RULES, Job
from paced.plan.train import micro_batch_tokens, train_key

# The micro-batch settings chosen for config/paper.yaml on 8 x 80 GB (``paced plan``), used when the config sets none
PAPER_MICRO_BATCH = {"micro_batch_size": 4, "micro_batch_tokens": 32768, "max_seq_len": 8704,
                     "gradient_checkpointing": True}


def qwen3_config(a: ArchFacts) -> Any:
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=a.vocab_size, hidden_size=a.hidden_size, intermediate_size=a.intermediate_size,
                       num_hidden_layers=a.num_hidden_layers, num_attention_heads=a.num_attention_heads,
                       num_key_value_heads=a.num_key_value_heads, head_dim=a.head_dim,
                       max_position_embeddings=a.max_position_embeddings, tie_word_embeddings=a.tie_word_embeddings,
                       rope_theta=1_000_000.0, rms_norm_eps=1e-6, attn_implementation="sdpa")


def _tiny(a: ArchFacts) -> ArchFacts:
    return replace(a, num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=16, vocab_size=4096)


def _models(job: Job, device: str, ckpt: bool) -> tuple[Any, Any]:
    from transformers import Qwen3ForCausalLM

    from paced.trainer.distributed import shard

    with torch.device(device):
        student = Qwen3ForCausalLM(qwen3_config(job.student))  # fp32 master weights
        torch.set_default_dtype(torch.bfloat16)  # the teacher is made in bf16 directly (no fp32 copy of 8B)
        try:
            teacher = Qwen3ForCausalLM(qwen3_config(job.teacher)).eval().requires_grad_(False)
        finally:
            torch.set_default_dtype(torch.float32)
    if ckpt:
        student.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    student.train()
    return shard(student, torch.device(device), compute=torch.bfloat16, master=torch.float32), teacher


def bench_sharded_step(config_files: list[str], reps: int, tiny: bool) -> dict[str, Any]:
    device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"
    gpu_gb = torch.cuda.get_device_properties(0).total_memory / GB if device == "cuda" else 80.0
    cfg = load_config(config_files)
    student, teacher = PAPER_ARCHS["Qwen/Qwen3-1.7B"], PAPER_ARCHS["Qwen/Qwen3-8B"]
    if not cfg["train"].get("micro_batch_tokens") and not tiny:
        print(f"    (the config sets no train.micro_batch_tokens: using {PAPER_MICRO_BATCH})")
        cfg["train"].update(PAPER_MICRO_BATCH)
    if tiny:
        student, teacher = _tiny(student), _tiny(teacher)
        cfg["train"].update(micro_batch_tokens=128, max_seq_len=64, micro_batch_size=2, gradient_checkpointing=True)
    job = Job(cfg, student, teacher, PlanSettings(gpus=1, gpu_mem_gb=gpu_gb))
    tokens, cap = micro_batch_tokens(job)
    rows, ckpt = max(1, tokens // cap), bool(train_key(job, "gradient_checkpointing"))
    estimate = RULES.get("distill")(job)[0]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        dist.init_process_group("nccl" if device == "cuda" else "gloo", init_method=f"file://{tmp}/pg", rank=0,
                                world_size=1)
        try:
            result = _run_step(job, device, rows, cap, ckpt, int(train_key(job, "fused_chunk_size")), reps)
        finally:
            dist.destroy_process_group()
    mean = cap  # every row is full length here
    flops = rows * (4 if ckpt else 3) * forward_flops(job.student, mean, mean) + rows * forward_flops(
        job.teacher, mean, mean)
    out = {"device": device, "rows": rows, "seq": cap, "checkpointing": ckpt, **result,
           "plan_peak_gb": estimate.gpu_bytes / GB, "plan_components_gb": {k: v / GB for k, v in
                                                                         estimate.memory.items()},
           "plan_step_s": flops / (job.settings.train_tflops * 1e12)}
    print(f"[4] FSDP2 distillation step on 1 {device}: student {'tiny' if tiny else 'Qwen3-1.7B dims'} (fp32 master, "
          f"bf16 compute), teacher {'tiny' if tiny else 'Qwen3-8B dims'} bf16, V={job.student.vocab_size}, "
          f"micro-batch {rows} x {cap} tokens, checkpointing {'on' if ckpt else 'off'}, median of {reps}")
    measured = f"{out['peak_gb']:.1f} GB" if device == "cuda" else "n/a on CPU"
    print(f"    peak memory: measured {measured}, paced plan {out['plan_peak_gb']:.1f} GB "
          f"({', '.join(f'{k} {v:.1f}' for k, v in out['plan_components_gb'].items())})")
    print(f"    step time: measured {out['step_s']:.2f} s, paced plan {out['plan_step_s']:.2f} s at "
          f"{job.settings.train_tflops:g} TFLOP/s (assumed)")
    return out


def _run_step(job: Job, device: str, rows: int, cap: int, ckpt: bool, chunk: int, reps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    student, teacher = _models(job, device, ckpt)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-6)
    prompt = min(512, cap // 2)
    ids = torch.randint(0, job.student.vocab_size, (rows, cap), device=device)
    resp = slice(prompt - 1, cap - 1)  # positions whose logits predict the response tokens
    mask = torch.ones(rows, cap - prompt, dtype=torch.bool, device=device)

    def step() -> float:
        with torch.no_grad():
            th, tw, tb = causal_lm_hidden(teacher, ids)
        sh, sw, sb = causal_lm_hidden(student, ids)
        loss = fused_divergence(student_hidden=sh[:, resp], student_weight=sw, student_bias=sb,
                                teacher_hidden=th[:, resp], teacher_weight=tw, teacher_bias=tb, mask=mask,
                                chunk_size=chunk).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    loss = step()  # warm-up (allocates the optimizer state)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / GB if device == "cuda" else float("nan")
    return {"step_s": statistics.median(times), "peak_gb": peak, "first_loss": loss}
