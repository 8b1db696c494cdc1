"""2-process CPU (gloo) distillation runs, DDP through ``accelerate launch`` and FSDP2 through ``torchrun``,
checked against 1 process.

    python benchmarks/distill_2proc.py [--steps 4]

builds a tiny world in a temporary directory and runs ``distill`` with one process, with
``accelerate launch --multi_gpu --num_processes 2`` on CPU (DDP over gloo, logits path and fused), and
with ``torchrun --nproc-per-node 2`` and ``sharding="fsdp"`` (FSDP2, fused, one problem per micro-batch).
The weights are normalised over the whole batch, so every run's teacher-forced (FKL-stage) losses
must equal the one-process run's; the on-policy RKL stage samples per process, so it may differ.
Checks that every run finishes with finite losses and that the 2-process checkpoints load with
``AutoModelForCausalLM``; prints each run's wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHOD = {"preset": "paced-fkl-then-rkl", "refresh": "online"}


def worker(world: Path, out: Path, steps: int) -> None:
    from paced.trainer import DistillConfig, distill

    ids = [json.loads(line)["id"] for line in (world / "train.jsonl").read_text().splitlines()]
    passrates = world / "pr.jsonl"
    if not passrates.exists():
        passrates.write_text("".join(json.dumps({"id": i, "num_correct": 1 + n % 6, "k": 8}) + "\n"
                                     for n, i in enumerate(ids)))
    cfg = DistillConfig(student=str(world / "student"), teacher=str(world / "teacher"), task="toy_arith",
                        data=str(world / "train.jsonl"), out_dir=str(out), passrates=str(passrates), steps=steps,
                        batch_size=4, lr=1e-2, max_new_tokens=6, progress=False, save_steps=(steps // 2,),
                        fused=os.environ.get("PACED_FUSED", "auto"), sharding=os.environ.get("PACED_SHARDING", "none"),
                        micro_batch_size=1 if os.environ.get("PACED_SHARDING") == "fsdp" else None)
    res = distill(cfg, METHOD)
    import torch.distributed as dist

    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    print(json.dumps({"rank": rank, "world": world, "steps": res.steps}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--worker", nargs=2, metavar=("WORLD", "OUT"))
    args = ap.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), Path(args.worker[1]), args.steps)
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    from _distill_world import build

    tmp = Path(tempfile.mkdtemp(prefix="paced-2proc-"))
    build(tmp / "world")
    env = {**os.environ, "GOMP_SPINCOUNT": "1000", "OMP_NUM_THREADS": "1"}
    me = [str(HERE / "distill_2proc.py"), "--steps", str(args.steps), "--worker", str(tmp / "world")]
    from paced.trainer.distributed import torchrun_command

    wall = {}

    def timed(name: str, cmd: list[str], extra: dict[str, str] | None = None) -> None:
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env={**env, **(extra or {})})
        wall[name] = round(time.perf_counter() - t0, 1)

    timed("one", [sys.executable, *me, str(tmp / "one")])
    # `--cpu` would force one process; `--multi_gpu` on a machine without GPUs launches torchrun
    # workers that accelerate runs as MULTI_CPU (gloo) because DistillConfig.device == "cpu".
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    timed("two", [*launch, *me, str(tmp / "two")])
    timed("two_fused", [*launch, *me, str(tmp / "two_fused")], {"PACED_FUSED": "on"})
    timed("two_fsdp", torchrun_command(2, [*me, str(tmp / "two_fsdp")]),
          {"PACED_FUSED": "on", "PACED_SHARDING": "fsdp"})
    results = {}
    for name in ("one", "two", "two_fused", "two_fsdp"):
        rows = [json.loads(line) for line in (tmp / name / "log.jsonl").read_text().splitlines()]
        steps = [r for r in rows if r["event"] == "step"]
        assert len(steps) == args.steps, (name, len(steps))
        assert all(r["loss"] is None or math.isfinite(r["loss"]) for r in steps)
        results[name] = [r["loss"] for r in steps]
    fkl = args.steps // 2  # the FKL stage: teacher-forced, so every run must match the one-process losses
    for name in ("two", "two_fused", "two_fsdp"):
        for a, b in zip(results["one"][:fkl], results[name][:fkl], strict=True):
            assert math.isclose(a, b, rel_tol=1e-4), (name, results["one"], results[name])
    from transformers import AutoModelForCausalLM

    for name in ("two", "two_fsdp"):
        AutoModelForCausalLM.from_pretrained(str(tmp / name / "checkpoints" / f"step{args.steps}"))
    print(json.dumps({"ok": True, "dir": str(tmp), "losses": results, "wall_s": wall}))


if __name__ == "__main__":
    main()
