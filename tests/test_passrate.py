import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paced import avg_at_k, estimate_pass_rate, pass_at_k
from paced.passrate import avg_at_k_std, per_sample_accuracy


def test_smoothing_closed_forms():
    c = np.arange(9)
    np.testing.assert_allclose(estimate_pass_rate(c, 8), c / 8)
    np.testing.assert_allclose(estimate_pass_rate(c, 8, "laplace"), (c + 1) / 10)
    np.testing.assert_allclose(estimate_pass_rate(c, 8, "jeffreys"), (c + 0.5) / 9)
    assert estimate_pass_rate(3, 8) == 0.375 and isinstance(estimate_pass_rate(3, 8), float)
    np.testing.assert_allclose(estimate_pass_rate(torch.tensor([1, 2]), torch.tensor([2, 4])), [0.5, 0.5])


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_brute_force(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_vectorised_and_k1():
    out = pass_at_k(np.array([8, 8, 8]), np.array([0, 4, 8]), 1)
    np.testing.assert_allclose(out, [0, 0.5, 1])
    assert pass_at_k(200, 3, 100) == pytest.approx(1 - (100 * 99 * 98) / (200 * 199 * 198))


def test_avg_at_k():
    correct = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], dtype=bool)
    assert avg_at_k(correct) == pytest.approx(4 / 8)
    np.testing.assert_allclose(per_sample_accuracy(correct), [0.5, 0, 1, 0.5])
    assert avg_at_k_std(correct) == pytest.approx(np.std([0.5, 0, 1, 0.5], ddof=1))
    assert avg_at_k_std(correct, ddof=0) == pytest.approx(np.std([0.5, 0, 1, 0.5]))
    assert avg_at_k_std(np.ones((3, 1))) == 0.0


@settings(max_examples=50, deadline=None)
@given(k=st.integers(1, 64), data=st.data(), smoothing=st.sampled_from(["none", "laplace", "jeffreys"]))
def test_pass_rate_in_unit_interval(k, data, smoothing):
    c = np.array(data.draw(st.lists(st.integers(0, k), min_size=1, max_size=10)))
    p = estimate_pass_rate(c, k, smoothing)
    assert p.shape == c.shape and np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p[np.argsort(c)]) >= 0)  # monotone in c
    kk = data.draw(st.integers(1, k))
    pk = pass_at_k(k, c, kk)
    assert np.all((pk >= 0) & (pk <= 1))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"k must be >= 1; got 0"):
        estimate_pass_rate(0, 0)
    with pytest.raises(ValueError, match=r"num_correct=9 exceeds k=8"):
        estimate_pass_rate([1, 9], 8)
    with pytest.raises(ValueError, match=r"num_correct must be >= 0; got -1"):
        estimate_pass_rate(-1, 8)
    with pytest.raises(ValueError, match=r"num_correct must be integer-valued; got 1.5"):
        estimate_pass_rate(1.5, 8)
    with pytest.raises(ValueError, match=r"Did you mean 'laplace'"):
        estimate_pass_rate(1, 8, "laplace_")
    with pytest.raises(ValueError, match=r"k=9 exceeds n=8"):
        pass_at_k(8, 1, 9)
    with pytest.raises(ValueError, match=r"k must be a positive integer, got 0"):
        pass_at_k(8, 1, 0)
    with pytest.raises(ValueError, match=r"c=9 exceeds n=8"):
        pass_at_k(8, 9, 1)
    with pytest.raises(ValueError, match=r"correct must have shape \[N, k\]"):
        avg_at_k(np.ones(3))
    with pytest.raises(ValueError, match=r"correct must be boolean or 0/1; got 2"):
        avg_at_k(np.array([[1, 2]]))
