"""A run's identity: a checkpoint resumes only under the same resolved config, method and inputs; a changed
setting retrains from scratch (and says so); an unreadable checkpoint falls back to the previous one."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
from _distill_world import build, read_log, write_jsonl
from safetensors.torch import load_file

from paced.methods import load_method
from paced.trainer import DistillConfig, distill
from paced.trainer.checkpoint import load_state, resumable_checkpoint
from paced.trainer.identity import identity_diff, run_identity

METHOD = "paced-fkl"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("identity")
    w = build(tmp)
    ids = [json.loads(line)["id"] for line in open(w["data"])]
    w["passrates"] = write_jsonl(tmp / "pr.jsonl", [{"id": i, "num_correct": 1 + n % 6, "k": 8}
                                                    for n, i in enumerate(ids)])
    return w


def _config(world: dict[str, str], out: Path, **kw) -> DistillConfig:
    return DistillConfig(**{"student": world["student"], "teacher": world["teacher"], "task": "toy_arith",
                            "data": world["data"], "out_dir": str(out), "passrates": world["passrates"], "steps": 4,
                            "batch_size": 4, "lr": 1e-2, "save_steps": (2,), "max_new_tokens": 6,
                            "progress": False, **kw})


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_identity_digest_follows_what_changes_the_weights(world, tmp_path):
    base = run_identity(_config(world, tmp_path / "a"), load_method(METHOD))
    same = run_identity(_config(world, tmp_path / "b", progress=True), load_method(METHOD))
    assert base["digest"] == same["digest"]  # out_dir and progress say nothing about the weights
    lr = run_identity(_config(world, tmp_path / "a", lr=2e-2), load_method(METHOD))
    assert lr["digest"] != base["digest"] and identity_diff(base, lr) == ["config.lr"]
    micro = run_identity(_config(world, tmp_path / "a", micro_batch_size=1, gradient_checkpointing=True),
                         load_method(METHOD))
    assert micro["digest"] == base["digest"]  # another split of the same sums: a run killed for memory resumes
    two = run_identity(_config(world, tmp_path / "a"), load_method(METHOD), processes=2)
    assert identity_diff(base, two) == ["config.processes"]  # each rank samples with its own seed


def test_changed_lr_retrains_and_the_weights_differ(world, tmp_path, caplog):
    out = tmp_path / "run"
    first = distill(_config(world, out), METHOD, resume=True)
    w1 = _weights(first.final_checkpoint)
    again = distill(_config(world, out), METHOD, resume=True)  # same identity: nothing to train
    assert json.loads((out / "run.json").read_text())["resumed_from_step"] == 4
    for name, t in _weights(again.final_checkpoint).items():
        assert torch.equal(t, w1[name])
    with caplog.at_level(logging.WARNING, logger="paced.trainer.loop"):
        second = distill(_config(world, out, lr=5e-2), METHOD, resume=True)
    assert "starting fresh" in caplog.text and "config.lr" in caplog.text
    run = json.loads((out / "run.json").read_text())
    assert run["resumed_from_step"] == 0 and run["identity"]["config"]["lr"] == 5e-2
    w2 = _weights(second.final_checkpoint)
    assert any(not torch.equal(w2[n], w1[n]) for n in w1)
    assert load_state(second.final_checkpoint)["identity"]["digest"] == run["identity"]["digest"]
    assert [r["step"] for r in read_log(out) if r["event"] == "step"] == [1, 2, 3, 4]


def test_changed_input_file_is_a_new_identity(world, tmp_path):
    out = tmp_path / "run"
    distill(_config(world, out), METHOD, resume=True)
    rows = [json.loads(line) for line in open(world["passrates"])]
    other = write_jsonl(tmp_path / "pr2.jsonl", [{**r, "num_correct": 8 - r["num_correct"]} for r in rows])
    cfg = _config(world, out, passrates=other)
    ckpt, why = resumable_checkpoint(out, run_identity(cfg, load_method(METHOD)))
    assert ckpt is None and "config.passrates" in why and "inputs.passrates" in why


def test_unreadable_checkpoint_falls_back_to_the_previous_one(world, tmp_path, caplog):
    ref = distill(_config(world, tmp_path / "ref"), METHOD)
    out = tmp_path / "run"
    done = distill(_config(world, out), METHOD)
    weights = done.final_checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a truncated write
    cfg = _config(world, out)
    ckpt, _ = resumable_checkpoint(out, run_identity(cfg, load_method(METHOD)))
    assert ckpt is not None and ckpt.name == "step2"
    with caplog.at_level(logging.WARNING):
        resumed = distill(cfg, METHOD, resume=True)
    assert "does not load" in caplog.text
    assert json.loads((out / "run.json").read_text())["resumed_from_step"] == 2
    a, b = _weights(ref.final_checkpoint), _weights(resumed.final_checkpoint)
    for name in a:
        torch.testing.assert_close(b[name], a[name])


def test_config_fields_outside_the_identity_exist():
    fields = {f.name for f in dataclasses.fields(DistillConfig)}
    from paced.trainer.identity import INPUT_FILES, NOT_IDENTITY

    assert set(NOT_IDENTITY) <= fields and set(INPUT_FILES) <= fields
