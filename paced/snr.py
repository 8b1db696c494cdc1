"""Cross-problem gradient signal-to-noise ratio, binned by pass rate, with bootstrap CIs.

For per-problem gradients g₁..g_N ∈ R^D (rows of ``grads`` [N, D]):

    SNR = ‖ḡ‖² / tr Ĉov(g),    ḡ = (1/N) Σ gᵢ,    tr Ĉov = Σ_d Var_d (ddof = 1)

Since E‖ḡ‖² = ‖E g‖² + tr Cov/N, the raw ratio is biased upwards by 1/N (pure noise gives ≈ 1/N).
The debiased estimate subtracts it:  SNR_db = (‖ḡ‖² − tr Ĉov/N) / tr Ĉov = SNR − 1/N, which can be
negative when the signal is below the noise floor; it is reported as is (not clipped).

Everything is computed in float64 numpy; numpy arrays and torch tensors are accepted.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from paced._checks import check_finite_scalar, check_positive_int, to_numpy64


def _as_grads(grads: Any) -> np.ndarray:
    g = to_numpy64(grads, "grads")
    if g.ndim != 2:
        raise ValueError(f"grads must have shape [N, D]; got shape {tuple(g.shape)}")
    if not np.isfinite(g).all():
        raise ValueError("grads must be finite; got NaN or inf entries")
    return g


def _snr_from_moments(mean_sq: np.ndarray, tr_cov: np.ndarray, n: int, debias: bool) -> np.ndarray:
    """Ratio with the degenerate cases: tr Cov = 0 -> inf if ‖ḡ‖² > 0, NaN if ḡ = 0 too."""
    num = mean_sq - tr_cov / n if debias else mean_sq
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / tr_cov
    out = np.where(tr_cov > 0, out, np.where(mean_sq > 0, np.inf, np.nan))
    return out


def gradient_snr(grads: Any, debias: bool = False) -> float:
    """‖mean g‖² / tr Cov g over the rows of ``grads`` [N, D] (N ≥ 2, Cov with ddof = 1).

    ``debias=True`` returns (‖ḡ‖² − tr Cov/N) / tr Cov (may be negative). Identical rows
    (tr Cov = 0) give ``inf``; all-zero rows give NaN.
    """
    g = _as_grads(grads)
    n = g.shape[0]
    if n < 2:
        raise ValueError(f"grads needs N >= 2 rows to estimate a covariance; got N={n}")
    mean = g.mean(axis=0)
    tr_cov = float(((g - mean) ** 2).sum() / (n - 1))
    return float(_snr_from_moments(np.asarray(mean @ mean), np.asarray(tr_cov), n, debias))


def _bootstrap_snr(gram: np.ndarray, counts: np.ndarray, debias: bool) -> np.ndarray:
    """SNR of each resample given the Gram matrix G Gᵀ [n, n] and resample counts [R, n].

    For a resample with counts c (Σc = n): ‖ḡ*‖² = cᵀ(GGᵀ)c / n² and
    tr Ĉov* = (Σᵢ cᵢ‖gᵢ‖² − n‖ḡ*‖²)/(n − 1); O(R n²) instead of O(R n D).
    """
    n = gram.shape[0]
    mean_sq = np.einsum("ri,ij,rj->r", counts, gram, counts) / n**2
    tr_cov = np.maximum((counts @ np.diag(gram) - n * mean_sq) / (n - 1), 0.0)
    tr_cov = np.where(tr_cov > 1e-12 * np.maximum(counts @ np.diag(gram), 1e-300), tr_cov, 0.0)
    return _snr_from_moments(mean_sq, tr_cov, n, debias)


def cosine_alignment(grads: Any, reference: Any) -> Any:
    """Cosine between each gradient and ``reference`` [D]: gᵢ·r / (‖gᵢ‖‖r‖).

    ``grads`` [N, D] -> float64 array [N]; a single gradient [D] -> float. Zero vectors give NaN.
    """
    g = to_numpy64(grads, "grads")
    r = to_numpy64(reference, "reference")
    if r.ndim != 1 or g.ndim not in (1, 2) or g.shape[-1] != r.shape[0]:
        raise ValueError(f"grads shape {tuple(g.shape)} (want [N, D] or [D]) does not match "
                         f"reference shape {tuple(r.shape)} (want [D])")
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (g @ r) / (np.linalg.norm(g, axis=-1) * np.linalg.norm(r))
    return float(cos) if g.ndim == 1 else cos


@dataclass(frozen=True)
class SNRBin:
    """One pass-rate bin [bin_lo, bin_hi) (the last bin is closed) and its gradient statistics.

    ``snr`` with a bootstrap percentile interval [ci_lo, ci_hi] over the problems in the bin;
    ``mean_norm`` = mean ‖gᵢ‖; ``cosine`` = cos(ḡ_bin, reference_grad), NaN without a reference.
    Bins with fewer than two problems have NaN statistics.
    """

    bin_lo: float
    bin_hi: float
    n: int
    snr: float
    ci_lo: float
    ci_hi: float
    mean_norm: float
    cosine: float


def _bin_edges(bins: int | Sequence[float]) -> np.ndarray:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        return np.linspace(0.0, 1.0, check_positive_int("bins", bins) + 1)
    edges = to_numpy64(bins, "bins")
    if edges.ndim != 1 or edges.size < 2 or not (np.diff(edges) > 0).all():
        raise ValueError(f"bins must be an int or >= 2 strictly increasing edges; got {bins!r}")
    return edges


def _one_bin(g: np.ndarray, lo: float, hi: float, rng: np.random.Generator, n_bootstrap: int,
             debias: bool, ci: float, reference: np.ndarray | None) -> SNRBin:
    n = g.shape[0]
    nan = float("nan")
    if n < 2:
        norm = float(np.linalg.norm(g, axis=1).mean()) if n else nan
        return SNRBin(float(lo), float(hi), n, nan, nan, nan, norm, nan)
    point = gradient_snr(g, debias=debias)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap).astype(np.float64)
    boot = _bootstrap_snr(g @ g.T, counts, debias)
    tail = 100.0 * (1.0 - ci) / 2.0
    with np.errstate(invalid="ignore"):  # resamples of one repeated gradient give inf
        if np.isfinite(boot).any():
            q_lo, q_med, q_hi = np.nanpercentile(boot, [tail, 50.0, 100.0 - tail])
            # resamples repeat problems, which inflates ‖ḡ*‖² (the debiasing assumes distinct draws), so the
            # bootstrap distribution sits above the estimate: shift it by its median bias
            ci_lo, ci_hi = q_lo - (q_med - point), q_hi - (q_med - point)
        else:
            ci_lo, ci_hi = nan, nan
    cosine = cosine_alignment(g.mean(axis=0), reference) if reference is not None else nan
    return SNRBin(float(lo), float(hi), n, point, float(ci_lo), float(ci_hi),
                  float(np.linalg.norm(g, axis=1).mean()), float(cosine))


def binned_gradient_snr(grads: Any, pass_rates: Any, bins: int | Sequence[float], n_bootstrap: int = 1000,
                        seed: int = 0, debias: bool = True, reference_grad: Any = None,
                        ci: float = 0.95) -> list[SNRBin]:
    """Gradient SNR per pass-rate bin, with bootstrap percentile CIs over the bin's problems.

    ``grads`` [N, D] per-problem gradients; ``pass_rates`` [N] in [0, 1]; ``bins``: a number of
    equal-width bins on [0, 1] or explicit increasing edges (bins are [lo, hi), the last [lo, hi]).
    Each bin draws ``n_bootstrap`` resamples of its problems from ``np.random.default_rng(seed)``
    and reports the (1 − ci)/2 and (1 + ci)/2 percentiles of the resampled SNR, shifted by the
    bootstrap's median bias (median of the resamples − the estimate): resampling with replacement
    repeats problems and inflates ‖ḡ‖², so unshifted percentiles can lie entirely above the estimate.
    Returns one :class:`SNRBin` per bin, in order.
    """
    g = _as_grads(grads)
    p = to_numpy64(pass_rates, "pass_rates")
    if p.shape != (g.shape[0],):
        raise ValueError(f"pass_rates shape {tuple(p.shape)} must be [N] = ({g.shape[0]},) to match grads")
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError(f"pass_rates must lie in [0, 1]; got {p[~((p >= 0) & (p <= 1))][0].item()!r}")
    n_bootstrap = check_positive_int("n_bootstrap", n_bootstrap)
    ci = check_finite_scalar("ci", ci, low=0.0, high=1.0, low_open=True)
    ref = None if reference_grad is None else to_numpy64(reference_grad, "reference_grad")
    if ref is not None and ref.shape != (g.shape[1],):
        raise ValueError(f"reference_grad shape {tuple(ref.shape)} must be [D] = ({g.shape[1]},)")
    edges = _bin_edges(bins)
    rng = np.random.default_rng(seed)
    rows = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        sel = (p >= lo) & ((p <= hi) if last else (p < hi))
        rows.append(_one_bin(g[sel], lo, hi, rng, n_bootstrap, debias, ci, ref))
    return rows
