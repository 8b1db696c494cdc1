"""Per-problem scores from verified samples, and their aggregation by tier.

Pure functions of correctness lists and per-problem records (no I/O, no models); the estimators
themselves are :mod:`paced.passrate`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from paced.passrate import avg_at_k, avg_at_k_std, pass_at_k

ALL = "all"


def sample_scores(correct: Sequence[bool]) -> dict[str, float]:
    """Scores of one problem from its k verified samples ``c_1..c_k``.

    avg@k = (1/k) Σ_j c_j (the paper's "8-sample mean accuracy" for k = 8);
    pass@k = 1 − C(k−c, k)/C(k, k) = [any c_j] (the unbiased estimator with n = k samples).
    """
    if len(correct) == 0:
        raise ValueError("sample_scores needs at least one sample, got none")
    k, c = len(correct), int(sum(map(bool, correct)))
    return {"avg@k": avg_at_k([list(correct)]), "pass@k": float(pass_at_k(k, c, k))}


def group_by_tier(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Records grouped as ``{"all": every record, <tier>: records with that tier}``; records
    whose ``tier`` is ``None`` count only towards ``"all"``."""
    groups: dict[str, list[Mapping[str, Any]]] = {ALL: []}
    for rec in records:
        groups[ALL].append(rec)
        tier = rec.get("tier")
        if tier is not None and str(tier) != ALL:
            groups.setdefault(str(tier), []).append(rec)
    if not groups[ALL]:
        raise ValueError("got no records to aggregate")
    return groups


def generation_metrics(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """avg@k, its std over the k sample indices, pass@k, k and n, overall and per tier.

    Each record is one problem: ``{"tier": str | None, "correct": [c_1..c_k]}`` (same k for all).
    With C the [n, k] correctness matrix: avg@k = mean(C); avg@k_std = std_j(mean_i C[i, j])
    (ddof 1); pass@k = mean_i max_j C[i, j].
    """
    out: dict[str, dict[str, float]] = {}
    for name, recs in group_by_tier(records).items():
        correct = np.asarray([r["correct"] for r in recs], dtype=np.float64)  # (n, k)
        out[name] = {"avg@k": avg_at_k(correct), "avg@k_std": avg_at_k_std(correct),
                     "pass@k": float(correct.max(axis=1).mean()), "k": correct.shape[1], "n": len(recs)}
    return out


def mean_by_tier(records: Iterable[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean of each per-problem metric, overall (``"all"``) and per tier, plus ``n`` per group."""
    out: dict[str, dict[str, float]] = {}
    for name, recs in group_by_tier(records).items():
        row: dict[str, float] = {m: sum(float(r[m]) for r in recs) / len(recs) for m in metrics}
        row["n"] = len(recs)
        out[name] = row
    return out
