"""Per-problem gradients for the SNR measurement, compressed by a count sketch.

Storing one full gradient per problem costs N × D floats (0.44M parameters × 1,536 problems ≈ 2.7 GB
in fp32 for the toy student; far more for a real model). A count sketch S (each parameter index j
hashed to a bucket h(j) with a random sign s(j)) maps g ∈ R^D to Sg ∈ R^m with

    (Sg)_b = Σ_{j : h(j) = b} s(j) g_j,        E[⟨Sx, Sy⟩] = ⟨x, y⟩,

so norms, means and covariance traces — all the SNR needs — are preserved in expectation, with
relative error O(1/√m) on inner products. ``sketch_dim >= D`` gives the exact gradients (identity).

h and s are never materialised for all parameters: they are a hash of (seed, j), computed on the gradient's
device for one chunk of indices at a time (``chunk_size``, int32 buckets), so the sketch costs
O(chunk + m + cache_bytes) memory whatever D is. (Stored as an int64 bucket and an fp32 sign, with the int64
draw of the signs alive while they are made, they cost 20 bytes a parameter: ~34 GB for Qwen3-1.7B.) Hashes
are kept between calls up to ``cache_bytes`` (8 bytes an index), so a small model is hashed once. The hash
(murmur3's 32-bit finaliser over the index's two 32-bit halves) is integer arithmetic, so the sketch is the
same on every device and for every chunking, and each parameter tensor is sketched in place at its offset (no
flat copy of the gradient is formed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

MASK32 = 0xFFFFFFFF
DEFAULT_CHUNK = 1 << 22  # indices hashed at once: ~4M × (3 int64 temporaries + int32 + fp32) ≈ 0.1 GB
DEFAULT_CACHE_BYTES = 1 << 28  # hashes kept between calls: all of a model up to ~33M parameters


def _fmix32(x: torch.Tensor) -> torch.Tensor:
    """murmur3's 32-bit finaliser on int64 tensors holding values in [0, 2³²) (products wrap; the mask keeps
    the low 32 bits, which wrapping does not change)."""
    x = x ^ (x >> 16)
    x = (x * 0x85EBCA6B) & MASK32
    x = x ^ (x >> 13)
    x = (x * 0xC2B2AE35) & MASK32
    return x ^ (x >> 16)


def hash_indices(start: int, n: int, seed: int, dim: int, device: torch.device | str = "cpu",
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Buckets [n] int32 in [0, dim) and signs [n] fp32 in {−1, +1} of indices start .. start + n − 1."""
    j = torch.arange(start, start + n, dtype=torch.int64, device=device)
    key = _fmix32((j >> 32) ^ (_fmix32(torch.tensor(seed & MASK32, device=device)) + 0x9E3779B9 & MASK32))
    h = _fmix32((j & MASK32) ^ key)
    buckets = (h % dim).to(torch.int32)
    signs = (_fmix32(h ^ 0x5BD1E995) >> 31).to(torch.float32).mul_(2).sub_(1)
    return buckets, signs


class CountSketch:
    """A fixed, seeded count sketch R^D -> R^m, deterministic in ``seed``; stores nothing of size D."""

    def __init__(self, num_params: int, dim: int, seed: int = 0, chunk_size: int = DEFAULT_CHUNK,
                 cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if num_params < 1:
            raise ValueError(f"num_params must be >= 1, got {num_params}")
        if dim < 1:
            raise ValueError(f"dim (sketch_dim) must be >= 1, got {dim}")
        if dim >= 1 << 31 and dim < num_params:
            raise ValueError(f"dim (sketch_dim)={dim} must be < 2**31 (int32 buckets)")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.num_params, self.seed, self.chunk_size = num_params, seed, chunk_size
        self.exact = dim >= num_params
        self.dim = num_params if self.exact else dim
        self.cache_bytes = cache_bytes
        self._cache: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._cached = 0

    def _hashes(self, start: int, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Buckets and signs of indices start .. start + n − 1, kept (within ``cache_bytes``) for the next call:
        a small model is hashed once, a large one chunk by chunk every time (hashing costs ~25 integer ops an
        index; a kept index costs 8 bytes)."""
        key = (start, n, str(device))
        if key in self._cache:
            return self._cache[key]
        buckets, signs = hash_indices(start, n, self.seed, self.dim, device)
        if self._cached + 8 * n <= self.cache_bytes:
            self._cache[key] = (buckets, signs)
            self._cached += 8 * n
        return buckets, signs

    def add_(self, out: torch.Tensor, values: torch.Tensor, offset: int) -> torch.Tensor:
        """``out`` (m,) += the sketch of ``values`` placed at flat indices offset .. offset + numel − 1."""
        flat = values.detach().reshape(-1)
        if offset < 0 or offset + flat.numel() > self.num_params:
            raise ValueError(f"values at offset {offset} (+{flat.numel()}) fall outside [0, {self.num_params})")
        if self.exact:
            out[offset:offset + flat.numel()] += flat.float()
            return out
        for lo in range(0, flat.numel(), self.chunk_size):
            part = flat[lo:lo + self.chunk_size]
            buckets, signs = self._hashes(offset + lo, part.numel(), part.device)
            out.index_add_(0, buckets, part.float().mul_(signs) if part.dtype != torch.float32 else part * signs)
        return out

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        """Sketch a flat vector ``flat`` (D,) -> (m,), float32, on ``flat``'s device."""
        if flat.shape != (self.num_params,):
            raise ValueError(f"expected a flat gradient of shape ({self.num_params},), got {tuple(flat.shape)}")
        return self.add_(torch.zeros(self.dim, dtype=torch.float32, device=flat.device), flat, 0)

    def sketch_grads(self, params: Sequence[torch.nn.Parameter]) -> torch.Tensor:
        """The sketch of the concatenated ``.grad`` of ``params`` (a parameter without a gradient counts as
        zeros), one parameter at a time -> (m,) float32 on the first parameter's device."""
        out = torch.zeros(self.dim, dtype=torch.float32, device=params[0].device)
        offset = 0
        for p in params:
            if p.grad is not None:
                self.add_(out, p.grad, offset)
            offset += p.numel()
        if offset != self.num_params:
            raise ValueError(f"params hold {offset} values; the sketch was made for {self.num_params}")
        return out


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
    """Sketched gradient of ``loss_fn(model, example)`` for each example -> (N, m) float32 on the CPU.

    Runs where the model is (the sketch is formed on its device; only the m-vector comes back). The model's
    parameters are left unchanged (only ``.grad`` is used, then cleared).
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
        rows.append(sketch.sketch_grads(params).cpu())
    model.zero_grad(set_to_none=True)
    if not rows:
        return torch.zeros(0, sketch.dim)
    return torch.stack(rows)
