"""Primary claims across worlds: per-world verdicts, the pooled t-interval over world means, survivors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paced.report.robustness import POOLED, survivors, world_verdicts, write_robustness
from paced.report.verdicts import INCONCLUSIVE, REPRODUCED


def _world(gain: float, shift: float) -> pd.DataFrame:
    """uniform-fkl and paced-fkl (paced better by ``gain`` points, seeds ±0.1) and hardfilter-fkl (= paced − 1
    + shift) on toy_arith/all at steps 150 and 300."""
    rows = []
    for method, base in (("uniform-fkl", 0.5), ("paced-fkl", 0.5 + gain / 100),
                         ("hardfilter-fkl", 0.5 + (gain - 1 + shift) / 100)):
        for step in (150, 300):
            for seed, noise in enumerate((-0.001, 0.0, 0.001)):
                rows.append({"method": method, "seed": seed, "step": step, "task": "toy_arith", "tier": "all",
                             "metric": "avg@k", "value": base + noise * (1 + (method == "paced-fkl")),
                             "n": 64.0, "note": ""})
    return pd.DataFrame(rows).astype({"seed": "Int64", "step": "Int64"})


WORLDS = {"world0": _world(15.0, 0.0), "world1": _world(14.0, 3.0), "world2": _world(16.0, -3.0)}


def test_pooled_interval_is_the_t_interval_over_world_means() -> None:
    v = world_verdicts(WORLDS)
    pooled = v[v["world"] == POOLED].set_index("claim")
    row = pooled.loc["PACED > uniform"]
    means = v[(v["claim"] == "PACED > uniform") & (v["world"] != POOLED)]["mean_diff"].to_numpy()
    assert means == pytest.approx([15.0, 14.0, 16.0])
    q = 1 - 0.05 / 7 / 2  # t_{2, q} in closed form: (2q − 1) / sqrt(2 q (1 − q))
    half = (2 * q - 1) / math.sqrt(2 * q * (1 - q)) * np.std(means, ddof=1) / math.sqrt(3)
    assert (row["ci_lo"], row["ci_hi"]) == pytest.approx((15.0 - half, 15.0 + half))
    assert row["verdict"] == REPRODUCED and row["n_pairs"] == 3
    # the hard-filter gap flips sign between worlds (+1, −2, +4 points): not pooled into a verdict
    assert pooled.loc["PACED > hard filter", "verdict"] == INCONCLUSIVE


def test_survivors_and_files(tmp_path: Path) -> None:
    table = survivors(world_verdicts(WORLDS)).set_index("claim")
    assert bool(table.loc["PACED > uniform", "every world"])
    assert not bool(table.loc["PACED > hard filter", "every world"])
    assert table.loc["PACED > AKL", "world0"] == "not run"
    paths = {}
    for name, df in WORLDS.items():
        paths[name] = tmp_path / name / "summary.csv"
        paths[name].parent.mkdir()
        df.to_csv(paths[name], index=False)
    written = write_robustness(paths, tmp_path / "out")
    assert {p.name for p in written} >= {"robustness.md", "survivors.md", "robustness.csv"}
    assert "PACED > uniform" in (tmp_path / "out" / "survivors.md").read_text()
