"""config/ablations/*.yaml resolve as Snakemake would run them; bad knobs fail naming the key; aggregation."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from paced.pipeline.suite import resolve_suite
from paced.report import read_summary
from paced.report.ablations import (
    ABLATION_SUMMARY,
    ablation_knobs,
    ablation_specs,
    collect_ablation,
    knob_effects,
    knob_values,
    load_ablation,
    load_ablation_config,
    merge_config,
    read_ablation_summary,
    varied_knobs,
    write_ablation_summary,
)

snakemake_utils = pytest.importorskip("snakemake.utils")

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "config" / "ablations"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
FIXTURE = ROOT / "tests" / "fixtures" / "results"
NAMES = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
GRID = (0.0, 0.5, 1.0, 2.0)


def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def snakemake_config(override: dict[str, Any]) -> dict[str, Any]:
    """config/config.yaml, then ``override`` as ``--configfile`` does (Snakemake's own deep update), then the
    schema's validation with defaults: the dict the workflow's rules see."""
    cfg = _read(ROOT / "config" / "config.yaml")
    snakemake_utils.update_config(cfg, copy.deepcopy(override))
    snakemake_utils.validate(cfg, str(SCHEMA))
    return cfg


@pytest.fixture(scope="module", params=NAMES)
def resolved(request: pytest.FixtureRequest) -> tuple[str, Any]:
    return request.param, resolve_suite(snakemake_config(_read(CONFIGS / f"{request.param}.yaml")))


def _knobs(suite: Any, *fields: str) -> list[tuple[Any, ...]]:
    return [tuple(knob_values(suite.method_specs[m])[f] for f in fields) for m in suite.method_ids]


def test_every_ablation_of_the_issue_exists() -> None:
    assert NAMES == ["alpha_beta", "k", "kernels", "normalisation", "refresh", "smoothing", "stage_split"]


def test_ablation_runs_apart_and_small(resolved: tuple[str, Any]) -> None:
    name, suite = resolved
    assert suite.results_dir == f"results/ablations/{name}"
    assert suite.seeds == (0, 1) and suite.budgets == (300,) and suite.train.steps == 300
    assert not suite.snr.enabled


def test_alpha_beta_grid() -> None:
    suite = resolve_suite(snakemake_config(_read(CONFIGS / "alpha_beta.yaml")))
    assert sorted(_knobs(suite, "alpha", "beta")) == sorted((a, b) for a in GRID for b in GRID)
    for mid in suite.method_ids:
        spec = suite.method_specs[mid]
        kern = spec["kernel"]
        assert mid == f"paced-fkl-a{kern['alpha']:g}b{kern['beta']:g}" and kern["name"] == "beta"
        assert spec["weight_source"] == "pass_rate" and spec["refresh"] == "every_n" and spec["refresh_every"] == 150
    assert suite.method_specs["paced-fkl-a0.5b2"]["kernel"]["alpha"] == 0.5


def test_kernels_k_smoothing_normalisation() -> None:
    def suite(name: str) -> Any:
        return resolve_suite(snakemake_config(_read(CONFIGS / f"{name}.yaml")))

    assert sorted(_knobs(suite("kernels"), "kernel", "floor")) == [
        ("beta", 0.0),
        ("beta", 0.02),
        ("hard_filter", 0.0),
        ("inverse", 0.0),
        ("uniform", 0.0),
    ]
    k = suite("k")
    assert _knobs(k, "k") == [(4,), (8,), (16,)]
    assert k.passrate.k == 8  # the base pass-rate file keeps the suite's K
    assert _knobs(suite("smoothing"), "smoothing") == [("none",), ("laplace",), ("jeffreys",)]
    assert _knobs(suite("normalisation"), "normalisation") == [("sum",), ("mean_one",), ("none",)]


def test_refresh_arms_share_the_two_stage_method() -> None:
    suite = resolve_suite(snakemake_config(_read(CONFIGS / "refresh.yaml")))
    assert _knobs(suite, "refresh") == [("once",), ("per_stage",), ("every_n",), ("online",)]
    for spec in suite.method_specs.values():
        assert [(s["divergence"], s["source"], s["fraction"]) for s in spec["stages"]] == [
            ("forward_kl", "references", 0.5),
            ("reverse_kl", "on_policy", 0.5),
        ]
    assert [s["refresh_every"] for s in suite.method_specs.values()] == [None, None, 50, None]


def test_stage_split() -> None:
    suite = resolve_suite(snakemake_config(_read(CONFIGS / "stage_split.yaml")))
    for f, spec in zip((0.25, 0.5, 0.75), suite.method_specs.values(), strict=True):
        assert [(s["divergence"], s["source"], s["fraction"]) for s in spec["stages"]] == [
            ("forward_kl", "references", f),
            ("reverse_kl", "on_policy", pytest.approx(1 - f)),
        ]


EXPECTED_KNOBS = {
    "alpha_beta": ["alpha", "beta"],
    "k": ["k"],
    "kernels": ["kernel", "floor"],
    "normalisation": ["normalisation"],
    "refresh": ["refresh"],
    "smoothing": ["smoothing"],
    "stage_split": ["first_stage_fraction"],
}


@pytest.mark.parametrize("name", NAMES)
def test_library_merge_matches_snakemake(name: str) -> None:
    """load_ablation_config + ablation_specs (no Snakemake) give the specs the workflow resolves."""
    lib = load_ablation_config(CONFIGS / f"{name}.yaml")
    suite = resolve_suite(snakemake_config(_read(CONFIGS / f"{name}.yaml")))
    assert ablation_specs(lib) == dict(suite.method_specs)
    values = {m: knob_values(s) for m, s in suite.method_specs.items()}
    assert varied_knobs(values) == EXPECTED_KNOBS[name]


def test_merge_config_semantics() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": [1], "c": 1}
    over = {"a": {"y": [3]}, "b": [2, 3], "d": {"z": 1}}
    ours = merge_config(base, over)
    theirs = copy.deepcopy(base)
    snakemake_utils.update_config(theirs, over)
    assert ours == theirs == {"a": {"x": 1, "y": [3]}, "b": [2, 3], "c": 1, "d": {"z": 1}}
    assert base["a"]["y"] == [1, 2]  # inputs untouched


# ---- bad input: fails at parse time, naming the key -------------------------------------------------------------

BAD_OVERRIDES = [
    ({"preset": "paced-fkl", "kernal": {"alpha": 2}}, "kernal"),
    ({"preset": "paced-fkl", "kernel": {"alfa": 2}}, "alfa"),
    ({"preset": "paced-fkl", "kernel": {"alpha": -1}}, "alpha=-1"),
    ({"preset": "paced-fkl", "kernel": {"floor": 1.5}}, "floor"),
    ({"preset": "paced-fkl", "k": 0}, "k=0"),
    ({"preset": "paced-fkl", "smoothing": "laplce"}, "laplace"),
    ({"preset": "pacedfkl"}, "pacedfkl"),
    ({"preset": "paced-fkl", "kernel": {"name": "betta"}}, "betta"),
]


@pytest.mark.parametrize(("override", "key"), BAD_OVERRIDES, ids=[k for _, k in BAD_OVERRIDES])
def test_bad_override_names_the_key(override: dict[str, Any], key: str) -> None:
    ablation = {
        "results_dir": "results/ablations/bad",
        "methods": ["bad-arm"],
        "method_overrides": {"bad-arm": override},
    }
    cfg = snakemake_config(ablation)  # method overrides are free-form in the schema: the suite checks them
    with pytest.raises(ValueError, match=key) as err:
        resolve_suite(cfg)
    assert "bad-arm" in str(err.value)
    with pytest.raises(ValueError, match=key):
        ablation_specs(merge_config(_read(ROOT / "config" / "config.yaml"), ablation))


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"passrate": {"kk": 4}}, "kk"),
        ({"passrate": {"k": 0}}, "minimum"),
        ({"passrate": {"smoothing": "laplce"}}, "laplce"),
        ({"seeds": [-1]}, "minimum"),
        ({"ablation": "x"}, "ablation"),
    ],
)
def test_bad_suite_key_fails_schema(section: dict[str, Any], key: str) -> None:
    with pytest.raises(Exception, match=key):
        snakemake_config(section)


def test_bad_ids_and_unused_overrides() -> None:
    with pytest.raises(ValueError, match="names must match"):
        resolve_suite(
            snakemake_config({"methods": ["Paced_FKL"], "method_overrides": {"Paced_FKL": {"preset": "akl"}}})
        )
    with pytest.raises(ValueError, match="method_overrides defines"):
        ablation_specs({"methods": ["akl"], "method_overrides": {"x": {"preset": "akl"}}})


# ---- aggregation --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_collect_matches_the_committed_fixture(name: str) -> None:
    run_dir = FIXTURE / "ablations" / name
    df = collect_ablation(run_dir, CONFIGS / f"{name}.yaml")
    committed = read_ablation_summary(run_dir / ABLATION_SUMMARY)
    pd.testing.assert_frame_equal(df, committed, check_dtype=False)
    assert ablation_knobs(df) == EXPECTED_KNOBS[name] and (df["ablation"] == name).all()
    assert len(df) == len(read_summary(run_dir / "summary.csv"))
    base = df[df["method"] == "base"]
    assert len(base) and base[EXPECTED_KNOBS[name]].isna().all().all()


def test_collect_alpha_beta_values(tmp_path: Path) -> None:
    df = collect_ablation(FIXTURE / "ablations" / "alpha_beta", CONFIGS / "alpha_beta.yaml")
    arm = df[df["method"] == "paced-fkl-a0.5b2"]
    assert (arm["alpha"] == 0.5).all() and (arm["beta"] == 2.0).all()
    assert list(df.columns[:11]) == [
        "method",
        "seed",
        "step",
        "task",
        "tier",
        "metric",
        "value",
        "n",
        "note",
        "ablation",
        "knobs",
    ]
    out = write_ablation_summary(
        FIXTURE / "ablations" / "alpha_beta", CONFIGS / "alpha_beta.yaml", out=tmp_path / "a.csv"
    )
    pd.testing.assert_frame_equal(read_ablation_summary(out), df)


def test_knob_effects_is_the_seed_mean() -> None:
    df = load_ablation(FIXTURE, "k", CONFIGS)
    target = ("toy_arith", "learnable", "avg@k")
    eff = knob_effects(df, [target])
    rows = df[
        (df["method"] == "paced-fkl-k4")
        & (df["task"] == "toy_arith")
        & (df["tier"] == "learnable")
        & (df["metric"] == "avg@k")
    ]
    hit = eff[eff["k"] == 4]
    assert hit["mean"].iloc[0] == pytest.approx(rows["value"].mean())
    assert hit["std"].iloc[0] == pytest.approx(rows["value"].std(ddof=1))
    assert hit["n_seeds"].iloc[0] == 2 and hit["arm"].iloc[0] == "k=4"
    assert set(eff["method"]) == {"base", "paced-fkl-k4", "paced-fkl-k8", "paced-fkl-k16"}


def test_load_ablation_fallbacks(tmp_path: Path) -> None:
    df = load_ablation(FIXTURE, "smoothing", config_dir=None)  # no config: the written ablation summary
    assert ablation_knobs(df) == ["smoothing"]
    with pytest.raises(FileNotFoundError, match=r"configfile config/ablations/nope\.yaml"):
        load_ablation(FIXTURE, "nope", CONFIGS)
    with pytest.raises(FileNotFoundError, match=r"summary\.csv"):
        collect_ablation(tmp_path, CONFIGS / "k.yaml")
    with pytest.raises(ValueError, match="knobs: unknown"):
        collect_ablation(FIXTURE / "ablations" / "k", CONFIGS / "k.yaml", knobs=["kk"])


def test_k_arm_estimates_its_own_initial_pass_rates() -> None:
    from paced.pipeline.distill import distill_config

    suite = resolve_suite(snakemake_config(_read(CONFIGS / "k.yaml")))
    own = distill_config(suite, "paced-fkl-k4", 0, passrates="base.jsonl", references="refs.jsonl")
    same = distill_config(suite, "paced-fkl-k8", 0, passrates="base.jsonl", references="refs.jsonl")
    assert same.passrates == "base.jsonl" and own.passrates is None


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_snakemake_dry_run(name: str) -> None:
    snakemake = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run(
        [str(snakemake), "-n", "--configfile", f"config/ablations/{name}.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"results/ablations/{name}/runs/" in proc.stdout + proc.stderr
