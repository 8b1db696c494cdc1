"""Each paper claim, at each budget, judged from the bootstrap CI of a paired difference.

Rule (one for every claim): CI above 0 -> ``reproduced``; CI below 0 -> ``not reproduced``; CI
straddling 0 -> ``inconclusive``; fewer than ``min_pairs`` matched seeds (default 2: one seed has no
spread) -> ``inconclusive``; a method that was not run -> ``not run``. The difference is oriented
so that positive supports the claim: accuracy claims use method − reference; the forgetting
claim uses forgetting(reference) − forgetting(method). "FKL→RKL ≥ FKL" uses the same rule, so an
interval straddling 0 (consistent with equality) is ``inconclusive``, not ``reproduced``.

SNR bell: bins of one group, ordered by pass rate. ``reproduced`` when the best interior bin's CI
lies above the CIs of both end bins; ``not reproduced`` when one end bin's CI lies above the CI
of every interior bin; otherwise (or with < 3 bins) ``inconclusive``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paced.report.collect import BASE_METHOD, PROBE_TASKS
from paced.report.stats import PAIRED_COLUMNS, paired_difference
from paced.report.tables import FORGETTING_PTS, at_budget, budgets, metric_scale, table_columns

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = "reproduced", "not reproduced", "inconclusive", "not run"
DEFAULT_ROLES: Mapping[str, str] = {
    "paced": "paced-fkl",
    "uniform": "uniform-fkl",
    "hardfilter": "hardfilter-fkl",
    "akl": "akl",
    "two_stage": "paced-fkl-then-rkl",
    "oracle": "oracle-fkl",
}
VERDICT_COLUMNS = ("claim", *PAIRED_COLUMNS, "verdict", "detail")


@dataclass(frozen=True)
class Claim:
    """A paper claim: ``method`` beats ``reference`` (roles, see :data:`DEFAULT_ROLES`) on ``target``."""

    name: str
    method: str
    reference: str
    target: str  # "accuracy" (higher is better) or "forgetting" (lower is better)


CLAIMS = (
    Claim("PACED > uniform", "paced", "uniform", "accuracy"),
    Claim("PACED > hard filter", "paced", "hardfilter", "accuracy"),
    Claim("PACED > AKL", "paced", "akl", "accuracy"),
    Claim("FKL→RKL ≥ FKL", "two_stage", "paced", "accuracy"),
    Claim("PACED forgets no more than uniform", "paced", "uniform", "forgetting"),
)


def verdict_from_ci(lo: float, hi: float, n_pairs: int, min_pairs: int = 2) -> str:
    """The verdict of a positively oriented difference's CI [lo, hi] over ``n_pairs`` seeds."""
    if n_pairs == 0:
        return NOT_RUN
    if n_pairs < min_pairs or math.isnan(lo) or math.isnan(hi):
        return INCONCLUSIVE
    if lo > 0:
        return REPRODUCED
    if hi < 0:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def claim_targets(
    summary: pd.DataFrame,
    target: str,
    probe_tasks: Iterable[str] = PROBE_TASKS,
    exclude_tiers: Iterable[str] = ("intractable",),
) -> list[tuple[str, str, str]]:
    """(task, tier, metric) a claim is judged on: generation accuracies, or probe forgetting (points)."""
    probes, skip = set(probe_tasks), set(exclude_tiers)
    cols = table_columns(summary)
    if target == "forgetting":
        return [c for c in cols if c[0] in probes and c[2] in FORGETTING_PTS]
    return [c for c in cols if c[0] not in probes and c[1] not in skip and not c[2].startswith("forgetting")]


