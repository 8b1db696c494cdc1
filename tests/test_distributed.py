"""The sharded (FSDP2) training path on CPU: 2 processes over gloo under torchrun, the code GPUs run.

Two launches of tests/_distributed_worker.py (~25 s each on 2 cores) write their results under a
per-module tmp dir; each test compares one of them with a one-process reference or with the files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from _distill_world import build
from _distributed_worker import KILL_AFTER, STEP_CASES, config, one_step, step_method, write_passrates
from safetensors.torch import load_file

from paced.trainer.distributed import torchrun_command

pytestmark = pytest.mark.distributed
WORKER = Path(__file__).with_name("_distributed_worker.py")
LAUNCH_TIMEOUT_S = 240  # a hung collective fails the test instead of blocking CI


def _launch(phase: str, world_dir: Path, out: Path) -> tuple[int, str]:
    log_path = out / f"{phase}.log"
    env = {**os.environ, "GOMP_SPINCOUNT": "1000", "OMP_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(torchrun_command(2, [str(WORKER), phase, str(world_dir), str(out)]), env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(LAUNCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"torchrun {phase} hung for {LAUNCH_TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}")
    return rc, log_path.read_text()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    world_dir, out = tmp / "world", tmp / "out"
    world_dir.mkdir()
    out.mkdir()
    world = build(world_dir)
    world["passrates"] = write_passrates(world, world_dir / "passrates.jsonl")
    (world_dir / "world.json").write_text(json.dumps(world))
    launches = {phase: _launch(phase, world_dir, out) for phase in ("main", "resume")}
    return world, out, launches


def _need(out: Path, name: str, launches: dict) -> Path:
    path = out / name
    if not path.exists():
        tails = "\n".join(f"--- {p} (rc {rc}) ---\n{text[-3000:]}" for p, (rc, text) in launches.items())
        pytest.fail(f"{name} was not written by the workers:\n{tails}")
    return path


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_sharded_fused_step_equals_the_one_process_step(runs, tmp_path, case):
    """(a) FSDP2 over 2 processes, one problem per micro-batch, fused: the whole-batch loss, the
    gradients and the updated parameters equal one process taking the batch in one pass (with a
    replicated or sharded separate teacher, or the self-teacher)."""
    world, out, launches = runs
    divergence, teacher, _ = STEP_CASES[case]
    got = torch.load(_need(out, f"a_{case}.pt", launches), weights_only=False)
    ref = one_step(config(world, tmp_path), step_method(divergence, teacher))
    assert got["sharded"] and not ref["sharded"]
    assert got["local_share"] == pytest.approx(0.5, abs=0.05)  # rank 0 holds about half of every tensor
    assert got["loss"] == pytest.approx(ref["loss"], rel=1e-4)  # fp32 sums in another order
    assert set(got["grads"]) == set(ref["grads"]) and ref["grads"]
    for name, g in ref["grads"].items():
        torch.testing.assert_close(got["grads"][name], g, rtol=1e-4, atol=1e-7, msg=name)
    # Adam's first step moves each weight by ≈ lr·g/(|g| + 1e-8): where |g| ~ 1e-9 a gradient equal to
    # 1e-4 relative moves it by up to ~1e-3·lr, while a wrong update would be off by ~lr = 1e-2.
    lr = config(world, tmp_path).lr
    assert got["params"] and set(got["params"]) <= set(ref["params"])
    for name, p in got["params"].items():  # sharded: a tied lm_head.weight is stored once, as the embedding
        torch.testing.assert_close(p, ref["params"][name], rtol=0, atol=1e-3 * lr, msg=name)
    assert max(float((p - ref["init"][k]).abs().max()) for k, p in ref["params"].items()) > 0.5 * lr  # it moved


@pytest.mark.parametrize("mode", ["replicate", "shard"])
def test_teacher_is_the_file_on_every_rank(runs, mode):
    """(b) Under accelerate's FSDP loading flags (which zero a plain load on rank 1, checked here),
    the teacher equals its files on both ranks, replicated or sharded."""
    world, out, launches = runs
    from transformers import AutoModelForCausalLM

    plain = [json.loads(_need(out, f"b_plain_rank{r}.json", launches).read_text())["abs_sum"] for r in (0, 1)]
    assert plain[0] > 0 and plain[1] == 0  # the hazard is live in this environment
    ref = AutoModelForCausalLM.from_pretrained(world["teacher"]).state_dict()
    for rank in (0, 1):
        got = torch.load(_need(out, f"b_{mode}_rank{rank}.pt", launches), weights_only=True)
        for name, p in got.items():
            torch.testing.assert_close(p, ref[name], rtol=0, atol=0, msg=f"rank {rank}: {name}")
        assert {k for k in ref if k != "lm_head.weight"} <= set(got)


def test_bf16_compute_at_lr_1e6_changes_the_sharded_fp32_master_weights(runs, tmp_path):
    """A bf16-compute step at lr 1e-6 moves the fp32 master weights (bf16 weights could not move)."""
    world, out, launches = runs
    got = torch.load(_need(out, "p_bf16.pt", launches), weights_only=False)
    init = load_file(str(Path(world["student"]) / "model.safetensors"))
    assert got["param_dtype"] == "torch.float32"
    moved = [(got["params"][k] - v.float()).abs().max().item() for k, v in init.items()]
    assert max(moved) == pytest.approx(1e-6, rel=0.05)  # Adam's first step moves by lr


def test_killed_sharded_run_resumes_to_the_uninterrupted_run(runs):
    """(c) Killed right after its step-2 checkpoint and resumed: every rank's optimizer shard equals
    the saved one, and steps 3-4 (on-policy RKL, sampled with HF generate from the sharded student:
    shards, weights, losses) equal the uninterrupted run's."""
    _, out, launches = runs
    assert launches["main"][0] != 0 and not (out / "main_done_rank0").exists()  # the kill ended launch 1

    def opt(name: str) -> dict:
        return torch.load(_need(out, name, launches), weights_only=True)

    for rank in (0, 1):
        saved, loaded = opt(f"c_killed_opt_s{KILL_AFTER}_rank{rank}.pt"), opt(f"c_loaded_rank{rank}.pt")
        torch.testing.assert_close(loaded, saved, rtol=0, atol=0)
        torch.testing.assert_close(saved, opt(f"c_full_opt_s{KILL_AFTER}_rank{rank}.pt"), rtol=0, atol=0)
        torch.testing.assert_close(opt(f"c_resumed_opt_s4_rank{rank}.pt"), opt(f"c_full_opt_s4_rank{rank}.pt"),
                                   rtol=0, atol=0)
    full = load_file(str(out / "full" / "checkpoints" / "step4" / "model.safetensors"))
    resumed = load_file(str(out / "killed" / "checkpoints" / "step4" / "model.safetensors"))
    torch.testing.assert_close(resumed, full, rtol=0, atol=0)

    def losses(run: str) -> list:
        rows = [json.loads(line) for line in (out / run / "log.jsonl").read_text().splitlines()]
        return [(r["divergence"], r["loss"]) for r in rows if r["event"] == "step"]

    assert losses("killed") == losses("full")
    assert [d for d, loss in losses("full") if loss is not None] == ["forward_kl"] * 2 + ["reverse_kl"] * 2


def test_nonfinite_loss_on_one_rank_stops_every_rank_with_one_error(runs):
    """(d) A NaN loss on rank 1 only: both ranks raise the same NonFiniteLossError; the launch fails."""
    _, out, launches = runs
    assert launches["resume"][0] != 0
    messages = [_need(out, f"d_rank{r}.txt", launches).read_text() for r in (0, 1)]
    assert messages[0] == messages[1]
    assert messages[0].startswith("non-finite loss (nan) at step 2 ")
    assert not (out / "nan" / "checkpoints" / "step2").exists()
