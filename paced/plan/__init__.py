"""``paced plan``: before any job runs, will each rule of the DAG fit on the GPUs, and roughly how long and how
much disk will it take?

From the models' architecture facts (kept in :mod:`paced.plan.arch` for the paper's models, or read from a local
``config.json``), offline: per rule, GPU memory by component (weights, gradients and optimizer state, gathered
FSDP units, the teacher, activations of one micro-batch with or without gradient checkpointing, the fused
divergence's logits chunk, KV cache for sampling), disk (teacher cache, checkpoints) and rough time (FLOPs over
an assumed throughput). A config that cannot fit is refused in one line naming what to change.

With ``--slurm-profile DIR`` it also writes a Snakemake profile, ``DIR/config.yaml``: the shipped SLURM profile
with per-rule runtimes from the plan's hours (:mod:`paced.plan.slurm`).

``main(argv)`` is the command line; ``check_config(config)`` the workflow's check at parse time.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from paced.plan.arch import PAPER_ARCHS, ArchFacts, arch_for
from paced.plan.check import check_config, format_table, plan
from paced.plan.rules import Estimate
from paced.plan.settings import PlanSettings, load_config, repository_root
from paced.plan.slurm import (
    SHIPPED_PROFILE,
    RuntimePolicy,
    format_runtimes,
    profile_text,
    rule_resources,
    write_profile,
)

__all__ = ["PAPER_ARCHS", "ArchFacts", "Estimate", "PlanSettings", "add_cli_arguments", "arch_for", "check_config",
           "load_config", "main", "plan", "run_cli"]


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    d, p = PlanSettings(), RuntimePolicy()
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
    parser.add_argument("--gpu-bandwidth-tbs", type=float, default=d.gpu_bandwidth_tbs,
                        help="assumed sustained memory bandwidth of one GPU in TB/s when decoding "
                             "(default %(default)s)")
    parser.add_argument("--slurm-profile", metavar="DIR", default=None,
                        help="also write a Snakemake profile DIR/config.yaml: profiles/slurm's settings with "
                             "per-rule runtimes from the plan (then: snakemake --profile DIR --configfile ...)")
    parser.add_argument("--slurm-safety", type=float, default=p.safety,
                        help=f"SLURM runtime = plan hours x this + {p.margin_minutes} min start-up "
                             "(default %(default)s)")
    parser.add_argument("--slurm-max-hours", type=int, default=p.cap_minutes // 60,
                        help="flag SLURM runtimes over this many hours: your partition's time limit "
                             "(default %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="with --slurm-profile: overwrite DIR/config.yaml even if paced plan did not write it")


def run_cli(args: argparse.Namespace) -> None:
    """Print the plan; raise ``ValueError`` (one line) when the config is refused."""
    settings = PlanSettings(gpus=args.gpus, gpu_mem_gb=args.gpu_mem_gb, prompt_tokens=args.prompt_tokens,
                            pool_problems=args.pool_problems, train_tflops=args.train_tflops,
                            sample_tflops=args.sample_tflops, gpu_bandwidth_tbs=args.gpu_bandwidth_tbs)
    config = load_config(args.configfile)
    if config["world"]["preset"] != "none":
        if args.slurm_profile:
            raise ValueError("--slurm-profile: the toy world has nothing to plan; use profiles/slurm as it is, or "
                             "pass a config with world.preset: none")
        print("the toy world builds its own tiny models: nothing to plan (pass a config with world.preset: none)")
        return
    estimates, problems = plan(config, settings)
    print(format_table(estimates, settings))
    if problems:
        raise ValueError("refused: " + "; ".join(problems))
    print("\nevery rule fits")
    policy = RuntimePolicy(safety=args.slurm_safety, cap_minutes=60 * args.slurm_max_hours)
    resources = rule_resources(estimates, policy)
    print("\n" + format_runtimes(resources, config, policy))
    if args.slurm_profile:
        text = profile_text(_shipped_profile(args.configfile[0]), resources, command_line(args), policy)
        path = write_profile(args.slurm_profile, text, force=args.force)
        print(f"\nwrote {path}: snakemake --profile {args.slurm_profile} --configfile {' '.join(args.configfile)}")


def command_line(args: argparse.Namespace) -> str:
    """The ``paced plan`` command of ``args``: the config files, --slurm-profile and every flag not at its
    default (what a written profile says to regenerate it)."""
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    parts = ["paced", "plan"]
    for action in parser._actions:
        value = getattr(args, action.dest, action.default)
        if action.option_strings and action.dest not in ("help", "force") and value != action.default:
            parts += [action.option_strings[0], *(value if isinstance(value, list) else [str(value)])]
    return shlex.join(parts)


def _shipped_profile(configfile: str) -> dict:
    """The repository's SLURM profile, the base of a written one."""
    root = repository_root(Path(configfile))
    path = (root or Path.cwd()) / SHIPPED_PROFILE
    if not path.is_file():
        raise FileNotFoundError(f"--slurm-profile needs the repository's {SHIPPED_PROFILE} (not found at {path}): "
                                "run paced plan from the paced repository")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    """``paced plan`` as a program: 0 when every rule fits, 2 (with one line on stderr) when refused."""
    parser = argparse.ArgumentParser(prog="paced plan", description=__doc__.splitlines()[0])
    add_cli_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_cli(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"paced plan: error: {err}", file=sys.stderr)
        return 2
    return 0
