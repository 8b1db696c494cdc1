"""Full-vocabulary divergences from hidden states and ``lm_head`` weights, chunk by chunk over tokens.

At Qwen3's vocabulary (V = 151,936) one fp32 [4096, V] logits tensor is ~2.5 GB, and a divergence
from logits keeps several of them (both models' log-probs, their product, the gradient). Here the
student's logits z = h Wᵀ (+ b) and the teacher's are formed ``chunk_size`` tokens at a time, so the
extra memory is O(chunk_size × V) + the [V, H] weight gradient; the full [N, V] logits of either model
never exist at once.

Gradients. For each chunk, g = ∂ℓ_t/∂z (per token t, [n, V]) is formed while the chunk's logits are
at hand; then ∂/∂h = c ⊙ (g W) and ∂/∂W = Σ_t c_t g_tᵀ h_t, ∂/∂b = Σ_t c_t g_t, with c_t the upstream
gradient of token t's value. c is not known in the forward pass, so by default the forward pass
stores g W unscaled ([N, H]) and Σ_t ĉ_t g_tᵀ h_t for an expected ĉ (the "hint": ``grad_weights`` [B]
/ tokens per sequence; ones by default, i.e. the gradient of ``out.sum()``). When the actual c is
proportional to ĉ (always so for ``weighted_loss(out, w)`` with ``grad_weights=w``), backward only
rescales; otherwise (or with ``recompute=True``) backward recomputes each chunk's logits. Both are
exact; the first costs the same four [n, H] × [H, V] products per chunk as the logits path, the
second six.

Values and gradients match :mod:`paced.divergences` (tests compare them with ``assert_close``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from paced._checks import check_positive_int
from paced.divergences import as_bool_mask, get_divergence, unmasked_rows
from paced.teacher_cache import CacheEntry, forward_kl_tokens_from_cache, select_rows

log = logging.getLogger(__name__)

DEFAULT_FUSED_CHUNK_SIZE = 256  # tokens; at V = 151,936 one fp32 [256, V] tensor is ~0.16 GB
# (student logits chunk [n, V] fp32, flat row indices [n]) -> per-token values [n] fp32, differentiable in the logits
TokenLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def forward_kl_value_and_grad(student_logits: torch.Tensor,
                              teacher_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FKL_t = Σ_v p_T (log p_T − log p_S) and its closed-form gradient ∂FKL_t/∂z = p_S − p_T.

    Logits [n, V] (any float dtype; math in fp32) -> values [n], gradient [n, V] fp32. Written with
    in-place ops (3 [n, V] buffers): this is the hot loop of the fused path.
    """
    log_s = torch.log_softmax(student_logits.float(), dim=-1)  # (n, V)
    log_t = torch.log_softmax(teacher_logits.float(), dim=-1)
    p_t = log_t.exp()
    value = torch.linalg.vecdot(p_t, log_t.sub_(log_s))  # (n,); NaN where p_T = 0 met log p_T = −inf
    bad = value.isnan()
    if bool(bad.any()):  # 0 · log 0 = 0: redo those rows with an explicit guard
        lt = torch.log_softmax(teacher_logits[bad].float(), dim=-1)
        value[bad] = torch.where(p_t[bad] > 0, p_t[bad] * (lt - log_s[bad]), torch.zeros_like(lt)).sum(-1)
    return value, log_s.exp_().sub_(p_t)


