import torch

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
