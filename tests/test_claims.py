"""Claims as the paper states them: tracks, first-stage budgets, FKL→RKL against both references, the
pre-fixed SNR-bell test, method order from the presets, skipped batches."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from paced.methods import PRESET_ORDER, get_method
from paced.report import claim_verdicts, skipped_batches, snr_verdicts, verdict_table
from paced.report.claims import FKL_TRACK, SELF_TRACK, tracks_for
from paced.report.tables import method_order
from paced.report.verdicts import FIRST_STAGE, INCONCLUSIVE, NOT_RUN, REPRODUCED, first_stage_only


def _summary(values: dict[str, list[float]], steps: tuple[int, ...] = (150, 300), probe: bool = False) -> pd.DataFrame:
    """toy_arith/all avg@k (fractions) per method and seed at every step (same values at each step)."""
    rows = []
    for method, vals in values.items():
        for step in (0,) if method == "base" else steps:
            for seed, v in enumerate(vals):
                rows.append({"method": method, "seed": seed, "step": step, "task": "toy_arith", "tier": "all",
                             "metric": "avg@k", "value": v, "n": 64.0, "note": ""})
                if probe:
                    rows.append({**rows[-1], "task": "toy_probe", "metric": "forgetting_pts", "value": 100 * v})
    return pd.DataFrame(rows).astype({"seed": "Int64", "step": "Int64"})


def test_two_stage_judged_against_both_and_not_in_its_first_stage() -> None:
    df = _summary({"uniform-fkl": [0.50, 0.51, 0.52], "paced-fkl": [0.60, 0.61, 0.62],
                   "paced-fkl-then-rkl": [0.70, 0.71, 0.72]})
    v = claim_verdicts(df, train_steps=300).set_index(["claim", "step"])
    for claim in ("FKL→RKL > PACED FKL", "FKL→RKL > uniform FKL"):
        assert v.loc[(claim, 150), "verdict"] == FIRST_STAGE  # 0.5 × 300 = 150 FKL steps: not yet RKL
        assert v.loc[(claim, 300), "verdict"] == REPRODUCED and v.loc[(claim, 300), "family"] == "primary"
    assert v.loc[("FKL→RKL > uniform FKL", 300), "mean_diff"] == pytest.approx(20.0)
    assert v.loc[("PACED > uniform", 150), "verdict"] == REPRODUCED  # one-stage methods are judged at 150
    # a 3/4 split (an override spec) is still in its first stage at 150 of 200 steps, past it at 200
    late = {"paced-fkl-then-rkl": {"preset": "paced-fkl-then-rkl",
                                   "stages": [{"divergence": "forward_kl", "fraction": 0.75},
                                              {"divergence": "reverse_kl", "fraction": 0.25}]}}
    v2 = claim_verdicts(df, methods=late, train_steps=200).set_index(["claim", "step"])
    assert v2.loc[("FKL→RKL > PACED FKL", 150), "verdict"] == FIRST_STAGE
    assert v2.loc[("FKL→RKL > PACED FKL", 300), "verdict"] == REPRODUCED


def test_first_stage_only_from_the_spec() -> None:
    specs = {"two": get_method("paced-fkl-then-rkl"), "one": get_method("paced-fkl")}
    assert first_stage_only("two", 150, specs, 300) and not first_stage_only("two", 151, specs, 300)
    assert not first_stage_only("one", 10, specs, 300) and not first_stage_only("missing", 10, specs, 300)


def test_self_track_gets_verdicts() -> None:
    df = _summary({"self-uniform-rkl": [0.50, 0.51, 0.52], "self-paced-rkl": [0.60, 0.61, 0.62],
                   "self-akl": [0.55, 0.56, 0.57]}, probe=True)
    v = claim_verdicts(df)
    assert set(v["track"]) == {"self-rkl"}
    final = v[(v["step"] == 300) & (v["family"] == "primary")].set_index("claim")
    assert final.loc["PACED > uniform", "verdict"] == REPRODUCED
    akl = final.loc["PACED > AKL"]
    assert akl["method"] == "self-paced-rkl" and akl["reference"] == "self-akl"
    assert final.loc["PACED > hard filter", "verdict"] == NOT_RUN
    # 5 claims in the self family (no two-stage run in the paper's self-distillation table)
    assert final.loc["PACED > uniform", "level"] == pytest.approx(1 - 0.05 / SELF_TRACK.family_size)
    assert [t.name for t in tracks_for(frozenset({"paced-fkl", "self-paced-rkl"}))] == ["fkl", "self-rkl"]
    assert [t.name for t in tracks_for(frozenset())] == [FKL_TRACK.name]


def test_noninferiority_uses_the_margin() -> None:
    # PACED forgets 0.5 points more than uniform on every seed: within a 1-point margin, outside a 0.1 one
    df = _summary({"uniform-fkl": [0.020, 0.030, 0.040], "paced-fkl": [0.025, 0.035, 0.045]}, probe=True)
    one = claim_verdicts(df, noninferiority_margin_pts=1.0).set_index(["claim", "step"])
    tight = claim_verdicts(df, noninferiority_margin_pts=0.1).set_index(["claim", "step"])
    key = ("PACED forgets no more than uniform", 300)
    assert one.loc[key, "verdict"] == REPRODUCED and one.loc[key, "null"] == -1.0
    assert tight.loc[key, "verdict"] == "not reproduced"
    with pytest.raises(ValueError, match=r"report.noninferiority_margin_pts=-1 is out of range"):
        claim_verdicts(df, noninferiority_margin_pts=-1)


def _bins(snr: list[float], half: float) -> dict:
    edges = [i / len(snr) for i in range(len(snr) + 1)]
    return {"bins": [{"group": "all", "bin_lo": lo, "bin_hi": hi, "n": 20, "snr": s, "ci_lo": s - half,
                      "ci_hi": s + half} for lo, hi, s in zip(edges[:-1], edges[1:], snr, strict=True)]}


def test_snr_bell_is_not_the_best_bin_after_the_fact() -> None:
    # one lucky middle bin: its own CI clears both ends (the old best-bin rule said "reproduced"), but the
    # pre-registered contrast (mean of the middle bins vs each end) does not
    lucky = _bins([0.02, 0.02, 0.02, 0.035, 0.02, 0.02, 0.02], 0.004)
    assert snr_verdicts(lucky)["verdict"].tolist() == [INCONCLUSIVE]
    bell = _bins([0.01, 0.02, 0.04, 0.05, 0.04, 0.02, 0.01], 0.004)
    row = snr_verdicts(bell, track=FKL_TRACK).iloc[0]
    assert row["verdict"] == REPRODUCED and row["family"] == "primary"
    assert row["mean_diff"] == pytest.approx(0.13 / 3 - 0.01)  # mean(0.04, 0.05, 0.04) − 0.01


def test_verdict_table_has_snr_per_track_and_families() -> None:
    df = _summary({"uniform-fkl": [0.50, 0.51, 0.52], "paced-fkl": [0.60, 0.61, 0.62]})
    v = verdict_table(df, snr=[_bins([0.01, 0.04, 0.05, 0.04, 0.01], 0.002)])
    assert set(v["family"]) == {"primary", "exploratory"}
    assert v[v["claim"] == "SNR is bell-shaped in p"]["verdict"].tolist() == [REPRODUCED]


def test_method_order_follows_the_presets() -> None:
    assert PRESET_ORDER[0] == "base" and "oracle-fkl" in PRESET_ORDER
    shuffled = ["zz-custom", "self-uniform-rkl", *reversed(PRESET_ORDER)]
    ordered = method_order(shuffled)
    assert ordered[: len(PRESET_ORDER) + 1] == [*PRESET_ORDER[:8], "self-uniform-rkl", *PRESET_ORDER[8:]]
    assert ordered[-1] == "zz-custom"


def test_skipped_batches_table(tmp_path: Path) -> None:
    for method, seed, n in (("paced-fkl", 0, 3), ("hardfilter-fkl", 1, 0)):
        path = tmp_path / "runs" / method / f"seed{seed}" / "run.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"method": {}, "skipped_batches": n}))
    failed = tmp_path / "runs" / "akl" / "seed0" / "run.json"
    failed.parent.mkdir(parents=True)
    failed.write_text(json.dumps({"error": "boom"}))
    t = skipped_batches(sorted(tmp_path.glob("runs/*/*/run.json")))
    assert t.set_index("method")["skipped_batches"].to_dict() == {"paced-fkl": 3, "hardfilter-fkl": 0}
    assert t.set_index("method").loc["hardfilter-fkl", "seed"] == 1
