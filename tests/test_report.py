"""paced.report: collection, forgetting, tables, paired differences, verdicts, paper table, figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from paced.report import (
    add_forgetting,
    claim_verdicts,
    collect_eval_results,
    error_cells,
    fmt_mean_std,
    oracle_gap,
    paired_differences,
    paper_style_table,
    paper_table,
    paper_vs_run,
    read_summary,
    snr_verdicts,
    t_interval,
    to_latex,
    to_markdown,
    write_summary,
    write_tables,
)
from paced.report.verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, verdict_from_ci

GEN, PROBE = "toy_arith", "toy_probe"


def _gen_result(method: str, seed: int, step: int, learnable: float, hard: float) -> dict:
    return {
        "model": f"{method}-s{seed}",
        "method": method,
        "seed": seed,
        "step": step,
        "task": GEN,
        "kind": "generation",
        "provenance": {},
        "metrics": {
            "learnable": {"avg@k": learnable, "pass@k": min(1.0, learnable + 0.1), "k": 8, "n": 40},
            "hard": {"avg@k": hard, "pass@k": min(1.0, hard + 0.1), "k": 8, "n": 10},
        },
    }


def _probe_result(method: str, seed: int, step: int, acc: float) -> dict:
    return {
        "model": method,
        "method": method,
        "seed": seed,
        "step": step,
        "task": PROBE,
        "kind": "multiple_choice",
        "metrics": {"all": {"mc_acc": acc, "em": acc, "n": 50}},
        "provenance": {},
    }


def _rows(method: str, step: int, values: dict[tuple[str, str, str], list[float]]) -> list[dict]:
    """Summary rows: values[(task, tier, metric)] = one value per seed (seed = position)."""
    return [
        {
            "method": method,
            "seed": s,
            "step": step,
            "task": t,
            "tier": tier,
            "metric": m,
            "value": v,
            "n": 10.0,
            "note": "",
        }
        for (t, tier, m), vals in values.items()
        for s, v in enumerate(vals)
    ]


def _summary(
    accs: dict[str, list[float]], probe: dict[str, list[float]] | None = None, step: int = 300
) -> pd.DataFrame:
    """A summary with toy_arith/learnable avg@k per method (and optional probe mc_acc); base at step 0."""
    rows = []
    for method, vals in accs.items():
        cells = {(GEN, "learnable", "avg@k"): vals}
        if probe and method in probe:
            cells[(PROBE, "all", "mc_acc")] = probe[method]
        rows += _rows(method, 0 if method == "base" else step, cells)
    df = pd.DataFrame(rows)
    df["seed"] = df["seed"].astype("Int64")
    df["step"] = df["step"].astype("Int64")
    return df


def _write(tmp_path: Path, name: str, obj: object) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def test_collect_rows_errors_and_roundtrip(tmp_path: Path) -> None:
    paths = [
        _write(tmp_path, "a.json", _gen_result("paced-fkl", 1, 300, 0.9, 0.7)),
        _write(tmp_path, "b.json", _probe_result("base", 1, 0, 0.8)),
        _write(tmp_path, "eval/akl/toy_arith/seed2/step300.json", {"error": "CUDA OOM"}),
        _write(tmp_path, "eval/akl/toy_probe/seed2/step300.json", "{not json"),
    ]
    df = collect_eval_results(paths)
    # 2 tiers x (avg@k, pass@k, k) + probe (mc_acc, em) + 2 error rows
    assert len(df) == 6 + 2 + 2
    hard = df[(df["method"] == "paced-fkl") & (df["tier"] == "hard") & (df["metric"] == "avg@k")]
    assert hard["value"].tolist() == [pytest.approx(0.7)] and hard["n"].tolist() == [10.0]
    assert int(hard["seed"].iloc[0]) == 1 and int(hard["step"].iloc[0]) == 300
    errs = error_cells(df)
    assert sorted(errs["task"]) == [GEN, PROBE]
    assert set(errs["method"]) == {"akl"} and set(errs["seed"]) == {2} and set(errs["step"]) == {300}
    assert "CUDA OOM" in errs.loc[errs["task"] == GEN, "note"].iloc[0]
    back = read_summary(write_summary(df, tmp_path / "results" / "summary.csv"))
    assert list(back.columns)[:8] == ["method", "seed", "step", "task", "tier", "metric", "value", "n"]
    assert len(back) == len(df) and back["value"].sum() == pytest.approx(df["value"].sum())


def test_fmt_mean_std() -> None:
    assert fmt_mean_std(79.44, 0.46) == "79.4 ± 0.5"
    assert fmt_mean_std(79.44, math.nan) == "79.4"
    assert fmt_mean_std(math.nan, 1.0) == "—"
    assert fmt_mean_std(0.12345, 0.01, digits=3) == "0.123 ± 0.010"


def test_forgetting_arithmetic() -> None:
    df = _summary(
        {"base": [0.5, 0.5], "paced-fkl": [0.6, 0.6]}, probe={"base": [0.80, 0.50], "paced-fkl": [0.76, 0.55]}
    )
    out = add_forgetting(df)
    f = out[out["metric"].str.startswith("forgetting")].set_index(["metric", "seed"])["value"]
    assert f[("forgetting_pts", 0)] == pytest.approx(4.0)  # 100 * (0.80 - 0.76)
    assert f[("forgetting_pct", 0)] == pytest.approx(5.0)  # 4 / 0.80
    assert f[("forgetting_pts", 1)] == pytest.approx(-5.0)  # got better: negative forgetting
    assert f[("forgetting_pct", 1)] == pytest.approx(-10.0)
    assert len(add_forgetting(out)) == len(out)  # idempotent
    em = df.assign(metric=df["metric"].replace({"mc_acc": "em"}))  # a probe scored by exact match too
    both = add_forgetting(pd.concat([df, em[em["task"] == PROBE]]))
    g = both[both["metric"].str.startswith("forgetting")].set_index(["metric", "seed"])["value"]
    assert g[("forgetting_em_pts", 0)] == pytest.approx(4.0) and g[("forgetting_pts", 0)] == pytest.approx(4.0)


def test_paper_style_table_cells_order_and_errors() -> None:
    df = _summary(
        {
            "paced-fkl": [0.5, 0.6, 0.7],
            "uniform-fkl": [0.4, 0.4, 0.4],
            "base": [0.3, 0.3, 0.3],
            "zz-custom": [0.1, 0.1, 0.1],
        }
    )
    err_row = {"seed": 0, "step": 300, "task": GEN, "tier": "all", "metric": "error", "value": math.nan, "n": math.nan}
    err = pd.DataFrame(
        [{**err_row, "method": "akl", "note": "boom"}, {**err_row, "method": "uniform-fkl", "seed": 3, "note": "x"}]
    ).astype(df.dtypes.to_dict())
    table = paper_style_table(pd.concat([df, err], ignore_index=True), 300)
    assert list(table.index) == ["base", "uniform-fkl", "akl", "paced-fkl", "zz-custom"]
    col = "toy_arith/learnable avg@k (%)"
    assert table.loc["paced-fkl", col] == "60.0 ± 10.0"
    assert table.loc["base", col] == "30.0 ± 0.0"
    assert table.loc["akl", col] == "error"  # every seed failed
    assert table.loc["uniform-fkl", col] == "40.0 ± 0.0 (1 failed)"  # one of four seeds failed
    assert table.loc["paced-fkl", "seeds"] == 3
    md, tex = to_markdown(table), to_latex(table)
    assert "| paced-fkl | 3 | 60.0 ± 10.0 |" in md
    assert r"60.0 $\pm$ 10.0" in tex and r"toy\_arith" in tex


def test_t_interval_and_paired_differences() -> None:
    assert t_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    # [1, 2, 6]: mean 3, s = sqrt(7), t_{2, 0.975} = 4.302653 (closed form for 2 df: t = (2q-1)/sqrt(2q(1-q)))
    q = 0.975
    half = (2 * q - 1) / math.sqrt(2 * q * (1 - q)) * math.sqrt(7) / math.sqrt(3)
    assert t_interval([1.0, 2.0, 6.0]) == pytest.approx((3.0, 3.0 - half, 3.0 + half))
    # 1 df is Cauchy: t_{1, 0.95} = tan(0.45 pi); [0, 2]: mean 1, s = sqrt(2), half = t * s / sqrt(2)
    assert t_interval([0.0, 2.0], level=0.9)[2] == pytest.approx(1.0 + math.tan(0.45 * math.pi))
    assert all(math.isnan(x) for x in t_interval([5.0])[1:]) and math.isnan(t_interval([])[0])
    df = _summary({"uniform-fkl": [0.40, 0.50, 0.60], "paced-fkl": [0.45, 0.52, 0.68]})
    pd_ = paired_differences(df, "uniform-fkl")
    row = pd_[pd_["method"] == "paced-fkl"].iloc[0]
    assert row["n_pairs"] == 3 and row["mean_diff"] == pytest.approx(5.0)  # (5 + 2 + 8) / 3 points
    lo, hi = t_interval([5.0, 2.0, 8.0])[1:]
    assert (row["ci_lo"], row["ci_hi"]) == pytest.approx((lo, hi)) and row["level"] == 0.95


@pytest.mark.parametrize(
    ("paced", "expected"),
    [
        ([0.60, 0.61, 0.62], REPRODUCED),  # +10 points on every seed
        ([0.40, 0.41, 0.42], NOT_REPRODUCED),  # -10 points on every seed
        ([0.40, 0.60, 0.51], INCONCLUSIVE),  # -10, +10, 0: straddles 0
    ],
)
def test_verdict_outcomes(paced: list[float], expected: str) -> None:
    df = _summary({"uniform-fkl": [0.50, 0.51, 0.52], "paced-fkl": paced})
    v = claim_verdicts(df).set_index("claim")
    assert v.loc["PACED > uniform", "verdict"] == expected
    assert v.loc["PACED > AKL", "verdict"] == NOT_RUN  # akl missing


def test_verdict_single_seed_and_forgetting_orientation() -> None:
    one = claim_verdicts(_summary({"uniform-fkl": [0.5], "paced-fkl": [0.9]})).set_index("claim")
    assert one.loc["PACED > uniform", "verdict"] == INCONCLUSIVE
    assert verdict_from_ci(0.1, 0.2, 1) == INCONCLUSIVE and verdict_from_ci(math.nan, math.nan, 0) == NOT_RUN
    df = add_forgetting(
        _summary(
            {"base": [0.5] * 3, "uniform-fkl": [0.6] * 3, "paced-fkl": [0.6] * 3},
            probe={"base": [0.8] * 3, "uniform-fkl": [0.60, 0.62, 0.64], "paced-fkl": [0.78, 0.79, 0.80]},
        )
    )
    v = claim_verdicts(df).set_index("claim").loc["PACED forgets no more than uniform"]
    assert v["verdict"] == REPRODUCED and v["mean_diff"] == pytest.approx(17.0)  # (18 + 17 + 16) / 3


def _bins(snr: list[float], half: list[float]) -> dict:
    edges = [i / len(snr) for i in range(len(snr) + 1)]
    return {
        "bins": [
            {
                "group": "learnable",
                "bin_lo": lo,
                "bin_hi": hi,
                "n": 20,
                "snr": s,
                "ci_lo": s - h,
                "ci_hi": s + h,
                "cosine": 0.5,
                "mean_norm": 1.0,
            }
            for lo, hi, s, h in zip(edges[:-1], edges[1:], snr, half, strict=True)
        ],
        "kernel": {"alpha": 1, "beta": 1},
        "provenance": {},
    }


@pytest.mark.parametrize(
    ("snr", "half", "expected"),
    [
        ([0.01, 0.05, 0.08, 0.04, 0.01], [0.005] * 5, REPRODUCED),
        ([0.037, 0.03, 0.02, 0.01, 0.006], [0.003] * 5, NOT_REPRODUCED),  # the prototype's monotone fall
        ([0.02, 0.03, 0.025, 0.02, 0.02], [0.02] * 5, INCONCLUSIVE),
    ],
)
def test_snr_bell_verdict(snr: list[float], half: list[float], expected: str) -> None:
    assert snr_verdicts(_bins(snr, half))["verdict"].tolist() == [expected]


def test_oracle_gap() -> None:
    g = oracle_gap(_summary({"uniform-fkl": [0.5, 0.5], "paced-fkl": [0.6, 0.6], "oracle-fkl": [0.7, 0.9]}))
    row = g.iloc[0]
    assert row["gap"] == pytest.approx(20.0) and row["share"] == pytest.approx(10.0 / 30.0)


def test_paper_numbers_and_paper_vs_run() -> None:
    t = paper_table().set_index(["setting", "method", "benchmark"])
    v3 = "v3 distillation: Qwen3-8B-GRPO → Qwen3-1.7B, forward KL"
    assert t.loc[(v3, "PACED Forward KL", "MATH-500"), "mean"] == 79.4
    assert t.loc[(v3, "PACED Forward KL", "MATH-500"), "std"] == 0.5
    assert t.loc[(v3, "Hard Filter Forward KL", "AIME 2025"), "mean"] == 18.8
    assert len(paper_table(v3)) == 15 + 2  # 5 methods x 3 benchmarks + forgetting + two-stage gain
    df = _summary({"base": [0.3, 0.3], "paced-fkl": [0.5, 0.7]})
    cmp_ = paper_vs_run(df)
    row = cmp_[
        (cmp_["paper_setting"] == v3) & (cmp_["paper_method"] == "PACED Forward KL") & (cmp_["benchmark"] == "MATH-500")
    ].iloc[0]
    assert row["paper"] == "79.4 ± 0.5" and row["ours"] == "60.0 ± 14.1"
    assert row["our_cell"] == "toy_arith/learnable avg@k" and "different settings" in row["settings"]
    gain = cmp_[
        (cmp_["paper_method"] == "PACED Forward KL")
        & (cmp_["quantity"] == "gain over Base")
        & (cmp_["benchmark"] == "MATH-500")
    ].iloc[0]
    assert gain["paper"] == "7.5" and gain["ours"].startswith("30.0")
    assert cmp_.loc[cmp_["paper_method"] == "AKL", "ours"].eq("—").all()


def test_write_tables(tmp_path: Path) -> None:
    df = _summary(
        {"base": [0.3] * 2, "uniform-fkl": [0.5, 0.52], "paced-fkl": [0.6, 0.63]},
        probe={"base": [0.8] * 2, "uniform-fkl": [0.7] * 2, "paced-fkl": [0.75] * 2},
    )
    err = {"method": "akl", "seed": 0, "step": 300, "task": GEN, "tier": "all", "metric": "error"}
    df = pd.concat([df, pd.DataFrame([{**err, "value": math.nan, "n": math.nan, "note": "OOM"}])])
    paths = write_tables(df, tmp_path, snr=[_bins([0.01, 0.05, 0.01], [0.001] * 3)])
    names = {p.name for p in paths}
    assert {"table_step300.md", "table_step300.tex", "verdicts.csv", "paper_vs_run.md", "errors.csv"} <= names
    assert all(p.stat().st_size > 0 for p in paths)
    md = (tmp_path / "table_step300.md").read_text()
    assert "61.5 ± 2.1" in md and "toy_probe forgetting_pts (pts)" in md and "| akl | 1 | error |" in md
    verdicts = pd.read_csv(tmp_path / "verdicts.csv").set_index("claim")["verdict"]
    assert verdicts["PACED > uniform"] == REPRODUCED  # +10 and +11 points on the two seeds
    assert verdicts["PACED > AKL"] == NOT_RUN and verdicts["SNR is bell-shaped in p"] == REPRODUCED
    assert "OOM" in (tmp_path / "errors.csv").read_text()


def test_figures_written(tmp_path: Path) -> None:
    from paced.report import make_all_figures

    df = _summary(
        {"base": [0.3] * 2, "uniform-fkl": [0.5, 0.52], "paced-fkl": [0.6, 0.63]},
        probe={"base": [0.8] * 2, "uniform-fkl": [0.7] * 2, "paced-fkl": [0.75] * 2},
    )
    df = pd.concat([df, _summary({"uniform-fkl": [0.7, 0.72], "paced-fkl": [0.8, 0.8]}, step=600)])
    pr = [{"id": str(i), "num_correct": i % 9, "k": 8, "p_hat": (i % 9) / 8, "tier": "learnable"} for i in range(30)]
    before = _write(tmp_path, "pr0.jsonl", "\n".join(json.dumps(r) for r in pr))
    after = _write(tmp_path, "pr1.jsonl", "\n".join(json.dumps({**r, "p_hat": 1.0, "num_correct": 8}) for r in pr))
    logs = [
        _write(
            tmp_path,
            f"runs/{m}/seed0/log.jsonl",
            "\n".join(
                json.dumps(
                    {
                        "step": s,
                        "stage": "fkl",
                        "loss": 1 / (s + 1),
                        "mean_weight": 0.2,
                        "zero_weight_share": 0.3,
                        "lr": 1e-4,
                    }
                )
                for s in range(5)
            ),
        )
        for m in ("paced-fkl", "uniform-fkl")
    ]
    paths = make_all_figures(
        df, tmp_path / "fig", snr=[_bins([0.01, 0.05, 0.01], [0.001] * 3)], passrates=(before, after), logs=logs
    )
    stems = {p.stem for p in paths}
    assert {
        "accuracy_step300",
        "accuracy_step600",
        "forgetting",
        "vs_steps",
        "kernels",
        "passrate_hist",
        "training_curves",
    } <= stems and any(s.startswith("snr") for s in stems)
    assert {p.suffix for p in paths} == {".png", ".pdf"}
    assert all(p.stat().st_size > 1000 for p in paths)
