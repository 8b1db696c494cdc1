import math

import numpy as np
import pytest
import torch

from paced.divergences import forward_kl, forward_kl_tokens
from paced.teacher_cache import (
    TeacherCache,
    build_entry,
    forward_kl_from_cache,
    forward_kl_tokens_from_cache,
)

V = 50


def _logits(*shape, scale=3.0, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def test_exact_entry_equals_logits_path():
    s, t = _logits(2, 7, V, seed=1).requires_grad_(), _logits(2, 7, V, seed=2)
    cache = TeacherCache(V)
    cache.add("a", t[0])
    cache.add("b", t[1, :5])  # a shorter reference: padded in the batch, masked out
    mask = torch.tensor([[1] * 7, [1] * 5 + [0, 0]])
    entry = cache.batch(["a", "b"])
    assert entry.exact and entry.logp.shape == (2, 7, V)
    ref = forward_kl(student_logits=s, teacher_logits=t, mask=mask)
    got = forward_kl_from_cache(s, entry, mask, chunk_size=3)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(torch.autograd.grad(got.sum(), s)[0], torch.autograd.grad(ref.sum(), s)[0])


def test_bucket_tail_by_hand():
    """k = 2 of 4 tokens: FKL_k = Σ_top p_T log(p_T/p_S) + r log(r / S_tail)."""
    p_t = torch.tensor([0.5, 0.3, 0.15, 0.05])
    p_s = torch.tensor([0.4, 0.2, 0.1, 0.3])
    entry = build_entry(p_t.log()[None], top_k=2)
    assert entry.ids.tolist() == [[0, 1]]
    torch.testing.assert_close(entry.tail_logp, torch.tensor([math.log(0.2)]))
    want = 0.5 * math.log(0.5 / 0.4) + 0.3 * math.log(0.3 / 0.2) + 0.2 * math.log(0.2 / 0.4)
    assert forward_kl_tokens_from_cache(p_s.log()[None], entry).item() == pytest.approx(want, abs=1e-6)
    uni = 0.5 * math.log(0.5 / 0.4) + 0.3 * math.log(0.3 / 0.2) + 0.1 * math.log(0.1 / 0.1) + 0.1 * math.log(0.1 / 0.3)
    assert forward_kl_tokens_from_cache(p_s.log()[None], entry, tail="uniform").item() == pytest.approx(uni, abs=1e-6)


def test_topk_error_shrinks_with_k_and_bucket_is_a_lower_bound():
    t = _logits(64, V, scale=4.0, seed=3)
    s = t + _logits(64, V, scale=1.0, seed=4)
    exact = forward_kl_tokens(s, t)
    errs = []
    for k in (2, 8, 32, V - 1):
        approx = forward_kl_tokens_from_cache(s, build_entry(t, k))
        assert (approx <= exact + 1e-5).all()  # coarse-graining never increases KL
        errs.append((exact - approx).abs().mean().item())
    assert errs == sorted(errs, reverse=True) and errs[-1] < 1e-4
    assert forward_kl_tokens_from_cache(s, build_entry(t, V)).sub(exact).abs().max() < 1e-6  # k ≥ V: exact


def test_topk_gradient_is_ps_minus_coarse_teacher():
    t, s = _logits(3, V, seed=5), _logits(3, V, seed=6).requires_grad_()
    entry = build_entry(t, 5)
    g = torch.autograd.grad(forward_kl_tokens_from_cache(s, entry).sum(), s)[0]
    p_s, p_t = s.detach().softmax(-1), t.softmax(-1)
    in_top = torch.zeros_like(p_t, dtype=torch.bool).scatter(-1, entry.ids, True)
    r = entry.tail_logp.exp()[:, None]
    s_tail = (p_s * ~in_top).sum(-1, keepdim=True)
    coarse = torch.where(in_top, p_t, r * p_s / s_tail)  # teacher's tail mass spread like the student's tail
    torch.testing.assert_close(g, p_s - coarse)


def test_peaked_teacher_with_zero_tail_is_finite():
    t = torch.full((2, V), -200.0)
    t[:, 0] = 200.0  # tail mass underflows to 0
    s = _logits(2, V, seed=7).requires_grad_()
    val = forward_kl_tokens_from_cache(s, build_entry(t, 4))
    val.sum().backward()
    assert torch.isfinite(val).all() and torch.isfinite(s.grad).all()
    torch.testing.assert_close(val, -torch.log_softmax(s.detach(), -1)[:, 0])


@pytest.mark.parametrize("top_k", [None, 6])
def test_save_load_roundtrip(tmp_path, top_k):
    cache = TeacherCache(V, top_k)
    cache.add("p/1", _logits(4, V, seed=8))
    cache.add("p 2", _logits(2, V, seed=9))
    cache.save(tmp_path / "cache.npz")
    back = TeacherCache.load(tmp_path / "cache.npz")
    assert list(back) == ["p/1", "p 2"] and back.top_k == top_k and back.nbytes == cache.nbytes
    for pid in cache:
        a, b = cache[pid], back[pid]
        torch.testing.assert_close(a.logp, b.logp, rtol=0, atol=0)
        assert (a.ids is None and b.ids is None) or torch.equal(a.ids, b.ids)
    with np.load(tmp_path / "cache.npz", allow_pickle=False) as data:
        assert "meta" in data


def test_bad_inputs():
    cache = TeacherCache(V, 4)
    cache.add("a", _logits(3, V))
    with pytest.raises(ValueError, match=r"teacher_logits V=49 does not match the cache's vocab_size=50"):
        cache.add("b", _logits(3, V - 1))
    with pytest.raises(ValueError, match=r"length=2 is shorter than the cached responses of \['a'\]"):
        cache.batch(["a"], length=2)
    with pytest.raises(ValueError, match=r"tail='flat' is not allowed"):
        forward_kl_tokens_from_cache(_logits(3, V), cache["a"], tail="flat")
    with pytest.raises(ValueError, match=r"vocabulary size mismatch"):
        forward_kl_tokens_from_cache(_logits(3, V + 1), cache["a"])
    with pytest.raises(ValueError, match=r"top_k must be a positive integer, got 0"):
        TeacherCache(V, 0)
    with pytest.raises(ValueError, match=r"cache entry shape"):
        forward_kl_from_cache(_logits(1, 4, V), cache.batch(["a"]))


@pytest.mark.parametrize("top_k", [None, 5])
def test_fused_path_reads_the_cache(top_k):
    from paced.fused import fused_divergence

    g = torch.Generator().manual_seed(10)
    h = torch.randn(2, 6, 8, generator=g).requires_grad_()
    w = torch.randn(V, 8, generator=g).requires_grad_()
    t = _logits(2, 6, V, seed=11)
    cache = TeacherCache(V, top_k)
    cache.add("a", t[0])
    cache.add("b", t[1, :4])
    mask = torch.tensor([[1] * 6, [1] * 4 + [0, 0]])
    entry = cache.batch(["a", "b"])
    ref = forward_kl_from_cache(h @ w.t(), entry, mask)
    ref_g = torch.autograd.grad(ref.sum(), (h, w))
    got = fused_divergence(student_hidden=h, student_weight=w, teacher_cache=entry, mask=mask, chunk_size=3)
    torch.testing.assert_close(got, ref)
    for a, b in zip(torch.autograd.grad(got.sum(), (h, w)), ref_g, strict=True):
        torch.testing.assert_close(a, b)
    if top_k is not None:
        with pytest.raises(ValueError, match="top-k teacher cache supports forward_kl only"):
            fused_divergence("reverse_kl", student_hidden=h, student_weight=w, teacher_cache=entry, mask=mask)


# --- at scale: sharded files read lazily, entries built in token chunks from hidden states ---


def _filled(top_k, n=7, seed=20):
    cache = TeacherCache(V, top_k)
    for i in range(n):
        cache.add(f"p{i}", _logits(3 + i % 4, V, seed=seed + i))
    return cache


@pytest.mark.parametrize("top_k", [None, 6])
def test_sharded_cache_equals_the_in_memory_cache(tmp_path, top_k):
    cache = _filled(top_k)
    cache.save(tmp_path / "c.npz", shard_tokens=8)  # 3..6 tokens a problem: several shards
    back = TeacherCache.load(tmp_path / "c.npz")
    assert len(list((tmp_path / "c.npz.shards").glob("*.logp.npy"))) >= 3
    assert list(back) == list(cache) and len(back) == 7 and back.nbytes == cache.nbytes
    ids = ["p5", "p0", "p3"]
    a, b = cache.batch(ids), back.batch(ids)
    torch.testing.assert_close(b.logp, a.logp, rtol=0, atol=0)
    assert (a.ids is None and b.ids is None) or torch.equal(a.ids, b.ids)
    assert (a.tail_logp is None and b.tail_logp is None) or torch.equal(a.tail_logp, b.tail_logp)


def test_a_read_touches_only_the_shards_of_its_batch(tmp_path):
    cache = _filled(6)
    cache.save(tmp_path / "c.npz", shard_tokens=8)
    back = TeacherCache.load(tmp_path / "c.npz")
    assert back.opened_shards == []  # loading reads only the index
    shard_of = back._reader.problems
    back.batch(["p1"])
    assert back.opened_shards == [shard_of["p1"][0]]
    untouched = {shard_of[p][0] for p in shard_of} - {shard_of["p1"][0], shard_of["p2"][0]}
    for i in untouched:  # shards outside the batch may even be gone
        for f in (tmp_path / "c.npz.shards").glob(f"{back._reader.shards[i]}.*"):
            f.unlink()
    back.batch(["p2", "p1"])
    assert set(back.opened_shards) == {shard_of["p1"][0], shard_of["p2"][0]}
    missing = next(p for p in shard_of if shard_of[p][0] in untouched)
    with pytest.raises(FileNotFoundError, match="rebuild the cache"):
        back.batch([missing])


@pytest.mark.parametrize("top_k", [None, 5])
def test_entry_from_hidden_in_token_chunks_equals_the_whole_logits(top_k):
    from paced.teacher_cache.build import entry_from_hidden

    g = torch.Generator().manual_seed(3)
    h, w, b = torch.randn(11, 8, generator=g), torch.randn(V, 8, generator=g), torch.randn(V, generator=g)
    ref = build_entry(h @ w.t() + b, top_k)
    got = entry_from_hidden(h, w, b, top_k, token_chunk=4)
    torch.testing.assert_close(got.logp, ref.logp)
    if top_k is not None:
        assert torch.equal(got.ids, ref.ids)
        torch.testing.assert_close(got.tail_logp, ref.tail_logp)


def test_cache_serves_every_stage_predicate():
    from paced.methods import get_method
    from paced.teacher_cache import cache_serves_every_stage

    assert cache_serves_every_stage(get_method("paced-fkl"), top_k=64)
    assert not cache_serves_every_stage(get_method("paced-fkl-then-rkl"), top_k=64)  # RKL on its own samples
    assert not cache_serves_every_stage(get_method("self-paced-rkl"), top_k=None)  # the self-teacher


def test_build_in_chunks_and_shards_equals_one_chunk_one_shard(tmp_path):
    """The stage on a tiny world: 3-token lm_head chunks and ~20-token shards give the same cache as one chunk
    and one shard, and the built cache reads lazily."""
    from _distill_world import build

    from paced.teacher_cache import build_teacher_cache

    world = build(tmp_path / "world", n_learnable=4, n_intractable=1)
    small = build_teacher_cache(world["teacher"], "toy_arith", world["data"], None, str(tmp_path / "a.npz"),
                                top_k=4, token_chunk=3, shard_tokens=20)
    whole = build_teacher_cache(world["teacher"], "toy_arith", world["data"], None, str(tmp_path / "b.npz"),
                                top_k=4, token_chunk=10**6, shard_tokens=10**9)
    assert len(list((tmp_path / "a.npz.shards").glob("*.logp.npy"))) > 1
    assert len(list((tmp_path / "b.npz.shards").glob("*.logp.npy"))) == 1
    assert list(small) == list(whole) and len(small) == 5 and small.opened_shards == []
    for pid in whole:
        a, b = small[pid], whole[pid]
        torch.testing.assert_close(a.logp, b.logp, rtol=1e-6, atol=1e-6)
        assert torch.equal(a.ids, b.ids)
        torch.testing.assert_close(a.tail_logp, b.tail_logp, rtol=1e-6, atol=1e-6)
