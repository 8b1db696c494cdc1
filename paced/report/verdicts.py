"""Each pre-registered paper claim (:mod:`paced.report.claims`), at each budget, judged from an interval.

Rule (one for every claim): the difference is oriented so that positive supports the claim (accuracy:
method − reference; forgetting: forgetting(reference) − forgetting(method)) and compared with its null
value (0 for superiority, −margin for non-inferiority) through the paired t-interval over seeds
(:mod:`paced.report.stats`): interval above the null -> ``reproduced``; below -> ``not reproduced``;
containing it -> ``inconclusive``; fewer than ``min_pairs`` matched seeds -> ``inconclusive``; a method
not run -> ``not run``; a budget at which a multi-stage method has not left its first stage ->
``first stage only (not judged)`` (it is then another method's run). Primary cells use the family level
1 − α/m, exploratory cells 1 − α (column ``family`` says which, ``level`` gives the level).

Under the null (no difference) each cell gives a false verdict with probability 1 − level, and the
primary family of a track as a whole with probability at most α (Bonferroni); the calibration test
checks both by simulation through :func:`claim_verdicts`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from paced.report.claims import (
    CLAIMS,
    EXPLORATORY,
    NONINFERIORITY,
    PRIMARY,
    Claim,
    Track,
    primary_level,
    tracks_for,
)
from paced.report.collect import BASE_METHOD, PROBE_TASKS
from paced.report.snr_bell import bell_verdict
from paced.report.stats import PAIRED_COLUMNS, paired_from_wide, pivot_by_seed, t_bounds
from paced.report.tables import FORGETTING_PTS, at_budget, budgets, metric_scale, table_columns

if TYPE_CHECKING:
    from paced.methods import MethodSpec

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = "reproduced", "not reproduced", "inconclusive", "not run"
FIRST_STAGE = "first stage only (not judged)"
DEFAULT_ROLES: Mapping[str, str] = {
    "paced": "paced-fkl",
    "uniform": "uniform-fkl",
    "hardfilter": "hardfilter-fkl",
    "akl": "akl",
    "two_stage": "paced-fkl-then-rkl",
    "oracle": "oracle-fkl",
}
VERDICT_COLUMNS = ("claim", "track", "family", *PAIRED_COLUMNS, "null", "verdict", "detail")
DEFAULT_ALPHA = 0.05
DEFAULT_MARGIN_PTS = 1.0


def verdict_from_ci(lo: float, hi: float, n_pairs: int, null: float = 0.0, min_pairs: int = 2) -> str:
    """The verdict of a positively oriented difference's interval [lo, hi] over ``n_pairs`` seeds."""
    if n_pairs == 0:
        return NOT_RUN
    if n_pairs < min_pairs or math.isnan(lo) or math.isnan(hi):
        return INCONCLUSIVE
    if lo > null:
        return REPRODUCED
    if hi < null:
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


def primary_target(claim: Claim, targets: Iterable[tuple[str, str, str]]) -> tuple[str, str, str] | None:
    """The claim's pre-registered cell among ``targets``: the first of ``claim.tasks`` present."""
    present = set(targets)
    return next(((t, claim.tier, claim.metric) for t in claim.tasks if (t, claim.tier, claim.metric) in present), None)


def method_specs(specs: Mapping[str, Any] | None = None) -> dict[str, MethodSpec]:
    """Method id -> spec: the presets, then ``specs`` (specs, dicts or preset names, e.g. from the config)."""
    from paced.methods import METHODS, load_method  # on use: paced.methods imports torch

    out = {name: METHODS.get(name) for name in METHODS}
    out.update({mid: load_method(s) for mid, s in (specs or {}).items()})
    return out


def first_stage_only(method: str, step: int, specs: Mapping[str, MethodSpec], train_steps: int) -> bool:
    """Whether a multi-stage ``method`` is still in its first stage at ``step`` of a ``train_steps`` run."""
    spec = specs.get(method)
    if spec is None or len(spec.stages) < 2:
        return False
    return step <= spec.stage_steps(train_steps)[0]


def _claim_rows(
    summary: pd.DataFrame, claim: Claim, track: Track, step: int, ctx: Mapping[str, Any]
) -> list[dict[str, Any]]:
    roles = track.role_map
    method, reference = roles.get(claim.method, claim.method), roles.get(claim.reference, claim.reference)
    first, second = (reference, method) if claim.target == "forgetting" else (method, reference)
    targets = ctx["targets"][claim.target]
    primary = primary_target(claim, targets) if step == ctx["final"] else None
    null = -ctx["margin"] if claim.test == NONINFERIORITY else 0.0
    detail = f"{first} − {second}" + (" forgetting (pts)" if claim.target == "forgetting" else "")
    staged = [m for m in (method, reference) if first_stage_only(m, step, ctx["specs"], ctx["train_steps"])]
    cells = paired_from_wide(ctx["wide"][step], first, second)
    base = {"claim": claim.name, "track": track.name, "step": step, "method": method, "reference": reference}
    if not targets:
        fam = PRIMARY if step == ctx["final"] else EXPLORATORY  # a primary claim with nothing to judge says so
        return [{**base, "family": fam, "verdict": NOT_RUN, "detail": f"no {claim.target} results to judge"}]
    idx = pd.MultiIndex.from_tuples(targets, names=["task", "tier", "metric"])
    got = cells.reindex(idx)
    n = got["n_pairs"].fillna(0).to_numpy(dtype=int)
    fam = np.array([PRIMARY if t == primary else EXPLORATORY for t in targets])
    level = np.where(fam == PRIMARY, ctx["primary_level"], 1.0 - ctx["alpha"])
    mean, sd = got["mean_diff"].to_numpy(float), got["sd_diff"].to_numpy(float)
    lo, hi = t_bounds(mean, sd, n, level)
    rows = []
    for i, target in enumerate(targets):
        verdict, note = verdict_from_ci(lo[i], hi[i], int(n[i]), null, ctx["min_pairs"]), detail
        if staged and verdict != NOT_RUN:
            verdict, note = FIRST_STAGE, f"{detail}; {', '.join(staged)} has not left its first stage at step {step}"
        rows.append({**base, "family": fam[i], "task": target[0], "tier": target[1], "metric": target[2],
                     "n_pairs": int(n[i]), "mean_diff": mean[i], "sd_diff": sd[i],
                     "level": level[i], "ci_lo": lo[i], "ci_hi": hi[i], "null": null, "verdict": verdict,
                     "detail": note})
    return rows


