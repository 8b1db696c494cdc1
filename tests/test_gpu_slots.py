"""The GPU slot allocator on CPU: a fake device count, concurrent processes, a killed holder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paced.gpu_slots import claim

WORKER = """
import json, os, sys, time
from paced.gpu_slots import claim
n, hold, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
with claim(n, poll_s=0.05) as devs:
    t0 = time.time()
    time.sleep(hold)
    rec = {"devices": devs, "env": os.environ["CUDA_VISIBLE_DEVICES"], "t0": t0, "t1": time.time()}
open(out, "w").write(json.dumps(rec))
"""


def _spawn(n: int, hold: float, out: Path, state: Path, count: int = 4) -> subprocess.Popen:
    env = {**os.environ, "PACED_GPU_COUNT": str(count), "PACED_GPU_SLOTS_DIR": str(state)}
    return subprocess.Popen([sys.executable, "-c", WORKER, str(n), str(hold), str(out)], env=env)


def test_concurrent_jobs_get_disjoint_devices(tmp_path: Path) -> None:
    """Five jobs asking 2 of 4 fake GPUs: those that overlap in time never share a GPU, and at most two run at
    once (the third waits for a release)."""
    procs = [_spawn(2, 0.8, tmp_path / f"r{i}.json", tmp_path / "state") for i in range(5)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 5
    recs = [json.loads((tmp_path / f"r{i}.json").read_text()) for i in range(5)]
    for r in recs:
        assert len(set(r["devices"])) == 2 and set(r["devices"]) <= {0, 1, 2, 3}
        assert r["env"] == ",".join(map(str, r["devices"]))
    overlapping = 0
    for i, a in enumerate(recs):
        for b in recs[i + 1:]:
            if a["t0"] < b["t1"] and b["t0"] < a["t1"]:
                overlapping += 1
                assert not set(a["devices"]) & set(b["devices"]), (a, b)
    assert overlapping >= 1  # the test exercised concurrency, not five jobs in a row
    for r in recs:  # never more than 4 GPUs in use at any job's start
        busy = sum(len(o["devices"]) for o in recs if o["t0"] <= r["t0"] < o["t1"])
        assert busy <= 4


def test_killed_holder_frees_its_gpus_and_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    holder = _spawn(4, 60.0, tmp_path / "never.json", state)
    monkeypatch.setenv("PACED_GPU_SLOTS_DIR", str(state))
    monkeypatch.setenv("PACED_GPU_COUNT", "4")
    try:
        for _ in range(200):  # wait until the holder has all four
            if (state / "gpu3.lock").exists():
                break
            time.sleep(0.05)
        with pytest.raises(TimeoutError, match="1 of 4 GPUs not free"):
            with claim(1, timeout_s=0.5, poll_s=0.05):
                pass
    finally:
        holder.kill()
        holder.wait()
    with claim(3, timeout_s=10, poll_s=0.05) as devs:  # the kernel dropped the dead holder's locks
        assert devs == [0, 1, 2] and os.environ["CUDA_VISIBLE_DEVICES"] == "0,1,2"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ or os.environ["CUDA_VISIBLE_DEVICES"] != "0,1,2"
    with pytest.raises(ValueError, match="asks for 5 GPUs but this node has 4"):
        with claim(5):
            pass
    with claim(0) as none:
        assert none == []



def test_each_accelerate_launch_takes_a_free_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two launches on one node never share accelerate's default port 29500."""
    from types import SimpleNamespace

    from paced.pipeline import distill

    launched: list[list[str]] = []
    import subprocess

    def launch(cmd, check=False, **kw):
        launched.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(distill.subprocess, "run", launch)
    config = SimpleNamespace(sharding="none", out_dir=str(tmp_path), to_dict=dict)
    for _ in range(2):
        distill.run_distill(config, {}, accelerate_config="config/accelerate/fsdp.yaml")
    ports = [int(cmd[cmd.index("--main_process_port") + 1]) for cmd in launched]
    assert len(ports) == 2 and all(1024 <= p <= 65535 and p != 29500 for p in ports)
    assert launched[0][launched[0].index("--main_process_port") + 2:] == ["-m", "paced.trainer",
                                                                            str(tmp_path / "launch.json"), "--resume"]
