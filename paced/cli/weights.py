"""``paced weights``: a ``passrates.jsonl`` + a kernel spec -> one weight per problem (jsonl)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from paced.cli._common import Command, parse_params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("passrates", type=Path, help="passrates.jsonl: rows {id, num_correct, k[, p_hat, tier]}")
    parser.add_argument("-o", "--out", type=Path, required=True, help="weights.jsonl to write")
    parser.add_argument("--kernel", default="beta", help="kernel name (beta, uniform, hard_filter, inverse, "
                        "learnability); default: beta")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help="kernel parameter, repeatable: --param alpha=1 --param beta=1 --param floor=0.01")
    parser.add_argument("--smoothing", default="none", help="p̂ smoothing: none, laplace, jeffreys (default none)")


def run(args: argparse.Namespace) -> None:
    from paced.io import write_jsonl
    from paced.kernels import get_kernel
    from paced.passrate import estimate_pass_rate
    from paced.passrate.files import read_passrate_rows

    kernel = get_kernel(args.kernel, **parse_params(args.param, "--param"))
    rows = read_passrate_rows(args.passrates)
    if not rows:
        raise ValueError(f"{args.passrates}: no pass-rate rows; run `paced passrates` first")
    out = []
    for r in rows:
        p = float(estimate_pass_rate(int(r["num_correct"]), int(r["k"]), args.smoothing))
        out.append({"id": str(r["id"]), "p_hat": p, "weight": float(kernel(p)), "tier": r.get("tier")})
    write_jsonl(args.out, out)
    log.info("%d weights (kernel %s %s) written to %s", len(out), kernel.name, dict(kernel.params), args.out)


COMMAND = Command("weights", "pass rates + a kernel spec -> one weight per problem", add_arguments, run,
                  description="Read a passrates.jsonl, apply a PACED kernel w(p̂) to each problem and write "
                              "weights.jsonl rows {id, p_hat, weight, tier}. The default kernel is "
                              "w = p(1-p) (beta, alpha = beta = 1).")
