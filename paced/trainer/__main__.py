"""``python -m paced.trainer RUN.json [--resume]``: one distillation run from a JSON file holding
``{"config": DistillConfig fields, "method": method spec}``. This is what the workflow launches under
``torchrun`` (``train.sharding: fsdp``, FSDP2) or ``accelerate launch`` (DDP) for multi-process training."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from paced.failures import CELL_ERROR_FILE, CELL_EXIT_CODE, is_infrastructure
from paced.io import write_json
from paced.trainer import DistillConfig, distill


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m paced.trainer", description=__doc__)
    parser.add_argument("run_json", help="JSON with 'config' (DistillConfig fields) and 'method'")
    parser.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with open(args.run_json, encoding="utf-8") as fh:
        spec = json.load(fh)
    config = DistillConfig.from_dict(spec["config"])
    try:
        distill(config, spec["method"], resume=args.resume)
    except Exception as err:
        if is_infrastructure(err):
            raise
        # the cell's own failure (e.g. a non-finite loss, raised alike on every rank): say so to the launcher
        logging.getLogger("paced.trainer").exception("run failed")
        write_json(Path(config.out_dir) / CELL_ERROR_FILE, {"error": f"{type(err).__name__}: {err}"})
        sys.exit(CELL_EXIT_CODE)


if __name__ == "__main__":
    main()
