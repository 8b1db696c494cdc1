"""Calibration of the verdict procedure, by simulation through the real verdict code.

Data sets are simulated as ``summary.csv`` holds them (one value per method × seed × cell, accuracies as
fractions, forgetting in points) and judged by :func:`paced.report.claim_verdicts`, the function the
tables rule calls. Many data sets are judged in one call, each as its own tier of one task, so a
false-verdict rate over R data sets costs one call. Tolerances are 3 binomial standard errors of the
simulated rate, sqrt(a (1 − a) / R), with a fixed RNG seed: the test can fail only if the procedure's
error rate exceeds its nominal level by more than the simulation's own noise.

``python tests/test_verdict_calibration.py`` prints the calibration figures and the power table quoted in the
README (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from paced.report import claim_verdicts
from paced.report.claims import FKL_TRACK, PACED_FORGETS_LESS, PACED_GT_UNIFORM, primary_level
from paced.report.collect import add_forgetting
from paced.report.verdicts import NOT_REPRODUCED, REPRODUCED

ALPHA = 0.05
SD_PTS = 1.0  # seed std of each method's value, in points: effects below are in units of it
STEP = 300


def _rows(method: str, task: str, tier: str, metric: str, values: np.ndarray, step: int = STEP) -> list[dict]:
    """summary.csv rows: ``values`` [R, n] -> tier ``<tier><r>``, seed j."""
    return [
        {"method": method, "seed": j, "step": step, "task": task, "tier": f"{tier}{r}", "metric": metric,
         "value": float(v), "n": 64.0, "note": ""}
        for r, row in enumerate(values)
        for j, v in enumerate(row)
    ]


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    return df.astype({"seed": "Int64", "step": "Int64"})


def simulate_accuracy(rng: np.random.Generator, n_sets: int, n_seeds: int, effect_sd: float) -> pd.DataFrame:
    """paced-fkl and uniform-fkl avg@k (fractions) on ``n_sets`` data sets; paced is better by
    ``effect_sd`` seed stds. The two methods share no seed effect (independent runs)."""
    sd = SD_PTS / 100
    uniform = 0.60 + sd * rng.standard_normal((n_sets, n_seeds))
    paced = 0.60 + effect_sd * sd + sd * rng.standard_normal((n_sets, n_seeds))
    return _frame(_rows("uniform-fkl", "toy_arith", "sim", "avg@k", uniform)
                  + _rows("paced-fkl", "toy_arith", "sim", "avg@k", paced))


def _verdict_rates(verdicts: pd.DataFrame) -> tuple[float, float]:
    """(share reproduced, share not reproduced) over the simulated data sets."""
    v = verdicts[verdicts["tier"].str.startswith("sim")]["verdict"]
    return float((v == REPRODUCED).mean()), float((v == NOT_REPRODUCED).mean())


def _tolerance(rate: float, n: int) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("n_seeds", [2, 3])
def test_null_false_verdict_rate_at_most_nominal(n_seeds: int) -> None:
    """Two identical methods: any reproduced / not reproduced verdict is false; its rate is ≤ α per cell."""
    n_sets = 3000
    sims = simulate_accuracy(np.random.default_rng(1000 + n_seeds), n_sets, n_seeds, effect_sd=0.0)
    v = claim_verdicts(sims, claims=(PACED_GT_UNIFORM,), alpha=ALPHA)
    assert len(v) == n_sets and v["level"].to_numpy() == pytest.approx(np.full(n_sets, 1 - ALPHA))  # exploratory
    yes, no = _verdict_rates(v)
    # the old percentile bootstrap gave 2 * 2^-n here: 0.5 at n = 2, 0.25 at n = 3
    assert yes + no <= ALPHA + _tolerance(ALPHA, n_sets), (yes, no)
    assert yes + no >= ALPHA - _tolerance(ALPHA, n_sets), (yes, no)  # exact under normality: not conservative
    assert abs(yes - no) <= _tolerance(ALPHA / 2, n_sets) * math.sqrt(2)  # both tails alike


def test_primary_family_level_is_bonferroni() -> None:
    """The pre-registered cell (toy_arith, all, final budget) is judged at 1 − α/m, m = the track's claims."""
    rng = np.random.default_rng(7)
    sims = simulate_accuracy(rng, 1, 3, effect_sd=0.0)
    sims = pd.concat([sims, sims.assign(tier="all")], ignore_index=True)
    v = claim_verdicts(sims, claims=(PACED_GT_UNIFORM,), alpha=ALPHA).set_index("tier")
    assert v.loc["all", "family"] == "primary" and v.loc["sim0", "family"] == "exploratory"
    assert v.loc["all", "level"] == pytest.approx(1 - ALPHA / FKL_TRACK.family_size)
    assert FKL_TRACK.family_size == 7  # 5 accuracy claims, forgetting, SNR bell


