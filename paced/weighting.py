"""Per-problem weighted distillation loss over a micro-batch.

PACED's objective is L = Σᵢ w(p(xᵢ)) ℓᵢ, with ℓᵢ the token-mean divergence of sample i; the
authors' trainer normalises by Σᵢ wᵢ over the micro-batch.
"""

from __future__ import annotations

from typing import Any

import torch

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
    non-finite ℓ masked out), so ``backward()`` gives zero gradients, never NaN. Zero-weight
    samples are dropped rather than multiplied by 0, so their loss may even be inf.
    ``weights`` may be a tensor, numpy array or list; it is treated as a constant of ℓ's dtype
    and device. Raises ``ValueError`` on shape mismatch or negative weights.
    """
    reduce = NORMALISATIONS.get(normalisation).reduce
    if not isinstance(per_sequence_loss, torch.Tensor) or per_sequence_loss.dim() != 1:
        shape = tuple(per_sequence_loss.shape) if isinstance(per_sequence_loss, torch.Tensor) else None
        raise ValueError(f"per_sequence_loss must be a 1-D tensor [B]; got shape {shape}")
    w = torch.as_tensor(weights, device=per_sequence_loss.device)
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
