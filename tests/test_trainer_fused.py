"""The trainer's fused path and shared teacher cache give the logits path's losses, gradients and parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _distill_world import build, tiny_model
from safetensors.torch import load_file

from paced import fused as fused_mod
from paced.methods import StageSpec, get_method
from paced.passrate.state import PassRateState
from paced.tasks.base import get_task
from paced.teacher_cache import build_teacher_cache
from paced.trainer import DistillConfig, distill
from paced.trainer import step as step_mod
from paced.trainer.config import FUSED_AUTO_MIN_VOCAB
from paced.trainer.setup import reference_ids
from paced.trainer.step import StepContext, batch_loss, use_fused
from paced.trainer.teacher import TeacherScorer, sidecar_path, student_prompt, teacher_prompt
from paced.world.tokenizer import build_char_tokenizer


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build(tmp_path_factory.mktemp("world_fused"), n_learnable=6, n_intractable=2)


def _cfg(world, out, **kw) -> DistillConfig:
    base = dict(student=world["student"], teacher=world["teacher"], task="toy_arith", data=world["data"],
                out_dir=str(out), steps=2, batch_size=4, lr=1e-2, progress=False, max_new_tokens=6,
                teacher_cache="none")
    return DistillConfig(**{**base, **kw})


def _context(world, config: DistillConfig, method_name: str, student, teacher) -> StepContext:
    tok = build_char_tokenizer()
    method = get_method(method_name)
    task = get_task(config.task)
    pool, refs = reference_ids(config, method, task, task.load(config.data), tok)

    def ids(text: str) -> list[int]:
        return list(tok(text, add_special_tokens=False)["input_ids"])

    return StepContext(config=config, method=method, task=task, tokenizer=tok, model=student,
                       student_ids={d.id: ids(student_prompt(task, d)) for d in pool},
                       teacher_ids={d.id: ids(teacher_prompt(method, task, d)) for d in pool},
                       references=refs, teacher=TeacherScorer(teacher, int(tok.pad_token_id)), sampler=None,
                       state=PassRateState(method.smoothing), device=torch.device("cpu")), pool


def _loss_and_grads(ctx: StepContext, docs, weights, stage) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    ctx.model.zero_grad(set_to_none=True)
    loss = batch_loss(ctx, docs, weights, stage, step=0)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in ctx.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("divergence", ["forward_kl", "reverse_kl", "adaptive_kl"])
def test_fused_step_matches_logits_path(world, tmp_path, monkeypatch, divergence):
    """Same weighted loss and same parameter gradients, fused on vs off, on teacher-forced references;
    the fused backward only rescales (grad_weights = the normalised weights), never recomputes logits."""
    def no_recompute(*args, **kwargs):
        raise AssertionError("fused backward recomputed the logits: grad_weights did not match the loss")

    monkeypatch.setattr(fused_mod, "_recompute_grads", no_recompute)
    tok = build_char_tokenizer()
    student, teacher = tiny_model(tok, 0), tiny_model(tok, 1, hidden=48).requires_grad_(False)
    stage = StageSpec(divergence=divergence, fraction=1.0, source="references")
    weights = np.array([0.25, 0.0, 0.1875, 0.09375, 0.25])  # one zero: dropped, not forwarded
    out = {}
    for mode in ("off", "on"):
        ctx, pool = _context(world, _cfg(world, tmp_path, fused=mode, chunk_size=3, fused_chunk_size=5),
                             "uniform-fkl", student, teacher)
        assert use_fused(ctx.config, ctx.model) == (mode == "on")
        out[mode] = _loss_and_grads(ctx, pool[:5], weights, stage)
    (loss_off, g_off), (loss_on, g_on) = out["off"], out["on"]
    assert float(loss_off) > 0
    torch.testing.assert_close(loss_on, loss_off, rtol=1e-5, atol=1e-7)
    assert sorted(g_on) == sorted(g_off)
    assert "model.embed_tokens.weight" in g_on  # tied lm_head: divergence + lookup gradients add up
    for name in g_off:
        torch.testing.assert_close(g_on[name], g_off[name], rtol=1e-4, atol=1e-7, msg=name)


def test_fused_auto_follows_vocabulary(world, tmp_path):
    tok = build_char_tokenizer()
    cfg = _cfg(world, tmp_path)
    assert cfg.fused == "auto"
    assert not use_fused(cfg, tiny_model(tok, 0))  # V = len(tok), small
    assert use_fused(cfg, tiny_model(tok, 0, hidden=16, vocab_size=FUSED_AUTO_MIN_VOCAB))
    with pytest.raises(ValueError, match="fused"):
        _cfg(world, tmp_path, fused="yes")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


@pytest.mark.parametrize("fused", ["off", "on"])
def test_shared_cache_run_equals_live_teacher_run(world, tmp_path, fused):
    """Exact shared cache (built once) vs teacher logits computed live: same trained parameters."""
    cache_path = tmp_path / "cache" / "teacher.npz"
    cache = build_teacher_cache(world["teacher"], "toy_arith", world["data"], None, str(cache_path), batch_size=3)
    assert cache_path.is_file() and cache.top_k is None and len(cache) == 8
    assert json.loads(sidecar_path(cache_path).read_text())["problems"] == 8
    live = distill(_cfg(world, tmp_path / "live", fused=fused), "uniform-fkl").final_checkpoint
    shared = distill(_cfg(world, tmp_path / "shared", fused=fused, teacher_cache_path=str(cache_path)),
                     "uniform-fkl").final_checkpoint
    start = _weights(Path(world["student"]))
    a, b = _weights(live), _weights(shared)
    assert any(not torch.equal(a[k], start[k]) for k in a)  # it trained
    for key in a:  # Adam (lr 1e-2) turns fp32 noise in near-zero grads into ~1e-5 steps; a wrong teacher moves ~1e-2
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=5e-5)


def test_shared_cache_refuses_stale_references_and_wrong_top_k(world, tmp_path):
    cache_path = tmp_path / "teacher.npz"
    build_teacher_cache(world["teacher"], "toy_arith", world["data"], None, str(cache_path))
    tok = build_char_tokenizer()
    ctx, pool = _context(world, _cfg(world, tmp_path, teacher_cache_path=str(cache_path)), "uniform-fkl",
                         tiny_model(tok, 0), tiny_model(tok, 1, hidden=48))
    stage = StageSpec(divergence="forward_kl", fraction=1.0)
    first = pool[0].id
    ctx.references[first] = list(reversed(ctx.references[first]))  # same length, different tokens
    with pytest.raises(ValueError, match="different reference"):
        batch_loss(ctx, pool[:2], np.ones(2), stage, step=0)
    with pytest.raises(ValueError, match="top_k"):
        TeacherScorer(ctx.teacher.model, 0).load_shared(cache_path, top_k=4)


def test_self_teacher_and_on_policy_never_read_the_shared_cache(world, tmp_path, monkeypatch):
    """The cache is only for a separate teacher on fixed references: other stages ignore even a bad path."""
    tok = build_char_tokenizer()
    cfg = _cfg(world, tmp_path, teacher_cache_path=str(tmp_path / "does-not-exist.npz"))
    ctx, pool = _context(world, cfg, "uniform-fkl", tiny_model(tok, 0), tiny_model(tok, 1, hidden=48))
    fkl = StageSpec(divergence="forward_kl", fraction=1.0)
    with pytest.raises(FileNotFoundError):
        batch_loss(ctx, pool[:2], np.ones(2), fkl, step=0)
    monkeypatch.setattr(step_mod, "sample_responses", lambda c, docs, step: [c.references[d.id] for d in docs])
    rkl = StageSpec(divergence="reverse_kl", fraction=1.0)
    assert rkl.on_policy and torch.isfinite(batch_loss(ctx, pool[:2], np.ones(2), rkl, step=0))
    student = tiny_model(tok, 0)
    ctx_self, _ = _context(world, cfg, "self-paced-rkl", student, student)
    ctx_self.references = ctx.references
    assert torch.isfinite(batch_loss(ctx_self, pool[:2], np.ones(2), fkl, step=0))


def test_top_k_shared_cache_bounds_exact_and_fuses(world, tmp_path):
    tok = build_char_tokenizer()
    exact, topk = tmp_path / "exact.npz", tmp_path / "top8.npz"
    build_teacher_cache(world["teacher"], "toy_arith", world["data"], None, str(exact))
    build_teacher_cache(world["teacher"], "toy_arith", world["data"], None, str(topk), top_k=8)
    stage = StageSpec(divergence="forward_kl", fraction=1.0)
    losses = {}
    for name, path, k in (("exact", exact, None), ("top8", topk, 8)):
        for fused in ("off", "on"):
            cfg = _cfg(world, tmp_path, teacher_cache_path=str(path), teacher_cache_top_k=k, fused=fused)
            ctx, pool = _context(world, cfg, "uniform-fkl", tiny_model(tok, 0), tiny_model(tok, 1, hidden=48))
            losses[name, fused] = float(batch_loss(ctx, pool[:4], np.ones(4), stage, step=0).detach())
    for name in ("exact", "top8"):
        assert losses[name, "on"] == pytest.approx(losses[name, "off"], rel=1e-5)
    # bucket tail: 0 ≤ FKL_k ≤ FKL (coarse-graining never increases a KL), and k = 8 of V = 80 is not exact
    assert 0 < losses["top8", "off"] < losses["exact", "off"]
