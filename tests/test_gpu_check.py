"""benchmarks/gpu_check.py's CPU dry run: the GPU smoke script's code path (including the FSDP2-sharded step
beside ``paced plan``'s estimate) runs at tiny sizes, so it is ready the day a GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_cpu_dry_run_runs_the_sharded_step():
    env = {**os.environ, "GOMP_SPINCOUNT": "1000"}
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--cpu-dry-run", "--parts", "14", "--reps", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["correctness"] == {"forward_kl": "ok", "reverse_kl": "ok"}
    step = summary["sharded_step"]
    assert step["rows"] == 2 and step["seq"] == 64 and step["checkpointing"] is True
    assert step["step_s"] > 0 and 0 < step["first_loss"] < 10  # a KL between two random-init models
    assert step["plan_peak_gb"] > 0 and set(step["plan_components_gb"]) >= {"student_state", "activations"}
    assert "[4] FSDP2 distillation step on 1 cpu" in proc.stdout
