"""Time the build of a world (default preset: goal <= 5 min on 2 CPU cores), as the workflow builds it.

    GOMP_SPINCOUNT=1000 python benchmarks/bench_world.py --out /tmp/world              # 2 workers (the workflow)
    GOMP_SPINCOUNT=1000 python benchmarks/bench_world.py --out /tmp/world --workers 1  # one after the other

Prints the build time (wall), each model's own training time (one torch thread each, in either mode),
the selected checkpoints and, with --calibrate, the base-student calibration summary.
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
    ap.add_argument("--workers", type=int, default=2, help="processes training the teacher and student at once")
    ap.add_argument("--calibrate", action="store_true", help="also measure the base student (calibrate_world)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(2)
    cfg = WorldConfig.preset(args.preset, seed=args.seed)
    t0 = time.perf_counter()
    rec = build_world(cfg, args.out, overwrite=True, calibrate=args.calibrate, workers=args.workers)
    wall = time.perf_counter() - t0
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = {"preset": args.preset, "seed": args.seed, "workers": args.workers, "wall_s": round(wall, 1),
               "cpu_s": round(cpu.ru_utime + cpu.ru_stime + kids.ru_utime + kids.ru_stime, 1),
               "timings": {k: round(v, 1) for k, v in rec["timings"].items()}, "sizes": rec["sizes"],
               "teacher": {k: rec["teacher"][k] for k in ("step", "criteria_met", "metrics", "n_params")},
               "student": {k: rec["student"][k] for k in ("step", "criteria_met", "metrics", "n_params")},
               "hard": rec["hard"]}
    print(json.dumps(summary, indent=1))
    if args.calibrate:
        cal = json.loads((__import__("pathlib").Path(args.out) / "calibration.json").read_text())
        print(json.dumps({k: cal[k] for k in ("student", "teacher_greedy", "checks")}, indent=1))


if __name__ == "__main__":
    main()