def _judge(
    summary: pd.DataFrame,
    claim: Claim,
    roles: Mapping[str, str],
    step: int,
    target: tuple[str, str, str],
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    method, reference = roles.get(claim.method, claim.method), roles.get(claim.reference, claim.reference)
    task, tier, metric = target
    first, second = (reference, method) if claim.target == "forgetting" else (method, reference)
    pair = paired_difference(
        summary, first, second, step, task, tier, metric, opts["n_boot"], opts["level"], opts["seed"]
    )
    detail = f"{first} − {second}" + (" forgetting (pts)" if claim.target == "forgetting" else "")
    verdict = verdict_from_ci(pair["ci_lo"], pair["ci_hi"], pair["n_pairs"], opts["min_pairs"])
    return {
        "claim": claim.name,
        "step": step,
        "task": task,
        "tier": tier,
        "metric": metric,
        "method": method,
        "reference": reference,
        **pair,
        "verdict": verdict,
        "detail": detail,
    }


def claim_verdicts(
    summary: pd.DataFrame,
    roles: Mapping[str, str] | None = None,
    claims: Iterable[Claim] = CLAIMS,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    min_pairs: int = 2,
) -> pd.DataFrame:
    """One verdict per claim × budget × target (task, tier, metric); see the module docstring."""
    roles = {**DEFAULT_ROLES, **(roles or {})}
    opts = {"n_boot": n_boot, "level": level, "seed": seed, "min_pairs": min_pairs}
    rows = []
    for claim in claims:
        for step in budgets(summary):
            targets = claim_targets(summary, claim.target)
            rows += [_judge(summary, claim, roles, step, t, opts) for t in targets]
            if not targets:
                rows.append(
                    {
                        "claim": claim.name,
                        "step": step,
                        "verdict": NOT_RUN,
                        "detail": f"no {claim.target} results to judge",
                    }
                )
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


def _bins(snr: Mapping[str, Any] | str | os.PathLike[str]) -> pd.DataFrame:
    if not isinstance(snr, Mapping):
        snr = json.loads(Path(snr).read_text(encoding="utf-8"))
    return pd.DataFrame(list(snr.get("bins", [])))


def bell_verdict(bins: pd.DataFrame) -> tuple[str, str]:
    """(verdict, detail) for one group's bins (columns bin_lo, bin_hi, snr, ci_lo, ci_hi)."""
    b = bins.dropna(subset=["snr", "ci_lo", "ci_hi"]).sort_values("bin_lo")
    if len(b) < 3:
        return INCONCLUSIVE, f"{len(b)} bins with an SNR estimate (need 3)"
    left, right, inner = b.iloc[0], b.iloc[-1], b.iloc[1:-1]
    best = inner.loc[inner["snr"].idxmax()]
    detail = (
        f"ends {left['snr']:.3g} [{left['ci_lo']:.3g}, {left['ci_hi']:.3g}] / {right['snr']:.3g} "
        f"[{right['ci_lo']:.3g}, {right['ci_hi']:.3g}]; best interior {best['snr']:.3g} at "
        f"p in [{best['bin_lo']:.3g}, {best['bin_hi']:.3g}] [{best['ci_lo']:.3g}, {best['ci_hi']:.3g}]"
    )
    if best["ci_lo"] > max(left["ci_hi"], right["ci_hi"]):
        return REPRODUCED, detail
    if max(left["ci_lo"], right["ci_lo"]) > inner["ci_hi"].max():
        return NOT_REPRODUCED, detail
    return INCONCLUSIVE, detail


def snr_verdicts(
    snr: Mapping[str, Any] | str | os.PathLike[str], name: str = "SNR is bell-shaped in p"
) -> pd.DataFrame:
    """One ``SNR is bell-shaped in p`` verdict per bin group of an SNR result (dict or JSON path)."""
    bins = _bins(snr)
    rows = []
    if bins.empty:
        rows.append({"claim": name, "verdict": NOT_RUN, "detail": "no bins"})
    for group, grp in bins.groupby("group", sort=False) if not bins.empty else []:
        verdict, detail = bell_verdict(grp)
        rows.append(
            {
                "claim": name,
                "step": 0,
                "task": "snr",
                "tier": group,
                "metric": "snr",
                "method": BASE_METHOD,
                "reference": "",
                "n_pairs": len(grp),
                "verdict": verdict,
                "detail": detail,
            }
        )
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


def _cell_mean(rows: pd.DataFrame, method: str, target: tuple[str, str, str]) -> float:
    task, tier, metric = target
    sel = rows[
        (rows["method"] == method) & (rows["task"] == task) & (rows["tier"] == tier) & (rows["metric"] == metric)
    ]["value"].dropna()
    return float(sel.mean()) * metric_scale(metric) if len(sel) else math.nan


def oracle_gap(summary: pd.DataFrame, roles: Mapping[str, str] | None = None) -> pd.DataFrame:
    """How close PACED comes to the oracle control, per budget and accuracy target (means over seeds).

    ``gap = oracle − paced``; ``share = (paced − uniform) / (oracle − uniform)``, the share of the
    uniform→oracle gain that PACED recovers (NaN when oracle and uniform tie or one is missing).
    """
    roles = {**DEFAULT_ROLES, **(roles or {})}
    out = []
    for step in budgets(summary):
        rows = at_budget(summary, step)
        for target in claim_targets(summary, "accuracy"):
            u, p, o = (_cell_mean(rows, roles[r], target) for r in ("uniform", "paced", "oracle"))
            gain = o - u
            share = (p - u) / gain if np.isfinite(gain) and gain != 0 else math.nan
            out.append(
                {
                    "step": step,
                    "task": target[0],
                    "tier": target[1],
                    "metric": target[2],
                    "uniform": u,
                    "paced": p,
                    "oracle": o,
                    "gap": o - p,
                    "share": share,
                }
            )
    return pd.DataFrame(out, columns=["step", "task", "tier", "metric", "uniform", "paced", "oracle", "gap", "share"])


def verdict_table(
    summary: pd.DataFrame, snr: Iterable[Mapping[str, Any] | str | os.PathLike[str]] = (), **kwargs: Any
) -> pd.DataFrame:
    """All claim verdicts, then the SNR-bell verdicts of each SNR result given."""
    parts = [claim_verdicts(summary, **kwargs)] + [snr_verdicts(s) for s in snr]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(VERDICT_COLUMNS))
