"""GPU check (a prepared script, not a test; CI has no GPU): fused divergence and one bf16 distillation step.

    GOMP_SPINCOUNT=1000 python benchmarks/gpu_check.py            # ~2-4 min on one H100/H200-class GPU
    GOMP_SPINCOUNT=1000 python benchmarks/gpu_check.py --quick    # smaller sizes, to check the script runs

1. Correctness on the GPU: fused FKL/RKL values and gradients vs the logits path (small, fp32).
2. Fused FKL forward+backward vs the naive full-logits FKL at V=151,936, T=2048, H=1024, in fp32 and bf16
   (median time of ``--reps`` runs after a warm-up, and peak CUDA memory above the inputs).
3. One FKL distillation step (teacher forward, student forward+backward, AdamW) of a random-init model with
   Qwen3-0.6B's dimensions (no download), bf16, fused path vs logits path, with time and peak memory.
4. One FSDP2-sharded step at the paper's shapes (Qwen3-1.7B-dims student, Qwen3-8B-dims teacher, V = 151,936,
   random-init) at the configured micro-batch, peak memory and step time beside ``paced plan``'s estimate
   (``gpu_sharded.py``; ``--configfile``, default config/paper.yaml).
Prints one table per part and a final JSON line. Exits 0 with a message when CUDA is unavailable.
``--cpu-dry-run`` runs every part at tiny sizes on CPU (what CI runs: tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from gpu_sharded import bench_sharded_step

from paced.divergences import get_divergence
from paced.fused import causal_lm_hidden, fused_divergence

DEV = "cuda"  # "cpu" only for --cpu-dry-run (tiny sizes; checks the script's logic, figures meaningless)


def _timed(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """(median seconds over ``reps`` runs after one warm-up, peak CUDA MiB above the memory in use before)."""
    cuda = DEV == "cuda"
    fn()
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else float("nan")
    return statistics.median(times), peak


def check_correctness() -> dict:
    g = torch.Generator(device=DEV).manual_seed(0)
    h = torch.randn(2, 33, 64, device=DEV, generator=g).requires_grad_()
    w = torch.randn(5000, 64, device=DEV, generator=g).mul_(0.2).requires_grad_()
    th, tw = torch.randn(2, 33, 48, device=DEV, generator=g), torch.randn(5000, 48, device=DEV, generator=g)
    mask = torch.rand(2, 33, device=DEV, generator=g) > 0.2
    out = {}
    for name in ("forward_kl", "reverse_kl"):
        ref = get_divergence(name)(student_logits=F.linear(h, w), teacher_logits=F.linear(th, tw), mask=mask)
        ref_g = torch.autograd.grad(ref.sum(), (h, w))
        got = fused_divergence(name, student_hidden=h, student_weight=w, teacher_hidden=th, teacher_weight=tw,
                               mask=mask, chunk_size=16)
        got_g = torch.autograd.grad(got.sum(), (h, w))
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)
        for a, b in zip(got_g, ref_g, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
        out[name] = "ok"
    print(f"[1] fused vs logits path on {DEV} (fp32): {out}")
    return out


def _bench_dtype(dtype: torch.dtype, vocab: int, tokens: int, hidden: int, chunk: int, reps: int) -> dict:
    g = torch.Generator(device=DEV).manual_seed(0)
    h = torch.randn(tokens, hidden, device=DEV, generator=g).to(dtype).requires_grad_()
    w = (torch.randn(vocab, hidden, device=DEV, generator=g) * hidden ** -0.5).to(dtype).requires_grad_()
    th = torch.randn(tokens, hidden, device=DEV, generator=g).to(dtype)
    tw = (torch.randn(vocab, hidden, device=DEV, generator=g) * (2 / hidden ** 0.5)).to(dtype)

    def naive() -> None:
        log_s = F.log_softmax((h @ w.t()).float(), -1)
        with torch.no_grad():
            log_t = F.log_softmax((th @ tw.t()).float(), -1)
        (log_t.exp() * (log_t - log_s)).sum(-1).mean().backward()
        h.grad = w.grad = None

    def fused() -> None:
        fused_divergence(student_hidden=h, student_weight=w, teacher_hidden=th, teacher_weight=tw,
                         chunk_size=chunk).mean().backward()
        h.grad = w.grad = None

    (t_n, m_n), (t_f, m_f) = _timed(naive, reps), _timed(fused, reps)
    return {"dtype": str(dtype).removeprefix("torch."), "naive_s": t_n, "fused_s": t_f, "naive_mib": m_n,
            "fused_mib": m_f, "time_ratio": t_f / t_n, "mem_ratio": m_f / m_n}


def bench_divergence(vocab: int, tokens: int, hidden: int, chunk: int, reps: int) -> list[dict]:
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        rows.append(_bench_dtype(dtype, vocab, tokens, hidden, chunk, reps))
        torch.cuda.empty_cache()
    print(f"[2] FKL fwd+bwd, V={vocab}, T={tokens}, H={hidden}, chunk={chunk}, median of {reps}")
    print(f"{'dtype':<10}{'naive_s':>9}{'fused_s':>9}{'naive_MiB':>11}{'fused_MiB':>11}{'time':>7}{'mem':>7}")
    for r in rows:
        print(f"{r['dtype']:<10}{r['naive_s']:>9.4f}{r['fused_s']:>9.4f}{r['naive_mib']:>11.0f}"
              f"{r['fused_mib']:>11.0f}{r['time_ratio']:>7.2f}{r['mem_ratio']:>7.3f}")
    return rows


def qwen3_06b_config(quick: bool, tiny: bool = False):
    from transformers import Qwen3Config

    dims = dict(vocab_size=151_936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                num_attention_heads=16, num_key_value_heads=8, head_dim=128)  # Qwen3-0.6B
    if quick:
        dims.update(num_hidden_layers=2)
    if tiny:
        dims.update(vocab_size=4096, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16)
    return Qwen3Config(**dims, max_position_embeddings=40_960, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, attn_implementation="sdpa")


def bench_step(batch: int, prompt: int, response: int, chunk: int, reps: int, quick: bool,
               tiny: bool = False) -> list[dict]:
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(0)
    cfg = qwen3_06b_config(quick, tiny)
    with torch.device(DEV):
        student = Qwen3ForCausalLM(cfg).to(torch.bfloat16)
        teacher = Qwen3ForCausalLM(cfg).to(torch.bfloat16).eval().requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-6, foreach=True)
    ids = torch.randint(0, cfg.vocab_size, (batch, prompt + response), device=DEV)
    mask = torch.ones(batch, response, dtype=torch.bool, device=DEV)
    mask[0, response // 2:] = False  # one short reference
    resp = slice(prompt - 1, prompt - 1 + response)  # logits at these positions predict the response

    def step_logits() -> None:
        with torch.no_grad():
            t_logits = teacher(input_ids=ids).logits[:, resp]
        s_logits = student(input_ids=ids).logits[:, resp]
        get_divergence("forward_kl")(student_logits=s_logits, teacher_logits=t_logits, mask=mask).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def step_fused() -> None:
        with torch.no_grad():
            t_hidden, t_weight, _ = causal_lm_hidden(teacher, ids)
        s_hidden, s_weight, s_bias = causal_lm_hidden(student, ids)
        fused_divergence(student_hidden=s_hidden[:, resp], student_weight=s_weight, student_bias=s_bias,
                         teacher_hidden=t_hidden[:, resp], teacher_weight=t_weight, mask=mask,
                         chunk_size=chunk).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    rows = []
    for name, fn in (("logits", step_logits), ("fused", step_fused)):
        try:
            t, m = _timed(fn, reps)
            rows.append({"path": name, "step_s": t, "peak_mib": m,
                         "tokens_per_s": batch * (prompt + response) / t})
        except torch.OutOfMemoryError as exc:
            rows.append({"path": name, "error": f"OOM: {str(exc).splitlines()[0]}"})
            torch.cuda.empty_cache()
    n_params = sum(p.numel() for p in student.parameters())
    print(f"[3] bf16 FKL distillation step, Qwen3-0.6B dims ({n_params / 1e6:.0f}M params, "
          f"{cfg.num_hidden_layers} layers), B={batch}, prompt={prompt}, response={response}, median of {reps}")
    for r in rows:
        print("   ", r if "error" in r else f"{r['path']:<7} {r['step_s']:.3f} s  {r['peak_mib']:.0f} MiB  "
              f"{r['tokens_per_s']:.0f} tok/s")
    return rows


def main() -> None:
    global DEV
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 layers, T=512: a fast check that the script runs")
    ap.add_argument("--cpu-dry-run", action="store_true", help="tiny sizes on CPU: checks the script, not speed")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--configfile", nargs="+", default=["config/paper.yaml"],
                    help="config file(s) whose train.* micro-batch settings part 4 uses")
    ap.add_argument("--parts", default="1234", help="which parts to run, e.g. 4 (default %(default)s)")
    args = ap.parse_args()
    if args.cpu_dry_run:
        DEV, vocab, tokens, hidden, args.quick = "cpu", 4096, 64, 64, True
    elif not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine; nothing to do (run it where a GPU is).")
        sys.exit(0)
    else:
        vocab, tokens, hidden = 151_936, 512 if args.quick else 2048, 1024
    name = torch.cuda.get_device_name() if DEV == "cuda" else "cpu (dry run)"
    print(f"# {name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    parts: dict[str, Callable[[], object]] = {
        "1": lambda: ("correctness", check_correctness()),
        "2": lambda: ("divergence", bench_divergence(vocab, tokens, hidden, args.chunk_size, args.reps)),
        "3": lambda: ("step", bench_step(args.batch, 128, tokens // 2, args.chunk_size, args.reps, args.quick,
                                         tiny=args.cpu_dry_run)),
        "4": lambda: ("sharded_step", bench_sharded_step(args.configfile, args.reps, tiny=args.cpu_dry_run)),
    }
    summary = {"device": name, "torch": torch.__version__}
    for part in args.parts:
        key, value = parts[part]()
        summary[key] = value
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