def test_primary_level_false_rate() -> None:
    """At the per-claim level 1 − α/m the false-verdict rate is ≤ α/m, so the family's is ≤ α."""
    n_sets, m = 20000, FKL_TRACK.family_size
    sims = simulate_accuracy(np.random.default_rng(11), n_sets, 3, effect_sd=0.0)
    v = claim_verdicts(sims, claims=(PACED_GT_UNIFORM,), alpha=ALPHA / m)  # exploratory level = 1 − α/m
    yes, no = _verdict_rates(v)
    assert yes + no <= ALPHA / m + _tolerance(ALPHA / m, n_sets), (yes, no)


def test_noninferiority_at_the_margin() -> None:
    """PACED forgets exactly ``margin`` points more than uniform: 'reproduced' is false; rate ≤ α/2 (one tail)."""
    n_sets, margin, rng = 4000, 1.0, np.random.default_rng(3)
    uniform = 2.0 + SD_PTS * rng.standard_normal((n_sets, 3))
    paced = 2.0 + margin + SD_PTS * rng.standard_normal((n_sets, 3))
    sims = _frame(_rows("uniform-fkl", "toy_probe", "sim", "forgetting_pts", uniform)
                  + _rows("paced-fkl", "toy_probe", "sim", "forgetting_pts", paced))
    v = claim_verdicts(sims, claims=(PACED_FORGETS_LESS,), alpha=ALPHA, noninferiority_margin_pts=margin)
    yes, _ = _verdict_rates(v)
    assert yes <= ALPHA / 2 + _tolerance(ALPHA / 2, n_sets), yes
    # identical forgetting with a tight spread: non-inferiority is shown
    same = _frame(_rows("uniform-fkl", "toy_probe", "sim", "forgetting_pts", np.array([[2.0, 2.1, 2.2]]))
                  + _rows("paced-fkl", "toy_probe", "sim", "forgetting_pts", np.array([[2.1, 2.1, 2.1]])))
    assert claim_verdicts(same, claims=(PACED_FORGETS_LESS,), noninferiority_margin_pts=margin)["verdict"].tolist() \
        == [REPRODUCED]


def test_known_effects_are_found_in_the_right_direction() -> None:
    """Large effects (20 seed stds) are reproduced, or not reproduced when reversed, in nearly every data set."""
    rng = np.random.default_rng(5)
    yes, _ = _verdict_rates(claim_verdicts(simulate_accuracy(rng, 500, 3, 20.0), claims=(PACED_GT_UNIFORM,)))
    _, no = _verdict_rates(claim_verdicts(simulate_accuracy(rng, 500, 3, -20.0), claims=(PACED_GT_UNIFORM,)))
    assert yes >= 0.95 and no >= 0.95, (yes, no)


def _complete_null(rng: np.random.Generator) -> pd.DataFrame:
    """Every FKL method (and the base student) drawn from one distribution: accuracy and probe."""
    rows = []
    for method in ["base", *(m for _, m in FKL_TRACK.roles)]:
        step = 0 if method == "base" else STEP
        rows += _rows(method, "toy_arith", "all", "avg@k", 0.6 + 0.01 * rng.standard_normal((1, 3)), step)
        rows += _rows(method, "toy_probe", "all", "mc_acc", 0.9 + 0.01 * rng.standard_normal((1, 3)), step)
    return add_forgetting(_frame(rows).assign(tier="all"))


