"""The readers' figures: data shaping against hand-computed values; every figure drawn from the fixture results."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from paced.report import make_all_figures, read_summary
from paced.report.reader_data import (
    accuracy_bands,
    gain_forgetting_points,
    passrate_counts,
    run_identity,
    seed_style,
    tier_weight_shares,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results"


def _summary(rows: list[tuple]) -> pd.DataFrame:
    cols = ["method", "seed", "step", "task", "tier", "metric", "value"]
    df = pd.DataFrame(rows, columns=cols)
    df["n"], df["note"] = 10, ""
    return df


HAND = _summary([
    ("base", 0, 0, "toy_arith", "all", "avg@k", 0.4), ("base", 1, 0, "toy_arith", "all", "avg@k", 0.6),
    ("m", 0, 100, "toy_arith", "all", "avg@k", 0.5), ("m", 1, 100, "toy_arith", "all", "avg@k", 0.9),
    ("base", 0, 0, "toy_probe", "all", "em", 0.9), ("base", 1, 0, "toy_probe", "all", "em", 0.8),
    ("m", 0, 100, "toy_probe", "all", "em", 0.7), ("m", 1, 100, "toy_probe", "all", "em", 0.8),
    ("base", 0, 0, "toy_probe", "all", "mc_prob", 0.95), ("base", 1, 0, "toy_probe", "all", "mc_prob", 0.85),
    ("m", 0, 100, "toy_probe", "all", "mc_prob", 0.90), ("m", 1, 100, "toy_probe", "all", "mc_prob", 0.86),
])


def test_accuracy_bands_mean_and_min_max_over_seeds_with_the_base_at_step_0() -> None:
    bands = accuracy_bands(HAND, "toy_arith", "all", "avg@k")
    assert bands[["method", "step"]].values.tolist() == [["m", 0], ["m", 100]]
    assert bands["mean"].tolist() == pytest.approx([0.5, 0.7])
    assert bands["lo"].tolist() == pytest.approx([0.4, 0.5])
    assert bands["hi"].tolist() == pytest.approx([0.6, 0.9])


def test_gain_and_forgetting_per_method_and_seed() -> None:
    pts = gain_forgetting_points(HAND)
    assert pts["seed"].tolist() == [0, 1] and set(pts["step"]) == {100}
    assert pts["gain"].tolist() == pytest.approx([10.0, 30.0])  # 100·(0.5−0.4), 100·(0.9−0.6): same-seed base
    assert pts["forgetting_em"].tolist() == pytest.approx([20.0, 0.0])  # 100·(0.9−0.7), 100·(0.8−0.8)
    assert pts["forgetting_prob"].tolist() == pytest.approx([5.0, -1.0])  # 100·(0.95−0.90), 100·(0.85−0.86)


def test_tier_weight_shares_from_run_logs(tmp_path: Path) -> None:
    log = tmp_path / "runs" / "paced-fkl" / "seed2" / "log.jsonl"
    log.parent.mkdir(parents=True)
    rows = [{"event": "step", "step": 10, "tier_weight_share": {"learnable": 0.75, "intractable": 0.25}},
            {"event": "stage", "step": 10}, {"event": "step", "step": 20, "tier_weight_share": {"learnable": 1.0}}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert run_identity(log) == ("paced-fkl", 2)
    got = tier_weight_shares([log])
    assert got.values.tolist() == [["paced-fkl", 2, 10, "learnable", 0.75], ["paced-fkl", 2, 10, "intractable", 0.25],
                                   ["paced-fkl", 2, 20, "learnable", 1.0]]
    with pytest.raises(ValueError, match="runs/<method>/seed<N>"):
        run_identity(tmp_path / "log.jsonl")


def test_passrate_counts_and_seed_styles() -> None:
    rows = [{"num_correct": c, "k": 4} for c in (0, 0, 1, 4)] + [{"num_correct": 2, "k": 8}]
    # k = 8 (the largest): 1/4 and 2/8 both land on j = 2, 4/4 on j = 8
    assert passrate_counts(rows) == (8, [2, 0, 2, 0, 0, 0, 0, 0, 1])
    styles = seed_style([2, 0, 1, 0])
    assert list(styles) == [0, 1, 2] and len({v for v in styles.values()}) == 3


def test_every_figure_is_drawn_from_the_fixture(tmp_path: Path) -> None:
    logs = []
    for method, share in (("uniform-fkl", 0.25), ("paced-fkl", 0.05)):
        log = tmp_path / "runs" / method / "seed0" / "log.jsonl"
        log.parent.mkdir(parents=True)
        log.write_text("".join(json.dumps({"event": "step", "step": s, "tier_weight_share":
                                           {"learnable": 1 - share, "intractable": share}}) + "\n"
                               for s in (10, 20)), encoding="utf-8")
        logs.append(log)
    base = FIXTURE / "passrates" / "base" / "passrates.jsonl"
    after = next((FIXTURE / "passrates" / "paced-fkl").rglob("passrates.jsonl"))
    out = tmp_path / "figures"
    paths = make_all_figures(read_summary(FIXTURE / "summary.csv"), out, passrates=(base, after), logs=logs,
                             after_passrates={"paced-fkl": after})
    for name in ("accuracy_vs_budget", "gain_vs_forgetting", "forgetting_graded", "tier_weight_mass",
                 "passrate_hist_per_method"):
        for ext in ("png", "pdf"):
            path = out / f"{name}.{ext}"
            assert path in paths and path.stat().st_size > 1000, path
