"""The primary claims across worlds: each world's verdicts, a pooled verdict, and which claims survive every world.

Each world (a toy world built from its own ``world.seed``, everything else equal) gives a ``summary.csv``.
Per world, the primary verdicts are those of :func:`paced.report.verdicts.claim_verdicts`. Pooled, the unit
of replication is the world: each world contributes its mean paired difference d̄_w (over its seeds), and
the pooled interval is the t-interval over the W world means, at the claim's family level 1 − α/m:

    mean_w d̄_w ± t_{W−1, 1−α/(2m)} · sd_w(d̄_w) / √W

It treats worlds as draws from the world generator (a random effect), so it speaks for worlds not built,
at the price of W − 1 degrees of freedom (W ≥ 2; wide at W = 3 unless the worlds agree). A claim
*survives every world* when each world's own primary verdict is ``reproduced``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paced.report.claims import FKL_TRACK, PRIMARY, TRACKS, primary_level
from paced.report.collect import add_forgetting, read_summary
from paced.report.format import write_frame
from paced.report.stats import t_bounds
from paced.report.verdicts import DEFAULT_ALPHA, REPRODUCED, claim_verdicts, verdict_from_ci

POOLED = "pooled"
ROBUST_COLUMNS = ("claim", "track", "world", "step", "task", "tier", "metric", "n_pairs", "mean_diff", "level",
                  "ci_lo", "ci_hi", "null", "verdict")


def world_verdicts(summaries: Mapping[str, pd.DataFrame], alpha: float = DEFAULT_ALPHA,
                   **kwargs: Any) -> pd.DataFrame:
    """Primary verdicts per world (``summaries``: world name -> summary) and pooled over worlds.

    ``kwargs`` go to :func:`claim_verdicts` (``noninferiority_margin_pts``, ``methods``, ``train_steps``).
    Pooled rows have ``world = "pooled"`` and ``n_pairs`` = the number of worlds with a result.
    """
    per_world = []
    for world, summary in summaries.items():
        if not summary["metric"].isin(["forgetting_pts"]).any():
            summary = add_forgetting(summary)
        v = claim_verdicts(summary, alpha=alpha, **kwargs)
        per_world.append(v[v["family"] == PRIMARY].assign(world=str(world)))
    if not per_world:
        return pd.DataFrame(columns=list(ROBUST_COLUMNS))
    rows = pd.concat(per_world, ignore_index=True)
    return pd.concat([rows, _pooled(rows, alpha)], ignore_index=True)[list(ROBUST_COLUMNS)]


def _pooled(rows: pd.DataFrame, alpha: float) -> pd.DataFrame:
    out = []
    sizes = {t.name: t.family_size for t in TRACKS} | {"custom": FKL_TRACK.family_size}
    for (claim, track), grp in rows.groupby(["claim", "track"], sort=False):
        judged = grp[grp["n_pairs"] > 0]
        means = judged["mean_diff"].to_numpy(float)
        level = primary_level(alpha, sizes[track])
        sd = means.std(ddof=1) if len(means) > 1 else np.nan
        lo, hi = t_bounds(np.array([means.mean() if len(means) else np.nan]), np.array([sd]),
                          np.array([len(means)]), level)
        null = float(grp["null"].iloc[0])
        first = grp.iloc[0]
        out.append({"claim": claim, "track": track, "world": POOLED, "step": first["step"], "task": first["task"],
                    "tier": first["tier"], "metric": first["metric"], "n_pairs": len(means),
                    "mean_diff": float(np.mean(means)) if len(means) else np.nan, "level": level,
                    "ci_lo": float(lo[0]), "ci_hi": float(hi[0]), "null": null,
                    "verdict": verdict_from_ci(float(lo[0]), float(hi[0]), len(means), null)})
    return pd.DataFrame(out)


def survivors(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per claim: each world's verdict, the pooled verdict, and whether it is reproduced in every world."""
    worlds = verdicts[verdicts["world"] != POOLED]
    wide = worlds.pivot_table(index=["track", "claim"], columns="world", values="verdict", aggfunc="first")
    pooled = verdicts[verdicts["world"] == POOLED].set_index(["track", "claim"])["verdict"]
    wide[POOLED] = pooled.reindex(wide.index)
    wide["every world"] = (worlds.assign(ok=worlds["verdict"] == REPRODUCED)
                           .groupby(["track", "claim"])["ok"].all().reindex(wide.index))
    return wide.reset_index()


def write_robustness(summary_paths: Mapping[str, str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                     **kwargs: Any) -> list[Path]:
    """``robustness`` (every world's and the pooled primary verdicts) and ``survivors`` tables under ``out_dir``.

    ``summary_paths``: world name -> that world's ``summary.csv``; ``kwargs`` as :func:`world_verdicts`.
    """
    verdicts = world_verdicts({w: read_summary(p) for w, p in summary_paths.items()}, **kwargs)
    out = Path(out_dir)
    paths = write_frame(verdicts, out / "robustness", index=False,
                        caption="Primary claims per world and pooled over worlds (t-interval over world means)")
    paths += write_frame(survivors(verdicts), out / "survivors", index=False,
                         caption="Which primary claims are reproduced in every world")
    return paths