def _value_and_grad(fns: tuple, logits: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token values [n] and ∂value_t/∂z_t [n, V] fp32 for one chunk of student logits [n, V].

    ``fns`` = (token_loss, closed_form or None, teacher rows -> logits): the closed form when there
    is one, else autograd through ``token_loss`` on the chunk (the divergence's own token function).
    """
    token_loss, closed_form, teacher = fns
    if closed_form is not None:
        return closed_form(logits, teacher(rows))
    z = logits.detach().float().requires_grad_()
    with torch.enable_grad():
        value = token_loss(z, rows)
        (grad,) = torch.autograd.grad(value.sum(), z)  # rows are independent: row t of the grad is ∂ℓ_t/∂z_t
    return value.detach(), grad


class _FusedTokens(torch.autograd.Function):
    """Per-token divergence values [N] from student hidden states [N, H] and lm_head weight [V, H] (+ bias [V])."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                hint: torch.Tensor, fns: tuple, chunk_size: int, recompute: bool) -> torch.Tensor:
        n = hidden.shape[0]
        values = torch.empty(n, dtype=torch.float32, device=hidden.device)
        want_grad = any(ctx.needs_input_grad[:3])
        precompute = want_grad and not recompute
        grad_h = torch.empty(n, hidden.shape[1], dtype=torch.float32, device=hidden.device) if precompute else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if precompute else None
        grad_b = torch.zeros(weight.shape[0], dtype=torch.float32, device=weight.device) \
            if precompute and bias is not None else None
        for start in range(0, n, chunk_size):
            h = hidden[start:start + chunk_size]  # (n_c, H)
            rows = torch.arange(start, start + h.shape[0], device=hidden.device)
            logits = F.linear(h, weight, bias)  # (n_c, V)
            if not precompute:
                values[start:start + h.shape[0]] = fns[0](logits.float(), rows).detach()
                continue
            value, g = _value_and_grad(fns, logits, rows)  # (n_c,), (n_c, V)
            del logits
            values[start:start + h.shape[0]] = value
            grad_h[start:start + h.shape[0]] = g.to(weight.dtype) @ weight  # (n_c, H)
            scale = hint[start:start + h.shape[0]]
            _accumulate_weight_grads(grad_w, grad_b, g, scale, h)
        ctx.save_for_backward(hidden, weight, bias, hint)
        ctx.fns, ctx.chunk_size = fns, chunk_size
        ctx.precomputed = (grad_h, grad_w, grad_b) if precompute else None
        return values

    @staticmethod
    def backward(ctx: Any, grad_values: torch.Tensor) -> tuple:
        hidden, weight, bias, hint = ctx.saved_tensors
        c = grad_values.float()  # (N,)
        pre, ctx.precomputed = ctx.precomputed, None  # released; a second backward recomputes
        if pre is not None:
            lam = _proportionality(c, hint)
            if lam is not None:
                grad_h, grad_w, grad_b = pre
                grad_h = grad_h.mul_(c[:, None]).to(hidden.dtype)
                grad_w = grad_w.mul_(lam).to(weight.dtype)
                grad_b = grad_b.mul_(lam).to(bias.dtype) if grad_b is not None else None
                return grad_h, grad_w, grad_b, None, None, None, None
            log.debug("fused divergence: upstream gradient not proportional to the hint; recomputing logits")
        return (*_recompute_grads(ctx.fns, ctx.chunk_size, hidden, weight, bias, c), None, None, None, None)


def _accumulate_weight_grads(grad_w: torch.Tensor, grad_b: torch.Tensor | None, g: torch.Tensor,
                             scale: torch.Tensor, h: torch.Tensor) -> None:
    """grad_w += (scale ⊙ g)ᵀ h  ([V, n] @ [n, H]); grad_b += Σ_t scale_t g_t. In place, fp32 accumulators."""
    gs = g.mul_(scale[:, None])
    if h.dtype == torch.float32:
        grad_w.addmm_(gs.t(), h)
    else:
        grad_w.add_(gs.t().to(h.dtype) @ h)
    if grad_b is not None:
        grad_b.add_(gs.sum(0))


def _proportionality(c: torch.Tensor, hint: torch.Tensor) -> float | None:
    """λ with c = λ · hint (to fp32 rounding), or None when c is not proportional to the hint."""
    denom = float((hint * hint).sum())
    lam = float((c * hint).sum()) / denom if denom > 0 else 0.0
    err = float((c - lam * hint).abs().max()) if c.numel() else 0.0
    return lam if err <= 1e-5 * float(c.abs().max() if c.numel() else 0.0) else None


def _recompute_grads(fns: tuple, chunk_size: int, hidden: torch.Tensor, weight: torch.Tensor,
                     bias: torch.Tensor | None, c: torch.Tensor) -> tuple:
    """Gradients for upstream per-token gradient c [N], recomputing each chunk's logits."""
    grad_h = torch.empty(hidden.shape, dtype=torch.float32, device=hidden.device)
    grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
    grad_b = torch.zeros(weight.shape[0], dtype=torch.float32, device=weight.device) if bias is not None else None
    for start in range(0, hidden.shape[0], chunk_size):
        h = hidden[start:start + chunk_size]
        rows = torch.arange(start, start + h.shape[0], device=hidden.device)
        _, g = _value_and_grad(fns, F.linear(h, weight, bias), rows)
        g = g.mul_(c[start:start + h.shape[0], None])
        grad_h[start:start + h.shape[0]] = g.to(weight.dtype) @ weight
        _accumulate_weight_grads(grad_w, grad_b, g, torch.ones_like(c[:h.shape[0]]), h)
    return (grad_h.to(hidden.dtype), grad_w.to(weight.dtype),
            grad_b.to(bias.dtype) if grad_b is not None else None)


def _as_sequences(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
        raise ValueError(f"{name} must be a [B, T, H] or [N, H] tensor; got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    return x if x.dim() == 3 else x.unsqueeze(0)


def _teacher_rows(teacher_hidden: torch.Tensor | None, teacher_weight: torch.Tensor | None,
                  teacher_bias: torch.Tensor | None, teacher_logits: torch.Tensor | None,
                  shape: tuple[int, int], rows: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function: chunk row positions [n] (into the N unmasked tokens) -> teacher logits [n, V], no grad."""
    b, t = shape
    if (teacher_logits is None) == (teacher_hidden is None or teacher_weight is None):
        raise ValueError("give either teacher_hidden + teacher_weight or teacher_logits (exactly one teacher)")
    if teacher_logits is not None:
        if teacher_logits.dim() != 3 or tuple(teacher_logits.shape[:2]) != (b, t):
            raise ValueError(f"teacher_logits shape {tuple(teacher_logits.shape)} must be [B, T, V] with "
                             f"[B, T] = {(b, t)}")
        flat = teacher_logits.detach().reshape(b * t, -1)
        return lambda idx: flat.index_select(0, rows[idx])
    th = _as_sequences(teacher_hidden, "teacher_hidden")
    if tuple(th.shape[:2]) != (b, t):
        raise ValueError(f"teacher_hidden shape {tuple(teacher_hidden.shape)} must match the student's [B, T] = "
                         f"{(b, t)}")
    th = th.detach().reshape(b * t, -1).index_select(0, rows)  # (N, H')
    tw = teacher_weight.detach()
    tb = teacher_bias.detach() if teacher_bias is not None else None
    return lambda idx: F.linear(th.index_select(0, idx), tw, tb)


def fused_divergence(name: str = "forward_kl", *, student_hidden: torch.Tensor, student_weight: torch.Tensor,
                     student_bias: torch.Tensor | None = None, teacher_hidden: torch.Tensor | None = None,
                     teacher_weight: torch.Tensor | None = None, teacher_bias: torch.Tensor | None = None,
                     teacher_logits: torch.Tensor | None = None, mask: Any = None,
                     chunk_size: int = DEFAULT_FUSED_CHUNK_SIZE, grad_weights: Any = None,
                     recompute: bool = False, teacher_cache: CacheEntry | None = None, cache_tail: str = "bucket",
                     **params: float) -> torch.Tensor:
    """Per-sequence mean over unmasked tokens of a divergence (see :mod:`paced.divergences`), from hidden states.

    Student logits z = h Wᵀ + b with ``student_hidden`` h [B, T, H] (or [N, H], one sequence),
    ``student_weight`` W [V, H], ``student_bias`` b [V] or None; the teacher is either
    ``teacher_hidden`` [B, T, H'] + ``teacher_weight`` [V, H'] (+ ``teacher_bias``) or dense
    ``teacher_logits`` [B, T, V] or a batched ``teacher_cache`` entry ([B, T, ·] from
    :meth:`paced.teacher_cache.TeacherCache.batch`: exact ones work with every divergence, top-k ones
    with ``forward_kl`` only, their tail treated as ``cache_tail``).
    ``mask`` [B, T] (bool or 0/1; None = all). ``name`` and ``params`` as :func:`get_divergence`
    (``forward_kl``, ``reverse_kl``, ``jsd`` with beta, ``adaptive_kl`` with mu). Returns [B] fp32;
    gradients reach h, W, b only (the teacher is detached). ``grad_weights`` [B]: the per-sequence
    weights the result will be combined with (e.g. the PACED weights), so backward can reuse the
    gradients formed in the forward pass; any other use is still exact, only slower (see module doc).
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    div = get_divergence(name, **params)
    hidden = _as_sequences(student_hidden, "student_hidden")
    b, t, h_dim = hidden.shape
    if student_weight.dim() != 2 or student_weight.shape[1] != h_dim:
        raise ValueError(f"student_weight shape {tuple(student_weight.shape)} must be [V, H] with H = {h_dim}")
    mask = as_bool_mask(mask, b, t, hidden.device)
    rows, seq, count = unmasked_rows(mask)
    topk = teacher_cache is not None and not teacher_cache.exact
    if teacher_cache is not None:
        if teacher_hidden is not None or teacher_logits is not None:
            raise ValueError("give either teacher_hidden + teacher_weight, teacher_logits or teacher_cache "
                             "(exactly one teacher)")
        if tuple(teacher_cache.logp.shape[:2]) != (b, t) or teacher_cache.vocab_size != student_weight.shape[0]:
            raise ValueError(f"teacher_cache of shape {tuple(teacher_cache.logp.shape)} (V={teacher_cache.vocab_size}) "
                             f"does not match [B, T] = {(b, t)}, V = {student_weight.shape[0]}")
        if topk and name != "forward_kl":
            raise ValueError(f"a top-k teacher cache supports forward_kl only; got {name!r}")
        teacher_cache = teacher_cache.to(hidden.device)
        teacher_logits = None if topk else teacher_cache.logp
    teacher = None if topk else \
        _teacher_rows(teacher_hidden, teacher_weight, teacher_bias, teacher_logits, (b, t), rows)
    if teacher_logits is not None and teacher_logits.shape[-1] != student_weight.shape[0]:
        raise ValueError(f"vocabulary size mismatch: student_weight V={student_weight.shape[0]}, "
                         f"teacher_logits V={teacher_logits.shape[-1]}")
    w = torch.ones(b, device=hidden.device) if grad_weights is None else \
        torch.as_tensor(grad_weights, dtype=torch.float32, device=hidden.device).reshape(b)
    hint = (w / count.clamp_min(1.0))[seq]  # (N,): ∂(Σ_b w_b out_b)/∂ℓ_t

    def token_loss(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if topk:
            return forward_kl_tokens_from_cache(z, select_rows(teacher_cache, rows[idx]), cache_tail)
        return div.tokens(z, teacher(idx))

    closed = forward_kl_value_and_grad if name == "forward_kl" and not topk else None
    flat = hidden.reshape(b * t, h_dim)
    h_rows = flat if rows.numel() == b * t else flat.index_select(0, rows)  # (N, H)
    tok = _FusedTokens.apply(h_rows, student_weight, student_bias, hint, (token_loss, closed, teacher),
                             chunk_size, recompute)  # (N,)
    total = torch.zeros(b, dtype=torch.float32, device=hidden.device).index_add(0, seq, tok)
    return total / count.clamp_min(1.0)


def is_ddp(model: torch.nn.Module) -> bool:
    """Whether ``model`` is wrapped in ``DistributedDataParallel`` (as ``accelerate launch`` does on CPU/GPU)."""
    return isinstance(model, torch.nn.parallel.DistributedDataParallel)


def causal_lm_hidden(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                     position_ids: torch.Tensor | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Final hidden states [B, L, H] of a transformers causal LM, with its lm_head weight [V, H] and bias [V] | None.

    ``model(...).logits == F.linear(hidden, weight, bias)`` for models whose head is a plain linear
    layer (Llama, Qwen2/3, Mistral, ...: the final norm is inside ``model.base_model``). With tied
    embeddings the weight *is* the input embedding matrix, so its gradient from the divergence adds
    to the one from the embedding lookup, as in the unfused model. Models that scale or soft-cap
    their logits (``logit_scale``, ``final_logit_softcapping``) are refused rather than silently wrong.
    Slice the response positions from ``hidden`` (cheap: H, not V, wide) before the fused divergence.

    The model is always called through its root forward (a DDP or FSDP2 wrapper must see the forward
    to synchronise gradients or gather shards; a submodule such as ``base_model`` called alone would
    skip the root's all-gather) with ``output_hidden_states=True, logits_to_keep=1``: the last hidden
    state is the normed one, and only one position's logits are formed. Under FSDP2 the root's
    parameters, ``lm_head`` included, stay unsharded from the root forward until backward.
    """
    inner = model.module if is_ddp(model) else model
    cfg = getattr(inner, "config", None)
    for key in ("final_logit_softcapping", "logit_scale", "output_multiplier_scale"):
        value = getattr(cfg, key, None)
        if value not in (None, 1, 1.0):
            raise ValueError(f"{type(inner).__name__} has {key}={value!r}; the fused path assumes plain "
                             f"logits = lm_head(hidden)")
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                use_cache=False, output_hidden_states=True, logits_to_keep=1)
    hidden = out.hidden_states[-1]
    if hidden.shape[:2] != input_ids.shape:
        raise ValueError(f"{type(inner).__name__}: hidden_states[-1] has shape {tuple(hidden.shape)}; "
                         "the fused path needs the final hidden states (set fused: off)")
    head = inner.get_output_embeddings()  # after the forward: under FSDP2 its weight is the unsharded one
    if not isinstance(head, torch.nn.Linear):
        raise ValueError(f"output embeddings of {type(inner).__name__} are {type(head).__name__}, not nn.Linear")
    return hidden, head.weight, head.bias
