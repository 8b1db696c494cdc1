"""``paced passrates``: K rollouts per problem of a model, checked by a task's verifier -> passrates.jsonl."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from paced.cli._common import Command

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a local checkpoint directory or a hub model id")
    parser.add_argument("--task", required=True, help="a registered task (toy_arith, dapo_math, math500, ...)")
    parser.add_argument("--data", required=True, help="the problems: a jsonl of {id, prompt, answer[, tier]} "
                        "rows, or a hub data set id for hub-backed tasks")
    parser.add_argument("-o", "--out", type=Path, required=True, help="passrates.jsonl to write "
                        "(a summary.json goes beside it)")
    parser.add_argument("-k", "--k", type=int, default=8, help="rollouts per problem (default 8, as the paper)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens per rollout (default 64)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--smoothing", default="none", help="p̂ smoothing: none, laplace, jeffreys")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus filter (1 = off)")
    parser.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0 = off)")
    parser.add_argument("--min-p", type=float, default=0.0, help="drop tokens below min_p x the top one's probability")
    parser.add_argument("--sampler", default="hf", help="sampler backend: hf (default) or vllm")
    parser.add_argument("--batch-size", type=int, default=32, help="prompts per generate call (hf backend)")
    parser.add_argument("--device", default="cpu", help="torch device for the hf backend (default cpu)")
    parser.add_argument("--part-size", type=int, default=512, help="problems per saved part: a killed run resumes "
                        "from its last finished part, kept in <out>.parts/ (default 512)")
    parser.add_argument("--workers", type=int, default=1, help="processes that verify the rollouts (default 1)")
    parser.add_argument("--overlong", choices=("refuse", "skip"), default="refuse",
                        help="a prompt + max new tokens over the model's context: refuse (default) or skip")


def run(args: argparse.Namespace) -> None:
    from paced.passrate.estimate import estimate_pass_rates

    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    # The hf backend shows a progress bar over prompt batches; vLLM prints its own.
    # vLLM takes the seed once, when its engine starts; the hf backend per call
    kwargs = ({"progress": True, "batch_size": args.batch_size, "device": args.device} if args.sampler == "hf"
              else {"seed": args.seed})
    out = estimate_pass_rates(args.model, args.task, args.data, args.out, k=args.k, smoothing=args.smoothing,
                              max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                              sampler=args.sampler, sampler_kwargs=kwargs, part_size=args.part_size,
                              workers=args.workers, overlong=args.overlong,
                              decoding={"top_p": args.top_p, "top_k": args.top_k, "min_p": args.min_p})
    log.info("wrote %s", out)


COMMAND = Command("passrates", "a model + a task's problems -> passrates.jsonl (K verified rollouts each)",
                  add_arguments, run,
                  description="Sample K completions per problem from a model, check each with the task's "
                              "verifier and write passrates.jsonl rows {id, num_correct, k, p_hat, tier} and a "
                              "summary.json (histogram, mean p̂, provenance) beside it.")
