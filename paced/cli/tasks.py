"""``paced tasks export DIR``: our lm-eval task YAMLs + data as files that stock ``lm_eval --include_path`` runs."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from paced.cli._common import Command, require

log = logging.getLogger(__name__)

# The toy world's evaluation sets, as the default run evaluates them.
WORLD_TASKS = {"toy_arith": "eval_arith.jsonl", "toy_probe": "probe.jsonl"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="folder to write the tasks into")
    parser.add_argument("--task", action="append", default=[], metavar="TASK=DATA",
                        help="a registered task and its data (a jsonl, or a hub data set for hub-backed tasks); "
                             "repeatable: --task math500=HuggingFaceH4/MATH-500")
    parser.add_argument("--world", type=Path, help="a built toy world: exports its arithmetic and probe sets")
    parser.add_argument("-k", "--k", type=int, default=8, help="samples per generation problem (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens per sample (default 64)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    parser.add_argument("--limit", type=int, help="keep the first N problems of each task")


def _sources(args: argparse.Namespace) -> dict[str, str]:
    data: dict[str, str] = {}
    if args.world is not None:
        if not (args.world / "world.json").is_file():
            raise FileNotFoundError(f"--world {args.world}: no world.json there; run `paced world build` first")
        data.update({task: str(args.world / name) for task, name in WORLD_TASKS.items()})
    for item in args.task:
        task, sep, source = item.partition("=")
        if not sep or not task or not source:
            raise ValueError(f"--task {item!r}: expected TASK=DATA, e.g. --task toy_arith=world/eval_arith.jsonl")
        data[task] = source
    if not data:
        raise ValueError("nothing to export: give --task TASK=DATA (repeatable) or --world DIR")
    return data


def run(args: argparse.Namespace) -> None:
    require("yaml", "workflow")
    from paced.evaluation.config import EvalConfig
    from paced.evaluation.prepare import export_tasks

    cfg = EvalConfig(k=args.k, max_new_tokens=args.max_new_tokens, temperature=args.temperature, limit=args.limit)
    prepared = export_tasks(args.out, _sources(args), cfg)
    names = ",".join(n for p in prepared.values() for n in p.names())
    print(f"lm_eval --model hf --model_args pretrained=MODEL --include_path {args.out.resolve()} --tasks {names}")


EXPORT = Command("export", "write our lm-eval tasks (YAML + data) into a folder", add_arguments, run,
                 description="Write paced's lm-eval task YAMLs, their data and the templates they include into "
                             "OUT, and print the stock lm_eval command that runs them. paced must be importable "
                             "where lm-eval runs: the YAMLs score with paced's verifiers.")
COMMAND = Command("tasks", "lm-eval tasks as files", children=(EXPORT,))
