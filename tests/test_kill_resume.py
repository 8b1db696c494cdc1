"""Kill and resume for real: ``python -m paced.trainer RUN.json`` killed by SIGTERM, resumed, killed by SIGKILL,
resumed again, ends with the parameters of an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _distill_world import build, read_log, write_jsonl
from safetensors.torch import load_file

from paced.trainer import DistillConfig, distill
from paced.trainer.checkpoint import latest_checkpoint, load_state

ROOT = Path(__file__).resolve().parents[1]
METHOD = {"preset": "paced-fkl-then-rkl", "refresh": "online"}  # model, optimizer, RNG, p̂ windows all resume
STEPS = 40


def _config(tmp_path: Path, world: dict[str, str], out: str) -> DistillConfig:
    ids = [json.loads(line)["id"] for line in open(world["data"])]
    rates = write_jsonl(tmp_path / "pr.jsonl", [{"id": i, "num_correct": 1 + n % 6, "k": 8} for n, i in enumerate(ids)])
    return DistillConfig(student=world["student"], teacher=world["teacher"], task="toy_arith", data=world["data"],
                         out_dir=str(tmp_path / out), passrates=rates, steps=STEPS, batch_size=4, lr=1e-2,
                         warmup_steps=2, save_steps=tuple(range(5, STEPS, 5)), max_new_tokens=6,
                         progress=False)


def _launch(spec: Path, resume: bool, kill: tuple[int, float] | None = None) -> subprocess.Popen:
    """The trainer CLI on ``spec``; with ``kill = (signal, cpu_delay_s)`` it kills itself that much of its own
    CPU time past its next checkpoint (``tests/_self_kill.py``: no race with this process's scheduling)."""
    env = {**os.environ, "GOMP_SPINCOUNT": "1000", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    log = spec.with_name(f"launch{len(list(spec.parent.glob('launch*.log')))}.log")
    cmd = ([sys.executable, "-m", "paced.trainer"] if kill is None else
           [sys.executable, str(ROOT / "tests" / "_self_kill.py"), str(int(kill[0])), f"{kill[1]:.4f}"])
    proc = subprocess.Popen([*cmd, str(spec), *(["--resume"] if resume else [])],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _tail(proc: subprocess.Popen) -> str:
    return proc.log.read_text()[-3000:]  # type: ignore[attr-defined]


def _killed_run(spec: Path, resume: bool, out: Path, sig: int, rng: random.Random) -> int:
    """A launch killed by ``sig`` a random 0-0.1 s of its CPU time past its next checkpoint (mid-step,
    mid-save, ...; 0.1 s is ~8 steps on a 2-core CI machine, of the 35 left after the first checkpoint);
    returns the step of the latest complete checkpoint left behind."""
    delay = rng.uniform(0.0, 0.1)
    proc = _launch(spec, resume, kill=(sig, delay))
    assert proc.wait(900) == -sig, f"not killed by {sig!r} {delay:.4f} CPU s past a checkpoint: {_tail(proc)}"
    ckpt = latest_checkpoint(out)
    assert ckpt is not None
    return load_state(ckpt)["step"]


@pytest.mark.parametrize("signals, resume_in_process", [
    pytest.param([signal.SIGKILL], True, id="sigkill"),  # one launch (~20 s), resumed in this process
    pytest.param([signal.SIGTERM, signal.SIGKILL], False, id="sigterm-sigkill", marks=pytest.mark.slow),  # ~1 min
])
def test_killed_runs_resume_to_the_parameters_of_an_uninterrupted_run(tmp_path, signals, resume_in_process):
    world = build(tmp_path / "world", n_learnable=6, n_intractable=2)
    cfg = _config(tmp_path, world, "killed")
    spec = tmp_path / "run.json"
    spec.write_text(json.dumps({"config": cfg.to_dict(), "method": METHOD}))
    out, rng = Path(cfg.out_dir), random.Random(int(time.time()))

    steps = [_killed_run(spec, i > 0, out, sig, rng) for i, sig in enumerate(signals)]
    assert steps == sorted(set(steps)) and 5 <= steps[0] and steps[-1] < STEPS, steps
    assert not (out / "run.json").exists()
    torch.set_num_threads(1)
    if resume_in_process:
        distill(cfg, METHOD, resume=True)
    else:
        final = _launch(spec, resume=True)
        assert final.wait(300) == 0, _tail(final)
    full = distill(_config(tmp_path, world, "full"), METHOD)
    a = load_file(str(full.final_checkpoint / "model.safetensors"))
    b = load_file(str(out / f"checkpoints/step{STEPS}/model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name])
    assert load_state(out / f"checkpoints/step{STEPS}")["passrate_state"] == load_state(full.final_checkpoint)[
        "passrate_state"]
    assert [r["step"] for r in read_log(out) if r["event"] == "step"] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in read_log(out) if r["event"] == "step"] == [
        r["loss"] for r in read_log(full.out_dir) if r["event"] == "step"]
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")], "temporary checkpoint left"


@pytest.mark.slow
def test_snakemake_killed_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path):
    """SIGKILL to Snakemake and its jobs while a distillation runs (~1.5 .test runs + the shared reference,
    ~4-6 min on 2 cores): after ``--unlock`` the rerun redoes the killed jobs only and ends with the
    reference's summary."""
    from _workflow_runs import command, env, reference, run, workdir

    ref = reference()
    wd, results = workdir(tmp_path / "wd"), tmp_path / "results"
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(command(wd, results), cwd=wd, env=env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 900
        while not list(results.glob("runs/*/seed0/checkpoints/step4")):
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no distillation checkpoint within 900 s"
            time.sleep(0.2)
        time.sleep(random.uniform(0.0, 1.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)
    finished = [results / "world/world.json", results / "passrates/base/passrates.jsonl",
                results / "references/references.jsonl"]
    before = {p: p.stat().st_mtime_ns for p in finished}
    assert not (results / "summary.csv").exists()

    locked = run(wd, results, check=False)  # a hard kill leaves Snakemake's lock: the error says how to clear it
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    run(wd, results, 0, "--unlock")
    rerun = run(wd, results)
    out = rerun.stdout + rerun.stderr
    assert "rule distill:" in out and "rule build_world:" not in out and "rule passrates_base:" not in out, out[-3000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == before
    assert (results / "summary.csv").read_text() == (ref / "summary.csv").read_text()
