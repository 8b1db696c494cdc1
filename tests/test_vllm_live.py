"""In-training sampling through vLLM (the `vllm` lane, .ci/vllm_lane.sh): the p̂ refresh and the on-policy RKL samples
drawn by an engine beside the student whose weights follow the trained ones.

Tiny random Qwen3 models with head_dim 64 (vLLM's CPU attention needs it), built here. One process (an in-process
engine), and 2 processes under torchrun with the student sharded by FSDP2 over gloo (one engine per process over
torchrun's process group, vLLM's ``external_launcher``): the code a GPU node runs over NCCL.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _distill_world import read_log, toy_rows, write_jsonl  # noqa: E402

from paced.rollouts import HFSampler, SamplingParams  # noqa: E402

# the CPU lane's engine (see tests/test_vllm.py); the trainer picks the executor itself
CPU_ENGINE = {"dtype": "float32", "gpu_memory_utilization": 0.3, "enforce_eager": True, "max_model_len": 512}
PROMPTS = ["12+3=", "hello", "abc=", "(7*8)-1="]
GREEDY = SamplingParams(n=1, max_new_tokens=10, temperature=0.0)
# a two-stage run whose weights are 1 for every p̂ (a random student solves nothing: PACED's kernel would zero
# every problem and skip every batch), so each of the 4 steps updates the student; p̂ is still estimated before
# step 1 and again at the FKL -> RKL boundary (per_stage), through the same sampler
METHOD = {"preset": "paced-fkl-then-rkl", "kernel": {"name": "uniform"}, "refresh": "per_stage", "k": 2}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from paced.fixtures import build_tiny_lm

    tmp = tmp_path_factory.mktemp("vllm_live")
    student = build_tiny_lm(tmp / "student", d_model=64, seed=0)
    teacher = build_tiny_lm(tmp / "teacher", d_model=96, seed=1)
    data = write_jsonl(tmp / "train.jsonl", toy_rows(6, 2))
    cfg = dict(student=str(student), teacher=str(teacher), task="toy_arith", data=data, steps=4, batch_size=4,
               lr=1e-2, progress=False, max_new_tokens=8, teacher_cache="none", sampler="vllm", vllm=CPU_ENGINE,
               fused="off", chunk_size=64)
    return {"config": cfg, "method": METHOD, "tmp": str(tmp)}


def _texts(rollouts) -> list[str]:
    return [rs[0].text for rs in rollouts]


def test_engine_follows_the_trained_weights(world: dict) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from paced.rollouts.live_vllm import LiveVLLMSampler

    path = world["config"]["student"]
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    sampler = LiveVLLMSampler(model, path, config=CPU_ENGINE, seed=0)
    optimizer.register_step_post_hook(sampler.mark_stale)
    try:
        before = _texts(sampler.generate(PROMPTS, GREEDY))
        assert sampler.syncs == 1
        assert before == _texts(HFSampler(model, tok).generate(PROMPTS, GREEDY))
        torch.manual_seed(0)
        for p in model.parameters():  # one large update in a random direction
            p.grad = torch.randn_like(p) * 0.5
        optimizer.step()
        after = _texts(sampler.generate(PROMPTS, GREEDY))
        assert sampler.syncs == 2  # the step made the engine stale; it reloaded before sampling
        assert after == _texts(HFSampler(model, tok).generate(PROMPTS, GREEDY))  # the updated weights, not the file's
        assert after != before
        sampler.generate(PROMPTS, GREEDY)
        assert sampler.syncs == 2  # nothing changed: no reload
    finally:
        sampler.close()


def test_two_stage_run_samples_in_training_with_vllm(world: dict, tmp_path: Path, monkeypatch) -> None:
    from paced.rollouts.live_vllm import LiveVLLMSampler
    from paced.trainer import DistillConfig, distill

    syncs: list[int] = []
    sync = LiveVLLMSampler.sync
    monkeypatch.setattr(LiveVLLMSampler, "sync", lambda self: (sync(self), syncs.append(self.syncs)))
    distill(DistillConfig(**world["config"], out_dir=str(tmp_path / "run")), METHOD)
    rows = read_log(tmp_path / "run")
    refreshes = [(r["step"], r["reason"]) for r in rows if r["event"] == "refresh"]
    assert refreshes == [(0, "initial"), (2, "stage_start")]
    steps = [r for r in rows if r["event"] == "step"]
    assert [r["divergence"] for r in steps] == ["forward_kl"] * 2 + ["reverse_kl"] * 2
    assert all(r["loss"] is not None for r in steps)
    # reloads: before the first estimate; at the boundary (after 2 updates); before step 4's samples (step 3's
    # samples follow the boundary estimate with no update in between, so no reload)
    assert syncs == [1, 2, 3]


def test_sharded_run_samples_with_one_engine_per_process(world: dict, tmp_path: Path) -> None:
    import torch

    from paced.trainer.distributed import torchrun_command

    spec = tmp_path / "world.json"
    spec.write_text(json.dumps({**world, "config": {**world["config"], "save_steps": [3]}}))
    worker = Path(__file__).with_name("_vllm_live_worker.py")
    env = {**os.environ, "GOMP_SPINCOUNT": "1000", "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run(torchrun_command(2, [str(worker), str(spec), str(tmp_path)]), env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    counts = [json.loads((tmp_path / f"rank{r}.json").read_text())["syncs"] for r in (0, 1)]
    assert counts == [3, 3]  # every process reloads at the same points (each gather is a collective)
    rows = read_log(tmp_path / "run")
    assert [(r["step"], r["reason"]) for r in rows if r["event"] == "refresh"] == [(0, "initial"), (2, "stage_start")]
    assert [r["divergence"] for r in rows if r["event"] == "step"] == ["forward_kl"] * 2 + ["reverse_kl"] * 2
    assert (tmp_path / "run" / "run.json").is_file()
    # the last reload (before step 4's samples) gave each engine the whole step-3 weights, gathered from the shards
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "run" / "checkpoints" / "step3" / "model.safetensors"))
    for r in (0, 1):
        loaded = torch.load(tmp_path / f"loaded_rank{r}.pt")
        assert set(saved) <= set(loaded)
        for name, tensor in saved.items():
            assert torch.equal(loaded[name], tensor), name
