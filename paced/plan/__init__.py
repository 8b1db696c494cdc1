"""``paced plan``: before any job runs, will each rule of the DAG fit on the GPUs, and roughly how long and how
much disk will it take?

From the models' architecture facts (kept in :mod:`paced.plan.arch` for the paper's models, or read from a local
``config.json``), offline: per rule, GPU memory by component (weights, gradients and optimizer state, gathered
FSDP units, the teacher, activations of one micro-batch with or without gradient checkpointing, the fused
divergence's logits chunk, KV cache for sampling), disk (teacher cache, checkpoints) and rough time (FLOPs over
an assumed throughput). A config that cannot fit is refused in one line naming what to change.

``main(argv)`` is the command line; ``check_config(config)`` the workflow's check at parse time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from paced.plan.arch import PAPER_ARCHS, ArchFacts, arch_for
from paced.plan.check import check_config, format_table, plan
from paced.plan.rules import Estimate
from paced.plan.settings import PlanSettings, load_config

__all__ = ["PAPER_ARCHS", "ArchFacts", "Estimate", "PlanSettings", "add_cli_arguments", "arch_for", "check_config",
           "load_config", "main", "plan", "run_cli"]


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    d = PlanSettings()
    parser.add_argument("--configfile", nargs="+", required=True, metavar="FILE",
                        help="the workflow's config file(s), merged over config/config.yaml as Snakemake does")
    parser.add_argument("--gpus", type=int, default=None, help="GPUs of a training job (default: resources.gpus_train)")
    parser.add_argument("--gpu-mem-gb", type=float, default=d.gpu_mem_gb,
                        help="memory of one GPU in GB (default %(default)s)")
    parser.add_argument("--prompt-tokens", type=int, default=d.prompt_tokens,
                        help="assumed prompt length in tokens (default %(default)s)")
    parser.add_argument("--pool-problems", type=int, default=None,
                        help="training problems (default: the data set's known size)")
    parser.add_argument("--train-tflops", type=float, default=d.train_tflops,
                        help="assumed sustained TFLOP/s per GPU when training (default %(default)s)")
    parser.add_argument("--sample-tflops", type=float, default=d.sample_tflops,
                        help="assumed sustained TFLOP/s per GPU when sampling (default %(default)s)")


def run_cli(args: argparse.Namespace) -> None:
    """Print the plan; raise ``ValueError`` (one line) when the config is refused."""
    settings = PlanSettings(gpus=args.gpus, gpu_mem_gb=args.gpu_mem_gb, prompt_tokens=args.prompt_tokens,
                            pool_problems=args.pool_problems, train_tflops=args.train_tflops,
                            sample_tflops=args.sample_tflops)
    config = load_config(args.configfile)
    if config["world"]["preset"] != "none":
        print("the toy world builds its own tiny models: nothing to plan (pass a config with world.preset: none)")
        return
    estimates, problems = plan(config, settings)
    print(format_table(estimates, settings))
    if problems:
        raise ValueError("refused: " + "; ".join(problems))
    print("\nevery rule fits")


def main(argv: Sequence[str] | None = None) -> int:
    """``paced plan`` as a program: 0 when every rule fits, 2 (with one line on stderr) when refused."""
    parser = argparse.ArgumentParser(prog="paced plan", description=__doc__.splitlines()[0])
    add_cli_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_cli(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"paced plan: error: {err}", file=sys.stderr)
        return 2
    return 0
