"""``paced world build``: the embedded toy world (data, tokenizer, teacher, student), offline on a CPU."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from paced.cli._common import Command

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="folder to build the world into")
    parser.add_argument("--preset", default="default", help="world preset: default (about 6 min on 2 cores) "
                        "or tiny (seconds; for tests)")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="2 trains teacher and student side by side")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty OUT")


def run(args: argparse.Namespace) -> None:
    from paced.world import WorldConfig, build_world

    cfg = WorldConfig.preset(args.preset, seed=args.seed)
    record = build_world(cfg, args.out, overwrite=args.overwrite, workers=args.workers)
    log.info("world (preset %s, seed %d) built in %s; problems per set: %s", args.preset, args.seed, args.out,
             record.get("sizes"))


BUILD = Command("build", "build the toy world into a folder", add_arguments, run,
                description="Build the embedded toy world offline: a verifiable arithmetic task (learnable and "
                            "intractable tiers), a multiple-choice facts probe, a character tokenizer and a tiny "
                            "Qwen3 teacher and student trained from scratch.")
COMMAND = Command("world", "the embedded toy world", children=(BUILD,))
