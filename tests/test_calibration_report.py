"""paced.report.calibration: the toy world's regime evidence from results files."""

from __future__ import annotations

import pandas as pd
import pytest

from paced.report.calibration import (
    INTRACTABLE_CHANCE,
    plot_world_calibration,
    pool_histograms,
    regime_checks,
    trajectory,
    world_calibration,
)


def _rows(method: str, seed: int, step: int, learnable: float, intractable: float, mc: float, em: float) -> list[dict]:
    base = {"method": method, "seed": seed, "step": step, "n": 10, "note": ""}
    return [
        {**base, "task": "toy_arith", "tier": "learnable", "metric": "avg@k", "value": learnable},
        {**base, "task": "toy_arith", "tier": "intractable", "metric": "avg@k", "value": intractable},
        {**base, "task": "toy_probe", "tier": "all", "metric": "mc_acc", "value": mc},
        {**base, "task": "toy_probe", "tier": "all", "metric": "mc_prob", "value": mc - 0.01},
        {**base, "task": "toy_probe", "tier": "all", "metric": "em", "value": em},
    ]


def _summary(final_intractable: float = 0.04, final_mc: float = 0.8) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        rows += _rows("base", seed, 0, 0.40 + 0.01 * seed, 0.05, 0.98, 0.95)
        rows += _rows("uniform-fkl", seed, 100, 0.50, 0.05, 0.9, 0.9)
        rows += _rows("uniform-fkl", seed, 200, 0.60 + 0.02 * seed, final_intractable, final_mc, 0.7)
        rows += _rows("paced-fkl", seed, 200, 0.9, 0.9, 0.1, 0.1)  # another method: must be ignored
    return pd.DataFrame(rows)


def _rates() -> list[dict]:
    counts = {"learnable": [0, 1, 2, 2, 4], "intractable": [0, 0, 0, 1]}
    return [{"id": f"{t}{i}", "k": 4, "num_correct": c, "tier": t}
            for t, cs in counts.items() for i, c in enumerate(cs)]


def test_pool_histograms_count_problems_per_num_correct() -> None:
    assert pool_histograms(_rates()) == {"learnable": [1, 1, 2, 0, 1], "intractable": [3, 1, 0, 0, 0]}


def test_pool_histograms_refuse_mixed_k() -> None:
    rows = [*_rates(), {"id": "x", "k": 8, "num_correct": 1, "tier": "learnable"}]
    with pytest.raises(ValueError, match="mix k values"):
        pool_histograms(rows)


def test_trajectory_puts_base_at_step_zero_and_averages_seeds() -> None:
    curve = trajectory(_summary(), "uniform-fkl", "toy_arith", "learnable", "avg@k")
    assert [p["step"] for p in curve] == [0, 100, 200]
    assert curve[0]["mean"] == pytest.approx(0.405)
    assert curve[2]["mean"] == pytest.approx(0.61)
    assert (curve[2]["min"], curve[2]["max"], curve[2]["n_seeds"]) == (pytest.approx(0.60), pytest.approx(0.62), 2)


def test_world_calibration_passes_a_world_in_the_regime() -> None:
    rec = world_calibration({"teacher": {"step": 5}}, _rates(), _summary())
    assert rec["method"] == "uniform-fkl"
    assert all(rec["checks"].values()), rec["checks"]
    assert rec["teacher"]["step"] == 5


@pytest.mark.parametrize(("kwargs", "failing"), [
    ({"final_intractable": INTRACTABLE_CHANCE + 0.2}, ["intractable_at_chance_every_budget"]),
    ({"final_mc": 0.99}, ["probe_degrades", "probe_mc_prob_degrades"]),  # EM still falls (0.95 -> 0.7)
])
def test_world_calibration_names_the_failed_property(kwargs: dict, failing: list) -> None:
    rec = world_calibration({}, _rates(), _summary(**kwargs))
    assert [k for k, v in rec["checks"].items() if v is False] == failing


def test_regime_checks_without_runs_are_undecided() -> None:
    checks = regime_checks({"learnable": [0, 3, 0]}, {}, [])
    assert checks["pool_learnable_mass_at_0"] is False and checks["pool_learnable_mass_interior"] is True
    assert checks["learnable_improves"] is None and checks["probe_degrades"] is None


def test_calibration_figure_is_written(tmp_path) -> None:
    rec = world_calibration({}, _rates(), _summary())
    paths = plot_world_calibration(rec, tmp_path / "cal")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_read_jsonl_names_the_file_and_line_of_a_bad_row(tmp_path) -> None:
    from paced.io import read_jsonl

    path = tmp_path / "rates.jsonl"
    path.write_text('{"id": "a", "k": 4}\n\n{"id": "b", \n')
    with pytest.raises(ValueError, match=r"rates\.jsonl:3: not valid JSON"):
        read_jsonl(path)
    path.write_text('{"id": "a"}\n\n{"id": "b"}\n')
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
