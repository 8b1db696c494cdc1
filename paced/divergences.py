"""Token-level, full-vocabulary divergences between teacher and student, from logits.

Conventions (one name, one direction):

- ``forward_kl`` = KL(teacher ‖ student) = Σ_v p_T(v) [log p_T(v) − log p_S(v)]   (mode covering)
- ``reverse_kl`` = KL(student ‖ teacher) = Σ_v p_S(v) [log p_S(v) − log p_T(v)]   (mode seeking)
- ``jsd``        = TRL's ``generalized_jsd_loss`` (GKD, Agarwal et al. 2024, Eq. 1)
- ``adaptive_kl`` = AKL (Wu et al. 2024), a per-token mixture of the two KLs

All math is fp32 (inputs of lower precision, e.g. bf16 teacher logits, are upcast), the teacher
is detached (gradients reach the student only), and the sequence-level functions return the
mean over unmasked tokens of each sequence, shape [B], so per-problem weights can apply. They
work in chunks of ``chunk_size`` unmasked tokens, so the extra memory is O(chunk_size × V)
rather than O(B × T × V); masked tokens are never computed on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paced._checks import check_finite_scalar, check_positive_int, check_unknown_params
from paced._lazy import LazyModule
from paced.registry import Registry

if TYPE_CHECKING:
    import torch
else:  # imported by the first loss computed: the method specs that report jobs read name divergences only
    torch = LazyModule("torch", globals())

DEFAULT_CHUNK_SIZE = 1024  # tokens; at V = 151,936 one fp32 chunk is ~0.6 GB


def _log_softmax32(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), dim=-1)


def _kl_from_logp(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) = Σ_v p (log p − log q) over the last dim; 0 · log 0 = 0. [N, V] -> [N]."""
    p = logp.exp()
    return torch.where(p > 0, p * (logp - logq), torch.zeros_like(p)).sum(-1)


