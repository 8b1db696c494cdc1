import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from paced import DIVERGENCES, adaptive_kl, forward_kl, get_divergence, jsd, reverse_kl
from paced.divergences import adaptive_kl_tokens, forward_kl_tokens, jsd_tokens, reverse_kl_tokens

SEQ_FNS = {"forward_kl": forward_kl, "reverse_kl": reverse_kl, "jsd": jsd, "adaptive_kl": adaptive_kl}


def _logits(*shape: int, scale: float = 2.0) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64).float() * scale


def _naive_seq_mean(tok_fn, s, t, mask):
    """Loop over sequences and tokens: the reference for masking and chunking."""
    out = []
    for b in range(s.shape[0]):
        vals = [tok_fn(s[b, i:i + 1], t[b, i:i + 1])[0] for i in range(s.shape[1]) if mask[b, i]]
        out.append(torch.stack(vals).mean() if vals else torch.tensor(0.0))
    return torch.stack(out)


def test_kl_of_identical_is_zero():
    x = _logits(2, 5, 11)
    for name in DIVERGENCES:
        torch.testing.assert_close(get_divergence(name)(student_logits=x, teacher_logits=x.clone()),
                                   torch.zeros(2), atol=1e-6, rtol=0)


def test_two_token_by_hand():
    t = torch.log(torch.tensor([[0.75, 0.25]]))
    s = torch.log(torch.tensor([[0.5, 0.5]]))
    fkl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    rkl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert forward_kl_tokens(s, t).item() == pytest.approx(fkl, abs=1e-6)
    assert reverse_kl_tokens(s, t).item() == pytest.approx(rkl, abs=1e-6)
    m = [0.625, 0.375]  # beta = 0.5 mixture
    js = 0.5 * (0.75 * math.log(0.75 / m[0]) + 0.25 * math.log(0.25 / m[1])) \
        + 0.5 * (0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1]))
    assert jsd_tokens(s, t, 0.5).item() == pytest.approx(js, abs=1e-6)
    # AKL, mu = 0.5: the head is token 0 only (0.75 > 0.5 but the top token is always head); gaps 0.25 / 0.25
    assert adaptive_kl_tokens(s, t).item() == pytest.approx(0.5 * fkl + 0.5 * rkl, abs=1e-6)


def test_against_torch_kl_div():
    s, t = _logits(37, 50), _logits(37, 50)
    ls, lt = F.log_softmax(s, -1), F.log_softmax(t, -1)
    # F.kl_div(input, target) = KL(target ‖ input)
    fkl_ref = F.kl_div(ls, lt, reduction="none", log_target=True).sum(-1)
    rkl_ref = F.kl_div(lt, ls, reduction="none", log_target=True).sum(-1)
    torch.testing.assert_close(forward_kl_tokens(s, t), fkl_ref)
    torch.testing.assert_close(reverse_kl_tokens(s, t), rkl_ref)


@pytest.mark.parametrize("name", sorted(SEQ_FNS))
@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000])
def test_chunked_equals_naive_masked_mean(name, chunk_size):
    s, t = _logits(3, 6, 13), _logits(3, 6, 13)
    mask = torch.tensor([[1, 1, 0, 1, 0, 1], [0] * 6, [1] * 6], dtype=torch.bool)
    tok = get_divergence(name).tokens
    ref = _naive_seq_mean(tok, s, t, mask)
    got = SEQ_FNS[name](student_logits=s, teacher_logits=t, mask=mask, chunk_size=chunk_size)
    assert got.shape == (3,) and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)
    assert got[1].item() == 0.0
    full = SEQ_FNS[name](student_logits=s, teacher_logits=t, chunk_size=chunk_size)
    torch.testing.assert_close(full, _naive_seq_mean(tok, s, t, torch.ones(3, 6, dtype=torch.bool)),
                               atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(SEQ_FNS))
