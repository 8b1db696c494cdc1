"""Per-problem gradients for the SNR measurement, compressed by a count sketch.

Storing one full gradient per problem costs N × D floats (0.44M parameters × 1,536 problems ≈ 2.7 GB
in fp32 for the toy student; far more for a real model). A count sketch S (each parameter index j
hashed to a bucket h(j) with a random sign s(j)) maps g ∈ R^D to Sg ∈ R^m with

    (Sg)_b = Σ_{j : h(j) = b} s(j) g_j,        E[⟨Sx, Sy⟩] = ⟨x, y⟩,

so norms, means and covariance traces — all the SNR needs — are preserved in expectation, with
relative error O(1/√m) on inner products. ``sketch_dim >= D`` gives the exact gradients (identity).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm


class CountSketch:
    """A fixed, seeded count sketch R^D -> R^m. Deterministic in ``seed``."""

    def __init__(self, num_params: int, dim: int, seed: int = 0) -> None:
        if num_params < 1:
            raise ValueError(f"num_params must be >= 1, got {num_params}")
        if dim < 1:
            raise ValueError(f"dim (sketch_dim) must be >= 1, got {dim}")
        self.num_params = num_params
        self.exact = dim >= num_params
        self.dim = num_params if self.exact else dim
        if not self.exact:
            gen = torch.Generator().manual_seed(seed)
            self.buckets = torch.randint(0, dim, (num_params,), generator=gen)  # (D,)
            self.signs = torch.randint(0, 2, (num_params,), generator=gen).float() * 2 - 1  # (D,)

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        """Sketch a flat vector ``flat`` (D,) -> (m,), float32."""
        if flat.shape != (self.num_params,):
            raise ValueError(f"expected a flat gradient of shape ({self.num_params},), got {tuple(flat.shape)}")
        flat = flat.detach().float()
        if self.exact:
            return flat.clone()
        out = torch.zeros(self.dim, dtype=torch.float32)
        return out.index_add_(0, self.buckets, flat * self.signs)


def flat_grad(params: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """Concatenate the ``.grad`` of ``params`` (zeros where a parameter got no gradient) -> (D,)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])


def per_example_gradients(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    examples: Iterable[Any],
    *,
    sketch_dim: int = 65536,
    seed: int = 0,
    desc: str = "per-problem gradients",
) -> torch.Tensor:
    """Sketched gradient of ``loss_fn(model, example)`` for each example -> (N, m) float32.

    The model's parameters are left unchanged (only ``.grad`` is used, then cleared).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    sketch = CountSketch(sum(p.numel() for p in params), sketch_dim, seed)
    rows = []
    examples = list(examples)
    for ex in tqdm(examples, desc=desc, leave=False):
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model, ex)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} while computing gradients for {ex!r:.80}")
        loss.backward()
        rows.append(sketch(flat_grad(params)))
    model.zero_grad(set_to_none=True)
    if not rows:
        return torch.zeros(0, sketch.dim)
    return torch.stack(rows)
