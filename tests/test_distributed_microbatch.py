"""Micro-batches, the sequence cap, gradient checkpointing and mixed precision, in one process.

The 2-process versions of these (FSDP2 under torchrun) are in tests/test_distributed.py.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _distill_world import build
from _distributed_worker import WEIGHTS, config, one_step, step_method
from safetensors.torch import load_file

from paced.trainer import distill
from paced.trainer.checkpoint import load_state
from paced.trainer.config import DistillConfig
from paced.trainer.distributed import free_port, torchrun_command
from paced.trainer.microbatch import cap_response, padded_tokens, plan_micro_batches


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build(tmp_path_factory.mktemp("world_microbatch"))


def test_plan_cuts_length_sorted_micro_batches_within_the_budget():
    lengths = [(3, 2), (2, 9), (4, 4), (1, 1), (5, 5)]  # totals 5, 11, 8, 2, 10
    assert plan_micro_batches(lengths) == [[1, 4, 2, 0, 3]]
    assert plan_micro_batches(lengths, max_rows=2) == [[1, 4], [2, 0], [3]]
    # budget 30: {1, 4} pads to 2 x (5 + 9) = 28; adding 2 gives 3 x 14 = 42
    assert plan_micro_batches(lengths, max_tokens=30) == [[1, 4], [2, 0, 3]]
    assert plan_micro_batches(lengths, max_tokens=5) == [[1], [4], [2], [0], [3]]  # one row over budget: alone
    rng = np.random.default_rng(0)
    for _ in range(50):
        ls = [tuple(int(x) for x in rng.integers(1, 20, 2)) for _ in range(int(rng.integers(1, 12)))]
        budget, rows = int(rng.integers(20, 80)), int(rng.integers(1, 5))
        plan = plan_micro_batches(ls, rows, budget)
        assert sorted(i for g in plan for i in g) == list(range(len(ls)))
        for g in plan:
            assert len(g) <= rows and (len(g) == 1 or padded_tokens([ls[i] for i in g]) <= budget)


def test_on_policy_micro_batches_of_a_sharded_student_fit_one_sampler_chunk(monkeypatch):
    """Every process must call generate as often as the others (FSDP all-gathers pair up across processes):
    on-policy micro-batches of a sharded student hold at most sampler_batch_size problems, one chunk each."""
    from types import SimpleNamespace

    from paced.methods import StageSpec
    from paced.trainer import step

    docs = [SimpleNamespace(id=f"p{i}") for i in range(10)]
    cfg = SimpleNamespace(micro_batch_size=None, micro_batch_tokens=None, sampler_batch_size=2, max_new_tokens=4,
                          max_seq_len=None)
    ids = {d.id: [1, 2, 3] for d in docs}
    ctx = SimpleNamespace(config=cfg, model=None, student_ids=ids, teacher_ids=ids, references=ids, sampler=None)
    weights = np.ones(10)
    rkl, fkl = StageSpec(divergence="reverse_kl", fraction=1.0), StageSpec(divergence="forward_kl", fraction=1.0)
    assert rkl.on_policy and not fkl.on_policy
    monkeypatch.setattr(step, "is_sharded", lambda model: True)
    plan = step.rank_micro_batches(ctx, docs, weights, rkl, rank=1, nproc=2)
    assert sorted(i for g in plan for i in g) == [1, 3, 5, 7, 9] and max(len(g) for g in plan) == 2
    assert len(step.rank_micro_batches(ctx, docs, weights, fkl, rank=1, nproc=2)) == 1  # teacher-forced: no cap
    monkeypatch.setattr(step, "is_sharded", lambda model: False)
    assert len(step.rank_micro_batches(ctx, docs, weights, rkl, rank=1, nproc=2)) == 1  # DDP samples locally
    # a sampler that takes a step's whole batch in one call (vLLM's) is called once, before the micro-batches
    monkeypatch.setattr(step, "is_sharded", lambda model: True)
    ctx.sampler = SimpleNamespace(whole_batch=True)
    assert len(step.rank_micro_batches(ctx, docs, weights, rkl, rank=1, nproc=2)) == 1


def test_cap_response_keeps_prompt_plus_response_within_the_cap():
    assert cap_response([1, 2, 3, 4], 3, 5, "p") == [1, 2]
    assert cap_response([1, 2, 3, 4], 3, None, "p") == [1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"problem 'x': its prompt has 5 tokens.*max_seq_len=5; raise"):
        cap_response([1], 5, 5, "problem 'x'")


def _method(divergence: str, normalisation: str):
    method = step_method(divergence)
    return dataclasses.replace(method, kernel=dataclasses.replace(method.kernel, normalisation=normalisation))


@pytest.mark.parametrize(("normalisation", "fused", "split"), [
    ("sum", "on", {"micro_batch_size": 1}),
    ("sum", "off", {"micro_batch_tokens": 40}),
    ("none", "on", {"micro_batch_size": 2}),
])
def test_micro_batches_give_the_one_pass_loss_and_gradient(world, tmp_path, monkeypatch, normalisation, fused,
                                                          split):
    """Σwℓ/Σw (or mean wℓ) over the whole batch, whatever the split: same loss and gradient."""
    from paced.trainer import loop

    method = _method("forward_kl", normalisation)
    ref = one_step(config(world, tmp_path, fused=fused), method)
    passes, real = [], loop.batch_loss
    monkeypatch.setattr(loop, "batch_loss", lambda *a: passes.append(a[-1]) or real(*a))
    got = one_step(config(world, tmp_path, fused=fused, **split), method)
    assert len(passes) >= 3 and sorted(i for rows in passes for i in rows) == list(np.flatnonzero(WEIGHTS))
    assert got["loss"] == pytest.approx(ref["loss"], rel=1e-6)
    for name, g in ref["grads"].items():
        torch.testing.assert_close(got["grads"][name], g, rtol=1e-5, atol=1e-8, msg=name)


def test_max_seq_len_equals_training_on_cut_references(world, tmp_path, monkeypatch):
    from paced.trainer import setup

    cap = 14
    capped = one_step(config(world, tmp_path, max_seq_len=cap), step_method("forward_kl"))
    uncapped = one_step(config(world, tmp_path, max_seq_len=10_000), step_method("forward_kl"))
    real = setup.reference_ids

    def cut_refs(cfg, method, task, docs, tok):
        pool, refs = real(cfg, method, task, docs, tok)
        prompts = {d.id: len(tok(task.format_prompt(d), add_special_tokens=False)["input_ids"]) for d in pool}
        return pool, {pid: r[:cap - prompts[pid]] for pid, r in refs.items()}

    monkeypatch.setattr(setup, "reference_ids", cut_refs)
    cut = one_step(config(world, tmp_path), step_method("forward_kl"))
    assert capped["loss"] == pytest.approx(cut["loss"], rel=1e-6)
    assert uncapped["loss"] != pytest.approx(cut["loss"], rel=1e-3)  # the cap did cut something


@pytest.mark.parametrize("top_k", [None, 5])
def test_max_seq_len_cuts_the_shared_teacher_cache_too(world, tmp_path, top_k):
    """A cache holds whole references; under the cap its entries are cut to the same tokens."""
    from paced.teacher_cache import build_teacher_cache

    cache = tmp_path / "teacher.npz"
    build_teacher_cache(world["teacher"], "toy_arith", world["data"], None, str(cache), top_k=top_k)
    for fused in ("on", "off"):
        kw = dict(max_seq_len=14, fused=fused, teacher_cache_top_k=top_k)
        live = one_step(config(world, tmp_path, **kw), step_method("forward_kl"))
        cached = one_step(config(world, tmp_path, teacher_cache_path=str(cache), **kw), step_method("forward_kl"))
        if top_k is None:  # exact log-probs: the live teacher's loss
            assert cached["loss"] == pytest.approx(live["loss"], rel=1e-5)
        else:  # top-5 of 80 tokens + one tail bucket: a coarser distribution, so a lower bound on the exact FKL
            assert 0 < cached["loss"] <= live["loss"]


def test_gradient_checkpointing_is_a_switch_that_keeps_the_step(world, tmp_path):
    ref = one_step(config(world, tmp_path), step_method("forward_kl"))
    got = one_step(config(world, tmp_path, gradient_checkpointing=True), step_method("forward_kl"))
    assert got["loss"] == pytest.approx(ref["loss"], rel=1e-6)
    for name, g in ref["grads"].items():
        torch.testing.assert_close(got["grads"][name], g, rtol=1e-5, atol=1e-8, msg=name)


def test_bf16_student_at_lr_1e6_changes_its_weights(world, tmp_path):
    """fp32 master weights with bf16 autocast move by ~lr; bf16 weights (master_dtype bfloat16) cannot."""
    kw = dict(dtype="bfloat16", lr=1e-6)
    mixed = one_step(config(world, tmp_path, **kw), step_method("forward_kl"))
    pure = one_step(config(world, tmp_path, master_dtype="bfloat16", **kw), step_method("forward_kl"))
    assert mixed["param_dtype"] == "torch.float32" and pure["param_dtype"] == "torch.bfloat16"

    def moved(res: dict) -> tuple[float, float]:
        """(largest change, share of the weights that changed)."""
        deltas = torch.cat([(res["params"][k] - res["init"][k]).abs().flatten() for k in res["params"]])
        return float(deltas.max()), float((deltas > 0).float().mean())

    largest, share = moved(mixed)
    assert largest == pytest.approx(1e-6, rel=0.05) and share > 0.8  # Adam's first step moves each by ≈ lr
    assert moved(pure)[1] < 0.1 * share  # in bf16 only weights near 0 can take a 1e-6 step: the rest stay put


def test_checkpoint_is_written_in_dtype_and_resumes_from_exact_master_weights(world, tmp_path):
    cfg = config(world, tmp_path / "run", dtype="bfloat16", lr=1e-3, steps=2, save_steps=(1,))
    distill(cfg, "uniform-fkl")
    ckpt = Path(cfg.out_dir) / "checkpoints" / "step1"
    assert json.loads((ckpt / "config.json").read_text())["dtype"] == "bfloat16"
    assert {t.dtype for t in load_file(str(ckpt / "model.safetensors")).values()} == {torch.bfloat16}
    master = load_state(ckpt)["master_weights"]
    assert {t.dtype for t in master.values()} == {torch.float32}
    cast = load_file(str(ckpt / "model.safetensors"))
    assert any(not torch.equal(master[k].to(torch.bfloat16).float(), master[k]) for k in cast)  # finer than bf16
    final = Path(cfg.out_dir) / "checkpoints" / "step2"
    uninterrupted = load_state(final)["master_weights"]
    shutil.rmtree(final)  # as if killed after the step-1 checkpoint
    distill(cfg, "uniform-fkl", resume=True)
    resumed = load_state(final)["master_weights"]
    for k, v in uninterrupted.items():
        torch.testing.assert_close(resumed[k], v, rtol=0, atol=0, msg=k)


def test_scale_fields_are_validated_with_field_value_and_range():
    base = dict(student="s", task="t", data="d", out_dir="o")
    for kw, match in [({"sharding": "ddp"}, r"sharding='ddp'.*allowed: none, fsdp"),
                      ({"teacher_sharding": "shard"}, r"teacher_sharding='shard'.*unless sharding='fsdp'"),
                      ({"micro_batch_size": 0}, r"micro_batch_size=0.*None or integers >= 1"),
                      ({"max_seq_len": 64, "micro_batch_tokens": 32}, r"micro_batch_tokens=32.*max_seq_len=64"),
                      ({"master_dtype": "int8"}, r"master_dtype='int8'"),
                      ({"gradient_checkpointing": "yes"}, r"gradient_checkpointing='yes'.*true or false")]:
        with pytest.raises(ValueError, match=match):
            DistillConfig(**base, **kw)


def test_sharding_without_a_process_group_names_the_launcher(world, tmp_path):
    with pytest.raises(ValueError, match=r"sharding='fsdp' needs a torch.distributed process group.*torchrun"):
        one_step(config(world, tmp_path, sharding="fsdp"), step_method("forward_kl"))


def test_torchrun_command_uses_a_free_port():
    port = free_port()
    cmd = torchrun_command(2, ["-m", "paced.trainer", "run.json"], port=port)
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc-per-node") + 1] == "2" and cmd[cmd.index("--master-port") + 1] == str(port)
    assert cmd[-3:] == ["-m", "paced.trainer", "run.json"]


def test_a_whole_batch_sampler_samples_a_step_once_and_the_micro_batches_use_it(monkeypatch):
    """presample: one sampler call per step for the rows every micro-batch forwards (an idle one's stand-in
    included), in batch order; batch_loss then reads them instead of sampling."""
    from types import SimpleNamespace

    from paced.trainer import step

    docs = [SimpleNamespace(id=f"p{i}") for i in range(6)]
    weights = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    calls = []

    def fake_sample(ctx, batch, step_no):
        calls.append([d.id for d in batch])
        return [[int(d.id[1:])] * 2 for d in batch]

    monkeypatch.setattr(step, "sample_responses", fake_sample)
    ctx = SimpleNamespace(presampled=None)
    step.presample(ctx, docs, weights, [[0, 1], [2], [3, 4], [5], []], 7)
    assert calls == [["p0", "p2", "p3", "p5"]]  # [3, 4] is idle: its first row stands in; [] stands in with p0
    assert ctx.presampled == {0: [0, 0], 2: [2, 2], 3: [3, 3], 5: [5, 5]}
    assert step.forwarded_rows([3, 4], weights) == ([3], True) and step.forwarded_rows([], weights) == ([0], True)