def test_masked_token_changes_nothing(name):
    s, t = _logits(2, 4, 9), _logits(2, 4, 9)
    mask = torch.tensor([[1, 0, 1, 1], [1, 1, 1, 0]])
    base = SEQ_FNS[name](student_logits=s, teacher_logits=t, mask=mask)
    s2, t2 = s.clone(), t.clone()
    s2[0, 1] += 100 * torch.randn(9)
    t2[1, 3] = float("nan")  # not even looked at
    torch.testing.assert_close(SEQ_FNS[name](student_logits=s2, teacher_logits=t2, mask=mask), base)


@pytest.mark.parametrize("name", sorted(SEQ_FNS))
def test_gradients_reach_only_the_student(name):
    s = _logits(2, 3, 7).requires_grad_()
    t = _logits(2, 3, 7).requires_grad_()
    SEQ_FNS[name](student_logits=s, teacher_logits=t, chunk_size=2).sum().backward()
    assert t.grad is None
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_fkl_gradient_closed_form():
    """d FKL / d student_logits = p_S − p_T per token (mean over 3 tokens → divided by 3)."""
    s = _logits(1, 3, 5).requires_grad_()
    t = _logits(1, 3, 5)
    forward_kl(student_logits=s, teacher_logits=t).sum().backward()
    torch.testing.assert_close(s.grad, (s.detach().softmax(-1) - t.softmax(-1)) / 3)


def test_all_masked_keeps_graph_and_is_zero():
    s = _logits(2, 3, 5).requires_grad_()
    out = forward_kl(student_logits=s, teacher_logits=_logits(2, 3, 5), mask=torch.zeros(2, 3))
    assert out.tolist() == [0.0, 0.0] and out.requires_grad
    out.sum().backward()
    assert torch.equal(s.grad, torch.zeros_like(s))


def test_bf16_teacher_is_upcast():
    s, t = _logits(2, 3, 17), _logits(2, 3, 17).bfloat16()
    out = forward_kl(student_logits=s, teacher_logits=t)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, forward_kl(student_logits=s, teacher_logits=t.float()))
    sb = s.bfloat16().requires_grad_()
    assert reverse_kl(student_logits=sb, teacher_logits=t).dtype == torch.float32


def test_jsd_endpoints_and_middle():
    s, t = _logits(2, 4, 10), _logits(2, 4, 10)
    kw = {"student_logits": s, "teacher_logits": t}
    assert torch.equal(jsd(**kw, beta=0.0), forward_kl(**kw))
    assert torch.equal(jsd(**kw, beta=1.0), reverse_kl(**kw))
    ps, pt = s.double().softmax(-1), t.double().softmax(-1)
    for beta in (0.1, 0.5, 0.9):  # TRL convention: M = beta p_T + (1 - beta) p_S
        m = beta * pt + (1 - beta) * ps
        ref = beta * (pt * (pt / m).log()).sum(-1) + (1 - beta) * (ps * (ps / m).log()).sum(-1)
        torch.testing.assert_close(jsd(student_logits=s, teacher_logits=t, beta=beta), ref.mean(-1).float())
    assert (jsd(student_logits=s, teacher_logits=t) <= math.log(2) + 1e-6).all()


def _naive_akl_token(s: torch.Tensor, t: torch.Tensor, mu: float) -> float:
    pt = t.double().softmax(-1).tolist()
    ps = s.double().softmax(-1).tolist()
    order = sorted(range(len(pt)), key=lambda v: -pt[v])
    g_head = g_tail = cum = 0.0
    for rank, v in enumerate(order):
        cum += pt[v]
        gap = abs(pt[v] - ps[v])
        if rank == 0 or cum <= mu:
            g_head += gap
        else:
            g_tail += gap
    fkl = sum(pt[v] * math.log(pt[v] / ps[v]) for v in range(len(pt)))
    rkl = sum(ps[v] * math.log(ps[v] / pt[v]) for v in range(len(pt)))
    return (g_head * fkl + g_tail * rkl) / (g_head + g_tail)


