"""Divergence benchmarks: memory/time of forward+backward FKL, and the teacher-cache top-k error.

    # peak memory and time, fused vs naive full logits vs TRL's generalized_jsd_loss (beta=0), side by side
    GOMP_SPINCOUNT=1000 python benchmarks/bench_divergence.py memory            # V=151,936, T=2048, H=1024
    GOMP_SPINCOUNT=1000 python benchmarks/bench_divergence.py memory --small    # V=32,768, T=512, H=256
    # top-k teacher cache: relative error of FKL and its gradient vs exact, k = 8, 32, 128, 1024
    GOMP_SPINCOUNT=1000 python benchmarks/bench_divergence.py cache [--world /path/to/world]

Each ``memory`` variant runs in a fresh subprocess (run with the interpreter of a venv that has TRL,
e.g. the ``bench`` extra, to include it; it is skipped with a note otherwise). Peak memory is the
rise of the process's max RSS (``getrusage``) over its RSS just before the step, so it counts every
tensor the step allocates, including the [V, H] weight gradient; inputs and weights are excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

SIZES = {"full": {"vocab": 151_936, "tokens": 2048, "hidden": 1024},
         "small": {"vocab": 32_768, "tokens": 512, "hidden": 256}}
VARIANTS = ("naive", "trl", "fused", "paced_logits")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _trl_loss():
    try:
        from trl import GKDTrainer  # older TRL
    except ImportError:
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
        from trl.experimental.gkd import GKDTrainer  # TRL >= 1.0
    return GKDTrainer.generalized_jsd_loss


def _step(variant: str, h: torch.Tensor, w: torch.Tensor, th: torch.Tensor, tw: torch.Tensor,
          chunk_size: int, loss_fn) -> torch.Tensor:
    """Forward+backward of token-mean FKL(teacher ‖ student) with student logits h Wᵀ, teacher th twᵀ."""
    from paced.divergences import forward_kl
    from paced.fused import fused_divergence

    if variant == "fused":
        loss = fused_divergence("forward_kl", student_hidden=h, student_weight=w, teacher_hidden=th,
                                teacher_weight=tw, chunk_size=chunk_size).mean()
    else:
        s_logits = h @ w.t()  # (T, V)
        with torch.no_grad():
            t_logits = th @ tw.t()
        if variant == "naive":
            log_s, log_t = F.log_softmax(s_logits, -1), F.log_softmax(t_logits, -1)
            loss = (log_t.exp() * (log_t - log_s)).sum(-1).mean()
        elif variant == "trl":  # batchmean over a batch of 1 sums over tokens; divide for the token mean
            loss = loss_fn(s_logits[None], t_logits[None], beta=0.0) / h.shape[0]
        else:
            loss = forward_kl(student_logits=s_logits[None], teacher_logits=t_logits[None],
                              chunk_size=chunk_size).mean()
        del s_logits, t_logits
    loss.backward()
    return loss.detach()


def _inputs(vocab: int, tokens: int, hidden: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(tokens, hidden, generator=g).requires_grad_()
    w = (torch.randn(vocab, hidden, generator=g) * hidden ** -0.5).requires_grad_()
    th = torch.randn(tokens, hidden, generator=g)
    tw = torch.randn(vocab, hidden, generator=g) * (2.0 / hidden ** 0.5)  # a sharper teacher
    return h, w, th, tw


def run_variant(variant: str, vocab: int, tokens: int, hidden: int, chunk_size: int, seed: int) -> dict:
    """One forward+backward of token-mean FKL in this process (after a tiny warm-up of the same code)."""
    loss_fn = _trl_loss() if variant == "trl" else None  # import before measuring
    _step(variant, *_inputs(1024, 16, 16, seed), chunk_size, loss_fn)  # lazy library init, not measured
    h, w, th, tw = _inputs(vocab, tokens, hidden, seed)
    before, max_before = _rss_mb(), _maxrss_mb()
    t0 = time.perf_counter()
    loss = _step(variant, h, w, th, tw, chunk_size, loss_fn)
    elapsed = time.perf_counter() - t0
    return {"variant": variant, "time_s": elapsed, "peak_mb": _maxrss_mb() - before,
            "maxrss_before_mb": max_before, "rss_before_mb": before, "loss": loss.item(),
            "grad_w_norm": w.grad.norm().item()}


def memory(args: argparse.Namespace) -> None:
    size = SIZES["small" if args.small else "full"]
    rows = []
    for variant in args.variants.split(","):
        cmd = [sys.executable, __file__, "child", variant, json.dumps(size), str(args.chunk_size), str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "GOMP_SPINCOUNT": "1000"})
        if proc.returncode != 0:
            note = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            print(f"# {variant}: skipped ({note})")
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base = next((r for r in rows if r["variant"] == "naive"), rows[0] if rows else None)
    print(f"# FKL forward+backward, fp32 CPU, V={size['vocab']}, T={size['tokens']}, H={size['hidden']}, "
          f"chunk={args.chunk_size}, threads={args.threads}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus, torch {torch.__version__}")
    print(f"{'variant':<13}{'time_s':>9}{'peak_MB':>10}{'time/naive':>12}{'mem/naive':>11}{'loss':>12}{'|grad W|':>11}")
    for r in rows:
        if r["maxrss_before_mb"] > r["rss_before_mb"] + r["peak_mb"]:
            print(f"# {r['variant']}: setup peak exceeded the step's; peak is a lower bound")
        print(f"{r['variant']:<13}{r['time_s']:>9.2f}{r['peak_mb']:>10.0f}{r['time_s'] / base['time_s']:>12.2f}"
              f"{r['peak_mb'] / max(base['peak_mb'], 1e-9):>11.3f}{r['loss']:>12.5f}{r['grad_w_norm']:>11.5f}")


def _zipf_logits(n: int, vocab: int, exponent: float, boost: float, g: torch.Generator) -> torch.Tensor:
    """LLM-like teacher logits [n, V]: Zipf ranks (p ∝ rank^-a) in a random order, top-1 boosted, plus noise."""
    ranks = torch.stack([torch.randperm(vocab, generator=g) for _ in range(n)]) + 1
    z = -exponent * ranks.float().log() + 0.5 * torch.randn(n, vocab, generator=g)
    return z + boost * (ranks == 1)


def _errors(student: torch.Tensor, teacher: torch.Tensor, ks: list[int], tails: list[str]) -> list[dict]:
    from paced.divergences import forward_kl_tokens
    from paced.teacher_cache import build_entry, forward_kl_tokens_from_cache

    s = student.clone().requires_grad_()
    exact = forward_kl_tokens(s, teacher)
    g_exact = torch.autograd.grad(exact.mean(), s)[0]
    out = []
    for k in ks:
        entry = build_entry(teacher, k)
        tail_mass = 0.0 if entry.exact else entry.tail_logp.exp().mean().item()
        for tail in tails:
            approx = forward_kl_tokens_from_cache(s, entry, tail)
            g = torch.autograd.grad(approx.mean(), s)[0]
            out.append({"k": k, "tail": tail, "tail_mass": tail_mass, "fkl_exact": exact.mean().item(),
                        "rel_err": abs(approx.mean().item() - exact.mean().item()) / exact.mean().item(),
                        "tok_rel_err": ((approx - exact).abs() / exact).median().item(),
                        "grad_rel_err": ((g - g_exact).norm() / g_exact.norm()).item()})
    return out


def _world_logits(world: str, n_docs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher and student logits [N, V] of a built toy world on its training references (teacher-forced)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.join(world, "teacher"))
    docs = [json.loads(line) for line in open(os.path.join(world, "train.jsonl"))][:n_docs]
    out = []
    for name in ("teacher", "student"):
        model = AutoModelForCausalLM.from_pretrained(os.path.join(world, name), dtype=torch.float32).eval()
        rows = []
        with torch.no_grad():
            for d in docs:
                ids = tok(d["prompt"] + d.get("solution", d["answer"]), return_tensors="pt").input_ids
                rows.append(model(input_ids=ids).logits[0])
        out.append(torch.cat(rows))
    return out[0], out[1]


def cache(args: argparse.Namespace) -> None:
    ks, tails = [8, 32, 128, 1024], ["bucket", "uniform"]
    g = torch.Generator().manual_seed(args.seed)
    settings = {"zipf1.1+boost6 (peaked)": (1.1, 6.0), "zipf1.0 (flatter)": (1.0, 0.0)}
    print("# top-k teacher cache vs exact FKL (rel_err: of the batch-mean FKL; tok_rel_err: median per token; "
          "grad_rel_err: ||g_k - g|| / ||g|| of the student-logit gradient)")
    print(f"{'setting':<28}{'k':>6}{'tail':>9}{'tail_mass':>11}{'FKL':>9}{'rel_err':>10}{'tok_rel':>10}{'grad_rel':>10}")
    cases = []
    for label, (a, boost) in settings.items():
        teacher = _zipf_logits(args.tokens, args.vocab, a, boost, g)
        student = teacher + torch.randn(teacher.shape, generator=g)  # a student close to the teacher
        cases.append((f"{label} V={args.vocab}", teacher, student))
    if args.world:
        teacher, student = _world_logits(args.world, 32)
        cases.append((f"toy world V={teacher.shape[-1]}", teacher, student))
    for label, teacher, student in cases:
        top1 = teacher.softmax(-1).max(-1).values.mean().item()
        for r in _errors(student, teacher, [k for k in ks if k < teacher.shape[-1]], tails):
            print(f"{label:<28}{r['k']:>6}{r['tail']:>9}{r['tail_mass']:>11.4f}{r['fkl_exact']:>9.4f}"
                  f"{r['rel_err']:>10.4f}{r['tok_rel_err']:>10.4f}{r['grad_rel_err']:>10.4f}")
        print(f"#   {label}: mean top-1 teacher mass {top1:.3f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        variant, size, chunk, threads = sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        torch.set_num_threads(threads)
        print(json.dumps(run_variant(variant, size["vocab"], size["tokens"], size["hidden"], chunk, seed=0)))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--small", action="store_true", help="V=32,768, T=512, H=256 (seconds instead of minutes)")
    m.add_argument("--variants", default="naive,trl,fused")
    m.add_argument("--chunk-size", type=int, default=256)
    m.add_argument("--threads", type=int, default=2)
    c = sub.add_parser("cache")
    c.add_argument("--vocab", type=int, default=151_936)
    c.add_argument("--tokens", type=int, default=32)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--world", default=None, help="a built toy world directory (teacher/, student/, train.jsonl)")
    args = ap.parse_args()
    memory(args) if args.cmd == "memory" else cache(args)


if __name__ == "__main__":
    main()
