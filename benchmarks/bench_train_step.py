"""One toy-world distillation step: our trainer's step vs TRL's ``GKDTrainer`` step, same models and batch.

    GOMP_SPINCOUNT=1000 .venv-bench/bin/python benchmarks/bench_train_step.py [--world /tmp/world_default]

Forward KL, teacher-forced on the same 16 (prompt, reference) pairs, batch 16, fp32, lr 1e-4, clip 1.0:

- ``ours``: ``paced.trainer.loop._train_step`` (weighted FKL on response positions, backward, clip, AdamW)
  with the trainer's default in-memory teacher cache, warm (each reference's teacher log-probs are
  computed once per run; ``teacher_cache_path`` makes that once per suite);
- ``ours_live``: the same with ``teacher_cache='none'`` (teacher forward every step);
- ``ours_fused``: ``ours_live`` with ``fused='on'`` (hidden states + lm_head, chunked);
- ``trl``: TRL 1.16 ``GKDTrainer.training_step`` (``lmbda=0``: the given data, ``beta=0``: forward KL;
  teacher and student forwards over the full sequences) + clip + AdamW step.

Each variant runs ``--warmup`` steps, then the variants take turns for ``--reps`` rounds (interleaved,
so load changes hit all alike); the median seconds per step is reported with ratios to TRL.
Without ``--world``, random-init models with the default world's shapes (student d=128, teacher d=256).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def make_world(tmp: Path, n: int) -> dict[str, str]:
    """Random-init student/teacher of the default world's shapes + ``n`` toy problems, saved under ``tmp``."""
    from paced.world.config import WorldConfig
    from paced.world.data import learnable_spec, sample_chain
    from paced.world.models import make_model
    from paced.world.tokenizer import build_char_tokenizer

    cfg, tok = WorldConfig(), build_char_tokenizer()
    paths = {}
    for name, spec, seed in (("student", cfg.student, 0), ("teacher", cfg.teacher, 1)):
        make_model(spec, tok, seed=seed).save_pretrained(tmp / name)
        tok.save_pretrained(tmp / name)
        paths[name] = str(tmp / name)
    rng = random.Random(0)
    rows = [{"id": f"L-{i:05d}", **sample_chain(rng, learnable_spec(cfg.max_len), cfg.max_len)} for i in range(n)]
    (tmp / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    paths["data"] = str(tmp / "train.jsonl")
    return paths


def ours(paths: dict[str, str], tmp: Path, batch_size: int, lr: float, **overrides) -> tuple[Callable, list, dict]:
    """A closure running one of our trainer's steps on the first ``batch_size`` problems."""
    from paced.methods import get_method
    from paced.tasks.base import get_task
    from paced.trainer import DistillConfig
    from paced.trainer.loop import _train_step
    from paced.trainer.setup import build_context, make_accelerator

    config = DistillConfig(student=paths["student"], teacher=paths["teacher"], task="toy_arith", data=paths["data"],
                           out_dir=str(tmp / "ours"), steps=10_000, batch_size=batch_size, lr=lr, progress=False,
                           **overrides)
    method, task = get_method("uniform-fkl"), get_task("toy_arith")
    acc = make_accelerator(config)
    ctx, optimizer, _, pool = build_context(config, method, task, task.load(config.data), acc, None)
    docs, weights = pool[:batch_size], np.ones(batch_size)
    counter = iter(range(10**9))

    def step() -> float:
        return _train_step(ctx, acc, optimizer, docs, weights, 0, next(counter))

    seqs = [(ctx.student_ids[d.id], ctx.references[d.id]) for d in docs]
    return step, seqs, {"pad_id": ctx.pad_id}


def trl_step(paths: dict[str, str], tmp: Path, seqs: list, pad_id: int, lr: float) -> Callable:
    """A closure running one TRL GKDTrainer step (lmbda=0, beta=0) on the same sequences."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    b, length = len(seqs), max(len(p) + len(r) for p, r in seqs)
    ids = torch.full((b, length), pad_id, dtype=torch.long)
    attn = torch.zeros((b, length), dtype=torch.long)
    labels = torch.full((b, length), -100, dtype=torch.long)
    for i, (p, r) in enumerate(seqs):  # right padding, labels on the response only (TRL's collator convention)
        ids[i, :len(p) + len(r)] = torch.tensor(list(p) + list(r))
        attn[i, :len(p) + len(r)] = 1
        labels[i, len(p):len(p) + len(r)] = torch.tensor(list(r))
    inputs = {"input_ids": ids, "attention_mask": attn, "labels": labels}
    args = GKDConfig(output_dir=str(tmp / "trl"), per_device_train_batch_size=b, learning_rate=lr, lmbda=0.0, beta=0.0,
                     temperature=1.0, max_grad_norm=1.0, use_cpu=True, report_to=[], save_strategy="no",
                     logging_strategy="no", max_steps=10_000, seq_kd=False, bf16=False, weight_decay=0.0)
    student = AutoModelForCausalLM.from_pretrained(paths["student"], dtype=torch.float32)
    teacher = AutoModelForCausalLM.from_pretrained(paths["teacher"], dtype=torch.float32)
    trainer = GKDTrainer(model=student, teacher_model=teacher, args=args,
                         train_dataset=Dataset.from_list([{"input_ids": [0]}]), data_collator=lambda rows: inputs,
                         processing_class=AutoTokenizer.from_pretrained(paths["student"]))
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's own loop, which we do not run
    model = trainer.model

    def step() -> float:
        loss = trainer.training_step(model, dict(inputs))
        trainer.accelerator.clip_grad_norm_(model.parameters(), 1.0)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
        return float(loss)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default=None, help="a built world dir (student/, teacher/, train.jsonl)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        paths = ({"student": f"{args.world}/student", "teacher": f"{args.world}/teacher",
                  "data": f"{args.world}/train.jsonl"} if args.world else make_world(tmp, args.batch_size))
        steps: dict[str, Callable] = {}
        steps["ours"], seqs, info = ours(paths, tmp, args.batch_size, args.lr)
        steps["ours_live"], _, _ = ours(paths, tmp, args.batch_size, args.lr, teacher_cache="none")
        steps["ours_fused"], _, _ = ours(paths, tmp, args.batch_size, args.lr, teacher_cache="none", fused="on")
        steps["trl"] = trl_step(paths, tmp, seqs, info["pad_id"], args.lr)
        losses = {}
        for name, fn in steps.items():
            losses[name] = fn()  # the first step's loss, before any update
            for _ in range(args.warmup - 1):
                fn()
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.reps):
            for name, fn in steps.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    tokens = sum(len(r) for _, r in seqs)
    print(f"batch {args.batch_size}, {tokens} response tokens, threads {args.threads}, "
          f"{'world ' + args.world if args.world else 'random init'}; median of {args.reps} interleaved reps")
    trl_t = statistics.median(times["trl"])
    print(f"{'variant':<11} {'s/step':>8} {'IQR':>15} {'trl/this':>9} {'first loss':>11}")
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=4)
        med = statistics.median(ts)
        print(f"{name:<11} {med:8.4f} {q[0]:7.4f}-{q[2]:7.4f} {trl_t / med:9.2f} {losses[name]:11.5f}")
    print("(first loss: ours = mean over sequences of token-mean FKL; trl = token-mean over the batch)")


if __name__ == "__main__":
    main()
