"""The SNR-bell test, fixed in advance: the middle bins' mean SNR against each end bin.

With the bins of one group ordered by pass rate, ``left`` is the first bin, ``right`` the last, and
``middle`` the other bins whose centre lies in [1/4, 3/4] (the region a Beta(1, 1) kernel favours).
Two contrasts

    C_L = mean(SNR_middle) − SNR_left,     C_R = mean(SNR_middle) − SNR_right

with standard errors from the bins' bootstrap intervals (se_b = (ci_hi − ci_lo) / (2 z_{(1+ci)/2}), the
bins hold disjoint problems, so se(C_L)² = Σ_middle se_b² / |middle|² + se_left²). Each contrast gets a
two-sided normal interval at level 1 − (1 − level)/2 (the two share the error budget). Verdict:
``reproduced`` when both intervals lie above 0 (the middle beats both ends), ``not reproduced`` when
either lies below 0 (an end beats the middle), else ``inconclusive``. No bin is chosen after seeing the
data, so the false-verdict rate under "flat SNR" is at most 1 − level.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MIDDLE = (0.25, 0.75)


def _z(q: float) -> float:
    """The standard normal quantile at q (scipy imported on use: it takes a while)."""
    from scipy import stats

    return float(stats.norm.ppf(q))


def _se(rows: pd.DataFrame, ci: float) -> np.ndarray:
    z = _z((1 + ci) / 2)
    return ((rows["ci_hi"] - rows["ci_lo"]).clip(lower=0) / (2 * z)).to_numpy(dtype=float)


def bell_contrasts(bins: pd.DataFrame, ci: float = 0.95) -> dict[str, float] | None:
    """{c_left, se_left, c_right, se_right, n_middle} of one group's bins (columns bin_lo, bin_hi, snr,
    ci_lo, ci_hi; ``ci``: the level of those intervals), or None with < 3 bins or no middle bin."""
    b = bins.dropna(subset=["snr", "ci_lo", "ci_hi"]).sort_values("bin_lo")
    if len(b) < 3:
        return None
    inner = b.iloc[1:-1]
    centre = (inner["bin_lo"] + inner["bin_hi"]) / 2
    mid = inner[(centre >= MIDDLE[0]) & (centre <= MIDDLE[1])]
    if mid.empty:
        return None
    se_mid = _se(mid, ci)
    var_mid = float((se_mid**2).sum()) / len(mid) ** 2
    m = float(mid["snr"].mean())
    (se_l,), (se_r,) = _se(b.iloc[:1], ci), _se(b.iloc[-1:], ci)
    return {
        "c_left": m - float(b["snr"].iloc[0]),
        "se_left": math.sqrt(var_mid + se_l**2),
        "c_right": m - float(b["snr"].iloc[-1]),
        "se_right": math.sqrt(var_mid + se_r**2),
        "n_middle": float(len(mid)),
    }


def bell_verdict(
    bins: pd.DataFrame, level: float, ci: float, labels: tuple[str, str, str]
) -> tuple[str, str, tuple[float, float, float]]:
    """(verdict, detail, (estimate, lo, hi)) of the contrast test at ``level``; ``labels`` = the
    (reproduced, not reproduced, inconclusive) strings. The estimate is the smaller contrast."""
    yes, no, unsure = labels
    c = bell_contrasts(bins, ci)
    if c is None:
        return unsure, "fewer than 3 bins with an SNR estimate, or no bin centre in [1/4, 3/4]", (math.nan,) * 3
    z = _z(1 - (1 - level) / 4)
    iv = {s: (c[f"c_{s}"] - z * c[f"se_{s}"], c[f"c_{s}"] + z * c[f"se_{s}"]) for s in ("left", "right")}
    worse = min(("left", "right"), key=lambda s: c[f"c_{s}"])
    detail = "; ".join(
        f"middle − {s} end {c[f'c_{s}']:.3g} [{iv[s][0]:.3g}, {iv[s][1]:.3g}]" for s in ("left", "right")
    ) + f" ({int(c['n_middle'])} middle bins)"
    if iv["left"][0] > 0 and iv["right"][0] > 0:
        verdict = yes
    elif iv["left"][1] < 0 or iv["right"][1] < 0:
        verdict = no
    else:
        verdict = unsure
    return verdict, detail, (c[f"c_{worse}"], *iv[worse])