def _check_token_shapes(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise ValueError(f"vocabulary size mismatch: student_logits V={student_logits.shape[-1]}, "
                         f"teacher_logits V={teacher_logits.shape[-1]}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits shape {tuple(student_logits.shape)} does not match "
                         f"teacher_logits shape {tuple(teacher_logits.shape)}")


def forward_kl_tokens(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-token KL(p_T ‖ p_S) = Σ_v p_T (log p_T − log p_S). Logits [N, V] -> [N] (fp32)."""
    _check_token_shapes(student_logits, teacher_logits)
    return _kl_from_logp(_log_softmax32(teacher_logits.detach()), _log_softmax32(student_logits))


def reverse_kl_tokens(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-token KL(p_S ‖ p_T) = Σ_v p_S (log p_S − log p_T). Logits [N, V] -> [N] (fp32)."""
    _check_token_shapes(student_logits, teacher_logits)
    return _kl_from_logp(_log_softmax32(student_logits), _log_softmax32(teacher_logits.detach()))


def jsd_tokens(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """Per-token generalized JSD in TRL's ``generalized_jsd_loss`` convention. [N, V] -> [N].

    For 0 < β < 1, with the mixture M = β p_T + (1 − β) p_S:

        JSD_β = β KL(p_T ‖ M) + (1 − β) KL(p_S ‖ M)        (β = ½: the symmetric JSD, ≤ log 2)

    and, exactly as TRL special-cases its endpoints, β = 0 is forward KL(p_T ‖ p_S) and β = 1 is
    reverse KL(p_S ‖ p_T). (The formula itself tends to 0 at both ends, so the family is
    discontinuous there; β is a direction switch at the ends, an interpolation inside.)
    """
    beta = check_finite_scalar("beta", beta, low=0.0, high=1.0)
    if beta == 0.0:
        return forward_kl_tokens(student_logits, teacher_logits)
    if beta == 1.0:
        return reverse_kl_tokens(student_logits, teacher_logits)
    _check_token_shapes(student_logits, teacher_logits)
    log_s = _log_softmax32(student_logits)
    log_t = _log_softmax32(teacher_logits.detach())
    log_m = torch.logsumexp(torch.stack([log_s + math.log1p(-beta), log_t + math.log(beta)]), dim=0)
    return beta * _kl_from_logp(log_t, log_m) + (1.0 - beta) * _kl_from_logp(log_s, log_m)


def akl_head_weight(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    mu: float = 0.5) -> torch.Tensor:
    """AKL's head share g_head / (g_head + g_tail) per token, from detached probabilities. [N, V] -> [N].

    Sort the vocabulary by p_T, descending; the head is the prefix whose cumulative p_T is ≤ μ
    (the top token always belongs to it), the tail the rest. g_head = Σ_head |p_T − p_S|,
    g_tail = Σ_tail |p_T − p_S|. When both gaps are 0 (p_S = p_T, where both KLs are 0 too) the
    share is ½ instead of 0/0.
    """
    mu = check_finite_scalar("mu", mu, low=0.0, high=1.0)
    with torch.no_grad():
        p_t = torch.softmax(teacher_logits.detach().float(), dim=-1)
        p_s = torch.softmax(student_logits.detach().float(), dim=-1)
        p_t_sorted, order = p_t.sort(dim=-1, descending=True)
        gap = (p_t_sorted - p_s.gather(-1, order)).abs()
        tail = p_t_sorted.cumsum(-1) > mu
        tail[..., 0] = False
        g_tail = (gap * tail).sum(-1)
        denom = gap.sum(-1)
        g_head = denom - g_tail
        return torch.where(denom > 0, g_head / denom.clamp_min(torch.finfo(denom.dtype).tiny),
                           torch.full_like(denom, 0.5))


def adaptive_kl_tokens(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       mu: float = 0.5) -> torch.Tensor:
    """Per-token Adaptive KL (Wu et al. 2024, arXiv 2404.02657). [N, V] -> [N].

    Our reading of the paper and of its public code: forward KL fits the teacher's head (high
    probability tokens) first and reverse KL its tail, so AKL weights each by the gap the student
    still has in the other part, per token:

        AKL_t = g_head/(g_head + g_tail) · FKL_t + g_tail/(g_head + g_tail) · RKL_t

    with the gaps from :func:`akl_head_weight` (student probabilities detached, so the weights are
    constants for the gradient). All gap in the head gives FKL; all in the tail gives RKL.
    """
    _check_token_shapes(student_logits, teacher_logits)
    w_head = akl_head_weight(student_logits, teacher_logits, mu)
    fkl = forward_kl_tokens(student_logits, teacher_logits)
    rkl = reverse_kl_tokens(student_logits, teacher_logits)
    return w_head * fkl + (1.0 - w_head) * rkl


def as_bool_mask(mask: Any, b: int, t: int, device: torch.device) -> torch.Tensor:
    """A [B, T] mask (bool or 0/1, any array-like; None = all True) as a bool tensor on ``device``."""
    if mask is None:
        return torch.ones(b, t, dtype=torch.bool, device=device)
    mask = torch.as_tensor(mask, device=device)
    if tuple(mask.shape) != (b, t):
        raise ValueError(f"mask shape {tuple(mask.shape)} must be [B, T] = {(b, t)}")
    if mask.dtype != torch.bool:
        bad = (mask != 0) & (mask != 1)
        if bool(bad.any()):
            raise ValueError(f"mask must be bool or 0/1; got value {mask[bad][0].item()!r}")
        mask = mask != 0
    return mask


def unmasked_rows(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat row indices of unmasked tokens [N], their sequence index [N], and tokens per sequence [B] (fp32)."""
    b, t = mask.shape
    rows = mask.reshape(-1).nonzero().squeeze(1)  # (N,)
    seq = torch.div(rows, t, rounding_mode="floor")
    return rows, seq, torch.bincount(seq, minlength=b).float()


def _check_sequence_inputs(student_logits: Any, teacher_logits: Any, mask: Any) -> torch.Tensor:
    """Validate [B, T, V] logits and a [B, T] mask; return the mask as bool (all True if None)."""
    for name, x in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a [B, T, V] tensor; got {shape}")
    _check_token_shapes(student_logits, teacher_logits)
    b, t, _ = student_logits.shape
    return as_bool_mask(mask, b, t, student_logits.device)


def sequence_mean(token_fn: Callable[..., torch.Tensor], *, student_logits: torch.Tensor,
                  teacher_logits: torch.Tensor, mask: Any = None,
                  chunk_size: int = DEFAULT_CHUNK_SIZE, **params: Any) -> torch.Tensor:
    """Per-sequence mean over unmasked tokens of ``token_fn`` ([N, V], [N, V] -> [N]). Returns [B] fp32.

    Unmasked rows of the flattened [B·T, V] logits are gathered once, then scored ``chunk_size`` at a time.
    A sequence with no unmasked token gets 0 (not NaN); the result stays attached to the
    student's graph even then.
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    mask = _check_sequence_inputs(student_logits, teacher_logits, mask)
    b, t, v = student_logits.shape
    flat_s = student_logits.reshape(b * t, v)
    flat_t = teacher_logits.detach().reshape(b * t, v)
    rows, seq, count = unmasked_rows(mask)
    # Gather the student's rows once and split them: the backward then writes one [N, V] gradient
    # (split's backward is a single cat), not one full [B·T, V] zero-filled gradient per chunk.
    student_rows = flat_s if rows.numel() == b * t else flat_s.index_select(0, rows)  # (N, V)
    total = flat_s[:0].float().sum() + torch.zeros(b, dtype=torch.float32, device=student_logits.device)
    for i, s_chunk in enumerate(student_rows.split(chunk_size)):
        start = i * chunk_size
        idx = rows[start:start + chunk_size]
        tok = token_fn(s_chunk, flat_t.index_select(0, idx), **params)  # (chunk,)
        total = total.index_add(0, seq[start:start + chunk_size], tok)
    return total / count.clamp_min(1.0)


def forward_kl(*, student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: Any = None,
               chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    """Per-sequence mean of KL(p_T ‖ p_S) over unmasked tokens. Logits [B, T, V], mask [B, T] -> [B]."""
    return sequence_mean(forward_kl_tokens, student_logits=student_logits, teacher_logits=teacher_logits,
                         mask=mask, chunk_size=chunk_size)


def reverse_kl(*, student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: Any = None,
               chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    """Per-sequence mean of KL(p_S ‖ p_T) over unmasked tokens. Logits [B, T, V], mask [B, T] -> [B]."""
    return sequence_mean(reverse_kl_tokens, student_logits=student_logits, teacher_logits=teacher_logits,
                         mask=mask, chunk_size=chunk_size)


def jsd(*, student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: Any = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE, beta: float = 0.5) -> torch.Tensor:
    """Per-sequence mean of :func:`jsd_tokens` (TRL convention: β = 0 FKL, β = 1 RKL). -> [B]."""
    beta = check_finite_scalar("beta", beta, low=0.0, high=1.0)
    return sequence_mean(jsd_tokens, student_logits=student_logits, teacher_logits=teacher_logits,
                         mask=mask, chunk_size=chunk_size, beta=beta)


def adaptive_kl(*, student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: Any = None,
                chunk_size: int = DEFAULT_CHUNK_SIZE, mu: float = 0.5) -> torch.Tensor:
    """Per-sequence mean of :func:`adaptive_kl_tokens` (AKL, head mass μ). -> [B]."""
    mu = check_finite_scalar("mu", mu, low=0.0, high=1.0)
    return sequence_mean(adaptive_kl_tokens, student_logits=student_logits, teacher_logits=teacher_logits,
                         mask=mask, chunk_size=chunk_size, mu=mu)


@dataclass(frozen=True)
class DivergenceSpec:
    """A registered divergence: its token-level function and its parameters' defaults and ranges."""

    token_fn: Callable[..., torch.Tensor]
    defaults: dict[str, float] = field(default_factory=dict)


DIVERGENCES: Registry[DivergenceSpec] = Registry("divergence")
DIVERGENCES.add("forward_kl", DivergenceSpec(forward_kl_tokens))
DIVERGENCES.add("reverse_kl", DivergenceSpec(reverse_kl_tokens))
DIVERGENCES.add("jsd", DivergenceSpec(jsd_tokens, {"beta": 0.5}))
DIVERGENCES.add("adaptive_kl", DivergenceSpec(adaptive_kl_tokens, {"mu": 0.5}))


@dataclass(frozen=True)
class Divergence:
    """A configured divergence; call it like :func:`forward_kl` (keyword-only, returns [B])."""

    name: str
    params: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        spec = DIVERGENCES.get(self.name)
        check_unknown_params(f"divergence {self.name!r}", dict(self.params), set(spec.defaults))
        for key, value in self.params:  # beta and mu both live in [0, 1]
            check_finite_scalar(key, value, low=0.0, high=1.0)

    def tokens(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """Token-level values, logits [N, V] -> [N]."""
        return DIVERGENCES.get(self.name).token_fn(student_logits, teacher_logits, **dict(self.params))

    def __call__(self, *, student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: Any = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
        return sequence_mean(DIVERGENCES.get(self.name).token_fn, student_logits=student_logits,
                             teacher_logits=teacher_logits, mask=mask, chunk_size=chunk_size,
                             **dict(self.params))


def get_divergence(name: str, **params: float) -> Divergence:
    """A divergence by name: ``forward_kl``, ``reverse_kl``, ``jsd`` (beta), ``adaptive_kl`` (mu)."""
    spec = DIVERGENCES.get(name)
    check_unknown_params(f"divergence {name!r}", params, set(spec.defaults))
    return Divergence(name, tuple(sorted({**spec.defaults, **params}.items())))