def claim_verdicts(
    summary: pd.DataFrame,
    roles: Mapping[str, str] | None = None,
    claims: Iterable[Claim] | None = None,
    alpha: float = DEFAULT_ALPHA,
    noninferiority_margin_pts: float = DEFAULT_MARGIN_PTS,
    methods: Mapping[str, Any] | None = None,
    train_steps: int | None = None,
    min_pairs: int = 2,
) -> pd.DataFrame:
    """One verdict per track × claim × budget × target (task, tier, metric); see the module docstring.

    ``alpha``, ``noninferiority_margin_pts``: the ``report`` config. ``methods``: method id -> spec (or
    dict) for ids that are not presets, to tell when a multi-stage run has left its first stage;
    ``train_steps``: the runs' ``train.steps`` (default: the largest budget evaluated). ``claims``
    restricts the claims judged (the family size stays the track's). Seed-based claims only; the SNR
    bell is judged by :func:`snr_verdicts`.
    """
    if noninferiority_margin_pts < 0 or not math.isfinite(noninferiority_margin_pts):
        raise ValueError(f"report.noninferiority_margin_pts={noninferiority_margin_pts!r} is out of range; "
                         "allowed: a finite number >= 0 (points)")
    steps = budgets(summary)
    names = None if claims is None else {c.name for c in claims}
    rows: list[dict[str, Any]] = []
    specs = method_specs(methods)
    wide = {step: pivot_by_seed(at_budget(summary, step)) for step in steps}  # shared by every claim
    targets = {kind: claim_targets(summary, kind) for kind in ("accuracy", "forgetting")}
    for track in tracks_for(frozenset(summary["method"].dropna()), roles):
        ctx = {"final": steps[-1], "alpha": alpha, "margin": float(noninferiority_margin_pts),
               "primary_level": primary_level(alpha, track.family_size), "min_pairs": min_pairs,
               "specs": specs, "train_steps": train_steps or steps[-1], "wide": wide, "targets": targets}
        for claim in track.claims:
            if claim.target == "snr" or (names is not None and claim.name not in names):
                continue
            for step in steps:
                rows += _claim_rows(summary, claim, track, step, ctx)
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


def _load_snr(snr: Mapping[str, Any] | str | os.PathLike[str]) -> Mapping[str, Any]:
    return snr if isinstance(snr, Mapping) else json.loads(Path(snr).read_text(encoding="utf-8"))


def snr_verdicts(
    snr: Mapping[str, Any] | str | os.PathLike[str],
    alpha: float = DEFAULT_ALPHA,
    track: Track | None = None,
) -> pd.DataFrame:
    """One SNR-bell verdict per bin group of an SNR result (dict or JSON path), by the contrast test of
    :mod:`paced.report.snr_bell`; the ``all`` group is primary in ``track``'s family, the rest exploratory."""
    result = _load_snr(snr)
    bins = pd.DataFrame(list(result.get("bins", [])))
    claim = next(c for c in CLAIMS if c.target == "snr")
    ci = float(result.get("config", {}).get("ci", 0.95))
    name = track.name if track is not None else ""
    if bins.empty:
        return pd.DataFrame([{"claim": claim.name, "track": name, "family": EXPLORATORY, "verdict": NOT_RUN,
                              "detail": "no bins"}], columns=list(VERDICT_COLUMNS))
    rows = []
    for group, grp in bins.groupby("group", sort=False):
        fam = PRIMARY if track is not None and group == claim.tier else EXPLORATORY
        level = primary_level(alpha, track.family_size) if fam == PRIMARY else 1.0 - alpha
        verdict, detail, (est, lo, hi) = bell_verdict(grp, level, ci, (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE))
        rows.append({"claim": claim.name, "track": name, "family": fam, "step": 0, "task": "snr", "tier": group,
                     "metric": "snr", "method": BASE_METHOD, "reference": "", "n_pairs": len(grp),
                     "mean_diff": est, "level": level, "ci_lo": lo, "ci_hi": hi, "null": 0.0,
                     "verdict": verdict, "detail": detail})
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
    summary: pd.DataFrame,
    snr: Iterable[Mapping[str, Any] | str | os.PathLike[str]] = (),
    roles: Mapping[str, str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    **kwargs: Any,
) -> pd.DataFrame:
    """All claim verdicts (:func:`claim_verdicts`), then each track's SNR-bell verdicts of each SNR result."""
    parts = [claim_verdicts(summary, roles=roles, alpha=alpha, **kwargs)]
    snr = list(snr)
    for track in tracks_for(frozenset(summary["method"].dropna()), roles):
        parts += [snr_verdicts(s, alpha, track) for s in snr]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(VERDICT_COLUMNS))
