"""Per-problem weighted distillation loss over a micro-batch.

PACED's objective is L = Σᵢ w(p(xᵢ)) ℓᵢ, with ℓᵢ the token-mean divergence of sample i; the
authors' trainer normalises by Σᵢ wᵢ over the micro-batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from paced.divergences import get_divergence
from paced.normalisation import NORMALISATIONS


def weighted_loss(per_sequence_loss: torch.Tensor, weights: Any, normalisation: str = "sum") -> torch.Tensor:
    """Scalar weighted loss from per-sequence losses ℓ [B] and weights w [B] (w ≥ 0).

    - ``sum``:      Σ wᵢ ℓᵢ / Σ wᵢ
    - ``mean_one``: mean_i (wᵢ / mean w) · ℓᵢ
    - ``none``:     mean_i wᵢ ℓᵢ

    Within one batch ``sum`` and ``mean_one`` give the same value (mean(wℓ)/mean(w) = Σwℓ/Σw);
    they are separate names because the ablation axis names them and because ``mean_one``
    weights (mean 1) keep the loss on the unweighted scale when logged per sample.

    A batch whose weights are all zero (every problem has p̂ ∈ {0, 1} under a hard-zero kernel)
    returns a zero loss that keeps the graph (Σ of the dropped terms, i.e. ``(ℓ * 0).sum()`` with
    non-finite ℓ masked out). Zero-weight samples are dropped rather than multiplied by 0, so their
    loss may even be inf: the gradient reaching a dropped ℓᵢ is exactly 0. That is all this function
    can promise: ℓᵢ's own backward multiplies the 0 by its local derivative, and 0 · ∞ = NaN when the
    dropped problem's divergence is infinite (reverse KL against a teacher probability of 0). To keep
    dropped problems out of the graph altogether, compute ℓ on the live rows only:
    :func:`weighted_divergence` does that. ``weights`` may be a tensor, numpy array or list; it is a
    constant (detached) of ℓ's dtype and device. Raises ``ValueError`` on shape mismatch or negative
    weights.
    """
    reduce = NORMALISATIONS.get(normalisation).reduce
    if not isinstance(per_sequence_loss, torch.Tensor) or per_sequence_loss.dim() != 1:
        shape = tuple(per_sequence_loss.shape) if isinstance(per_sequence_loss, torch.Tensor) else None
        raise ValueError(f"per_sequence_loss must be a 1-D tensor [B]; got shape {shape}")
    w = torch.as_tensor(weights, device=per_sequence_loss.device).detach()  # a constant: no 0 · ∞ into its grad
    w = w.to(per_sequence_loss.dtype if per_sequence_loss.is_floating_point() else torch.float32)
    if w.shape != per_sequence_loss.shape:
        raise ValueError(f"weights shape {tuple(w.shape)} does not match per_sequence_loss shape "
                         f"{tuple(per_sequence_loss.shape)}")
    bad = ~(w >= 0) | torch.isinf(w)
    if bool(bad.any()):
        raise ValueError(f"weights must be finite and >= 0; got {w[bad][0].item()!r}")
    # Zero-weight terms are dropped, not multiplied, so an inf/NaN loss on a dropped problem stays out.
    wl = torch.where(w > 0, w * per_sequence_loss, torch.zeros_like(per_sequence_loss))
    if per_sequence_loss.numel() == 0 or not bool((w != 0).any()):
        return wl.sum()
    return reduce(wl, w)


def weighted_divergence(divergence: str | Callable[..., torch.Tensor], weights: Any, *,
                        student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor | None,
                        normalisation: str = "sum", **params: Any) -> torch.Tensor:
    """:func:`weighted_loss` of a per-sequence divergence computed on the rows with w > 0 only.

    ``divergence``: a registry name (``forward_kl``, ``reverse_kl``, ...; ``params`` are its parameters,
    e.g. AKL's ``mu``) or a function with the divergences' signature (``params`` are passed to it);
    logits [B, T, V], mask [B, T] or None, weights [B]. A zero-weight row never enters
    the graph, so its gradient is exactly 0 even when its divergence is infinite (where
    ``weighted_loss(divergence(...), w)`` gives NaN: 0 · ∞ in the divergence's backward). Same value
    as ``weighted_loss`` on the full batch for every normalisation (dropped rows count as ℓ = 0, as there).
    """
    fn = get_divergence(divergence, **params) if isinstance(divergence, str) else divergence
    kwargs = {} if isinstance(divergence, str) else params
    w = torch.as_tensor(weights, device=student_logits.device).detach()
    if w.dim() != 1 or w.shape[0] != student_logits.shape[0]:
        raise ValueError(f"weights shape {tuple(w.shape)} does not match the batch of student_logits "
                         f"{tuple(student_logits.shape)}; give one weight per sequence [B]")
    live = torch.nonzero(w > 0).squeeze(1)  # (b,)
    per_live = fn(student_logits=student_logits[live], teacher_logits=teacher_logits[live],
                  mask=None if mask is None else mask[live], **kwargs)  # (b,)
    full = torch.zeros(w.shape[0], dtype=per_live.dtype, device=per_live.device)  # (B,): dropped rows = 0
    return weighted_loss(full.index_copy(0, live, per_live), w, normalisation)
