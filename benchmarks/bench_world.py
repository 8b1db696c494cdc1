"""Time the build of a world (default preset: must be <= 5 min on 2 CPU cores) and calibrate it.

    GOMP_SPINCOUNT=1000 python benchmarks/bench_world.py --out /tmp/world --threads 2

Prints the build time (wall, and process CPU time: wall is inflated on a shared machine),
the selected checkpoints and the calibration summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time

import torch

from paced.world import WorldConfig, build_world


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--out", default="/tmp/paced_world")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-calibrate", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    cfg = WorldConfig.preset(args.preset, seed=args.seed)
    t0 = time.perf_counter()
    rec = build_world(cfg, args.out, overwrite=True, calibrate=not args.no_calibrate)
    wall = time.perf_counter() - t0
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    summary = {"preset": args.preset, "seed": args.seed, "threads": args.threads, "wall_s": round(wall, 1),
               "cpu_s": round(cpu.ru_utime + cpu.ru_stime, 1),
               "timings": {k: round(v, 1) for k, v in rec["timings"].items()}, "sizes": rec["sizes"],
               "teacher": {k: rec["teacher"][k] for k in ("step", "criteria_met", "metrics", "n_params")},
               "student": {k: rec["student"][k] for k in ("step", "criteria_met", "metrics", "n_params")},
               "hard": rec["hard"]}
    print(json.dumps(summary, indent=1))
    if not args.no_calibrate:
        cal = json.loads((__import__("pathlib").Path(args.out) / "calibration.json").read_text())
        print(json.dumps({k: cal[k] for k in ("student", "teacher_greedy", "checks")}, indent=1))


if __name__ == "__main__":
    main()
