"""Pass-rate estimates from K verified rollouts, the unbiased pass@k, and avg@k.

p̂ = (c + a) / (K + a + b) is the posterior mean of a Beta(a, b) prior after c successes in K
trials: ``none`` (a = b = 0, p̂ = c/K, the paper's choice), ``laplace`` (Beta(1, 1):
(c + 1)/(K + 2)) and ``jeffreys`` (Beta(½, ½): (c + ½)/(K + 1)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from paced._checks import first_offending, to_numpy64
from paced.registry import Registry

SMOOTHINGS: Registry[tuple[float, float]] = Registry("smoothing")
SMOOTHINGS.add("none", (0.0, 0.0))
SMOOTHINGS.add("laplace", (1.0, 1.0))
SMOOTHINGS.add("jeffreys", (0.5, 0.5))


def _int_array(x: Any, name: str) -> tuple[np.ndarray, bool]:
    """Integer-valued array-like -> (int64 array, was_scalar); non-integers raise."""
    arr = to_numpy64(x, name)
    bad = ~np.isfinite(arr) | (arr != np.round(arr))
    if bad.any():
        raise ValueError(f"{name} must be integer-valued; got {first_offending(arr, bad)!r}")
    return arr.astype(np.int64), arr.ndim == 0


def _check_counts(c: np.ndarray, n: np.ndarray, c_name: str, n_name: str) -> None:
    """0 ≤ c ≤ n elementwise, n ≥ 1."""
    if (n <= 0).any():
        raise ValueError(f"{n_name} must be >= 1; got {first_offending(n, n <= 0)!r}")
    c_b, n_b = np.broadcast_arrays(c, n)
    if (c_b < 0).any():
        raise ValueError(f"{c_name} must be >= 0; got {first_offending(c_b, c_b < 0)!r}")
    over = c_b > n_b
    if over.any():
        i = np.argwhere(over)[0]
        raise ValueError(f"{c_name}={c_b[tuple(i)]} exceeds {n_name}={n_b[tuple(i)]}")


def estimate_pass_rate(num_correct: Any, k: Any, smoothing: str = "none") -> Any:
    """p̂ = (c + a)/(k + a + b) with (a, b) from ``smoothing`` (none / laplace / jeffreys).

    ``num_correct`` and ``k``: integers or broadcastable integer arrays (numpy, torch, lists).
    Returns a float for scalar input, else a float64 numpy array; always in [0, 1].
    Raises ``ValueError`` for k ≤ 0, num_correct < 0 or num_correct > k.
    """
    a, b = SMOOTHINGS.get(smoothing)
    c, c_scalar = _int_array(num_correct, "num_correct")
    kk, k_scalar = _int_array(k, "k")
    _check_counts(c, kk, "num_correct", "k")
    p = (c + a) / (kk + a + b)
    return float(p) if c_scalar and k_scalar else p


def _pass_at_k_one(n: int, c: int, k: int) -> float:
    """1 − C(n−c, k)/C(n, k) = 1 − Π_{i=n−c+1}^{n} (1 − k/i)  (Chen et al. 2021, stable product)."""
    if n - c < k:
        return 1.0
    i = np.arange(n - c + 1, n + 1, dtype=np.float64)
    return float(1.0 - np.prod(1.0 - k / i))


def pass_at_k(n: Any, c: Any, k: int) -> Any:
    """Unbiased pass@k from n samples of which c are correct: 1 − C(n−c, k)/C(n, k).

    ``n``, ``c``: integers or broadcastable integer arrays; ``k``: integer with 1 ≤ k ≤ n.
    Returns a float for scalar input, else a float64 array of the broadcast shape.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    nn, n_scalar = _int_array(n, "n")
    cc, c_scalar = _int_array(c, "c")
    _check_counts(cc, nn, "c", "n")
    if (nn < k).any():
        raise ValueError(f"k={k} exceeds n={first_offending(nn, nn < k)}; pass@k needs k <= n")
    nb, cb = np.broadcast_arrays(nn, cc)
    pairs = zip(nb.ravel(), cb.ravel(), strict=True)
    out = np.array([_pass_at_k_one(int(a), int(b), int(k)) for a, b in pairs])
    return float(out[0]) if n_scalar and c_scalar else out.reshape(nb.shape)


def _check_correct(correct: Any) -> np.ndarray:
    arr = to_numpy64(correct, "correct")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"correct must have shape [N, k] with N, k >= 1; got shape {tuple(arr.shape)}")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        raise ValueError(f"correct must be boolean or 0/1; got {first_offending(arr, bad)!r}")
    return arr


def avg_at_k(correct: Any) -> float:
    """avg@k = mean over N problems and k samples of correct[i, j]; ``correct`` [N, k] bool."""
    return float(_check_correct(correct).mean())


def per_sample_accuracy(correct: Any) -> np.ndarray:
    """Accuracy of each sample index j over the N problems: mean_i correct[i, j], shape [k]."""
    return _check_correct(correct).mean(axis=0)


def avg_at_k_std(correct: Any, ddof: int = 1) -> float:
    """Std over the k sample indices of :func:`per_sample_accuracy` (the paper's "avg@8 ± std").

    ``ddof = 1`` (sample std) by default; k = 1 with ddof = 1 gives 0.0 rather than NaN.
    """
    acc = per_sample_accuracy(correct)
    if acc.size - ddof <= 0:
        return 0.0
    return float(acc.std(ddof=ddof))