@pytest.mark.parametrize("mu", [0.0, 0.3, 0.5, 0.8])
def test_akl_against_naive(mu):
    s, t = _logits(6, 12), _logits(6, 12, scale=3.0)
    ref = torch.tensor([_naive_akl_token(s[i], t[i], mu) for i in range(6)], dtype=torch.float32)
    torch.testing.assert_close(adaptive_kl_tokens(s, t, mu), ref, atol=1e-5, rtol=1e-4)


def test_akl_limits():
    t = torch.log(torch.tensor([[0.35, 0.20, 0.15, 0.15, 0.15]]))
    head_only = torch.log(torch.tensor([[0.25, 0.30, 0.15, 0.15, 0.15]]))  # gap only in the top-2 (mu=0.6)
    tail_only = torch.log(torch.tensor([[0.35, 0.20, 0.25, 0.10, 0.10]]))
    torch.testing.assert_close(adaptive_kl_tokens(head_only, t, mu=0.6), forward_kl_tokens(head_only, t))
    torch.testing.assert_close(adaptive_kl_tokens(tail_only, t, mu=0.6), reverse_kl_tokens(tail_only, t))


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 3), t_len=st.integers(1, 4), v=st.integers(2, 9),
       name=st.sampled_from(sorted(SEQ_FNS)), chunk=st.integers(1, 5), seed=st.integers(0, 1000),
       scale=st.floats(0.1, 10.0))
def test_divergence_shapes_and_nonnegative(b, t_len, v, name, chunk, seed, scale):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(b, t_len, v, generator=g) * scale
    t = torch.randn(b, t_len, v, generator=g) * scale
    mask = torch.rand(b, t_len, generator=g) > 0.3
    out = SEQ_FNS[name](student_logits=s, teacher_logits=t, mask=mask, chunk_size=chunk)
    assert out.shape == (b,) and torch.isfinite(out).all() and (out >= -1e-5).all()


def test_bad_inputs():
    s = _logits(2, 3, 5)
    msg = r"student_logits shape \(2, 3, 5\) does not match teacher_logits shape \(2, 4, 5\)"
    with pytest.raises(ValueError, match=msg):
        forward_kl(student_logits=s, teacher_logits=_logits(2, 4, 5))
    with pytest.raises(ValueError, match=r"vocabulary size mismatch: student_logits V=5, teacher_logits V=6"):
        reverse_kl(student_logits=s, teacher_logits=_logits(2, 3, 6))
    with pytest.raises(ValueError, match=r"mask shape \(2, 4\) must be \[B, T\] = \(2, 3\)"):
        forward_kl(student_logits=s, teacher_logits=s, mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"mask must be bool or 0/1; got value 2"):
        forward_kl(student_logits=s, teacher_logits=s, mask=torch.full((2, 3), 2))
    with pytest.raises(ValueError, match=r"chunk_size must be a positive integer, got 0"):
        forward_kl(student_logits=s, teacher_logits=s, chunk_size=0)
    with pytest.raises(ValueError, match=r"student_logits must be a \[B, T, V\] tensor; got \(3, 5\)"):
        forward_kl(student_logits=s[0], teacher_logits=s[0])
    with pytest.raises(ValueError, match=r"beta=1.5 is out of range"):
        jsd(student_logits=s, teacher_logits=s, beta=1.5)
    with pytest.raises(ValueError, match=r"mu=-0.1 is out of range"):
        adaptive_kl(student_logits=s, teacher_logits=s, mu=-0.1)
    with pytest.raises(ValueError, match=r"unknown parameter.*beta.*divergence 'forward_kl'"):
        get_divergence("forward_kl", beta=0.5)
    with pytest.raises(ValueError, match=r"Did you mean 'reverse_kl'"):
        get_divergence("revers_kl")
    with pytest.raises(TypeError):
        forward_kl(s, s)  # keyword-only
