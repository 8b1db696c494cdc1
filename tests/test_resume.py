"""Resume: a run killed after a checkpoint and restarted ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json

import pytest
import torch
from _distill_world import build, read_log, write_jsonl
from safetensors.torch import load_file

from paced.trainer import DistillConfig, distill
from paced.trainer import loop as loop_mod
from paced.trainer.checkpoint import latest_checkpoint, load_state

# FKL then on-policy RKL, Beta weights, p̂ updated online from the RKL samples: resume must restore
# the model, optimizer, scheduler, RNG, data position and the pass-rate windows.
METHOD = {"preset": "paced-fkl-then-rkl", "refresh": "online"}


class Killed(RuntimeError):
    pass


def _config(tmp_path, world, out):
    ids = [json.loads(line)["id"] for line in open(world["data"])]
    passrates = write_jsonl(tmp_path / "pr.jsonl", [{"id": i, "num_correct": 1 + n % 6, "k": 8}
                                                    for n, i in enumerate(ids)])
    return DistillConfig(student=world["student"], teacher=world["teacher"], task="toy_arith",
                         data=world["data"], out_dir=str(tmp_path / out), passrates=passrates, steps=6,
                         batch_size=4, lr=1e-2, warmup_steps=2, save_steps=(4,), max_new_tokens=6,
                         progress=False)


def test_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    world = build(tmp_path / "world")
    full = distill(_config(tmp_path, world, "full"), METHOD)

    real = loop_mod.batch_loss

    def die_at_step_5(ctx, docs, weights, stage, step, *rows):
        if step == 4:
            raise Killed("simulated kill after the step-4 checkpoint")
        return real(ctx, docs, weights, stage, step, *rows)

    cfg = _config(tmp_path, world, "killed")
    with monkeypatch.context() as m:
        m.setattr(loop_mod, "batch_loss", die_at_step_5)
        with pytest.raises(Killed):
            distill(cfg, METHOD)
    assert latest_checkpoint(cfg.out_dir).name == "step4"
    mid = load_state(latest_checkpoint(cfg.out_dir))
    assert mid["step"] == 4 and mid["data_position"] == 16
    resumed = distill(cfg, METHOD, resume=True)

    a = load_file(str(full.final_checkpoint / "model.safetensors"))
    b = load_file(str(resumed.final_checkpoint / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(b[name], a[name])
    full_state, res_state = load_state(full.final_checkpoint), load_state(resumed.final_checkpoint)
    assert res_state["passrate_state"] == full_state["passrate_state"]
    assert res_state["scheduler"] == full_state["scheduler"]

    def steps(out):
        return [(r["step"], r["divergence"], r["loss"], r["mean_weight"]) for r in read_log(out)
                if r["event"] == "step"]

    assert steps(cfg.out_dir) == steps(full.out_dir)
    assert [r["step"] for r in read_log(cfg.out_dir)] == list(range(1, 7))
    assert any(loss is not None for _, div, loss, _ in steps(full.out_dir) if div == "reverse_kl")


class _NotTensorData:  # a pickled object: what weights_only=True refuses to build
    pass


def test_trainer_state_is_loaded_without_running_pickled_code(tmp_path):
    torch.save({"step": 3, "rng": {"torch": torch.get_rng_state()}}, tmp_path / "trainer_state.pt")
    assert load_state(tmp_path)["step"] == 3
    torch.save({"step": 3, "evil": _NotTensorData()}, tmp_path / "trainer_state.pt")
    with pytest.raises(ValueError, match="can load safely"):
        load_state(tmp_path)
