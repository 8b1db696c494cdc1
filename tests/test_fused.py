import logging

import pytest
import torch
import torch.nn.functional as F

from paced.divergences import get_divergence
from paced.fused import causal_lm_hidden, forward_kl_value_and_grad, fused_divergence

NAMES = [("forward_kl", {}), ("reverse_kl", {}), ("jsd", {"beta": 0.3}), ("adaptive_kl", {"mu": 0.5})]
B, T, H, HT, V = 3, 5, 8, 6, 37
MASK = torch.tensor([[1, 1, 0, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)


def _inputs(seed: int = 0, bias: bool = True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(B, T, H, generator=g).requires_grad_()
    w = (torch.randn(V, H, generator=g) * 0.7).requires_grad_()
    b = (torch.randn(V, generator=g) * 0.5).requires_grad_() if bias else None
    th, tw = torch.randn(B, T, HT, generator=g), torch.randn(V, HT, generator=g)
    return h, w, b, th, tw


def _grads(out: torch.Tensor, loss_weights: torch.Tensor | None, *params: torch.Tensor | None):
    live = [p for p in params if p is not None]
    loss = out.sum() if loss_weights is None else (loss_weights * out).sum() / loss_weights.sum()
    return torch.autograd.grad(loss, live)


def _reference(name, params, h, w, b, th, tw, mask, loss_weights=None):
    out = get_divergence(name, **params)(student_logits=F.linear(h, w, b), teacher_logits=F.linear(th, tw),
                                         mask=mask)
    return out, _grads(out, loss_weights, h, w, b)


@pytest.mark.parametrize(("name", "params"), NAMES)
@pytest.mark.parametrize("chunk_size", [2, 100])
def test_values_and_gradients_match_logits_path(name, params, chunk_size):
    h, w, b, th, tw = _inputs()
    ref, ref_g = _reference(name, params, h, w, b, th, tw, MASK)
    out = fused_divergence(name, student_hidden=h, student_weight=w, student_bias=b, teacher_hidden=th,
                           teacher_weight=tw, mask=MASK, chunk_size=chunk_size, **params)
    assert out.shape == (B,) and out.dtype == torch.float32 and out[1].item() == 0.0
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    for got, want in zip(_grads(out, None, h, w, b), ref_g, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("name", "params"), [NAMES[0], NAMES[1]])
@pytest.mark.parametrize("mode", ["hint", "no_hint", "recompute"])
def test_weighted_loss_gradients_every_mode(name, params, mode, caplog):
    """PACED weights upstream: the hint path rescales, the others recompute; all give the reference gradients."""
    h, w, b, th, tw = _inputs(1)
    lw = torch.tensor([0.25, 0.1, 0.0])
    _, ref_g = _reference(name, params, h, w, b, th, tw, MASK, lw)
    kw = {"grad_weights": lw} if mode == "hint" else {"recompute": mode == "recompute"}
    with caplog.at_level(logging.DEBUG, logger="paced.fused"):
        out = fused_divergence(name, student_hidden=h, student_weight=w, student_bias=b, teacher_hidden=th,
                               teacher_weight=tw, mask=MASK, chunk_size=3, **kw, **params)
        got_g = _grads(out, lw, h, w, b)
    assert ("recomputing" in caplog.text) == (mode == "no_hint")
    for got, want in zip(got_g, ref_g, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_teacher_logits_no_bias_and_flat_input():
    h, w, _, th, tw = _inputs(2, bias=False)
    t_logits = F.linear(th, tw)
    ref, ref_g = _reference("forward_kl", {}, h, w, None, th, tw, None)
    out = fused_divergence(student_hidden=h, student_weight=w, teacher_logits=t_logits, chunk_size=4)
    torch.testing.assert_close(out, ref)
    for got, want in zip(_grads(out, None, h, w), ref_g, strict=True):
        torch.testing.assert_close(got, want)
    one = fused_divergence(student_hidden=h[0], student_weight=w, teacher_hidden=th[0], teacher_weight=tw)
    torch.testing.assert_close(one, ref[:1])


def test_second_backward_with_retained_graph_is_the_same():
    h, w, b, th, tw = _inputs(3)
    out = fused_divergence("reverse_kl", student_hidden=h, student_weight=w, student_bias=b, teacher_hidden=th,
                           teacher_weight=tw, mask=MASK, chunk_size=2)
    first = torch.autograd.grad(out.sum(), (h, w, b), retain_graph=True)
    second = torch.autograd.grad(out.sum(), (h, w, b))
    for x, y in zip(first, second, strict=True):
        torch.testing.assert_close(x, y)


def test_all_masked_is_zero_with_zero_gradients():
    h, w, b, th, tw = _inputs(4)
    out = fused_divergence(student_hidden=h, student_weight=w, student_bias=b, teacher_hidden=th,
                           teacher_weight=tw, mask=torch.zeros(B, T))
    assert out.tolist() == [0.0] * B and out.requires_grad
    for g in torch.autograd.grad(out.sum(), (h, w, b)):
        assert torch.equal(g, torch.zeros_like(g))


def test_fkl_closed_form_matches_autograd():
    g = torch.Generator().manual_seed(5)
    s, t = torch.randn(4, V, generator=g) * 3, torch.randn(4, V, generator=g) * 3
    t[0, :5] = -float("inf")  # teacher zeros: 0 · log 0 = 0
    z = s.clone().requires_grad_()
    ref = get_divergence("forward_kl").tokens(z, t)
    value, grad = forward_kl_value_and_grad(s, t)
    torch.testing.assert_close(value, ref.detach())
    torch.testing.assert_close(grad, torch.autograd.grad(ref.sum(), z)[0])


def test_bf16_student_is_close_to_fp32():
    h, w, b, th, tw = _inputs(6)
    ref = fused_divergence(student_hidden=h, student_weight=w, student_bias=b, teacher_hidden=th, teacher_weight=tw)
    hb, wb = h.detach().bfloat16().requires_grad_(), w.detach().bfloat16().requires_grad_()
    out = fused_divergence(student_hidden=hb, student_weight=wb, teacher_hidden=th, teacher_weight=tw,
                           student_bias=b.detach().bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref.detach(), atol=0.05, rtol=0.05)
    out.sum().backward()
    assert hb.grad.dtype == torch.bfloat16 and wb.grad.dtype == torch.bfloat16


def test_bad_inputs():
    h, w, _, th, tw = _inputs()
    with pytest.raises(ValueError, match="exactly one teacher"):
        fused_divergence(student_hidden=h, student_weight=w, teacher_hidden=th)
    with pytest.raises(ValueError, match="exactly one teacher"):
        fused_divergence(student_hidden=h, student_weight=w, teacher_hidden=th, teacher_weight=tw,
                         teacher_logits=torch.zeros(B, T, V))
    with pytest.raises(ValueError, match=r"student_weight shape \(37, 7\) must be \[V, H\] with H = 8"):
        fused_divergence(student_hidden=h, student_weight=w[:, :7], teacher_hidden=th, teacher_weight=tw)
    with pytest.raises(ValueError, match=r"vocabulary size mismatch"):
        fused_divergence(student_hidden=h, student_weight=w, teacher_logits=torch.zeros(B, T, V + 1))
    with pytest.raises(ValueError, match=r"mask shape \(3, 4\)"):
        fused_divergence(student_hidden=h, student_weight=w, teacher_hidden=th, teacher_weight=tw,
                         mask=torch.ones(B, 4))
    with pytest.raises(ValueError, match="unknown parameter"):
        fused_divergence("forward_kl", student_hidden=h, student_weight=w, teacher_hidden=th, teacher_weight=tw,
                         beta=0.5)


@pytest.mark.parametrize("tied", [False, True])
def test_causal_lm_hidden_reproduces_logits_and_gradients(tied):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=41, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=8, tie_word_embeddings=tied)
    model = Qwen3ForCausalLM(cfg).float()
    ids = torch.randint(0, 41, (2, 6))
    attn = torch.ones(2, 6, dtype=torch.long)
    hidden, weight, bias = causal_lm_hidden(model, ids, attn)
    assert bias is None and (weight is model.get_input_embeddings().weight) == tied
    logits = model(input_ids=ids, attention_mask=attn).logits
    torch.testing.assert_close(F.linear(hidden, weight), logits)
    teacher = torch.randn(2, 6, 41)
    mask = torch.tensor([[0, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]])
    ref = get_divergence("forward_kl")(student_logits=logits, teacher_logits=teacher, mask=mask)
    ref_g = torch.autograd.grad(ref.sum(), list(model.parameters()))
    out = fused_divergence(student_hidden=hidden, student_weight=weight, teacher_logits=teacher, mask=mask)
    torch.testing.assert_close(out, ref)
    for got, want in zip(torch.autograd.grad(out.sum(), list(model.parameters())), ref_g, strict=True):
        torch.testing.assert_close(got, want)


def test_causal_lm_hidden_through_ddp_matches_logits_path_and_syncs(tmp_path):
    """A DDP-wrapped student fuses through its wrapper: same loss and gradients as the logits path,
    and the gradients arrive through DDP's reducer (the wrapper saw the forward)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from paced.fused import is_ddp

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        cfg = Qwen3Config(vocab_size=41, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=8, tie_word_embeddings=True)
        model = Qwen3ForCausalLM(cfg).float()
        ddp = DistributedDataParallel(model)
        assert is_ddp(ddp) and not is_ddp(model)
        ids = torch.randint(0, 41, (2, 6))
        attn = torch.ones(2, 6, dtype=torch.long)
        teacher = torch.randn(2, 6, 41)
        mask = torch.tensor([[0, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]])
        ref = get_divergence("forward_kl")(student_logits=model(input_ids=ids, attention_mask=attn).logits,
                                           teacher_logits=teacher, mask=mask)
        ref_g = torch.autograd.grad(ref.sum(), list(model.parameters()))
        hidden, weight, _ = causal_lm_hidden(ddp, ids, attn)
        assert weight is model.get_output_embeddings().weight
        out = fused_divergence(student_hidden=hidden, student_weight=weight, teacher_logits=teacher, mask=mask)
        torch.testing.assert_close(out, ref)
        out.sum().backward()  # through DDP's reducer: .grad is filled by its all-reduce hooks
        for p, want in zip(model.parameters(), ref_g, strict=True):
            torch.testing.assert_close(p.grad, want)
    finally:
        dist.destroy_process_group()
