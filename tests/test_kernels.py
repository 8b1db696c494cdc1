import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paced import KERNELS, beta_kernel, get_kernel, kernel_mode, normalize_weights

K8 = np.arange(9) / 8


def test_beta_kernel_values_at_k8():
    expected = [0, 0.109375, 0.1875, 0.234375, 0.25, 0.234375, 0.1875, 0.109375, 0]
    np.testing.assert_allclose(beta_kernel(K8), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(get_kernel("learnability")(K8), expected, atol=1e-15)
    np.testing.assert_allclose(get_kernel("beta")(K8), expected, atol=1e-15)


def test_beta_kernel_types_roundtrip():
    t = torch.tensor(K8, dtype=torch.float32)
    out = beta_kernel(t, 2.0, 1.0)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (9,)
    torch.testing.assert_close(out, t**2 * (1 - t))
    assert isinstance(beta_kernel(0.5), float) and beta_kernel(0.5) == 0.25
    assert isinstance(beta_kernel(np.array(0.5)), np.ndarray)
    assert isinstance(beta_kernel([0.5, 0.25]), np.ndarray)


def test_zero_exponents_use_zero_to_the_zero_is_one():
    np.testing.assert_allclose(beta_kernel(K8, 0.0, 1.0), 1 - K8)
    np.testing.assert_allclose(beta_kernel(K8, 1.0, 0.0), K8)
    np.testing.assert_allclose(beta_kernel(K8, 0.0, 0.0), np.ones(9))
    assert beta_kernel(torch.tensor([0.0, 1.0]), 0.0, 0.0).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("alpha,beta", [(1, 1), (2, 1), (0.5, 3), (3, 0.7)])
def test_mirror_symmetry(alpha, beta):
    p = np.linspace(0, 1, 101)
    np.testing.assert_allclose(beta_kernel(p, alpha, beta), beta_kernel(1 - p, beta, alpha), atol=1e-15)


@pytest.mark.parametrize("alpha,beta", [(1, 1), (2, 1), (1, 3), (0.5, 0.5 + 1e-9), (4, 2)])
def test_argmax_at_mode(alpha, beta):
    grid = np.linspace(0, 1, 100_001)
    w = beta_kernel(grid, alpha, beta)
    if alpha >= 1 and beta >= 1:
        assert grid[np.argmax(w)] == pytest.approx(kernel_mode(alpha, beta), abs=1e-5)
    assert kernel_mode(alpha, beta) == pytest.approx(alpha / (alpha + beta))


def test_other_kernels():
    p = np.array([0.0, 0.125, 0.5, 1.0])
    np.testing.assert_array_equal(get_kernel("hard_filter")(p), [0, 1, 1, 0])
    np.testing.assert_array_equal(get_kernel("uniform")(p), [1, 1, 1, 1])
    np.testing.assert_array_equal(get_kernel("inverse")(p), [1, 0.875, 0.5, 0])
    assert get_kernel("hard_filter")(torch.tensor([0.0, 0.5, 1.0])).tolist() == [0, 1, 0]


def test_hard_filter_drops_exactly_the_ends():
    w = get_kernel("hard_filter")(K8)
    np.testing.assert_array_equal(w == 0, (K8 == 0) | (K8 == 1))


def test_floor_applies_to_hard_zeros():
    w = get_kernel("beta", alpha=1, beta=1, floor=0.02)(K8)
    assert w[0] == 0.02 and w[-1] == 0.02 and w[4] == 0.25
    np.testing.assert_allclose(w, np.maximum(beta_kernel(K8), 0.02))
    wt = get_kernel("hard_filter", floor=0.1)(torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(wt, torch.tensor([0.1, 1.0, 0.1]))


def test_normalisation():
    w = np.array([0.0, 1.0, 3.0])
    np.testing.assert_allclose(normalize_weights(w, "sum"), [0, 0.25, 0.75])
    np.testing.assert_allclose(normalize_weights(w, "mean_one"), [0, 0.75, 2.25])
    np.testing.assert_allclose(normalize_weights(w, "none"), w)
    torch.testing.assert_close(normalize_weights(torch.tensor([1.0, 3.0]), "sum"), torch.tensor([0.25, 0.75]))
    for norm in ("sum", "mean_one", "none"):
        np.testing.assert_array_equal(normalize_weights(np.zeros(3), norm), np.zeros(3))
        assert torch.equal(normalize_weights(torch.zeros(2), norm), torch.zeros(2))


@settings(max_examples=50, deadline=None)
@given(p=st.lists(st.floats(0, 1), min_size=1, max_size=20),
       alpha=st.one_of(st.just(0.0), st.floats(0.01, 5)),
       beta=st.one_of(st.just(0.0), st.floats(0.01, 5)),
       name=st.sampled_from(KERNELS.names()), floor=st.floats(0, 1))
def test_kernel_ranges(p, alpha, beta, name, floor):
    arr = np.array(p)
    w = beta_kernel(arr, alpha, beta)
    assert w.shape == arr.shape
    mode = kernel_mode(alpha, beta) if alpha + beta > 0 else 0.5
    wmax = mode**alpha * (1 - mode) ** beta
    assert np.all(w >= 0) and np.all(w <= wmax + 1e-12)
    params = {"alpha": alpha, "beta": beta} if name == "beta" else {}
    wk = get_kernel(name, floor=floor, **params)(arr)
    assert wk.shape == arr.shape and np.all(wk >= floor) and np.all(wk <= max(1.0, floor))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_p_out_of_range(bad):
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]; got"):
        beta_kernel(np.array([0.5, bad]))
    with pytest.raises(ValueError, match=r"p must lie"):
        get_kernel("uniform")(torch.tensor([bad]))
    if bad == bad:
        with pytest.raises(ValueError, match=str(bad)):
            beta_kernel([bad])


def test_bad_params():
    with pytest.raises(ValueError, match=r"alpha=-1"):
        beta_kernel(0.5, alpha=-1)
    with pytest.raises(ValueError, match=r"beta=-0.5"):
        get_kernel("beta", beta=-0.5)
    with pytest.raises(ValueError, match=r"Did you mean 'beta'.*Available: beta, hard_filter"):
        get_kernel("betta")
    with pytest.raises(ValueError, match=r"unknown parameter.*gamma.*allowed: alpha, beta, floor"):
        get_kernel("beta", gamma=2)
    with pytest.raises(ValueError, match=r"alpha.*allowed: floor"):
        get_kernel("uniform", alpha=2)
    with pytest.raises(ValueError, match=r"floor=2"):
        get_kernel("uniform", floor=2)
    with pytest.raises(ValueError, match=r"unknown normalisation 'avg'"):
        normalize_weights(np.ones(2), "avg")
    with pytest.raises(ValueError, match=r"weights must be >= 0; got -1"):
        normalize_weights(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"alpha \+ beta"):
        kernel_mode(0, 0)
