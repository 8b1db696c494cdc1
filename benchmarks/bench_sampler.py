"""Throughput of the HF sampler on the toy student vs plain HF ``generate``: generated tokens per second.

    GOMP_SPINCOUNT=1000 python benchmarks/bench_sampler.py --threads 2 [--world /tmp/paced_world]

With ``--world`` the built student samples (realistic completion lengths); without, a freshly
initialised student of the default shape samples until ``max_new_tokens``. For each batch size,
``paced.rollouts.hf.HFSampler`` (k samples per prompt) and plain ``model.generate`` on the same
prompts and settings (left padding, ``num_return_sequences=k``, sampling at temperature 1, top_k 0)
take turns (``--rounds`` each, best kept); ``ratio`` = sampler tokens/s ÷ generate tokens/s (goal ≥ 0.9).
Tokens are counted up to and including the first EOS (at most ``max_new_tokens``) for both.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from paced.rollouts import HFSampler, SamplingParams
from paced.world.config import WorldConfig
from paced.world.data import learnable_spec, sample_chain
from paced.world.models import make_model
from paced.world.recipes import arith_max_new_tokens
from paced.world.tokenizer import build_char_tokenizer


def count_tokens(rows: list[list[int]], eos: int | None, cap: int) -> int:
    """Generated tokens per row up to and including the first EOS, at most ``cap``; summed."""
    return sum(min(r.index(eos) + 1 if eos is not None and eos in r else len(r), cap) for r in rows)


def plain_generate(model, tok, prompts: list[str], params: SamplingParams, batch_size: int) -> int:
    """Plain HF ``generate`` over ``prompts`` in chunks of ``batch_size``; returns the generated token count."""
    n_tok = 0
    tok.padding_side = "left"
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            enc = tok(prompts[start:start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(**enc, do_sample=True, num_return_sequences=params.n, temperature=params.temperature,
                                 top_p=1.0, top_k=0, max_new_tokens=params.max_new_tokens,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            n_tok += count_tokens(out[:, enc["input_ids"].shape[1]:].tolist(), tok.eos_token_id,
                                  params.max_new_tokens)
    return n_tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=512)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--batch-sizes", default="32,64,128,256")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = WorldConfig()
    if args.world:
        sampler_src: dict = {"model": f"{args.world}/student"}
    else:
        tok = build_char_tokenizer()
        sampler_src = {"model": make_model(cfg.student, tok, seed=0), "tokenizer": tok}
    rng = random.Random(0)
    prompts = [sample_chain(rng, learnable_spec(cfg.max_len), cfg.max_len)["prompt"] for _ in range(args.prompts)]
    params = SamplingParams(n=args.k, max_new_tokens=arith_max_new_tokens(cfg.max_len), temperature=1.0)
    results = []
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        sampler = HFSampler(batch_size=bs, **sampler_src)
        model, tok = sampler.model.eval(), sampler.tokenizer
        sampler.generate(prompts[:bs], params)  # warm-up
        best = {"sampler": 0.0, "generate": 0.0}
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            out = sampler.generate(prompts, params)
            dt = time.perf_counter() - t0
            n_tok = sum(min(len(r.token_ids) + 1, params.max_new_tokens) for rs in out for r in rs)
            best["sampler"] = max(best["sampler"], n_tok / dt)
            t0 = time.perf_counter()
            g_tok = plain_generate(model, tok, prompts, params, bs)
            best["generate"] = max(best["generate"], g_tok / (time.perf_counter() - t0))
        results.append({"batch_size": bs, "tokens": n_tok, "generate_tokens": g_tok,
                        "tokens_per_s": round(best["sampler"]), "generate_tokens_per_s": round(best["generate"]),
                        "ratio": round(best["sampler"] / best["generate"], 3),
                        "rollouts_per_s": round(len(prompts) * args.k * best["sampler"] / n_tok)})
        print(json.dumps(results[-1]), flush=True)

if __name__ == "__main__":
    main()
