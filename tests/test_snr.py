import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paced import binned_gradient_snr, cosine_alignment, gradient_snr
from paced.snr import SNRBin


def test_closed_form_small():
    g = np.array([[1.0, 0.0], [3.0, 2.0]])  # mean (2, 1): |m|^2 = 5; var ddof=1: 2 + 2 = 4
    assert gradient_snr(g) == pytest.approx(5 / 4)
    assert gradient_snr(g, debias=True) == pytest.approx((5 - 4 / 2) / 4)
    assert gradient_snr(torch.tensor(g)) == pytest.approx(5 / 4)


def test_identical_gradients_are_infinite_and_zero_is_nan():
    assert gradient_snr(np.tile([1.0, -2.0, 3.0], (5, 1))) == np.inf
    assert np.isnan(gradient_snr(np.zeros((4, 3))))


def test_zero_mean_noise_tends_to_zero():
    rng = np.random.default_rng(0)
    raw = [gradient_snr(rng.normal(size=(n, 400))) for n in (10, 100, 1000)]
    assert raw[0] > raw[1] > raw[2]
    # pure noise: raw SNR ~ 1/N with relative sd sqrt(2/D) ~ 0.07; debiased ~ 0 with sd ~ 0.07/N
    assert raw[2] == pytest.approx(1 / 1000, rel=0.3)
    assert abs(gradient_snr(rng.normal(size=(1000, 400)), debias=True)) < 3e-4


def test_signal_recovered_by_debiased():
    rng = np.random.default_rng(1)
    mu = np.full(20, 0.5)  # |mu|^2 = 5, tr Sigma = 20 -> SNR 0.25
    est = gradient_snr(mu + rng.normal(size=(4000, 20)), debias=True)
    assert est == pytest.approx(0.25, abs=0.03)


def test_binned_rows_and_ci():
    rng = np.random.default_rng(2)
    n = 120
    p = np.repeat([0.0, 0.5, 1.0], n // 3)
    grads = rng.normal(size=(n, 8)) + np.outer(p == 0.5, np.ones(8))
    ref = np.ones(8)
    kw = {"bins": [0, 0.25, 0.75, 1.0], "n_bootstrap": 300, "seed": 0, "reference_grad": ref}
    rows = binned_gradient_snr(grads, p, **kw)
    assert [r.n for r in rows] == [40, 40, 40] and all(isinstance(r, SNRBin) for r in rows)
    for r, sel in zip(rows, (p == 0, p == 0.5, p == 1), strict=True):
        assert r.snr == pytest.approx(gradient_snr(grads[sel], debias=True))
        assert r.ci_lo <= r.snr <= r.ci_hi
        assert r.mean_norm == pytest.approx(np.linalg.norm(grads[sel], axis=1).mean())
        assert r.cosine == pytest.approx(cosine_alignment(grads[sel].mean(0), ref))
    assert rows[1].snr > rows[0].snr and rows[1].cosine > 0.9
    again = binned_gradient_snr(grads, p, **kw)
    assert again == rows  # explicit seed -> reproducible


def test_bootstrap_gram_trick_matches_direct():
    from paced.snr import _bootstrap_snr

    rng = np.random.default_rng(3)
    g = rng.normal(size=(7, 5)) + 0.3
    counts = rng.multinomial(7, np.full(7, 1 / 7), size=20).astype(float)
    fast = _bootstrap_snr(g @ g.T, counts, debias=True)
    slow = [gradient_snr(np.repeat(g, c.astype(int), axis=0), debias=True) for c in counts]
    np.testing.assert_allclose(fast, slow, rtol=1e-9)


def test_small_bins_and_int_bins():
    g = np.arange(12.0).reshape(6, 2)
    rows = binned_gradient_snr(g, [0.0, 0.1, 0.9, 1.0, 1.0, 1.0], bins=2, n_bootstrap=10)
    assert [(r.bin_lo, r.bin_hi, r.n) for r in rows] == [(0.0, 0.5, 2), (0.5, 1.0, 4)]
    one = binned_gradient_snr(g[:1], [0.5], bins=1, n_bootstrap=10)[0]
    assert one.n == 1 and np.isnan(one.snr) and np.isnan(one.cosine)


def test_cosine_alignment():
    g = np.array([[1.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])
    np.testing.assert_allclose(cosine_alignment(g, [1.0, 0.0]), [1, 2**-0.5, -1])
    assert cosine_alignment(torch.tensor([0.0, 3.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 30), d=st.integers(1, 6), seed=st.integers(0, 100))
def test_snr_ranges(n, d, seed):
    g = np.random.default_rng(seed).normal(size=(n, d))
    raw, db = gradient_snr(g), gradient_snr(g, debias=True)
    assert raw >= 0 and db == pytest.approx(raw - 1 / n)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"grads must have shape \[N, D\]; got shape \(3,\)"):
        gradient_snr(np.ones(3))
    with pytest.raises(ValueError, match=r"N >= 2 rows.*N=1"):
        gradient_snr(np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"pass_rates shape \(2,\) must be \[N\] = \(3,\)"):
        binned_gradient_snr(np.ones((3, 2)), [0.1, 0.2], bins=2)
    with pytest.raises(ValueError, match=r"pass_rates must lie in \[0, 1\]; got 1.5"):
        binned_gradient_snr(np.ones((2, 2)), [0.1, 1.5], bins=2)
    with pytest.raises(ValueError, match=r"bins must be an int or >= 2 strictly increasing edges"):
        binned_gradient_snr(np.ones((2, 2)), [0.1, 0.5], bins=[0.5, 0.2])
    with pytest.raises(ValueError, match=r"reference_grad shape"):
        binned_gradient_snr(np.ones((2, 2)), [0.1, 0.5], bins=1, reference_grad=np.ones(3))
    with pytest.raises(ValueError, match=r"n_bootstrap must be a positive integer, got 0"):
        binned_gradient_snr(np.ones((2, 2)), [0.1, 0.5], bins=1, n_bootstrap=0)


def test_debiased_bootstrap_interval_brackets_the_estimate_despite_resampling_bias():
    # pure noise: the debiased SNR is ~0, but resamples repeat problems and inflate ‖ḡ*‖², so raw bootstrap
    # percentiles sit above the estimate; the reported interval is shifted by that bias
    rng = np.random.default_rng(3)
    grads = rng.normal(size=(12, 400))
    (row,) = binned_gradient_snr(grads, np.full(12, 0.5), [0.0, 1.0], n_bootstrap=400, seed=0, debias=True)
    assert row.ci_lo <= row.snr <= row.ci_hi
    assert row.ci_lo < 0 < row.ci_hi  # noise: the interval covers zero
