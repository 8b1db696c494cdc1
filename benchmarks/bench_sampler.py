"""Throughput of the HF sampler on the toy student: generated tokens per second (EOS counted).

    GOMP_SPINCOUNT=1000 python benchmarks/bench_sampler.py --threads 2 [--world /tmp/paced_world]

With ``--world`` the built student samples (realistic completion lengths); without, a freshly
initialised student of the default shape samples until ``max_new_tokens``.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from paced.rollouts import HFSampler, SamplingParams
from paced.world.build import arith_max_new_tokens
from paced.world.config import WorldConfig
from paced.world.data import learnable_spec, sample_chain
from paced.world.models import make_model
from paced.world.tokenizer import build_char_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=512)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--batch-sizes", default="32,64,128,256")
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
        sampler.generate(prompts[:bs], params)  # warm-up
        t0 = time.perf_counter()
        out = sampler.generate(prompts, params)
        dt = time.perf_counter() - t0
        n_tok = sum(min(len(r.token_ids) + 1, params.max_new_tokens) for rs in out for r in rs)
        results.append({"batch_size": bs, "seconds": round(dt, 2), "tokens": n_tok,
                        "tokens_per_s": round(n_tok / dt), "rollouts_per_s": round(len(prompts) * args.k / dt)})
        print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
