"""A 2-process CPU (gloo) distillation run through ``accelerate launch``, checked against 1 process.

    python benchmarks/distill_2proc.py [--steps 4]

builds a tiny world in a temporary directory, runs ``distill`` once with one process and once with
``accelerate launch --multi_gpu --num_processes 2`` on CPU (DDP over gloo), and checks that both finish with the
same number of steps and a finite loss, and that the 2-process run's checkpoint loads with
``AutoModelForCausalLM``. (The two runs are not expected to give equal weights: each process
normalises its own half-batch, as the authors' per-micro-batch normalisation does.) A third run repeats
the 2-process run with ``fused="on"`` (the DDP-wrapped student fuses through its wrapper) and checks its
teacher-forced (FKL-stage) losses match the logits path's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
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
                        fused=os.environ.get("PACED_FUSED", "auto"))
    res = distill(cfg, METHOD)
    from accelerate import PartialState

    state = PartialState()
    print(json.dumps({"rank": state.process_index, "world": state.num_processes, "steps": res.steps}), flush=True)


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
    subprocess.run([sys.executable, *me, str(tmp / "one")], check=True, env=env)
    # `--cpu` would force one process; `--multi_gpu` on a machine without GPUs launches torchrun
    # workers that accelerate runs as MULTI_CPU (gloo) because DistillConfig.device == "cpu".
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    subprocess.run([*launch, *me, str(tmp / "two")], check=True, env=env)
    subprocess.run([*launch, *me, str(tmp / "two_fused")], check=True, env={**env, "PACED_FUSED": "on"})
    results = {}
    for name in ("one", "two", "two_fused"):
        rows = [json.loads(line) for line in (tmp / name / "log.jsonl").read_text().splitlines()]
        steps = [r for r in rows if r["event"] == "step"]
        assert len(steps) == args.steps, (name, len(steps))
        assert all(r["loss"] is None or math.isfinite(r["loss"]) for r in steps)
        results[name] = [r["loss"] for r in steps]
    assert results["one"] != results["two"], "the 2-process run should normalise per half-batch"
    fkl = args.steps // 2  # the FKL stage: teacher-forced, so the fused and logits paths must agree
    for a, b in zip(results["two"][:fkl], results["two_fused"][:fkl], strict=True):
        assert math.isclose(a, b, rel_tol=1e-4), ("fused under DDP", results["two"], results["two_fused"])
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(tmp / "two" / "checkpoints" / f"step{args.steps}"))
    print(json.dumps({"ok": True, "dir": str(tmp), "losses": results}))


if __name__ == "__main__":
    main()
