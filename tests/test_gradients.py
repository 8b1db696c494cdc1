import math

import pytest
import torch

import paced.gradients as G
from paced.gradients import CountSketch, per_example_gradients


def test_sketch_exact_when_dim_covers_params():
    x = torch.randn(50)
    torch.testing.assert_close(CountSketch(50, 64)(x), x)


def test_sketch_preserves_inner_products_in_expectation():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(4000, generator=gen), torch.randn(4000, generator=gen)
    y = 0.6 * x + 0.8 * y  # correlated, <x, y> ≈ 0.6 * 4000
    est = [float(CountSketch(4000, 512, seed=s)(x) @ CountSketch(4000, 512, seed=s)(y)) for s in range(40)]
    exact = float(x @ y)
    mean = sum(est) / len(est)
    assert abs(mean - exact) < 0.05 * abs(exact)


def test_sketch_is_linear_and_deterministic():
    x, y = torch.randn(300), torch.randn(300)
    s = CountSketch(300, 32, seed=3)
    torch.testing.assert_close(s(2 * x + y), 2 * s(x) + s(y), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(CountSketch(300, 32, seed=3)(x), s(x))


def test_per_example_gradients_match_autograd():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    xs = [torch.randn(3) for _ in range(4)]

    def loss_fn(m, x):
        return (m(x) ** 2).sum()

    grads = per_example_gradients(model, loss_fn, xs, sketch_dim=10**6)
    assert grads.shape == (4, 8)
    for i, x in enumerate(xs):
        model.zero_grad()
        loss_fn(model, x).backward()
        ref = torch.cat([model.weight.grad.reshape(-1), model.bias.grad.reshape(-1)])
        torch.testing.assert_close(grads[i], ref)
    for p, b in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), b)


# --- the hashed sketch at scale: same values on every chunking, closed forms, bounded memory ---



def _fmix32_py(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


def _hash_py(j: int, seed: int, dim: int) -> tuple[int, float]:
    key = _fmix32_py((j >> 32) ^ ((_fmix32_py(seed & 0xFFFFFFFF) + 0x9E3779B9) & 0xFFFFFFFF))
    h = _fmix32_py((j & 0xFFFFFFFF) ^ key)
    return h % dim, float(2 * (_fmix32_py(h ^ 0x5BD1E995) >> 31) - 1)


@pytest.mark.parametrize("start", [0, 12345, 2**32 - 3, 7 * 2**33])
def test_hash_matches_a_python_integer_reference(start):
    buckets, signs = G.hash_indices(start, 6, seed=11, dim=1000)
    assert buckets.dtype == torch.int32 and signs.dtype == torch.float32
    ref = [_hash_py(start + i, 11, 1000) for i in range(6)]
    assert buckets.tolist() == [b for b, _ in ref] and signs.tolist() == [s for _, s in ref]


def test_sketch_is_the_same_for_every_chunking_and_per_parameter():
    model = torch.nn.Sequential(torch.nn.Linear(37, 23), torch.nn.Linear(23, 5))
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    params = list(model.parameters())
    n = sum(p.numel() for p in params)
    whole = CountSketch(n, 64, seed=5)(G.flat_grad(params))
    torch.testing.assert_close(CountSketch(n, 64, seed=5, chunk_size=7).sketch_grads(params), whole)
    torch.testing.assert_close(CountSketch(n, 64, seed=5, chunk_size=10**6)(G.flat_grad(params)), whole)


def test_inner_product_unbiased_with_the_closed_form_variance():
    """E⟨Sx, Sy⟩ = ⟨x, y⟩ and Var⟨Sx, Sy⟩ = (1/m) Σ_{i≠j} (x_i² y_j² + x_i y_i x_j y_j) for a count sketch with
    independent uniform buckets and signs."""
    gen = torch.Generator().manual_seed(2)
    d, m, reps = 600, 16, 600
    x = torch.randn(d, generator=gen, dtype=torch.float64)
    y = 0.5 * x + torch.randn(d, generator=gen, dtype=torch.float64)
    est = torch.tensor([float(CountSketch(d, m, seed=s)(x.float()).double() @ CountSketch(d, m, seed=s)(y.float())
                              .double()) for s in range(reps)])
    xx, yy, xy = x * x, y * y, x * y
    var = float((xx.sum() * yy.sum() - (xx * yy).sum() + xy.sum() ** 2 - (xy * xy).sum()) / m)
    exact = float(x @ y)
    assert abs(float(est.mean()) - exact) < 4 * math.sqrt(var / reps)
    assert 0.75 < float(est.var()) / var < 1.3


def test_buckets_uniform_and_signs_balanced():
    buckets, signs = G.hash_indices(0, 200_000, seed=0, dim=50)
    counts = torch.bincount(buckets.long(), minlength=50).double()
    chi2 = float(((counts - 4000) ** 2 / 4000).sum())
    assert chi2 < 49 + 5 * math.sqrt(2 * 49)  # chi-square with 49 dof: mean 49, sd ~9.9
    assert abs(float(signs.mean())) < 5 / math.sqrt(200_000)


def test_sketch_memory_is_bounded_by_the_chunk(monkeypatch):
    """Nothing of size D is stored, and no call hashes more than ``chunk_size`` indices: at most
    chunk × (int32 bucket + fp32 sign) bytes of indices alive, whatever D (here 10 billion)."""
    sketch = CountSketch(10**10, 2**20, seed=0, chunk_size=1000, cache_bytes=16_000)
    stored = [v for v in vars(sketch).values() if isinstance(v, torch.Tensor)]
    assert stored == [] and sketch._cached == 0
    sizes: list[int] = []
    real = G.hash_indices

    def spy(start, n, seed, dim, device="cpu"):
        sizes.append(n)
        return real(start, n, seed, dim, device)

    monkeypatch.setattr(G, "hash_indices", spy)
    out = torch.zeros(2**20)
    sketch.add_(out, torch.randn(4500), offset=10**10 - 4500)
    assert sizes == [1000, 1000, 1000, 1000, 500]
    assert max(sizes) * (4 + 4) <= 8000
    assert sketch._cached == 16_000  # two chunks kept (8 bytes an index), the rest hashed again next time
    again = sketch.add_(torch.zeros(2**20), torch.randn(4500), offset=10**10 - 4500)
    assert sizes[5:] == [1000, 1000, 500] and again.shape == (2**20,)
    kept = sum(b.numel() * b.element_size() + s.numel() * s.element_size() for b, s in sketch._cache.values())
    assert kept == sketch._cached <= sketch.cache_bytes