def _false_primary(df: pd.DataFrame) -> bool:
    v = claim_verdicts(df, alpha=ALPHA, train_steps=2 * STEP)  # the two-stage run has left its FKL stage
    prim = v[(v["family"] == "primary") & (v["claim"] != PACED_FORGETS_LESS.name)]
    assert len(prim) == 5 and prim["level"].to_numpy() == pytest.approx(np.full(5, 1 - ALPHA / 7))
    return bool(prim["verdict"].isin([REPRODUCED, NOT_REPRODUCED]).any())


def test_complete_null_primary_family() -> None:
    """One complete-null data set: the five seed-based primary claims sit at level 1 − α/7 (the family)."""
    assert isinstance(_false_primary(_complete_null(np.random.default_rng(17))), bool)


@pytest.mark.slow
def test_familywise_error_under_the_complete_null() -> None:
    """Share of complete-null data sets with any false primary verdict ≤ α (Bonferroni: ≤ 5α/7 here)."""
    rng, n_sets = np.random.default_rng(17), 400
    hits = sum(_false_primary(_complete_null(rng)) for _ in range(n_sets))
    assert hits / n_sets <= ALPHA + _tolerance(ALPHA, n_sets), hits


def power_table(n_seeds: tuple[int, ...] = (3, 5), effects: tuple[float, ...] = (1, 2, 4, 8, 16),
                n_sets: int = 2000) -> pd.DataFrame:
    """Share of data sets judged ``reproduced`` per effect (seed stds), seed count and level."""
    rng = np.random.default_rng(0)
    out = []
    for n in n_seeds:
        for effect in effects:
            sims = simulate_accuracy(rng, n_sets, n, effect)
            row = {"seeds": n, "effect (seed sd)": effect}
            for name, alpha in (("exploratory (1 − α)", ALPHA), ("primary (1 − α/7)", ALPHA / 7)):
                yes, _ = _verdict_rates(claim_verdicts(sims, claims=(PACED_GT_UNIFORM,), alpha=alpha))
                row[name] = yes
            out.append(row)
    return pd.DataFrame(out)


def test_power_grows_with_effect_and_seeds() -> None:
    table = power_table(n_seeds=(3, 5), effects=(2, 8), n_sets=400)
    p = table.set_index(["seeds", "effect (seed sd)"])["primary (1 − α/7)"]
    assert p[(3, 2)] < p[(3, 8)] and p[(3, 8)] < p[(5, 8)], table
    assert primary_level(ALPHA, 7) == pytest.approx(1 - ALPHA / 7)
    print(table.to_string(index=False))


def calibration_report() -> None:
    """Print the README's calibration figures: null false-verdict rates, the family's rate, the power table."""
    for n in (2, 3):
        sims = simulate_accuracy(np.random.default_rng(1000 + n), 3000, n, 0.0)
        yes, no = _verdict_rates(claim_verdicts(sims, claims=(PACED_GT_UNIFORM,), alpha=ALPHA))
        print(f"null, one cell, {n} seeds, level {1 - ALPHA:g}, 3000 sets: false-verdict rate {yes + no:.4f}")
    m = FKL_TRACK.family_size
    sims = simulate_accuracy(np.random.default_rng(11), 20000, 3, 0.0)
    yes, no = _verdict_rates(claim_verdicts(sims, claims=(PACED_GT_UNIFORM,), alpha=ALPHA / m))
    print(f"null, one primary claim, 3 seeds, level 1 - {ALPHA:g}/{m}, 20000 sets: {yes + no:.4f} "
          f"(nominal {ALPHA / m:.4f})")
    rng, n_sets = np.random.default_rng(17), 400
    hits = sum(_false_primary(_complete_null(rng)) for _ in range(n_sets))
    print(f"complete null, fkl family, 3 seeds, {n_sets} sets: any false primary verdict {hits / n_sets:.3f}")
    print(power_table().to_string(index=False, float_format=lambda x: f"{x:.2f}"))


if __name__ == "__main__":
    calibration_report()
